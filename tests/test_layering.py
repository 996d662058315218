"""Who may import whom, read from the source (issue 19), and the generated code against the contract.

    affect (the library)   imports neither the server nor the client
    affect_server          imports the library and affect_proto; the client only by its public name (the demo)
    affect_client          imports affect_proto, never the library or the server
    affect_proto           generated from protos/affect/v1/affect.proto, never stale

and the library has no import cycle (imports under ``if TYPE_CHECKING:`` excepted: they never run).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {
    "affect": ROOT / "affect",
    "affect_server": ROOT / "server" / "affect_server",
    "affect_client": ROOT / "clients" / "python" / "affect_client",
    "affect_proto": ROOT / "protos" / "python" / "affect_proto",
}


def _module_name(package: str, path: Path) -> str:
    parts = path.relative_to(PACKAGES[package]).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join((package, *parts))


def _modules(package: str) -> dict[str, Path]:
    return {_module_name(package, p): p for p in sorted(PACKAGES[package].rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, module: str, is_package: bool) -> Iterator[tuple[str, tuple[str, ...], int]]:
    """``(imported module, names taken from it, line)`` for every import that can run, at any depth
    (inside functions too), and for ``importlib.import_module("...")`` with a literal name."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, (), node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            yield base, tuple(a.name for a in node.names), node.lineno
        elif (isinstance(node, ast.Call) and isinstance(node.func, (ast.Attribute, ast.Name))
              and getattr(node.func, "attr", getattr(node.func, "id", None)) in ("import_module", "__import__")
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            yield node.args[0].value, (), node.lineno
        stack.extend(ast.iter_child_nodes(node))


def _all_imports(package: str) -> Iterator[tuple[str, str, tuple[str, ...], int]]:
    for module, path in _modules(package).items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for target, names, line in _imports(tree, module, path.name == "__init__.py"):
            yield module, target, names, line


def _top(name: str) -> str:
    return name.split(".")[0]


def test_the_library_imports_neither_the_server_nor_the_client():
    """Nor the generated wire code: of the contract's package it reads only the turn rules
    (``affect_proto.rules``, plain Python), which the client's pre-check reads too."""
    offending = [f"{m}:{line} imports {t}" for m, t, _, line in _all_imports("affect")
                 if _top(t) in ("affect_server", "affect_client", "affect_proto") and t != "affect_proto.rules"]
    assert offending == []


def test_the_turn_rules_import_nothing_but_the_standard_library():
    import sys

    import affect_proto.rules as rules

    tree = ast.parse(Path(rules.__file__).read_text(encoding="utf-8"))
    assert {_top(t) for t, _, _ in _imports(tree, "affect_proto.rules", False)} <= set(sys.stdlib_module_names) | {"__future__"}


def test_the_server_uses_only_the_public_client_and_the_shared_generated_code():
    offending = [f"{m}:{line} imports {t}" for m, t, names, line in _all_imports("affect_server")
                 if _top(t) == "affect_client" and (t != "affect_client" or any(n.startswith("_") for n in names))]
    assert offending == []
    # ... and the string Ray Serve resolves to add the servicer names the shared package too
    assert "affect_client" not in (PACKAGES["affect_server"] / "ray_app.py").read_text(encoding="utf-8")


def test_the_client_imports_neither_the_library_nor_the_server():
    offending = [f"{m}:{line} imports {t}" for m, t, _, line in _all_imports("affect_client")
                 if _top(t) in ("affect", "affect_server")]
    assert offending == []
    offending = [f"{m}:{line} imports {t}" for m, t, _, line in _all_imports("affect_proto")
                 if _top(t) in ("affect", "affect_server", "affect_client")]
    assert offending == []



RAW_ENCODINGS = {"PCM_S16LE", "FLOAT32_LE", "RAW_GRAY8", "RAW_BGR8", "RAW_RGB8"}


def raw_encoding_tables(tree: ast.AST) -> list[int]:
    """The lines of collections (a dict, set, list or tuple written out) that list two or more of
    the wire's raw encodings, and of numpy type strings of raw samples: a table of them restated."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Dict, ast.Set, ast.List, ast.Tuple)):
            items = node.keys if isinstance(node, ast.Dict) else node.elts
            named = {item.attr for item in items if isinstance(item, ast.Attribute) and item.attr in RAW_ENCODINGS}
            if len(named) >= 2:
                lines.append(node.lineno)
        elif isinstance(node, ast.Constant) and node.value in ("<i2", "<f4"):
            lines.append(node.lineno)
    return lines


def test_the_table_finder_finds_a_table():  # the check below could fail
    assert raw_encoding_tables(ast.parse("WIDTH = {pb.PCM_S16LE: 2, pb.FLOAT32_LE: 4}\nRAW = frozenset({pb.RAW_GRAY8, pb.RAW_BGR8})")) == [1, 2]
    assert raw_encoding_tables(ast.parse("x = samples.astype('<i2')")) == [1]
    assert raw_encoding_tables(ast.parse("e = pb.RAW_BGR8 if bgr else pb.RAW_RGB8")) == []


def test_the_wires_raw_encodings_are_laid_out_in_one_module():
    """The raw samples' types, the raw pixels' channels, the text bytes' bound and the audio
    budget read from them are ``affect_proto.encodings``'s, which the server's conversion and
    budget and the client's checks before sending all read: neither restates them."""
    offending = [f"{module}:{line}" for package in ("affect_server", "affect_client")
                 for module, path in _modules(package).items()
                 for line in raw_encoding_tables(ast.parse(path.read_text(encoding="utf-8")))]
    assert offending == []
    tree = ast.parse((PACKAGES["affect_proto"] / "encodings.py").read_text(encoding="utf-8"))
    assert len(raw_encoding_tables(tree)) >= 2  # ... and that module lists them

def _lazy_exports() -> dict[str, str]:
    """``affect.__getattr__``'s table: ``from affect import Turn`` imports ``affect.conversation``."""
    tree = ast.parse((PACKAGES["affect"] / "__init__.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", None) == "_LAZY":
            return ast.literal_eval(node.value)
    raise AssertionError("affect/__init__.py has no _LAZY table")


def library_import_graph() -> dict[str, set[str]]:
    """Module -> the library modules its code imports when it runs."""
    modules = _modules("affect")
    lazy = _lazy_exports()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, target, names, _ in _all_imports("affect"):
        if _top(target) != "affect":
            continue
        for name in names or ("",):
            sub = f"{target}.{name}" if name else target
            if sub in modules:  # from affect.speech import encoder: the submodule
                graph[module].add(sub)
            elif target == "affect" and name in lazy:
                graph[module].add(lazy[name])
            elif target in modules:
                graph[module].add(target)
    for module in graph:
        graph[module].discard(module)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph (``[a, b, ..., a]``), or ``None``."""
    state: dict[str, int] = {}  # 1 on the path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_cycle_finder_finds_a_cycle():  # the check below could fail
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_library_has_no_import_cycle():
    graph = library_import_graph()
    assert "affect.conversation" in graph["affect.analyzer"]  # the graph is read, not empty
    assert find_cycle(graph) is None


def test_the_generated_code_matches_the_contract(tmp_path: Path):
    pytest.importorskip("grpc_tools", reason="grpcio-tools (the dev extra) generates the code")
    from protos.generate import HAND_WRITTEN, OUT, generate

    fresh = {p.name: p.read_text(encoding="utf-8") for p in generate(tmp_path)}
    fresh["__init__.py"] = (tmp_path / "__init__.py").read_text(encoding="utf-8")
    committed = {p.name: p.read_text(encoding="utf-8") for p in OUT.iterdir()
                 if p.suffix in (".py", ".pyi") and p.name not in HAND_WRITTEN}
    stale = sorted(name for name in fresh.keys() | committed.keys() if fresh.get(name) != committed.get(name))
    assert stale == [], f"regenerate with `python -m protos.generate`: {stale} differ from protos/affect/v1/affect.proto"


def test_every_list_of_the_three_modalities_is_in_the_enums_order():
    """One modality order everywhere (issue 19): a literal naming all three follows ``Modality``."""
    from affect.results import MODALITIES, Modality

    assert MODALITIES == tuple(Modality)
    order = [m.value for m in Modality]
    wrong = []
    for package in ("affect", "affect_server", "affect_client"):
        for module, path in _modules(package).items():
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, (ast.Tuple, ast.List)) and all(isinstance(e, ast.Constant) for e in node.elts):
                    values = [e.value for e in node.elts]
                    if sorted(map(str, values)) == sorted(order) and values != order:
                        wrong.append(f"{module}:{node.lineno} {values}")
    assert wrong == []


def test_a_turn_is_walked_in_one_module():
    """Only ``affect.turn_flow`` runs the encoders of a turn, records their answers and completes
    it; ``Conversation.analyze``, the servicer and the Ray deployments call it (issue 19)."""
    batch_calls = {"analyze_many", "analyze_prepared", "analyze_many_with_embeddings", "face_many"}
    offending = []
    for package in ("affect", "affect_server"):
        for module, path in _modules(package).items():
            if module == "affect.turn_flow":
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            delegating = {id(n) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) and f.name == "record"
                          for n in ast.walk(f)}  # Conversation.record hands the answers to its modality's turns
            for node in ast.walk(tree):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                    name = node.func.attr
                    completing = name == "complete"  # fusing a turn
                    # recording a turn's answers: Conversation.record(modality, prepared, answers)
                    recording = name == "record" and len(node.args) == 3 and id(node) not in delegating
                    if completing or recording or (name in batch_calls and module in ("affect.conversation", "affect.analyzer")) \
                            or (name in batch_calls and package == "affect_server"):
                        offending.append(f"{module}:{node.lineno} .{name}()")
                if (package == "affect_server" and isinstance(node, ast.Constant) and node.value in batch_calls):
                    offending.append(f"{module}:{node.lineno} {node.value!r}")
    assert offending == []


def test_the_turn_path_names_no_modality():
    """The conversation, the table's walk, the servicer and the Ray deployments name no modality:
    each loops over the table (``Analyzer.encoders``), so a new modality changes none of them."""
    walkers = {"affect.turn_flow": None, "affect.conversation": "Conversation", "affect_server.servicer": None,
               "affect_server.remote": None, "affect_server.ray_app": None}
    modules = {**_modules("affect"), **_modules("affect_server")}
    naming = []
    for module, scope in walkers.items():
        tree = ast.parse(modules[module].read_text(encoding="utf-8"))
        roots = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == scope] if scope else [tree]
        assert roots, f"{module} has no {scope}"
        for root in roots:
            for node in ast.walk(root):
                member = isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "Modality"
                encoder = (isinstance(node, ast.Attribute) and node.attr in ("text", "speech", "face")
                           and isinstance(node.value, ast.Attribute) and node.value.attr == "analyzer")
                if member or encoder:
                    naming.append(f"{module}:{node.lineno} {ast.unparse(node)}")
    assert naming == []


def test_recipes_and_benchmarks_share_no_private_module():
    """What both need lives in ``evaluation/`` or the library, never in the other's ``_private`` module;
    the library imports none of them."""
    offending = []
    for package, other in (("recipes", "benchmarks"), ("benchmarks", "recipes"), ("evaluation", None)):
        for path in sorted((ROOT / package).rglob("*.py")):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            for target, _, line in _imports(ast.parse(path.read_text(encoding="utf-8")), module, path.name == "__init__.py"):
                parts = target.split(".")
                if other is not None and parts[0] == other and any(p.startswith("_") for p in parts[1:]):
                    offending.append(f"{module}:{line} imports {target}")
                if package == "evaluation" and parts[0] in ("recipes", "benchmarks"):
                    offending.append(f"{module}:{line} imports {target}")
    offending += [f"{m}:{line} imports {t}" for m, t, _, line in _all_imports("affect")
                  if _top(t) in ("recipes", "benchmarks", "evaluation")]
    assert offending == []


DISTRIBUTIONS = {  # pyproject.toml -> the packages that distribution ships
    ROOT / "pyproject.toml": ("affect", "affect_server"),
    ROOT / "clients" / "python" / "pyproject.toml": ("affect_client",),
    ROOT / "protos" / "python" / "pyproject.toml": ("affect_proto",),
}


def _declared(pyproject: Path) -> set[str]:
    """Every distribution the pyproject names (dependencies and extras), normalised."""
    import re
    import tomllib

    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    specs = [*project.get("dependencies", ()), *(s for extra in project.get("optional-dependencies", {}).values() for s in extra)]
    return {re.split(r"[\s\[<>=!~;]", spec, maxsplit=1)[0].lower().replace("_", "-") for spec in specs}


@pytest.mark.parametrize("pyproject", list(DISTRIBUTIONS), ids=lambda p: str(p.relative_to(ROOT)))
def test_each_distribution_declares_what_it_imports(pyproject: Path):
    import importlib.metadata
    import sys

    providers = importlib.metadata.packages_distributions()
    own = set(DISTRIBUTIONS[pyproject])
    declared = _declared(pyproject)
    undeclared = []
    for package in own:
        for module, target, _, line in _all_imports(package):
            top = _top(target)
            if not top or top in own or top in sys.stdlib_module_names or top == "__future__":
                continue
            names = {d.lower().replace("_", "-") for d in providers.get(top, [top])}
            if not names & declared:
                undeclared.append(f"{module}:{line} imports {target} ({', '.join(sorted(names))})")
    assert undeclared == []


def test_adding_a_modality_is_its_encoder_class_and_its_registration(analyzer):
    """The Analyzer keeps its encoders in one mapping by Modality (``.text`` and the others read
    it); the registry of encoder classes covers every modality, each is a keyword of
    ``Analyzer`` (typed: ``EncoderChoices``), and a loaded encoder gives the conversation its ``ModalityTurns`` (issue 19)."""
    import pickle

    from affect import Analyzer
    from affect.analyzer import ENCODER_CLASSES, EncoderChoices
    from affect.results import Modality
    from affect.turn_flow import ModalityTurns, batch_call, turns_of

    assert set(ENCODER_CLASSES) == set(Modality)
    assert set(EncoderChoices.__annotations__) == {m.value for m in ENCODER_CLASSES}
    assert analyzer.encoders == {Modality.TEXT: analyzer.text} and analyzer.speech is None is analyzer.face
    with pytest.raises(AttributeError):
        analyzer.text = None
    turns = analyzer.text.turns
    assert isinstance(turns, ModalityTurns) and turns.modality is Modality.TEXT and turns_of(turns) is turns
    assert pickle.loads(pickle.dumps(turns)) == turns  # what a Ray ingress holds instead of the model
    assert batch_call(analyzer.text) == analyzer.text.analyze_prepared
    with pytest.raises(TypeError, match="smell"):
        Analyzer(smell=True)


def test_a_text_context_is_changed_in_one_place():
    """Only ``TextRequest.record`` pushes a turn onto a text context, whether the encoder ran in
    this process or in a Ray deployment (issue 19)."""
    pushing = []
    for package in ("affect", "affect_server"):
        for module, path in _modules(package).items():
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "push":
                    pushing.append(f"{module}:{node.lineno}")
    assert len(pushing) == 1 and pushing[0].startswith("affect.text.encoder:")

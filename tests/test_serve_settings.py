"""How ``affect serve`` reads its settings (``affect_server.settings``): every flag has its
``AFFECT_*`` variable by one rule; an ``AFFECT_*`` variable nothing reads is warned of; a value
refused names the flag or the variable it came from, before any model machinery is imported.

Each test runs the real command in its own process (``python -m affect_server.cli serve``) and
stops it with a refused setting, before a model loads."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from affect_server.cli import build_parser
from affect_server.config import ServerConfig
from affect_server.serve_options import ServeOptions
from affect_server.settings import OTHER_VARIABLES, Settings

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "cv2", "transformers", "ctranslate2", "grpc")
REFUSED_PORT = ["--port", "99999"]  # stops serve at its settings' check, after the log is set up
PORT_REFUSED = "affect serve: --port: must be between 0 and 65535, got 99999"


@dataclass
class Run:
    returncode: int
    stderr_lines: list[str]
    heavy: list[str]  # the heavy modules imported by the time serve returned


def serve(*args: str, env: dict[str, str] | None = None) -> Run:
    """``affect serve ARGS`` in a process of its own, with ``env`` added to this one's
    environment (its AFFECT_* variables left out), and what it had imported when it returned."""
    probe = ("import sys\nfrom affect_server.cli import main\ntry:\n    code = main(['serve', *sys.argv[1:]])\n"
             "except SystemExit as exc:\n    code = exc.code\n"
             f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\nsys.exit(code)")
    base = {name: value for name, value in os.environ.items() if not name.startswith("AFFECT_")}
    out = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=120,
                         env={**base, **(env or {})})
    heavy = json.loads(out.stdout.strip().splitlines()[-1].replace("'", '"'))
    return Run(out.returncode, [line for line in out.stderr.splitlines() if line.strip()], heavy)


def _serve_parser() -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    parser: argparse.ArgumentParser = sub.choices["serve"]
    return parser


def test_every_serve_flag_has_its_variable_by_one_rule() -> None:
    """``--log-format``, ``--log-level``, ``--ready-file`` and the Ray flags had none: each flag's
    help names AFFECT_ and its name in capitals, and each setting is read from that variable."""
    flags = {flag for action in _serve_parser()._actions for flag in action.option_strings} - {"-h", "--help"}
    settings: list[type[Settings]] = [ServerConfig, ServeOptions]
    by_flag = {"--" + name.replace("_", "-"): variable
               for kind in settings for name, variable in kind.environment_variables().items()}
    assert flags == set(by_flag)
    helps = {flag: action.help or "" for action in _serve_parser()._actions for flag in action.option_strings}
    for flag, variable in by_flag.items():
        assert variable == "AFFECT_" + flag[2:].replace("-", "_").upper()
        assert f"(env {variable}, default" in helps[flag], helps[flag]
    samples = {"ready_file": "port.txt", "log_level": "error", "log_format": "json", "ray": "true",
               "ray_address": "auto", "ray_config": "layout.json", "ray_http_port": "7"}
    assert set(samples) == set(ServeOptions.environment_variables())
    for name, variable in ServeOptions.environment_variables().items():
        given = ServeOptions.from_args(env={variable: samples[name]})
        assert given.given_by(name) == variable and getattr(given, name) != getattr(ServeOptions(), name), name


def test_the_log_format_and_level_and_ready_file_are_read_from_their_variables(tmp_path: Path) -> None:
    """``AFFECT_LOG_FORMAT=json affect serve`` wrote plain text; a flag still wins over it."""
    run = serve(*REFUSED_PORT, env={"AFFECT_LOG_FORMAT": "json", "AFFECT_PORTT": "50051"})
    assert run.returncode == 2 and run.stderr_lines[-1] == PORT_REFUSED, run
    record = json.loads(run.stderr_lines[0])
    assert record["level"] == "WARNING" and "AFFECT_PORTT" in record["message"]

    run = serve(*REFUSED_PORT, "--log-format", "text", env={"AFFECT_LOG_FORMAT": "json", "AFFECT_PORTT": "1"})
    assert re.match(r"^\S+ \S+ WARNING affect.server: AFFECT_PORTT is ignored", run.stderr_lines[0]), run

    run = serve(*REFUSED_PORT, env={"AFFECT_LOG_LEVEL": "error", "AFFECT_PORTT": "1"})  # no warning at level error
    assert run.stderr_lines == [PORT_REFUSED], run

    absent = tmp_path / "absent" / "port.txt"
    run = serve(env={"AFFECT_READY_FILE": str(absent)})
    assert run.stderr_lines == [f"affect serve: AFFECT_READY_FILE {absent}: its folder does not exist"], run
    assert run.returncode == 2 and run.heavy == []


def test_an_unread_affect_variable_is_warned_of_by_name_with_the_closest_known_one() -> None:
    """Once each, naming the variable and never its value; a name close to none gets no guess."""
    run = serve(*REFUSED_PORT, env={"AFFECT_LOG_FORMT": "s3cret-json", "AFFECT_TEXT_MODLE": "s3cret-model",
                                    "AFFECT_XYZZY": "s3cret"})
    warnings = [line.split("WARNING affect.server: ", 1)[1] for line in run.stderr_lines[:-1]]
    assert warnings == ["AFFECT_LOG_FORMT is ignored: no setting of affect reads it (did you mean AFFECT_LOG_FORMAT?)",
                        "AFFECT_TEXT_MODLE is ignored: no setting of affect reads it (did you mean AFFECT_TEXT_MODEL?)",
                        "AFFECT_XYZZY is ignored: no setting of affect reads it"], run
    assert run.stderr_lines[-1] == PORT_REFUSED and "s3cret" not in "\n".join(run.stderr_lines)


def _variables_the_code_reads() -> set[str]:
    """Every AFFECT_* name in the project's Python (not the tests', not the generated code's)."""
    names = set()
    for folder in ("affect", "server", "clients", "protos", "benchmarks", "examples", "recipes", "evaluation"):
        for path in (ROOT / folder).rglob("*.py"):
            if not path.name.endswith(("_pb2.py", "_pb2_grpc.py")):
                names |= set(re.findall(r"\bAFFECT_[A-Z0-9]+(?:_[A-Z0-9]+)*\b", path.read_text(encoding="utf-8")))
    return names


def test_the_variables_of_the_client_and_the_rest_of_the_project_are_not_warned_of() -> None:
    """A deployment whose one environment holds the client's AFFECT_TARGET and AFFECT_TOKEN, or
    the data and cache folders, is not told they are ignored."""
    found = _variables_the_code_reads()
    assert {"AFFECT_TARGET", "AFFECT_TOKEN", "AFFECT_DATA_ROOT", "AFFECT_CACHE_DIR"} <= found  # the scan finds them
    known = {*ServerConfig.environment_variables().values(), *ServeOptions.environment_variables().values(),
             *OTHER_VARIABLES}
    assert found - known == set(), "read somewhere, but affect serve would warn of it: add it to OTHER_VARIABLES"
    values = {"AFFECT_TARGET": "127.0.0.1:50051", "AFFECT_TOKEN": "s3cret", "AFFECT_NATIVE_STDERR": "log",
              "AFFECT_DATA_ROOT": "/tmp", "AFFECT_CACHE_DIR": "/tmp", "AFFECT_FER_MODEL": "/tmp/fer.hdf5"}
    assert set(values) == set(OTHER_VARIABLES)
    assert serve(*REFUSED_PORT, env=values).stderr_lines == [PORT_REFUSED]


def test_an_enumerated_flag_refuses_another_value_when_the_command_line_is_read() -> None:
    """``affect serve --runtime gpu`` was refused after 6 s of imports: argparse refuses it, with
    the choices, as its variable's value is refused before the server's imports."""
    enumerated = {f.name: f.metadata["choices"] for kind in (ServerConfig, ServeOptions) for f in kind.settings()
                  if f.metadata["choices"]}
    assert set(enumerated) == {"runtime", "face_detector", "log_level", "log_format"}
    choices = {action.dest: tuple(action.choices or ()) for action in _serve_parser()._actions}
    assert all(choices[name] == values for name, values in enumerated.items())

    run = serve("--runtime", "gpu")
    assert run.returncode == 2 and run.heavy == []
    assert run.stderr_lines[-1] == ("affect serve: error: argument --runtime: invalid choice: 'gpu' "
                                    "(choose from 'torch', 'onnx', 'onnx-int8', 'auto')"), run
    run = serve(env={"AFFECT_RUNTIME": "gpu"})
    assert run.stderr_lines == ["affect serve: AFFECT_RUNTIME: must be one of torch, onnx, onnx-int8, auto, got 'gpu'"]
    assert run.returncode == 2 and run.heavy == []


@pytest.mark.parametrize("flag, value, message", [
    ("--port", "abc", "must be a whole number, got 'abc'"),
    ("--face-detector", "bogus", "must be one of blazeface, blazeface+mtcnn, haar, got 'bogus'"),
    ("--max-text-chars", "20000", "must be at most 10000 (the library's limit on a turn's text, which a server "
                                  "cannot raise), got 20000"),
    ("--speech-adapt", "maybe", "must be true or false, got 'maybe'"),
    ("--log-level", "loud", "must be one of debug, info, warning, error, got 'loud'"),
])
def test_a_refused_setting_names_the_variable_or_the_flag_it_came_from(flag: str, value: str, message: str) -> None:
    """``AFFECT_PORT=abc`` said "port must be a whole number": the name of no flag nor variable."""
    variable = "AFFECT_" + flag[2:].replace("-", "_").upper()
    run = serve(env={variable: value})
    assert (run.returncode, run.stderr_lines, run.heavy) == (2, [f"affect serve: {variable}: {message}"], [])
    run = serve(flag, value, env={variable: "ignored: the flag wins"})
    assert run.returncode == 2 and run.heavy == []
    if flag in ("--face-detector", "--log-level"):  # argparse's own words for a flag's choices
        assert run.stderr_lines[-1].startswith(f"affect serve: error: argument {flag}: invalid choice: '{value}'"), run
    else:
        assert run.stderr_lines == [f"affect serve: {flag}: {message}"], run


def test_ray_is_chosen_and_its_layout_read_from_their_variables(tmp_path: Path) -> None:
    """``AFFECT_RAY=true`` deploys on Ray; a layout file that is not there is named by the
    variable that gave it, before Ray starts."""
    missing = tmp_path / "layout.json"
    run = serve(env={"AFFECT_RAY": "true", "AFFECT_RAY_CONFIG": str(missing)})
    assert run.returncode == 2
    assert run.stderr_lines == [f"affect serve: AFFECT_RAY_CONFIG {missing}: No such file or directory"], run

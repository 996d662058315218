"""What users of the typed API see: mypy, with the project's configuration (pyproject.toml), finds
no error in the library, the client, the server, the READMEs' examples as they are written, the
example programs (``examples/``), or user code of the rest of the API (tests/typing_usage/public_api_usage.py), and does find one in code
that misuses the API."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api", reason="mypy is in the dev extra: pip install -e '.[dev]'")

ROOT = Path(__file__).resolve().parents[1]
USAGE = ROOT / "tests" / "typing_usage" / "public_api_usage.py"
READMES = (ROOT / "README.md", ROOT / "clients" / "python" / "README.md")
EXAMPLE = re.compile(r"^```python\n(.*?)^```$", re.S | re.M)

pytestmark = pytest.mark.slow  # under a minute with an empty cache, a few seconds after


def _mypy(*paths: Path) -> tuple[int, str]:
    """mypy's exit status and report; the cache is the project's .mypy_cache (ignored by git)."""
    out, err, status = mypy_api.run(["--config-file", str(ROOT / "pyproject.toml"), "--cache-dir", str(ROOT / ".mypy_cache"),
                                     *map(str, paths)])
    return status, out + err


def readme_examples(folder: Path) -> list[Path]:
    """Each README's ```python examples as they are written, a module each in ``folder``, named
    after its README and its number there (``clients_python_README_example_1.py``: the first)."""
    examples = []
    for readme in READMES:
        blocks = EXAMPLE.findall(readme.read_text(encoding="utf-8"))
        assert blocks, f"{readme.relative_to(ROOT)} shows no ```python example: none would be checked"
        stem = str(readme.relative_to(ROOT).with_suffix("")).replace("/", "_")
        for number, block in enumerate(blocks, 1):
            examples.append(folder / f"{stem}_example_{number}.py")
            examples[-1].write_text(block, encoding="utf-8")
    return examples


def test_the_library_the_client_and_code_using_them_type_check(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    examples = readme_examples(tmp_path)
    assert len(examples) >= 5  # README.md's three, the client README's quick start and its asyncio twin
    status, report = _mypy(ROOT / "affect", ROOT / "clients" / "python" / "affect_client", ROOT / "server" / "affect_server",
                           ROOT / "examples", USAGE, *examples)
    print(report)
    assert status == 0, report


def test_the_check_finds_a_misuse(tmp_path, monkeypatch):
    """The check bites: a misspelt turn field, a reading used as if it were always there."""
    monkeypatch.chdir(ROOT)
    wrong = tmp_path / "wrong_usage.py"
    wrong.write_text("from affect import Analyzer\n"
                     "result = Analyzer().analyze('My parcel is lost again.', speeker='caller')\n"
                     "print(result.valence + 1)\n")
    status, report = _mypy(wrong)
    print(report)
    assert status == 1
    assert 'wrong_usage.py:2: error: Unexpected keyword argument "speeker" for "analyze" of "Analyzer"' in report
    assert "wrong_usage.py:3: error: Unsupported operand types" in report and '"None"' in report


def test_the_check_is_strict_where_users_feel_it(tmp_path, monkeypatch):
    """What the real types and the stricter settings catch, each of which a public attribute or
    keyword typed ``Any`` (or the settings turned off) would let through: a misspelt name imported
    from ``affect``, a misspelt modality of ``Analyzer`` or setting of the client, a setting a
    copy cannot change, a method the loaded encoder does not have, an encoder or the forecaster
    used as if always loaded, a function without annotations (``disallow_untyped_defs``) and the
    misuse in its body (``check_untyped_defs``)."""
    monkeypatch.chdir(ROOT)
    wrong = tmp_path / "strict_usage.py"
    wrong.write_text("from affect import Analyzer, Anlyzer\n"
                     "from affect_client import AffectClient\n"
                     "analyzer = Analyzer(speech=None, txt=None)\n"
                     "AffectClient(timeuot=5.0).with_options(target='10.0.0.1:50051')\n"
                     "analyzer.speech.analyze_file('turn.flac')\n"
                     "if analyzer.face is not None:\n"
                     "    analyzer.face.analyse_video('call.mp4')\n"
                     "print(analyzer.forecaster.window)\n"
                     "def report(turn):\n"
                     "    return Analyzer().analyze('Hello?').valence + 1\n")
    status, report = _mypy(wrong)
    print(report)
    assert status == 1
    for line, error in [
        (1, 'Module "affect" has no attribute "Anlyzer"'),
        (3, 'Unexpected keyword argument "txt" for "Analyzer"'),
        (4, 'Unexpected keyword argument "timeuot" for "AffectClient"'),
        (4, 'Unexpected keyword argument "target" for "with_options" of "AffectClient"'),
        (5, 'Item "None" of "SpeechEncoder | None" has no attribute "analyze_file"'),
        (7, '"FaceEncoder" has no attribute "analyse_video"'),
        (8, 'Item "None" of "Forecaster | None" has no attribute "window"'),
        (9, "Function is missing a type annotation  [no-untyped-def]"),
        (10, 'Unsupported operand types for + ("None" and "int")'),
    ]:
        assert f"strict_usage.py:{line}: error: {error}" in report, (line, error)


def test_media_of_a_kind_no_check_accepts_is_refused(tmp_path, monkeypatch):
    """A turn's media are typed as the checks that read them accept them (``affect.media``, the
    client's ``AudioInput`` and ``ImageInput``), not ``Any``: a number, a path the library's audio
    check refuses (only ``str`` and ``pathlib.Path``), a torch tensor the client cannot send, a
    list where an array is asked for, each refused before it runs, in both twins."""
    monkeypatch.chdir(ROOT)
    wrong = tmp_path / "media_usage.py"
    wrong.write_text("from pathlib import PurePosixPath\n"
                     "import numpy as np\n"
                     "import torch\n"
                     "from affect import Analyzer, Turn\n"
                     "from affect_client import AffectClient, AsyncAffectClient, Audio, Image\n"
                     "Turn(audio=123)\n"
                     "Analyzer().analyze(image=3.5, images=[b'png', 7])\n"
                     "Turn(audio=PurePosixPath('turn.flac'))\n"
                     "with AffectClient() as client, client.conversation() as conversation:\n"
                     "    conversation.send(audio=123)\n"
                     "    conversation.send(images=[np.zeros((2, 2), np.uint8), 7])\n"
                     "    client.analyze(audio=torch.zeros(16000), sample_rate=16000)\n"
                     "    client.analyze(audio=Image.encoded(b'png'))\n"
                     "Audio.from_array([0.0, 0.1], 16000)\n"
                     "async def send() -> None:\n"
                     "    await AsyncAffectClient().analyze(audio=123)\n")
    status, report = _mypy(wrong)
    print(report)
    assert status == 1
    for line, error in [
        (6, 'Argument "audio" to "Turn" has incompatible type "int"'),
        (7, 'Argument "image" to "analyze" of "Analyzer" has incompatible type "float"'),
        (7, 'List item 1 has incompatible type "int"'),
        (8, 'Argument "audio" to "Turn" has incompatible type "PurePosixPath"'),
        (10, 'Argument "audio" to "send" of "Conversation" has incompatible type "int"'),
        (11, 'List item 1 has incompatible type "int"'),
        (12, 'Argument "audio" to "analyze" of "AffectClient" has incompatible type "Tensor"'),
        (13, 'Argument "audio" to "analyze" of "AffectClient" has incompatible type "Image"'),
        (14, 'Argument 1 to "from_array" of "Audio" has incompatible type "list[float]"; expected "Array"'),
        (16, 'Argument "audio" to "analyze" of "AsyncAffectClient" has incompatible type "int"'),
    ]:
        assert f"media_usage.py:{line}: error: {error}" in report, (line, error)

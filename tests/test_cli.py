"""The ``affect`` command as a user runs it."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest


def affect(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    """The ``affect`` console command (``affect_server.cli:main``: the library's commands and serve, demo)."""
    return subprocess.run([sys.executable, "-m", "affect_server.cli", *args], input=stdin, capture_output=True, timeout=300)


def test_analyze_text_prints_a_table():
    out = affect("analyze", "--text", "You lied to me again!")
    assert out.returncode == 0, out.stderr.decode()
    lines = out.stdout.decode().splitlines()
    assert lines[0].split()[:3] == ["turn", "speaker", "text"] and "You lied to me again!" in lines[2]


def test_analyze_conversation_json(tmp_path: Path):
    path = tmp_path / "turns.json"
    path.write_text(json.dumps([{"speaker": "A", "text": "We won the cup!"}, "Seriously? That's brilliant!"]))
    out = affect("analyze", "--conversation", str(path), "--json")
    assert out.returncode == 0, out.stderr.decode()
    results = json.loads(out.stdout)
    assert [r["turn_index"] for r in results] == [0, 1] and results[0]["speaker"] == "A"
    assert all(abs(sum(r["emotions"].values()) - 1) < 1e-4 for r in results)


@pytest.mark.parametrize(
    "args, stdin, message",
    [
        (["analyze", "--text", ""], None, "text is empty"),
        (["analyze", "--text", "-"], b"\xff\xfe\xfa not utf-8", "not valid UTF-8"),
        (["analyze", "--text", "-"], b"a" * 1_000_000, "limit"),
        (["analyze"], None, "give --text, --audio, --image, --video, --conversation, or files and folders"),
    ],
)
def test_bad_input_gets_a_clear_message_and_no_traceback(args, stdin, message):
    out = affect(*args, stdin=stdin)
    err = out.stderr.decode()
    assert out.returncode == 2 and message in err and "Traceback" not in err


@pytest.mark.parametrize(
    "content, message",
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00", "not valid UTF-8"),
        (b"{not json", "not valid JSON"),
        (b"[]", "non-empty JSON list"),
        (b'[{"speaker": "A"}]', 'needs a "text" string'),
        (json.dumps(["x" * 1_000_000]).encode(), "limit"),
    ],
)
def test_bad_conversation_files_are_refused(tmp_path: Path, content: bytes, message: str):
    path = tmp_path / "turns.json"
    path.write_bytes(content)
    out = affect("analyze", "--conversation", str(path))
    err = out.stderr.decode()
    assert out.returncode == 2 and message in err and "Traceback" not in err


def test_models_lists_every_shipped_family_with_its_default():
    out = affect("models", "--json")
    assert out.returncode == 0
    rows = json.loads(out.stdout)
    defaults = {r["modality"]: r["id"] for r in rows if r["default"]}
    assert set(defaults) == {"text", "speech", "face", "fusion", "forecast"}, defaults  # the forecast was left out
    from affect.forecast import ForecastWeights

    assert defaults["forecast"] == ForecastWeights.DEFAULT.value.id


def test_models_table_shows_each_models_default_name_and_licence() -> None:
    """The plain table says which entry is each modality's default and the name to choose one by
    (``--json`` alone had them), and every model's licence (every shipped model is for non-commercial
    research use only, by its data's licence), in a terminal of 100 columns."""
    rows = {r["id"]: r for r in json.loads(affect("models", "--json").stdout)}
    out = affect("models")
    assert out.returncode == 0, out.stderr.decode()
    text = out.stdout.decode()
    assert max(len(line) for line in text.splitlines()) <= 100, text
    table, licences = text.split("\n\n")
    header, _, *lines = table.splitlines()
    assert header.split() == ["model", "modality", "default", "name"]
    shown = {cells[0]: cells[1:] for cells in (line.split() for line in lines)}
    assert set(shown) == set(rows)
    for model_id, row in rows.items():
        assert shown[model_id] == [row["modality"], *(["default"] if row["default"] else []), row["member"]], model_id
    paragraphs = _licence_paragraphs(licences)
    for model_id, row in rows.items():
        said = [p for p in paragraphs if p.startswith(row["licence"] + ": ")]
        assert len(said) == 1, (model_id, paragraphs)
        stem, _, version = model_id.rpartition("@")
        named = said[0][len(row["licence"]) + 2:].split(", ")
        assert model_id in named or (f"@{version}" in named and any(n.startswith(stem + "@") for n in named)), model_id
    defaults = [row["licence"] for row in rows.values() if row["default"]]
    assert all(" use only (" in licence for licence in defaults), defaults


def _licence_paragraphs(block: str) -> list[str]:
    """The licence paragraphs of ``affect models``, each unwrapped to one line."""
    paragraphs: list[str] = []
    for line in block.splitlines()[1:]:
        if line.startswith("    "):
            paragraphs[-1] += " " + line.strip()
        else:
            paragraphs.append(line.strip())
    return paragraphs


def test_analyze_audio_and_image_files(tmp_path: Path, data_root: Path):
    from tests.conftest import framed_face_png

    clip = sorted((data_root / "speech" / "ravdess-test-slice" / "Actor_24").glob("*.flac"))[30]
    image = tmp_path / "frame.png"
    image.write_bytes(framed_face_png(data_root, "surprise"))
    out = affect("analyze", "--audio", str(clip), "--image", str(image), "--json")
    assert out.returncode == 0, out.stderr.decode()
    (result,) = json.loads(out.stdout)
    assert result["present"] == ["face", "speech"] and len(result["faces"]) == 1


def test_the_face_detector_can_be_chosen_and_a_wrong_name_is_refused(tmp_path: Path, data_root: Path):
    from tests.conftest import framed_face_png

    image = tmp_path / "frame.png"
    image.write_bytes(framed_face_png(data_root, "surprise"))
    out = affect("analyze", "--image", str(image), "--face-detector", "blazeface+mtcnn", "--json")
    assert out.returncode == 0, out.stderr.decode()
    (result,) = json.loads(out.stdout)
    assert len(result["faces"]) == 1
    wrong = affect("analyze", "--image", str(image), "--face-detector", "mtcnn")
    err = wrong.stderr.decode()
    assert wrong.returncode == 2 and "unknown face detector 'mtcnn'" in err and "Traceback" not in err


def test_a_folder_of_calls_can_be_read_against_what_the_run_has_heard(tmp_path: Path, data_root: Path):
    """``--speech-adapt``: the first clip is read almost as without it (a minute of training
    statistics outweighs one clip); the later ones move as the run's statistics grow. "Almost" is
    relative to how far the later ones move (speech@11 moves its first clip by 0.011 and the later
    ones by up to 0.13; read against the clip's own statistics alone it would move as far as they do)."""
    for clip in sorted((data_root / "speech" / "ravdess-test-slice" / "Actor_23").glob("*.flac"))[:8]:
        (tmp_path / clip.name).write_bytes(clip.read_bytes())
    runs = []
    for flags in ([], ["--speech-adapt"]):
        out = affect("analyze", str(tmp_path), "--json", "-q", *flags)
        assert out.returncode == 0, out.stderr.decode()
        runs.append([json.loads(line) for line in out.stdout.decode().splitlines()])
    fixed, adapted = runs
    assert [r["file"] for r in fixed] == [r["file"] for r in adapted] and len(fixed) == 8

    def moved(a: dict, b: dict) -> float:
        return max(abs(a["emotions"][k] - b["emotions"][k]) for k in a["emotions"])

    later = max(moved(f, a) for f, a in zip(fixed[4:], adapted[4:]))
    assert later > 0.03
    assert moved(fixed[0], adapted[0]) < 0.25 * later


def test_the_text_context_weight_can_be_set_for_a_conversation(tmp_path: Path):
    """``--text-context-weight 0`` reads each turn on its own: the first turn (no past turns) is
    read as with the default; later ones move. Outside 0-1 it is refused in one line."""
    conversation = Path(__file__).resolve().parents[1] / "docs" / "examples" / "support-call.jsonl"
    runs = []
    for flags in ([], ["--text-context-weight", "0"]):
        out = affect("analyze", "--conversation", str(conversation), "--json", "-q", *flags)
        assert out.returncode == 0, out.stderr.decode()
        runs.append(json.loads(out.stdout))
    default, alone = runs

    def moved(a: dict, b: dict) -> float:
        return max(abs(a["emotions"][k] - b["emotions"][k]) for k in a["emotions"])

    assert moved(default[0], alone[0]) < 1e-4
    assert max(moved(d, a) for d, a in zip(default[1:], alone[1:])) > 0.05
    refused = affect("analyze", "--text", "hello", "--text-context-weight", "2")
    lines = [line for line in refused.stderr.decode().splitlines() if line.strip()]
    assert refused.returncode == 2 and lines[-1].endswith("argument --text-context-weight: must be a number between 0 "
                                                          "and 1, got 2.0"), lines


def test_the_text_prior_can_be_set_for_a_conversation():
    """``--text-prior`` with a support desk's frequencies (mostly neutral) gives every turn a higher
    neutral probability than the default; a prior naming no emotion is refused before anything loads."""
    conversation = Path(__file__).resolve().parents[1] / "docs" / "examples" / "support-call.jsonl"
    desk = "neutral=0.85,happiness=0.04,sadness=0.03,anger=0.04,fear=0.01,disgust=0.01,surprise=0.02"
    runs = []
    for flags in ([], ["--text-prior", desk]):
        out = affect("analyze", "--conversation", str(conversation), "--json", "-q", *flags)
        assert out.returncode == 0, out.stderr.decode()
        runs.append(json.loads(out.stdout))
    default, at_desk = runs
    assert all(d["emotions"]["neutral"] < a["emotions"]["neutral"] for d, a in zip(default, at_desk))
    refused = affect("analyze", "--text", "hello", "--text-prior", "calm=1")
    assert refused.returncode == 2 and "'calm', which is not an emotion" in refused.stderr.decode()


@pytest.mark.parametrize("flag, content, message", [
    ("--audio", None, "no such file"),
    ("--audio", b"RIFF\x10\x00\x00\x00WAVEfmt truncated", "audio"),
    ("--image", b"\x89PNG\r\n\x1a\n not really", "image"),
    ("--video", b"\x00\x00\x00\x18ftypmp42 nonsense", "video"),
])
def test_bad_media_files_are_refused_without_traceback(tmp_path: Path, flag, content, message):
    path = tmp_path / "input.bin"
    if content is not None:
        path.write_bytes(content)
    out = affect("analyze", flag, str(path))
    err = out.stderr.decode()
    assert out.returncode == 2 and message in err and "Traceback" not in err, err


def _no_heavy_imports(code: str) -> list[str]:
    """The heavy modules a snippet of Python imported (it must print nothing else)."""
    probe = f"{code}\nimport sys\nprint(sorted(m for m in ('torch', 'cv2', 'transformers', 'ctranslate2') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, timeout=60)
    return json.loads(out.stdout.decode().strip().splitlines()[-1].replace("'", '"'))


def test_help_and_input_errors_import_no_model_machinery(tmp_path: Path):
    assert _no_heavy_imports("import affect_server.cli\naffect_server.cli.build_parser().format_help()") == []
    run = "from affect_server.cli import main\nmain({!r})"
    assert _no_heavy_imports(run.format(["analyze", "--audio", str(tmp_path)])) == []
    assert _no_heavy_imports(run.format(["analyze", "--conversation", str(tmp_path / "missing.json")])) == []
    assert _no_heavy_imports(run.format(["analyze", str(tmp_path / "nothing-here")])) == []
    # Text refused by its own rules (empty, white space, too long) is refused before torch is imported,
    # alone and in a conversation file (the check that leaves an empty transcript beside audio unread).
    for text in ("", "   ", "x" * 10_001):
        assert _no_heavy_imports(run.format(["analyze", "--text", text])) == [], text
    conversation = tmp_path / "turns.json"
    conversation.write_text(json.dumps(["Hello there.", "  "]))
    assert _no_heavy_imports(run.format(["analyze", "--conversation", str(conversation)])) == []


def test_version_is_the_installed_packages_and_loads_nothing():
    from importlib.metadata import version

    out = affect("--version")
    assert out.returncode == 0 and out.stdout.decode().strip() == f"affect {version('affect')}"
    assert _no_heavy_imports("from affect_server.cli import main\ntry:\n    main(['--version'])\nexcept SystemExit:\n    pass") == []


@pytest.mark.parametrize("flag", ["--audio", "--image", "--conversation", "--video"])
def test_a_directory_where_a_file_is_expected_gets_one_line(tmp_path: Path, flag: str):
    out = affect("analyze", flag, str(tmp_path))
    err = out.stderr.decode()
    assert out.returncode == 2 and "is a directory" in err and f"affect analyze {tmp_path}" in err and "Traceback" not in err


@pytest.fixture
def nothing_to_read(tmp_path: Path) -> tuple[Path, Path]:
    import cv2
    import numpy as np
    import soundfile as sf

    silence, blank = tmp_path / "silence.wav", tmp_path / "blank.png"
    sf.write(silence, np.zeros(32000, np.float32), 16000)
    cv2.imwrite(str(blank), np.full((240, 320), 128, np.uint8))
    return silence, blank


def test_no_reading_is_said_with_its_reasons_and_exit_code_3(nothing_to_read):
    silence, blank = nothing_to_read
    out = affect("analyze", "--audio", str(silence), "--image", str(blank))
    assert out.returncode == 3, out.stderr.decode()
    assert out.stdout.decode().strip() == "no reading: speech: no speech detected; face: no face detected"
    assert out.stderr.decode() == ""  # piped: no progress line
    out = affect("analyze", "--image", str(blank), "--json")
    assert out.returncode == 3 and "no reading: face: no face detected" in out.stderr.decode()
    (result,) = json.loads(out.stdout)
    assert result["emotion"] is None and result["valence"] is None and result["present"] == []
    out = affect("analyze", "--text", " ", "--audio", str(silence))  # an empty transcript beside the audio: no text
    assert out.returncode == 3, out.stderr.decode()
    assert out.stdout.decode().strip() == "no reading: text: empty text; speech: no speech detected"


def test_conversation_file_turns_carry_audio_and_images(tmp_path: Path, data_root: Path, nothing_to_read):
    from tests.conftest import framed_face_png

    silence, _ = nothing_to_read
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "face.png").write_bytes(framed_face_png(data_root, "surprise"))
    path = tmp_path / "call.jsonl"
    path.write_text("\n".join(json.dumps(t) for t in [
        {"speaker": "caller", "text": "Hello? Is anyone there?"},
        {"speaker": "caller", "audio": "silence.wav"},
        {"speaker": "caller", "text": "Oh, there you are!", "image": "media/face.png"},
    ]))
    out = affect("analyze", "--conversation", str(path), "--json", "--out", str(tmp_path / "call.csv"),
                 "--plot", str(tmp_path / "call.png"))
    assert out.returncode == 0, out.stderr.decode()
    results = json.loads(out.stdout)
    assert [r["present"] for r in results] == [["text"], [], ["face", "text"]]
    assert results[1]["emotion"] is None and results[1]["absent"] == {"speech": "no speech detected"}
    assert results[2]["state"]["turns"] == 2  # the silent turn left the state alone
    csv_lines = (tmp_path / "call.csv").read_text().splitlines()
    assert csv_lines[0].startswith("turn_index,speaker,emotion") and len(csv_lines) == 4
    assert ",speech: no speech detected," in csv_lines[2]
    assert (tmp_path / "call.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("turn, message", [
    ({"audio": "missing.wav"}, 'turn 0 of'),
    ({"image": "."}, "is a directory"),
    ({"text": "hi", "video": "x.mp4"}, "unknown keys ['video']"),
])
def test_bad_media_in_conversation_files_is_refused_before_loading(tmp_path: Path, turn, message):
    path = tmp_path / "turns.json"
    path.write_text(json.dumps([turn]))
    out = affect("analyze", "--conversation", str(path))
    err = out.stderr.decode()
    assert out.returncode == 2 and message in err and "Traceback" not in err, err


def test_analyze_a_folder_to_csv_and_jsonl_then_plot(tmp_path: Path, data_root: Path, nothing_to_read):
    import csv

    silence, blank = nothing_to_read
    faces = sorted((data_root / "face" / "fer2013-test-slice" / "happy").glob("*.jpg"))[:3]
    folder = tmp_path / "photos"
    folder.mkdir()
    for face in faces:
        (folder / face.name).write_bytes(face.read_bytes())
    (folder / "blank.png").write_bytes(blank.read_bytes())
    (folder / "notes.txt").write_text("not analysed")
    (folder / "call.mp3").write_bytes(b"ID3\x04\x00 an MP3 is not read")
    (folder / "frame.gif").write_bytes(b"GIF89a nor is a GIF")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    out = affect("analyze", str(folder), "--out", str(tmp_path / "photos.csv"))
    err = out.stderr.decode()
    assert out.returncode == 4, err  # a file failed: the rest are written, and the status says so (it was 0)
    assert f"{folder / 'broken.png'}: image header is truncated or corrupt" in err
    assert "affect: 3 files skipped (1 .gif, 1 .mp3, 1 .txt): only images (.jpg" in err  # skipped without a word before
    assert "affect: 1 of 5 files could not be read" in err
    rows = list(csv.DictReader((tmp_path / "photos.csv").open()))
    assert [Path(r["file"]).name for r in rows] == sorted(["blank.png", "broken.png", *(f.name for f in faces)])
    blank_row = next(r for r in rows if r["file"].endswith("blank.png"))
    assert blank_row["emotion"] == "" and blank_row["no_reading"] == "face: no face detected"
    broken_row = next(r for r in rows if r["file"].endswith("broken.png"))
    assert broken_row["error"] and broken_row["emotion"] == "" and broken_row["no_reading"] == ""
    assert all(r["emotion"] == "happiness" or r["emotion"] == "" or r["p_happiness"] for r in rows)

    conversation = tmp_path / "call.json"
    conversation.write_text(json.dumps(["We won the cup!", "Seriously? That's brilliant!", "But now I'm exhausted."]))
    out = affect("analyze", str(tmp_path / "*.json"), "--out", str(tmp_path / "call.jsonl"))
    assert out.returncode == 0, out.stderr.decode()
    records = [json.loads(line) for line in (tmp_path / "call.jsonl").read_text().splitlines()]
    assert [r["turn_index"] for r in records] == [0, 1, 2] and all(r["file"] == str(conversation) for r in records)
    out = affect("plot", str(tmp_path / "call.jsonl"))
    assert out.returncode == 0, out.stderr.decode()
    assert (tmp_path / "call.png").read_bytes().startswith(b"\x89PNG")


def test_out_says_what_it_wrote_for_a_conversation_and_for_files_and_only_a_conversation_prints_its_table(
        tmp_path: Path) -> None:
    """``--conversation --out`` printed the table and said nothing of the file; files and folders with
    ``--out`` said how many rows and printed no table. Both say what was written, the same line; the
    conversation's table is printed too, a folder's is not (its rows are written as they come)."""
    import csv

    calls = tmp_path / "calls"
    calls.mkdir()
    (calls / "call.json").write_text(json.dumps(["We won the cup!", "Seriously? That's brilliant!"]))
    (calls / "second.json").write_text(json.dumps(["My parcel is late again."]))
    turns_csv, folder_csv = tmp_path / "turns.csv", tmp_path / "folder.csv"
    one = affect("analyze", "--conversation", str(calls / "call.json"), "--out", str(turns_csv))
    assert one.returncode == 0, one.stderr.decode()
    assert one.stdout.decode().splitlines()[0].split()[:3] == ["turn", "speaker", "text"]
    assert f"affect: 2 rows written to {turns_csv}" in one.stderr.decode().replace("\r", "\n").splitlines()
    folder = affect("analyze", str(calls), "--out", str(folder_csv))
    assert folder.returncode == 0 and folder.stdout == b"", folder.stderr.decode()
    assert f"affect: 2 files, 3 rows written to {folder_csv}" in folder.stderr.decode().replace("\r", "\n").splitlines()
    assert len(list(csv.DictReader(turns_csv.open()))) == 2 and len(list(csv.DictReader(folder_csv.open()))) == 3
    quiet = affect("analyze", "--conversation", str(calls / "second.json"), "--out", str(turns_csv), "-q")
    assert quiet.returncode == 0 and quiet.stderr.decode().splitlines() == [f"affect: 1 row written to {turns_csv}"]


def test_plot_reads_folder_results_with_error_rows(tmp_path: Path):
    """``affect plot`` on the results of a folder where a file failed said "unknown keys
    ['error', 'file']": an error row has no "present", so the file was read as turns."""
    folder = tmp_path / "calls"
    folder.mkdir()
    (folder / "call.json").write_text(json.dumps(["We won the cup!", "Seriously? That's brilliant!"]))
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    results = tmp_path / "results.jsonl"
    assert affect("analyze", str(folder), "--out", str(results), "-q").returncode == 4
    out = affect("plot", str(results), "-q")
    err = out.stderr.decode()
    assert out.returncode == 0 and (tmp_path / "results.png").read_bytes().startswith(b"\x89PNG"), err
    assert f"1 error row left out (files that could not be read: {folder / 'broken.png'})" in err
    errors_only = tmp_path / "errors.jsonl"
    errors_only.write_text("".join(line + "\n" for line in results.read_text().splitlines() if '"error"' in line))
    out = affect("plot", str(errors_only), "-q")
    err = out.stderr.decode()
    assert out.returncode == 2 and "holds only error rows" in err and "unknown keys" not in err, err


def test_a_folder_with_nothing_to_analyse_is_refused(tmp_path: Path):
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "call.mp3").write_bytes(b"ID3")
    out = affect("analyze", str(tmp_path))
    assert out.returncode == 2 and "no image, audio or conversation files" in out.stderr.decode()
    assert "2 files skipped (1 .mp3, 1 .txt)" in out.stderr.decode()


def test_a_folder_whose_every_file_is_read_exits_0_without_a_skipped_line(tmp_path: Path):
    (tmp_path / "call.json").write_text(json.dumps(["We won the cup!"]))
    out = affect("analyze", str(tmp_path), "--json", "-q")
    assert out.returncode == 0 and out.stderr.decode() == "", out.stderr.decode()


@pytest.mark.parametrize("flag, name", [("--out", "turns.csv"), ("--plot", "turns.png")])
def test_an_output_in_a_folder_that_does_not_exist_is_refused_before_any_model_loads(tmp_path: Path, flag, name):
    target = str(tmp_path / "missing" / name)
    out = affect("analyze", "--text", "My parcel is late again.", flag, target)
    err = out.stderr.decode()
    assert out.returncode == 2 and "does not exist" in err and "Traceback" not in err, err
    assert _no_heavy_imports(f"from affect_server.cli import main\nmain({['analyze', '--text', 'hi', flag, target]!r})") == []


def test_output_cut_short_by_its_reader_ends_quietly():
    """``affect models --json | head -1``: the reader goes away; no BrokenPipeError traceback."""
    proc = subprocess.Popen([sys.executable, "-m", "affect_server.cli", "models", "--json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout.readline().strip() in (b"[", b"{")
    proc.stdout.close()  # as `head -1` does
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0 and "Traceback" not in err and "BrokenPipe" not in err, err


def test_plot_names_its_own_argument_when_given_a_folder(tmp_path: Path):
    out = affect("plot", str(tmp_path))
    err = out.stderr.decode()
    assert out.returncode == 2 and "is a directory" in err and "--conversation" not in err, err


@pytest.mark.parametrize("name, content, problem", [
    ("turn.flac", b"fLaC\x00\x00\x00\x22\x10\x00\x10\x00\x00\x00\x00\x00\x00\x00\x00\xff\xfe", "is not valid UTF-8 (byte 19)"),
    ("notes.txt", b"hello", "is not valid JSON: Expecting value at line 1"),
    ("turns.jsonl", b'{"text": "hi"}\nnot json\n', "line 2 is not valid JSON: Expecting value"),
])
def test_plot_of_a_file_it_cannot_read_says_what_it_takes(tmp_path: Path, name: str, content: bytes, problem: str) -> None:
    """``affect plot turn.flac`` said only "turn.flac is not valid UTF-8 (byte 19)"; it says what the
    command takes too, before any model loads."""
    path = tmp_path / name
    path.write_bytes(content)
    out = affect("plot", str(path))
    assert out.returncode == 2 and out.stdout == b"", out.stderr.decode()
    assert out.stderr.decode() == (f"affect: error: {path} {problem}; `affect plot` takes a JSON Lines (or JSON) file of "
                                   "turns, or of the results `affect analyze --out FILE.jsonl` writes\n")
    assert _no_heavy_imports(f"from affect_server.cli import main\nmain({['plot', str(path)]!r})") == []


@pytest.mark.parametrize("name, content, problem", [
    ("turn.flac", b"fLaC\x00\x00\x00\x22\x10\x00\x10\x00\x00\x00\x00\x00\x00\x00\x00\xff\xfe", "is not valid UTF-8 (byte 19)"),
    ("notes.txt", b"hello", "is not valid JSON: Expecting value at line 1"),
    ("turns.jsonl", b'{"text": "hi"}\nnot json\n', "line 2 is not valid JSON: Expecting value"),
    ("turns.json", b"{}", "must hold a non-empty JSON list of turns"),
])
def test_a_conversation_file_that_is_none_says_what_analyze_takes(tmp_path: Path, name: str, content: bytes,
                                                                  problem: str) -> None:
    """``affect analyze --conversation turn.flac`` said only "turn.flac is not valid UTF-8 (byte 19)";
    it says what ``--conversation`` takes too, before any model loads. A wrong turn in a
    conversation file is still refused naming the turn alone."""
    path = tmp_path / name
    path.write_bytes(content)
    out = affect("analyze", "--conversation", str(path))
    assert out.returncode == 2 and out.stdout == b"", out.stderr.decode()
    assert out.stderr.decode() == (f"affect: error: {path} {problem}; `affect analyze --conversation` takes a JSON Lines "
                                   "conversation file, one turn per line (a string, or an object with text, speaker, "
                                   "audio, image), or a JSON list of turns\n")
    assert _no_heavy_imports(f"from affect_server.cli import main\nmain({['analyze', '--conversation', str(path)]!r})") == []
    wrong_turn = tmp_path / "wrong_turn.json"
    wrong_turn.write_text(json.dumps([{"txt": "hi"}]))
    out = affect("analyze", "--conversation", str(wrong_turn))
    assert out.returncode == 2 and "has unknown keys ['txt']" in out.stderr.decode()
    assert "takes a JSON Lines" not in out.stderr.decode()


def test_the_command_line_runs_the_networks_where_the_library_does(tmp_path: Path):
    """``affect analyze`` once built its encoders itself and left them on PyTorch, where
    ``Analyzer()`` puts them on ONNX Runtime under "auto" (about 4x the CPU for text);
    ``--runtime torch`` keeps PyTorch."""
    from affect import Analyzer
    from affect.cli import load_analyzer

    library = type(Analyzer(text=True, speech=None, face=None).text.net).__name__
    assert type(load_analyzer({"text"}, quiet=True).text.net).__name__ == library
    assert type(load_analyzer({"text"}, quiet=True, runtime="torch").text.net).__name__ == "TextAffectNet"
    out = affect("analyze", "--text", "You lied to me again!", "--runtime", "torch", "--quiet")
    assert out.returncode == 0 and "anger" in out.stdout.decode(), out.stderr.decode()
    turns = Path(__file__).resolve().parents[1] / "docs" / "examples" / "support-call.jsonl"
    out = affect("plot", str(turns), "--out", str(tmp_path / "call.png"), "--quiet")  # a file of turns is analysed first
    assert out.returncode == 0 and (tmp_path / "call.png").stat().st_size > 10_000, out.stderr.decode()


def test_the_command_line_loads_what_a_library_user_loads_and_hears_each_model_load(text_encoder):
    """The command line built its encoders itself, only to show a line per model, and had to
    name the runtime per modality to get ``Analyzer``'s "auto": now it is ``Analyzer(...)`` with
    an ``on_progress`` hook, told a start and a done for each model it loads, in order."""
    from affect import Analyzer, ModelLoadEvent
    from affect.cli import load_analyzer

    options = {"text": {"context_weight": 1.0}}
    events: list[ModelLoadEvent] = []
    library = Analyzer(speech=None, face=None, encoder_options=options, on_progress=events.append)
    command = load_analyzer({"text"}, quiet=True, encoder_options=options)
    for analyzer in (library, command):
        assert analyzer.models == {"text": library.text.model_id} and analyzer.speech is None and analyzer.face is None
    assert type(command.text.net) is type(library.text.net) and command.text.runtime == library.text.runtime
    assert command.text.context_weight == library.text.context_weight == 1.0
    assert command.forecaster.model_id == library.forecaster.model_id

    assert [(e.model, e.stage) for e in events] == [("text", "start"), ("text", "done"),
                                                      ("forecast", "start"), ("forecast", "done")]
    text_done, forecast_done = events[1], events[3]
    assert (text_done.model_id, text_done.runtime) == (library.text.model_id, library.text.runtime)
    assert forecast_done.model_id == library.forecaster.model_id and forecast_done.runtime == "torch"
    assert all(e.seconds is None for e in events[::2]) and all(e.seconds > 0 for e in events[1::2])
    assert text_done.seconds > forecast_done.seconds  # the text network is the one that costs
    passed: list[ModelLoadEvent] = []
    Analyzer(text=text_encoder, speech=None, face=None, forecast=None, on_progress=passed.append)
    assert passed == []  # an instance the caller built is not loaded here


def test_a_video_cut_at_max_frames_gets_the_flag_hint_and_one_that_stopped_decoding_does_not(tmp_path: Path, data_root):
    """The hint was added when the warning's text held "max_frames"; it reads the warning's
    fields now (``VideoIncompleteWarning.reason``, ``max_frames``)."""
    import cv2
    import numpy as np

    face = sorted((data_root / "face" / "fer2013-test-slice" / "happy").glob("*.jpg"))[0]
    face = cv2.resize(cv2.imread(str(face), cv2.IMREAD_GRAYSCALE), (160, 160), interpolation=cv2.INTER_CUBIC)
    video = tmp_path / "call.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (640, 360))
    for _ in range(30):  # 3 s: three frames at 1 fps
        frame = np.full((360, 640), 120, np.uint8)
        frame[100:260, 240:400] = face
        writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    writer.release()
    cut = tmp_path / "cut.avi"  # its second half lost: decoding stops before the 30 frames announced
    cut.write_bytes(video.read_bytes()[: video.stat().st_size // 2])

    out = affect("analyze", "--video", str(video), "--max-frames", "2", "--quiet")
    err = out.stderr.decode()
    assert out.returncode == 0 and "happiness" in out.stdout.decode(), err
    assert err.splitlines() == ["affect: the video was read to 1.0 s only: max_frames=2 frames were sampled "
                                "(--max-frames 2 reached: --max-frames 3 reads the whole video at --fps 1)"]
    out = affect("analyze", "--video", str(video), "--max-frames", "3", "--quiet")
    assert out.returncode == 0 and out.stderr.decode() == "", out.stderr.decode()  # the whole video: nothing to say
    out = affect("analyze", "--video", str(cut), "--quiet")
    err = out.stderr.decode()
    assert out.returncode == 0 and "decoding stopped at frame" in err and "--max-frames" not in err, err


@pytest.mark.parametrize("flags, message", [
    (["--text", "hi", "--text-context-weight", "2"], "argument --text-context-weight: must be a number between 0 and 1"),
    (["--text", "hi", "--text-context-weight", "nan"], "argument --text-context-weight: must be a number between 0 and 1"),
    (["--video", "call.mp4", "--fps", "0"], "argument --fps: must be a number of frames a second in (0, 60]"),
    (["--video", "call.mp4", "--fps", "fast"], "argument --fps: must be a number of frames a second in (0, 60], got 'fast'"),
    (["--video", "call.mp4", "--max-frames", "0"], "argument --max-frames: must be a whole number of at least 1, got 0"),
    (["--text", "hi", "--face-detector", "bogus"], "argument --face-detector: unknown face detector 'bogus'; known: "
                                                   "blazeface, blazeface+mtcnn, haar"),
    (["--text", "hi", "--speaker", "agent\nINFO forged"], "argument --speaker: the name has a control or format "
                                                          "character (U+000A)"),
])
def test_every_flag_is_checked_by_the_librarys_rule_when_parsed(flags, message):
    """A bad value is refused when the command line is parsed (exit 2, the flag named), whether
    or not it applies to the input (a face detector for text alone), and before any model loads:
    the flags were checked by the library after the models had loaded (5-13 s), under the
    library's names (``context_weight``, ``fps``), and not at all where they did not apply."""
    out = affect("analyze", *flags)
    err = out.stderr.decode()
    assert out.returncode == 2 and message in err and "Traceback" not in err, err
    assert _no_heavy_imports(f"from affect_server.cli import main\ntry:\n    main({['analyze', *flags]!r})\n"
                             "except SystemExit:\n    pass") == []


def test_the_library_applies_the_same_option_rules():
    """One rule per option: the library's messages are the command line's, after the option's own name."""
    from affect import InvalidInputError
    from affect.face import FaceEncoder
    from affect.text import TextEncoder

    with pytest.raises(InvalidInputError, match=r"^context_weight must be a number between 0 and 1, got 2$"):
        TextEncoder(context_weight=2)
    with pytest.raises(InvalidInputError, match=r"^unknown face detector 'bogus'; known: blazeface, blazeface\+mtcnn, haar$"):
        FaceEncoder(detector="bogus")
    with pytest.raises(InvalidInputError, match=r"^fps must be a number of frames a second in \(0, 60\], got 0$"):
        FaceEncoder().analyze_video("call.mp4", fps=0)


@pytest.mark.parametrize("flags, message", [
    (["--text", "hi", "--speaker", "x"], "--text, --speaker cannot be given with --conversation"),
    (["--audio", "a.wav", "--image", "b.png"], "--audio, --image cannot be given with --conversation"),
])
def test_a_conversation_file_with_turn_flags_is_refused_naming_them(tmp_path: Path, flags, message):
    """``--conversation FILE --text ...`` analysed the file and dropped the flags (exit 0)."""
    path = tmp_path / "turns.json"
    path.write_text(json.dumps(["We won the cup!"]))
    args = ["analyze", "--conversation", str(path), *flags]
    out = affect(*args)
    err = out.stderr.decode()
    assert out.returncode == 2 and message in err and "Traceback" not in err, err
    assert _no_heavy_imports(f"from affect_server.cli import main\nmain({args!r})") == []


@pytest.mark.parametrize("flags, message", [
    (["--text", "hi", "--fps", "2"], "--fps cannot be given without --video"),
    (["--image", "x.png", "--max-frames", "10"], "--max-frames cannot be given without --video"),
    (["--video", "call.mp4", "--speaker", "caller", "--out", "x.csv"], "--speaker, --out cannot be given with --video"),
    (["DIR", "--speaker", "caller"], "--speaker cannot be given with files and folders"),
    (["DIR", "--plot", "x.png"], "--plot draws one conversation"),
])
def test_flags_that_do_not_apply_to_the_input_are_refused(tmp_path: Path, flags, message):
    args = ["analyze", *(str(tmp_path) if f == "DIR" else f for f in flags)]
    out = affect(*args)
    err = out.stderr.decode()
    assert out.returncode == 2 and message in err and "Traceback" not in err, err


def test_a_bad_speaker_in_a_conversation_file_is_refused_naming_its_turn_before_loading(tmp_path: Path):
    """A speaker a turn cannot have was refused after the models loaded, without the turn:
    "speaker has a control or format character"."""
    turns = tmp_path / "call.jsonl"
    turns.write_text('{"speaker": "caller", "text": "hi"}\n{"speaker": "caller\\tX", "text": "yo"}\n')
    args = ["analyze", "--conversation", str(turns)]
    out = affect(*args)
    assert out.returncode == 2 and out.stderr.decode().strip() == (
        f'affect: error: turn 1 of {turns}: "speaker" has a control or format character (U+0009) at position 6')
    assert _no_heavy_imports(f"from affect_server.cli import main\nmain({args!r})") == []


def test_an_empty_wav_is_said_to_hold_no_samples(tmp_path: Path):
    """A complete WAV file of 0 frames was "a WAV file whose data length is not given (a streamed WAV)"."""
    import numpy as np
    import soundfile as sf

    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, np.float32), 16000, subtype="PCM_16")
    out = affect("analyze", "--audio", str(empty))
    assert out.returncode == 2 and out.stderr.decode().strip() == \
        "affect: error: --audio: empty.wav holds no samples (a WAV file of 0 frames)", out.stderr.decode()


def test_a_file_given_to_audio_that_is_no_audio_file_is_refused_naming_the_flag(tmp_path: Path) -> None:
    """Raw mu-law bytes given to ``--audio`` are refused naming ``--audio``, the flag the user typed,
    not ``audio``, the library's name for the turn's field; so is a bad ``--image``."""
    raw = tmp_path / "raw.ulaw"
    raw.write_bytes(bytes(range(256)) * 40)
    out = affect("analyze", "--audio", str(raw))
    assert out.returncode == 2 and out.stderr.decode().strip() == (
        "affect: error: --audio: raw.ulaw is not a readable WAV/FLAC/OGG file, or is truncated or corrupt "
        "(Format not recognised.)"), out.stderr.decode()
    (tmp_path / "raw.jpg").write_bytes(bytes(range(256)) * 40)
    out = affect("analyze", "--image", str(tmp_path / "raw.jpg"))
    assert out.returncode == 2 and out.stderr.decode().strip() == \
        "affect: error: --image: raw.jpg is not a JPEG, PNG, BMP or WebP file", out.stderr.decode()


def test_a_truncated_image_is_refused_as_the_image(tmp_path: Path, data_root: Path):
    """``--image`` is the turn's one image: its refusal names the flag, "--image", not "images[0]"
    (the library names a turn's images each by its own field; ``images[0]`` is a conversation file's list)."""
    face = sorted((data_root / "face" / "fer2013-test-slice" / "happy").glob("*.jpg"))[0].read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(face[: len(face) // 2])
    out = affect("analyze", "--image", str(cut))
    assert out.returncode == 2 and out.stderr.decode().strip() == \
        "affect: error: --image could not be decoded (corrupt or truncated)", out.stderr.decode()


def _handover_file(path: Path, *, reset: bool) -> Path:
    """tests/_handover.py's call as a conversation file, with the new caller's reset line or without it."""
    from tests._handover import AFTER_HANDOVER, BEFORE_HANDOVER

    items: list[dict[str, str]] = [{"speaker": s, "text": t} for s, t in BEFORE_HANDOVER]
    items += [{"reset_speaker": "customer"}] if reset else []
    items += [{"speaker": s, "text": t} for s, t in AFTER_HANDOVER]
    path.write_text("".join(json.dumps(item) + "\n" for item in items))
    return path


def _events(results: list[dict]) -> list[list[str]]:
    return [[f"{e['kind']}:{e['speaker']}" for e in r["events"]] for r in results]


def test_events_about_the_named_speakers_only_and_a_speaker_reset_between_turns(tmp_path: Path):
    """``--event-speakers customer``: the agent's warning (escalation_risk on turn 2) is not raised,
    the readings are as without it, and the same holds for a conversation file in a folder. A
    ``{"reset_speaker": "customer"}`` line puts a new caller through: their angry first turn
    raises rising_anger and escalation_risk again, which the earlier caller's had used up."""
    call = _handover_file(tmp_path / "call.jsonl", reset=True)
    runs = []
    for args in (["--conversation", str(call)], ["--conversation", str(call), "--event-speakers", "customer"],
                 [str(call), "--event-speakers", "customer"],
                 ["--conversation", str(_handover_file(tmp_path / "no-reset.jsonl", reset=False)),
                  "--event-speakers", "customer"]):
        out = affect("analyze", *args, "--json", "-q")
        assert out.returncode == 0, out.stderr.decode()
        text = out.stdout.decode()
        runs.append([json.loads(line) for line in text.splitlines()] if args[0] == str(call) else json.loads(text))
    every, watched, in_a_folder, not_reset = runs
    assert [r["turn_index"] for r in every] == [0, 1, 2, 3, 4, 5]  # the reset line is no turn
    assert _events(every)[2] == ["escalation_risk:agent"]
    assert _events(watched) == [[e for e in turn if e.endswith(":customer")] for turn in _events(every)]
    assert _events(watched)[3] == ["rising_anger:customer", "escalation_risk:customer"]  # the new caller
    assert [r["emotions"] for r in watched] == [r["emotions"] for r in every]
    assert _events(in_a_folder) == _events(watched) and all(r["file"] == str(call) for r in in_a_folder)
    assert _events(not_reset)[3] == []  # the same caller as before, already warned about

    table = affect("analyze", "--conversation", str(call), "--event-speakers", "customer", "-q")
    lines = table.stdout.decode().splitlines()
    assert table.returncode == 0 and lines[0].split()[-1] == "events" and len(lines) == 8, lines
    assert lines[4].split()[:2] == ["2", "agent"] and not lines[4].endswith("escalation_risk")


@pytest.mark.parametrize("names, message", [
    ("customer,,agent", "argument --event-speakers: event_speakers[1] is empty: name the speaker"),
    (",".join(f"agent {i}" for i in range(17)),
     "argument --event-speakers: event_speakers names 17 speakers; the limit is 16"),
    ("cust\u2028omer", "argument --event-speakers: event_speakers[0] has a control or format character (U+2028)"),
])
def test_event_speakers_are_checked_by_the_librarys_rule_when_parsed(names: str, message: str):
    args = ["analyze", "--text", "hi", "--event-speakers", names]
    out = affect(*args)
    err = out.stderr.decode()
    assert out.returncode == 2 and message in err and "Traceback" not in err, err
    assert _no_heavy_imports(f"from affect_server.cli import main\ntry:\n    main({args!r})\n"
                             "except SystemExit:\n    pass") == []


@pytest.mark.parametrize("reset, message", [
    ({"reset_speaker": "custmer"}, '"reset_speaker" names a speaker of no turn before it (a name of 7 characters)'),
    ({"reset_speaker": "customer", "text": "Hi"}, '"reset_speaker" stands alone in its object (a reset is not a turn)'),
    ({"reset_speaker": ""}, '"reset_speaker" is empty: name the speaker'),
    ({"reset_speaker": ["customer"]}, '"reset_speaker" must be a string, got list'),
    ({"reset": "customer"}, "unknown keys ['reset']; a turn may carry text, speaker, audio, image, images "
                            '(a speaker reset is {"reset_speaker": NAME} alone)'),
    ({"reset_speaker": "customer", "Bob +15551234567": 1, "text": "Hi"},
     "stands alone in its object (a reset is not a turn), found also [<a key of 16 characters>, 'text']"),
])
def test_a_speaker_reset_that_could_reset_nobody_is_refused_naming_its_item_before_loading(
        tmp_path: Path, reset: dict, message: str):
    call = tmp_path / "call.jsonl"
    call.write_text(f'{{"speaker": "customer", "text": "Hi"}}\n{json.dumps(reset)}\n')
    args = ["analyze", "--conversation", str(call)]
    out = affect(*args)
    err = out.stderr.decode().strip()
    assert out.returncode == 2 and f" 1 of {call}" in err and message in err, err
    assert "custmer" not in err and "Bob" not in err  # names are personal: only their length is said
    assert _no_heavy_imports(f"from affect_server.cli import main\nmain({args!r})") == []


@pytest.mark.parametrize("flags, message", [
    (["--image", "face.png", "--text-prior", "conversational"],
     "--text-prior cannot be given without text in the input"),
    (["--text", "hi", "--speech-adapt", "--face-detector", "haar"],
     "--speech-adapt cannot be given without audio in the input; --face-detector cannot be given without images in "
     "the input"),
    (["--video", "call.mp4", "--text-context-weight", "0.5"],
     "--text-context-weight cannot be given without text in the input"),
    (["--conversation", "CALL", "--face-detector", "haar"],
     "--face-detector cannot be given without images in the input"),
    (["FOLDER", "--speech-adapt"], "--speech-adapt cannot be given without audio in the input"),
])
def test_a_setting_for_a_modality_the_input_does_not_have_is_refused_before_loading(
        tmp_path: Path, flags: list[str], message: str):
    """``--text-prior`` with only ``--image`` (or ``--face-detector`` for a conversation of text) was
    read by no model, and the run said nothing of it; a conversation file's or a folder's modalities
    are known once their files are read, before any model loads."""
    folder = tmp_path / "calls"
    folder.mkdir()
    call = folder / "call.jsonl"
    call.write_text('{"speaker": "customer", "text": "My parcel is late again."}\n')
    args = ["analyze", *(str(call) if f == "CALL" else str(folder) if f == "FOLDER" else f for f in flags)]
    out = affect(*args)
    err = out.stderr.decode()
    assert out.returncode == 2 and err.strip() == f"affect: error: {message}", err
    assert _no_heavy_imports(f"from affect_server.cli import main\nmain({args!r})") == []


def test_media_given_as_a_data_uri_in_a_conversation_file_is_refused_in_one_line_never_quoted(tmp_path: Path) -> None:
    """A conversation file whose "image" held a data: URI crashed ``affect analyze`` with exit
    code 1 and a traceback holding the whole base64 face (``OSError: File name too long``); in a
    folder it aborted the batch and no CSV was written. Now one line (exit 2) that gives only the
    string's length; in a folder, that file's row says so and the other files are analysed."""
    import base64

    face = base64.b64encode(bytes(range(256)) * 12).decode()  # 4 KB: longer than any path
    data_uri = f"data:image/jpeg;base64,ZQXMARK{face}"
    (tmp_path / "calls").mkdir()
    call = tmp_path / "calls" / "call.json"
    call.write_text(json.dumps([{"text": "Here is my photo", "image": data_uri}]))
    (tmp_path / "calls" / "other.json").write_text(json.dumps(["I am happy today"]))
    expected = f'turn 0 of {call}: "image": a string is a file path; this one is not a file that exists ({len(data_uri):,} characters'

    out = affect("analyze", "--conversation", str(call))
    err = out.stderr.decode()
    assert out.returncode == 2 and expected in err and len(err.strip().splitlines()) == 1, err
    assert "ZQXMARK" not in err and "Traceback" not in err and face[:40] not in err

    out = affect("analyze", str(tmp_path / "calls"), "--out", str(tmp_path / "calls.csv"))
    err, table = out.stderr.decode(), (tmp_path / "calls.csv").read_text()
    assert out.returncode == 4 and expected in err and "Traceback" not in err, err
    rows = {row["file"]: row for row in csv.DictReader(io.StringIO(table))}
    assert expected in rows[str(call)]["error"] and rows[str(tmp_path / "calls" / "other.json")]["emotion"] == "happiness"
    assert "ZQXMARK" not in err + table and face[:40] not in err + table


def test_errors_about_a_conversation_file_quote_no_speaker_name_or_key_text(tmp_path: Path) -> None:
    """A reset naming no earlier speaker quoted the name (``names 'Bob ...', the speaker of no
    turn``) and a turn's unknown keys were quoted whole, and folder mode wrote both into its CSV:
    now the name's length, and a key only when it reads as a misspelt field name."""
    calls = tmp_path / "calls"
    calls.mkdir()
    (calls / "reset.jsonl").write_text('{"speaker": "agent", "text": "Hi"}\n{"reset_speaker": "Bob ZQXMARK +15551234567"}\n')
    (calls / "keys.json").write_text(json.dumps([{"text": "Hi", "ZQXMARK my secret is 42": 1, "vidoe": "x.mp4"}]))
    (calls / "fine.json").write_text(json.dumps(["I am happy today"]))
    out = affect("analyze", str(calls), "--out", str(tmp_path / "calls.csv"))
    err, table = out.stderr.decode(), (tmp_path / "calls.csv").read_text()
    assert out.returncode == 4 and "Traceback" not in err, err
    rows = {Path(row["file"]).name: row["error"] for row in csv.DictReader(io.StringIO(table))}
    assert rows["reset.jsonl"].endswith('item 1 of ' + str(calls / "reset.jsonl") + ': "reset_speaker" names a speaker of '
                                        "no turn before it (a name of 24 characters)"), rows
    assert "has unknown keys [<a key of 23 characters>, 'vidoe']" in rows["keys.json"] and rows["fine.json"] == ""
    assert "ZQXMARK" not in err + table and "5551234567" not in err + table


@pytest.mark.parametrize("flag", ["--image", "--audio"])
def test_base64_given_as_a_media_flag_is_refused_in_one_line_never_quoted(flag: str) -> None:
    """``--audio "$(base64 call.wav)"`` crashed with ``OSError: File name too long`` and a traceback
    holding the recording; a data: URI was quoted whole as "no such file: data:image/...". Now one
    line (exit 2) giving the string's length."""
    import base64

    blob = base64.b64encode(bytes(range(256)) * 12).decode().replace("/", "_")  # one 4 KB path component
    for given in ("ZQXMARK" + blob, "data:image/png;base64,ZQXMARK" + blob):
        out = affect("analyze", flag, given)
        err = out.stderr.decode()
        assert out.returncode == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
        assert f"{flag}: a string is a file path; this one is not a file that exists ({len(given):,} characters" in err
        assert "ZQXMARK" not in err and blob[:40] not in err


def test_plot_refuses_a_file_it_may_not_read_naming_the_file_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``affect plot FILE`` on a file its user may not read (mode 000) ended in a PermissionError
    traceback quoting the whole path (``is_file`` needs no read permission); now one line, exit 2."""
    from affect.cli import main
    from tests._unreadable import unreadable

    results = tmp_path / "private-folder" / "results.jsonl"
    results.parent.mkdir()
    results.write_text('{"text": "I want a refund"}\n')
    with unreadable(results):
        code = main(["plot", str(results)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err == "affect: error: FILE: cannot read 'results.jsonl': Permission denied", err


def test_a_refusal_of_the_turns_images_or_sample_rate_names_the_flag_that_gave_them() -> None:
    """``affect analyze``'s one turn is made of its flags: a refusal naming the library's
    ``images`` or ``sample_rate`` names ``--image`` (the command line's one image) or ``--audio``
    (the file whose rate it is), as one naming ``audio`` names ``--audio``."""
    from affect import InvalidInputError
    from affect.cli import _by_flag
    from affect.limits import check_image_count
    from affect.speech._audio import check_rate

    for refuse, expected in ((lambda: check_image_count(9), ("image", "--image: a turn may carry at most 8 images")),
                             (lambda: check_rate(4000), ("audio", "--audio is 4000 Hz; supported rates are 8000-48000 Hz"))):
        with pytest.raises(InvalidInputError) as refused:
            refuse()
        named = _by_flag(refused.value)
        assert (named.field, str(named)) == expected, named

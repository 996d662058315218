"""What the ``affect`` command says about its own work: what ``-q`` keeps, results it wrote met
again as input, a file given to the wrong flag, a run cut short by Ctrl-C, ``python -m affect``."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_cli import affect


def _lines(err: bytes) -> list[str]:
    return err.decode().replace("\r", "\n").splitlines()


def test_quiet_hides_progress_only_and_still_says_what_was_written(tmp_path: Path) -> None:
    """``-q`` also hid ``affect: N rows written to FILE``, though its help promised to hide only the
    progress line: a script using it lost the one confirmation of what the file holds."""
    calls = tmp_path / "calls"
    calls.mkdir()
    (calls / "call.json").write_text(json.dumps(["We won the cup!", "Seriously? That's brilliant!"]))
    turns_csv, folder_csv = tmp_path / "turns.csv", tmp_path / "folder.csv"
    one = affect("analyze", "--conversation", str(calls / "call.json"), "--out", str(turns_csv), "-q")
    assert one.returncode == 0 and _lines(one.stderr) == [f"affect: 2 rows written to {turns_csv}"], one.stderr
    folder = affect("analyze", str(calls), "--out", str(folder_csv), "--quiet")
    assert folder.returncode == 0 and _lines(folder.stderr) == [f"affect: 1 file, 2 rows written to {folder_csv}"]
    assert len(list(csv.DictReader(folder_csv.open()))) == 2
    helped = affect("analyze", "--help").stdout.decode()
    assert "what was written" in " ".join(helped.split()), helped


def test_a_rerun_on_a_folder_holding_its_own_results_skips_them_with_a_note(tmp_path: Path) -> None:
    """``affect analyze folder/ --out folder/results.jsonl``, then ``affect analyze folder/``: the second
    run read the results as a conversation and failed (exit 4, "unknown keys [<a key of 6 characters>,
    ...]"). Results that affect wrote, in each format it writes (``--out`` .jsonl and .csv, a
    conversation's ``--json`` kept as .json), are skipped and counted, before any model loads."""
    folder = tmp_path / "calls"
    folder.mkdir()
    (folder / "call.json").write_text(json.dumps(["We won the cup!", "Seriously? That's brilliant!"]))
    for out in ("results.jsonl", "results.csv"):
        assert affect("analyze", str(folder), "--out", str(folder / out), "-q").returncode == 0
    kept = affect("analyze", "--conversation", str(folder / "call.json"), "--json", "-q")
    (folder / "kept.json").write_bytes(kept.stdout)
    rerun = affect("analyze", str(folder), "--json", "-q")
    assert rerun.returncode == 0, rerun.stderr.decode()
    assert _lines(rerun.stderr) == [f"affect: 3 files skipped as results that affect wrote ({folder / 'kept.json'}, "
                                    f"{folder / 'results.csv'}, {folder / 'results.jsonl'}), not input"]
    rows = [json.loads(line) for line in rerun.stdout.decode().splitlines()]
    assert [(r["file"], r["turn_index"]) for r in rows] == [(str(folder / "call.json"), 0), (str(folder / "call.json"), 1)]
    from affect.results_files import OUTPUT_KEYS

    written = [json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines()]
    assert all(set(record) <= OUTPUT_KEYS for record in written + json.loads(kept.stdout))  # every key affect writes
    only = affect("analyze", str(folder / "results.jsonl"))
    assert only.returncode == 2 and "1 file skipped as results that affect wrote" in only.stderr.decode()


def test_results_given_as_a_conversation_are_refused_saying_so_and_affects_own_key_names_are_shown(
        tmp_path: Path) -> None:
    """A results file given to ``--conversation`` said only "unknown keys [<a key of 6 characters>, ...]":
    now it says what the file is. Unknown keys are hidden by their length unless they read as a field
    name or are names affect itself writes (its schema, not a user's data)."""
    results = tmp_path / "results.jsonl"
    results.write_text(json.dumps({"file": "calls/a.json", "turn_index": 0, "present": ["text"], "emotion": "anger"})
                       + "\n")
    out = affect("analyze", "--conversation", str(results))
    assert out.returncode == 2 and _lines(out.stderr) == [
        f"affect: error: turn 0 of {results} is a result that affect wrote, not a turn (its keys include ['file', "
        "'turn_index', 'present', 'emotion']): results.jsonl holds the results of an earlier run (`affect analyze "
        "--out`, `--json`); a turn may carry text, speaker, audio, image, images"], out.stderr.decode()
    turns = tmp_path / "turns.jsonl"
    turns.write_text(json.dumps({"text": "Where is my parcel?", "confidence": 0.9, "Alice Smith": "caller"}) + "\n")
    out = affect("analyze", "--conversation", str(turns))
    err = out.stderr.decode()
    assert out.returncode == 2 and "unknown keys [<a key of 11 characters>, 'confidence']" in err, err


def test_a_video_or_audio_given_as_the_image_is_named_with_the_flag_it_belongs_to(tmp_path: Path, data_root: Path) -> None:
    """``--image call.mp4`` (or a GIF, or a FLAC clip) said only "--image is not a JPEG, PNG, BMP or WebP
    file": now the file is named (its name, not its folder) with what its header says it is, and a
    video or audio file is pointed to ``--video`` or ``--audio``."""
    import cv2
    import numpy as np
    from PIL import Image

    video = tmp_path / "private" / "call.mp4"
    video.parent.mkdir()
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (64, 64))
    for _ in range(5):
        writer.write(np.full((64, 64, 3), 120, np.uint8))
    writer.release()
    Image.new("L", (32, 32), 90).save(tmp_path / "private" / "anim.gif")
    clip = sorted((data_root / "speech" / "ravdess-test-slice" / "Actor_24").glob("*.flac"))[0]
    expected = {video: "call.mp4 is an MP4 video, not a JPEG, PNG, BMP or WebP file; give a video with --video",
                tmp_path / "private" / "anim.gif": "anim.gif is a GIF image, not a JPEG, PNG, BMP or WebP file",
                clip: f"{clip.name} is FLAC audio, not a JPEG, PNG, BMP or WebP file; give audio with --audio"}
    for path, said in expected.items():
        out = affect("analyze", "--image", str(path), "-q")
        assert out.returncode == 2 and _lines(out.stderr) == [f"affect: error: --image: {said}"], out.stderr.decode()
    out = affect("analyze", "--audio", str(video), "-q")
    assert out.returncode == 2 and out.stderr.decode().strip().endswith("; give a video with --video"), out.stderr


def test_ctrl_c_during_out_says_how_many_complete_rows_the_partial_file_holds(tmp_path: Path) -> None:
    """Ctrl-C during a long ``--out`` run exited 130 and kept the complete rows, saying nothing: the
    partial file could be taken for a whole one."""
    folder = tmp_path / "calls"
    folder.mkdir()
    for i in range(3000):
        (folder / f"call-{i:04}.json").write_text(json.dumps([f"My parcel number {i} is late again.", "Sorry!"]))
    results = tmp_path / "results.csv"
    run = subprocess.Popen([sys.executable, "-m", "affect_server.cli", "analyze", str(folder), "--out", str(results)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           # a suite started in the background (nohup, &) ignores SIGINT, and its children would
                           # too: Python turns it into KeyboardInterrupt only where it is not ignored at start
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 240
    while not (results.exists() and results.stat().st_size > 0) and time.monotonic() < deadline:
        time.sleep(0.02)  # the file is opened once the model is loaded; rows then come in batches, 8 KB at a time
    run.send_signal(signal.SIGINT)  # at once: the folder's 6,000 rows can be written within a second or two
    _, err = run.communicate(timeout=60)
    rows = list(csv.DictReader(results.open()))
    assert run.returncode == 130, err.decode()
    assert len(rows) < 6000 and all(row["p_anger"] for row in rows)  # complete rows (maybe none yet), not the folder's
    assert _lines(err)[-1] == f"affect: interrupted; {len(rows):,} complete rows written to {results} (partial)", err


def test_python_m_affect_runs_the_command_line(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "affect", "models", "--json"], capture_output=True, timeout=120,
                         env={**os.environ})
    assert out.returncode == 0 and json.loads(out.stdout), out.stderr.decode()
    usage = subprocess.run([sys.executable, "-m", "affect", "--help"], capture_output=True, timeout=60)
    assert usage.stdout.decode().startswith("usage: python -m affect "), usage.stdout.decode()


@pytest.mark.parametrize("piped, code", [("x" * 10_000 + "\n", 0), ("x" * 10_000 + "\r\n", 0), ("x" * 10_001 + "\n", 2)])
def test_text_piped_in_is_not_counted_with_the_newline_the_shell_adds(piped: str, code: int) -> None:
    """``echo "$text" | affect analyze --text -`` counted echo's newline: 10,000 characters were refused."""
    out = affect("analyze", "--text", "-", "--json", "-q", stdin=piped.encode())
    assert out.returncode == code, out.stderr.decode()
    if code == 2:
        assert "10,001 characters" in out.stderr.decode(), out.stderr.decode()


def test_analyze_chooses_a_model_by_the_name_affect_models_prints_and_as_affect_serve_names_the_flag() -> None:
    """``affect models`` prints "the name to choose one by" and ``affect serve`` takes ``--text-model``,
    but ``affect analyze --text-model`` was "unrecognized arguments". Names and ids are checked by
    one rule (``affect.registry.model_choice``) when the command line is read."""
    from affect.registry import ENCODER_FAMILIES
    from affect.text.weights import TextWeights

    chosen = TextWeights.MINILM_MELD_V1
    assert chosen is not TextWeights.DEFAULT and set(ENCODER_FAMILIES) == {"text", "speech", "face"}
    for name in (chosen.name, chosen.value.id):
        out = affect("analyze", "--text", "You lied to me again!", "--text-model", name, "--json", "-q")
        assert out.returncode == 0, out.stderr.decode()
        (result,) = json.loads(out.stdout)
        assert result["modalities"]["text"]["model"] == chosen.value.id, result["modalities"]
    default = json.loads(affect("analyze", "--text", "You lied to me again!", "--text-model", "default", "--json",
                                "-q").stdout)
    assert default[0]["modalities"]["text"]["model"] == TextWeights.DEFAULT.value.id
    wrong = affect("analyze", "--text", "hi", "--text-model", "bogus")
    err = wrong.stderr.decode()
    assert wrong.returncode == 2 and "argument --text-model: unknown TextWeights 'bogus'; known (name / id): " in err
    unread = affect("analyze", "--text", "hi", "--face-model", "default")
    assert unread.returncode == 2 and "--face-model cannot be given without images in the input" in unread.stderr.decode()


def test_export_takes_the_model_flags_by_serves_names_and_its_old_names_still() -> None:
    helped = " ".join(affect("export", "--help").stdout.decode().split())
    assert "--face-model NAME" in helped and "--face-weights" not in helped, helped
    for flag in ("--face-model", "--face-weights"):
        out = affect("export", "--format", "onnx", "/nonexistent-dir", flag, "bogus")
        err = out.stderr.decode()
        assert out.returncode == 2 and f"argument {flag}: unknown FaceWeights 'bogus'" in err, err
    out = affect("export", "--format", "onnx", "/nonexistent-dir", "--text-model", "none")
    assert out.returncode == 2 and "none: leave text out of --encoders instead" in out.stderr.decode()


def test_a_bad_audio_file_is_named_by_the_argument_the_user_wrote_in_the_library_and_in_a_folders_rows(
        tmp_path: Path) -> None:
    """``analyze(audio="calls/x.wav")`` was refused with ``field=audio_file``, a name no public API
    has, and that name reached the folder run's error line and CSV ``error`` column; the client
    names it ``audio``, as the argument is."""
    from affect import Analyzer, InvalidInputError

    folder = tmp_path / "calls"
    folder.mkdir()
    broken = folder / "broken.wav"
    broken.write_bytes(b"RIFF not really a wave file" * 10)
    (folder / "call.json").write_text(json.dumps(["We won the cup!"]))
    with pytest.raises(InvalidInputError) as refused:
        Analyzer(face=False, text=False, forecast=False).conversation().analyze(audio=str(broken))
    assert refused.value.field == "audio" and str(refused.value).startswith("audio: broken.wav is not a readable")
    results = tmp_path / "results.csv"
    out = affect("analyze", str(folder), "--out", str(results), "-q")
    assert out.returncode == 4, out.stderr.decode()
    assert f"affect: {broken}: {refused.value}" in _lines(out.stderr)
    errors = [row["error"] for row in csv.DictReader(results.open()) if row["error"]]
    assert errors == [str(refused.value)]


def test_a_json_file_of_folder_results_kept_by_json_is_skipped_as_results(tmp_path: Path) -> None:
    """``affect analyze calls/ --json > calls/results.json`` keeps JSON Lines under a .json name: the
    next run read it as a conversation (only a .json starting with ``[`` was known as results)."""
    folder = tmp_path / "calls"
    folder.mkdir()
    (folder / "call.json").write_text(json.dumps(["We won the cup!", "Seriously? That's brilliant!"]))
    kept = affect("analyze", str(folder), "--json", "-q")
    assert kept.returncode == 0 and kept.stdout.decode().startswith("{"), kept.stderr
    (folder / "results.json").write_bytes(kept.stdout)
    rerun = affect("analyze", str(folder), "--json", "-q")
    assert rerun.returncode == 0, rerun.stderr.decode()
    assert _lines(rerun.stderr) == [f"affect: 1 file skipped as results that affect wrote ({folder / 'results.json'}), "
                                    "not input"]


@pytest.mark.parametrize(("given", "said"), [
    (("--text", "hi", "--text-model", "none"), "--text-model none leaves nothing to read: the input carries only text"),
    (("--video", "call.mp4", "--face-model", "none"), "--face-model none leaves nothing to read: the input carries only images"),
])
def test_leaving_out_every_modality_the_input_carries_is_a_usage_error(given: tuple[str, ...], said: str) -> None:
    """``--video x.mp4 --face-model none`` ended in an AssertionError traceback (an analyzer with no
    encoder), and ``--text hi --text-model none`` only after torch had loaded: refused by the flag."""
    out = affect("analyze", *given, "-q")
    assert out.returncode == 2 and _lines(out.stderr) == [f"affect: error: {said}"], out.stderr.decode()

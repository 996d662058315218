"""The ``affect`` command as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def affect(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "affect.cli", *args], input=stdin, capture_output=True, timeout=300)


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
        (["analyze"], None, "give --text, --audio, --image, --video or --conversation"),
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


def test_models_lists_the_shipped_text_model():
    out = affect("models", "--json")
    assert out.returncode == 0
    rows = json.loads(out.stdout)
    assert any(r["modality"] == "text" and r["default"] for r in rows)


def test_analyze_audio_and_image_files(tmp_path: Path, data_root: Path):
    from tests.conftest import framed_face_png

    clip = sorted((data_root / "speech" / "ravdess-test-slice" / "Actor_24").glob("*.flac"))[30]
    image = tmp_path / "frame.png"
    image.write_bytes(framed_face_png(data_root, "surprise"))
    out = affect("analyze", "--audio", str(clip), "--image", str(image), "--json")
    assert out.returncode == 0, out.stderr.decode()
    (result,) = json.loads(out.stdout)
    assert result["present"] == ["face", "speech"] and len(result["faces"]) == 1


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

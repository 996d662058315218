"""ONNX export and the ONNX Runtime runtimes: real models on real test data, against PyTorch."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="the ONNX runtime is an extra: pip install '.[onnx]'")

from affect.labels import EMOTION_NAMES  # noqa: E402
from affect.onnx import check_parity, runtime_for, use_runtime  # noqa: E402

from affect.text.weights import TextWeights

TEXT_MODEL_ID = TextWeights.DEFAULT.value.id  # the shipped default text model

# Float32 graphs compute the same sums in another order: answers agree to rounding.
FLOAT_TOLERANCE = 1e-4


@pytest.fixture(scope="module", autouse=True)
def graph_cache(tmp_path_factory):
    """Graphs built by these tests go to a folder of their own, not the user's cache."""
    before = os.environ.get("AFFECT_CACHE_DIR")
    os.environ["AFFECT_CACHE_DIR"] = str(tmp_path_factory.mktemp("affect-cache"))
    yield
    if before is None:
        os.environ.pop("AFFECT_CACHE_DIR", None)
    else:
        os.environ["AFFECT_CACHE_DIR"] = before


@pytest.fixture(scope="module")
def meld_dialogue(data_root):
    from affect.datasets import read_meld

    return [(t.text, t.speaker) for t in read_meld("test", data_root)[0]][:6]


def _conversation(encoder, turns):
    context = encoder.new_context()
    return np.array([encoder.analyze(text, speaker=speaker, context=context).emotion_vector() for text, speaker in turns])


def test_text_onnx_gives_the_torch_answers_turn_by_turn_with_context(meld_dialogue):
    from affect import TextEncoder

    encoder = TextEncoder()
    reference = _conversation(encoder, meld_dialogue)
    use_runtime(encoder, "onnx")
    assert encoder.runtime == "onnx" and type(encoder.net).__name__ == "OnnxTextNet"
    answers = _conversation(encoder, meld_dialogue)
    assert np.abs(answers - reference).max() < FLOAT_TOLERANCE
    assert (answers.argmax(1) == reference.argmax(1)).all()
    use_runtime(encoder, "torch")  # back to the PyTorch network
    assert np.abs(_conversation(encoder, meld_dialogue) - reference).max() == 0


def test_int8_text_parity_is_reported_not_assumed(data_root):
    """int8 moves the probabilities (so its parity is measured and reported); on MELD test
    turns it must keep the top label of almost every turn."""
    from affect import TextEncoder

    parity = check_parity(TextEncoder(), "onnx-int8", data_root, limit=120)
    assert parity.items >= 120 and parity.runtime == "onnx-int8"
    assert 0 < parity.max_abs_diff < 0.5
    assert parity.top_label_agreement >= 0.85
    assert abs(parity.accuracy_drop_points) < 10


def test_face_and_speech_parity_on_the_test_slices(data_root):
    from affect.face import FaceEncoder
    from affect.speech import SpeechEncoder

    for encoder, limit in ((FaceEncoder(), 140), (SpeechEncoder(), 24)):
        parity = check_parity(encoder, "onnx", data_root, limit=limit)
        assert parity.items >= min(limit, 20)
        assert parity.max_abs_diff < FLOAT_TOLERANCE, parity
        assert parity.top_label_agreement == 1.0
        assert parity.accuracy_runtime == parity.accuracy_torch


def test_a_face_parity_check_names_a_file_that_is_not_an_image(tmp_path):
    """An unreadable file among the test faces is named (it was 'all input arrays must have the
    same shape', from stacking OpenCV's None beside the faces)."""
    from affect.onnx._parity import _face_probe

    folder = tmp_path / "face" / "fer2013-test-slice" / "angry"
    folder.mkdir(parents=True)
    cv2.imwrite(str(folder / "a.jpg"), np.zeros((48, 48), np.uint8))
    (folder / "b.jpg").write_bytes(b"not a picture")
    with pytest.raises(ValueError, match="b.jpg is not a readable image"):
        _face_probe(None, tmp_path, None)


def test_export_writes_graphs_whose_sidecar_is_enough_to_use_them(tmp_path, data_root, capsys):
    """Run the graph with onnxruntime alone, doing only what the sidecar says, and get what the
    library gets for the same faces."""
    import onnxruntime as ort

    from affect.cli import main
    from affect.face import FaceEncoder, FaceWeights

    assert main(["export", "--format", "onnx", str(tmp_path), "--encoders", "face", "--parity-items", "70", "-q"]) == 0
    printed = capsys.readouterr().out
    model_id = FaceWeights.DEFAULT.value.id
    assert f"| face | {model_id} | onnx | 70 (FER-2013 test slice) |" in printed
    sidecar = json.loads((tmp_path / f"{model_id.replace('@', '-')}.json").read_text())
    assert sidecar["labels"]["emotion"] == list(EMOTION_NAMES)
    parity = json.loads((tmp_path / "parity.json").read_text())
    assert parity[0]["max_abs_diff"] < FLOAT_TOLERANCE and parity[0]["top_label_agreement"] == 1.0
    assert "## Parity with PyTorch" in (tmp_path / "README.md").read_text()

    paths = sorted((data_root / "face" / "fer2013-test-slice").glob("*/*.jpg"))[::30]
    gray = np.stack([cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in paths])
    session = ort.InferenceSession(str(tmp_path / sidecar["files"]["network"]), providers=["CPUExecutionProvider"])
    probs = session.run(None, {"faces": (gray.astype(np.float32) / 255)[:, None]})[0]
    probs = probs ** (1 / sidecar["postprocessing"]["temperature"])
    probs /= probs.sum(1, keepdims=True)
    library = FaceEncoder().predict_proba(gray)
    assert np.abs(probs - library).max() < FLOAT_TOLERANCE


def test_export_refuses_bad_arguments_with_one_line(tmp_path, capsys):
    from affect.cli import main

    assert main(["export", "--format", "onnx", str(tmp_path), "--encoders", "text,video"]) == 2
    assert "unknown video" in capsys.readouterr().err
    file = tmp_path / "file"
    file.write_text("x")
    assert main(["export", "--format", "onnx", str(file)]) == 2


def test_export_checks_its_arguments_and_its_data_before_writing_anything(tmp_path, capsys):
    """``--parity-items -3`` ended in an IndexError; ``--data-root /nonexistent`` wrote the ONNX
    files, then failed on the first parity check and left a partial export."""
    from affect.cli import main
    from affect.datasets import DatasetNotFoundError
    from affect.onnx import export_onnx

    out, empty = tmp_path / "out", tmp_path / "empty"
    empty.mkdir()
    for flags, message in ((["--parity-items", "-3"], "argument --parity-items: must be a whole number of items, 1 or "
                                                      "more, or all, got -3"),
                           (["--data-root", str(tmp_path / "nonexistent")], "argument --data-root: no such folder")):
        with pytest.raises(SystemExit) as exited:
            main(["export", "--format", "onnx", str(out), "--encoders", "face", *flags])
        assert exited.value.code == 2 and message in capsys.readouterr().err
    assert main(["export", "--format", "onnx", str(out), "--encoders", "face", "--data-root", str(empty), "-q"]) == 2
    assert "FER-2013 test slice (face/*.jpg) not found in" in capsys.readouterr().err
    for encoders in (["text"], ["speech"]):
        with pytest.raises(DatasetNotFoundError):
            export_onnx(out, encoders=encoders, data_root=empty)
    with pytest.raises(ValueError, match="parity_items must be a whole number"):
        export_onnx(out, encoders=["face"], parity_items=-3)
    assert not out.exists()


def test_export_without_the_research_data_checks_parity_on_built_in_inputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """A user's machine has no MELD, FER-2013 or RAVDESS: with the default data root empty (and no
    --format: onnx is its default), every graph is still checked against PyTorch, on the inputs the
    library makes itself, and the output says so."""
    from affect.cli import main

    empty = tmp_path / "no-data"
    empty.mkdir()
    monkeypatch.setenv("AFFECT_DATA_ROOT", str(empty))
    out = tmp_path / "out"
    assert main(["export", str(out), "-q"]) == 0
    printed = capsys.readouterr().out
    assert ("parity checked on text: 24 built-in sentences with past turns, face: 32 built-in synthetic faces, "
            "speech: 8 built-in synthetic speech clips") in printed
    assert "the research test data was not found" in printed
    parity = {(p["encoder"], p["runtime"]): p for p in json.loads((out / "parity.json").read_text())}
    assert set(parity) == {("face", "onnx"), ("speech", "onnx"), ("text", "onnx"), ("text", "onnx-int8")}
    for key, p in parity.items():
        assert p["test_set"].startswith("built-in") and p["accuracy_torch"] is None and p["accuracy_drop_points"] is None
        if key[1] == "onnx":  # float32 graphs: the PyTorch answers to rounding
            assert p["max_abs_diff"] < FLOAT_TOLERANCE and p["top_label_agreement"] == 1.0, p
    assert 0 < parity["text", "onnx-int8"]["max_abs_diff"] < 0.5
    assert "24 (built-in sentences with past turns)" in (out / "README.md").read_text()


def test_the_built_in_parity_inputs_are_the_same_on_every_machine() -> None:
    from affect.onnx._builtin_inputs import SAMPLE_RATE, dialogues, synthetic_faces, synthetic_speech

    faces = synthetic_faces()
    assert faces.shape == (32, 48, 48) and faces.dtype == np.uint8 and faces.std() > 20
    assert np.array_equal(faces, synthetic_faces()) and not np.array_equal(faces, synthetic_faces(seed=1))
    clips = synthetic_speech()
    assert len(clips) == 8 and all(1.5 * SAMPLE_RATE <= len(c) <= 3 * SAMPLE_RATE for c in clips)
    assert all(np.array_equal(a, b) for a, b in zip(clips, synthetic_speech()))
    assert sum(len(d) for d in dialogues()) == 24 and any(speaker is None for d in dialogues() for _, speaker in d)


def test_export_parity_can_be_skipped_by_name_and_never_by_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--parity-items 0`` once meant the whole test set; now it is refused, ``all`` says that,
    and ``--no-parity`` skips the check with a warning in the output and in the export's README."""
    from affect.cli import build_parser, main

    out = tmp_path / "out"
    for flags, message in ((["--parity-items", "0"], "argument --parity-items: must be a whole number of items, 1 or more, "
                                                     "or all, got 0 (to skip the check: --no-parity)"),
                           (["--parity-items", "5", "--no-parity"], "argument --no-parity: not allowed with argument "
                                                                    "--parity-items")):
        with pytest.raises(SystemExit) as exited:
            main(["export", str(out), "--encoders", "face", *flags])
        assert exited.value.code == 2 and message in capsys.readouterr().err
    assert build_parser().parse_args(["export", str(out), "--parity-items", "all"]).parity_items is None
    assert main(["export", str(out), "--encoders", "face", "--no-parity", "--data-root", str(tmp_path)]) == 2
    assert "--data-root cannot be given with --no-parity" in capsys.readouterr().err
    assert not out.exists()
    assert main(["export", "--format", "onnx", str(out), "--encoders", "face", "--no-parity", "-q"]) == 0
    printed = capsys.readouterr().out
    assert "warning: parity not checked (--no-parity): the graphs were not compared with PyTorch" in printed
    assert json.loads((out / "parity.json").read_text()) == []
    assert "warning: parity not checked" in (out / "README.md").read_text()
    assert any(out.glob("face-*.onnx"))


def test_the_text_parity_data_is_looked_for_not_read_before_an_export(tmp_path: Path) -> None:
    """Whether MELD test is there is all an export asks before it writes: the file is read once,
    when the parity check runs (a file that is no MELD table is not opened yet)."""
    from affect.datasets import DatasetNotFoundError
    from affect.onnx._parity import check_parity_data

    with pytest.raises(DatasetNotFoundError, match=f"MELD test not found at {tmp_path / 'text' / 'meld'}"):
        check_parity_data("text", tmp_path)
    meld = tmp_path / "text" / "meld" / "test_sent_emo.csv"
    meld.parent.mkdir(parents=True)
    meld.write_bytes(b"\xff not a MELD table")
    check_parity_data("text", tmp_path)  # there; reading it would fail


def test_export_looks_its_weights_up_before_writing_anything(tmp_path, capsys):
    """An unknown name made the output folder, then failed loading, listing the members' names
    alone (the model ids it takes too were left out)."""
    from affect import UnknownModelError
    from affect.cli import main
    from affect.onnx import export_onnx

    out = tmp_path / "out"
    for flag in ("--text-model", "--text-weights"):  # the name affect serve uses, and the one before it
        with pytest.raises(SystemExit) as refused:  # refused as the command line is read: argparse's exit 2
            main(["export", "--format", "onnx", str(out), "--encoders", "text", flag, "bogus", "-q"])
        assert refused.value.code == 2
        assert f"argument {flag}: unknown TextWeights 'bogus'; known (name / id): " in capsys.readouterr().err
    with pytest.raises(UnknownModelError, match="text-minilm-multicorpus@"):
        export_onnx(out, encoders=["text"], text="bogus")
    assert not out.exists()


def test_runtime_choices_are_checked():
    from affect import Analyzer

    assert runtime_for({"text": "onnx-int8"}, "text") == "onnx-int8"
    assert runtime_for({"text": "onnx-int8"}, "face") == "torch"
    with pytest.raises(ValueError, match="unknown runtime"):
        runtime_for("tensorrt", "text")
    with pytest.raises(ValueError, match="unknown modalities"):
        runtime_for({"video": "onnx"}, "text")
    with pytest.raises(ValueError, match="unknown runtime"):
        Analyzer(text=None, speech=None, face=None, runtime="tensorrt")


def test_serve_refuses_an_unknown_runtime_before_loading():
    from affect_server.config import ServerConfig

    with pytest.raises(SystemExit, match="^affect serve: runtime: must be one of torch, onnx, onnx-int8, auto, got 'tensorrt'$"):
        ServerConfig(runtime="tensorrt").check()


@pytest.mark.slow
def test_server_on_onnx_answers_as_the_library_on_torch(text_encoder, meld_dialogue):
    """``affect serve --runtime onnx`` (a real server process on loopback) against the
    library on PyTorch, turn by turn in one conversation."""
    from affect_client import AffectClient

    from tests._serving import ServerProcess

    reference = _conversation(text_encoder, meld_dialogue)
    server = ServerProcess("--runtime", "onnx", "--speech-model", "none", "--face-model", "none", "--log-level", "warning")
    try:
        with AffectClient(server.target) as client, client.conversation() as conversation:
            results = [conversation.send(text, speaker=speaker).modalities["text"] for text, speaker in meld_dialogue]
    finally:
        server.stop()
    answers = np.array([[r.emotions[name] for name in EMOTION_NAMES] for r in results])
    assert {r.model for r in results} == {TEXT_MODEL_ID}
    assert np.abs(answers - reference).max() < FLOAT_TOLERANCE


def test_exported_speech_encoder_and_head_give_the_librarys_answer(tmp_path, data_root):
    """The default speech weights' every-layer Whisper encoder is exported beside its head; chained
    by hand with onnxruntime, as the sidecar describes, they give the library's probabilities for a
    clip, and for the same clip as a phone call once its frames take the sidecar's channel step."""
    import onnxruntime as ort
    import torch

    from affect.cli import main
    from affect.speech import SpeechEncoder, SpeechWeights
    from affect.speech._backbone import valid_outputs
    from affect.speech._network import pad_frames
    from affect.speech.augment import telephone_band

    assert main(["export", "--format", "onnx", str(tmp_path), "--encoders", "speech", "--parity-items", "8", "-q"]) == 0
    model_id = SpeechWeights.DEFAULT.value.id
    sidecar = json.loads((tmp_path / f"{model_id.replace('@', '-')}.json").read_text())
    assert "encoder" in sidecar["files"] and "layer_states" in sidecar["backbone"]
    encoder = SpeechEncoder()
    clip = encoder.find_speech([encoder.prepare(sorted((data_root / "speech" / "ravdess-test-slice").glob("*/*.flac"))[5])])[0]
    assert len(clip.spans) == 1
    start, end = clip.spans[0]
    segment = clip.audio.samples[start:end]

    def run(graph: str, feeds: dict) -> np.ndarray:
        session = ort.InferenceSession(str(tmp_path / sidecar["files"][graph]), providers=["CPUExecutionProvider"])
        return session.run(None, feeds)[0]

    def by_hand(segment: np.ndarray, narrowband: bool) -> np.ndarray:
        states = run("encoder", {"log_mel": encoder.backbone.features(segment)[None]})[0]  # [layers, frames, width]
        frames = states.transpose(1, 0, 2).reshape(states.shape[1], -1)[: valid_outputs(len(segment))]
        if narrowband:  # the sidecar's channel step: moved from the narrowband statistics onto the head's
            head = encoder.head.standardise
            m_n = np.array(sidecar["channel_statistics"]["narrowband_mean"], dtype=np.float32)
            s_n = np.array(sidecar["channel_statistics"]["narrowband_std"], dtype=np.float32)
            m_h, s_h = head.mean.numpy(), head.std.numpy()
            frames = frames * (s_h / s_n) + (m_h - m_n * s_h / s_n)
        batch, mask = pad_frames([torch.from_numpy(np.ascontiguousarray(frames, dtype=np.float32))])
        logits = run("head", {"frames": batch.numpy(), "mask": mask.numpy()})[0]
        probs = np.exp(logits / sidecar["postprocessing"]["temperature"])
        return probs / probs.sum()

    expected = encoder.analyze_prepared([clip])[0].result.emotion_vector()
    np.testing.assert_allclose(by_hand(segment, narrowband=False), expected, atol=2e-3)
    # The same clip as a phone call delivers it (8 kHz): read against the narrowband statistics.
    phone = encoder.find_speech([encoder.prepare(telephone_band(segment, back_to_rate=False), 8_000)])[0]
    assert "channel_statistics" in sidecar and len(phone.spans) == 1
    start, end = phone.spans[0]
    expected_phone = encoder.analyze_prepared([phone])[0].result.emotion_vector()
    np.testing.assert_allclose(by_hand(phone.audio.samples[start:end], narrowband=True), expected_phone, atol=2e-3)
    assert np.abs(by_hand(phone.audio.samples[start:end], narrowband=False) - expected_phone).max() > 2e-3


def test_the_text_sidecar_is_enough_to_read_a_conversation(tmp_path, capsys):
    """Embed each turn, run classify with the past turns and without, calibrate, shift by the
    prior and mix by the context weight, all as the sidecar says: the library's answers, turn by turn."""
    import onnxruntime as ort
    from transformers import AutoTokenizer

    from affect.cli import main
    from affect.text import TextEncoder

    assert main(["export", "--format", "onnx", str(tmp_path), "--encoders", "text", "--parity-items", "20", "-q"]) == 0
    capsys.readouterr()
    encoder = TextEncoder()
    sidecar = json.loads((tmp_path / f"{encoder.model_id.replace('@', '-')}.json").read_text())
    post = sidecar["postprocessing"]
    assert post["context_weight"] == encoder.context_weight
    tokenizer = AutoTokenizer.from_pretrained(str(tmp_path / "text-tokenizer"))
    embed = ort.InferenceSession(str(tmp_path / sidecar["files"]["embed"]), providers=["CPUExecutionProvider"])
    classify = ort.InferenceSession(str(tmp_path / sidecar["files"]["classify"]), providers=["CPUExecutionProvider"])
    turns = [("My parcel never arrived and nobody answers the phone.", "caller"),
             ("I'm sorry to hear that, let me check.", "agent"),
             ("Thanks. Honestly I'm fed up with this.", "caller")]
    window = encoder.window
    dim = encoder.net.emotion_head.in_features
    past: list[tuple[np.ndarray, str]] = []
    library = encoder.analyze_conversation(turns)

    def softmax(z: np.ndarray) -> np.ndarray:
        e = np.exp(z - z.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    for (text, speaker), expected in zip(turns, library):
        tokens = tokenizer([text], truncation=True, max_length=encoder.max_tokens, return_tensors="np")
        (current,) = embed.run(None, {"input_ids": tokens["input_ids"].astype(np.int64),
                                      "attention_mask": tokens["attention_mask"].astype(np.int64)})
        context = np.zeros((1, window, dim), np.float32)
        mask = np.zeros((1, window), bool)
        relation = np.full((1, window), 2, np.int64)
        for k, (vector, who) in enumerate(reversed(past)):
            context[0, k], mask[0, k], relation[0, k] = vector, True, int(who == speaker)
        readings = []
        for m in (mask, np.zeros_like(mask)):
            emo, sent = classify.run(None, {"current": current, "context": context, "context_mask": m, "relation": relation})
            readings.append((softmax((emo + np.array(post["emotion_bias"])) / post["emotion_temperature"] + np.array(post["prior_shift"])),
                             softmax(sent / post["sentiment_temperature"])))
        w = post["context_weight"] if past else 1.0
        emotions = w * readings[0][0] + (1 - w) * readings[1][0]
        sentiments = w * readings[0][1] + (1 - w) * readings[1][1]
        assert np.abs(emotions[0] - expected.emotion_vector()).max() < 1e-4
        assert np.abs(sentiments[0] - np.array(list(expected.sentiments.values()))).max() < 1e-4
        past.append((current[0], speaker))

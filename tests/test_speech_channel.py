"""Channels: telling a telephone line from a microphone, and reading each against its own statistics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from affect.datasets.ravdess import read_test_slice
from affect.speech._audio import MODEL_RATE, resample
from affect.speech._channel import detect_channel, upper_band_share
from affect.speech._network import SpeechEmotionHead, pad_frames
from affect.speech._weights_io import load_speech_head, save_speech_weights
from affect.speech.adaptation import ChannelReader
from affect.speech.augment import add_noise, telephone_band


@pytest.fixture(scope="module")
def voices(data_root: Path) -> list[np.ndarray]:
    """The first 24 clips of the RAVDESS test slice at 16 kHz."""
    out = []
    for clip in read_test_slice(data_root)[:24]:
        samples, rate = sf.read(clip.path, dtype="float32")
        out.append(resample(samples if samples.ndim == 1 else samples.mean(1), rate))
    return out


def test_a_telephone_line_is_told_from_a_microphone(voices: list[np.ndarray]) -> None:
    """Studio clips are wideband; the same clips through a phone line are narrowband, also when the
    call is stored at 16 kHz and noise was added on the caller's side before the line; a source
    of 8 kHz is narrowband whatever it holds."""
    rng = np.random.default_rng(0)
    for voice in voices:
        assert detect_channel(voice, source_rate=48_000) == "wideband"
        assert detect_channel(telephone_band(voice), source_rate=MODEL_RATE) == "narrowband"
        noisy_call = telephone_band(add_noise(voice, 10.0, rng, colour="pink"))
        assert detect_channel(noisy_call, source_rate=MODEL_RATE) == "narrowband"
        assert detect_channel(voice, source_rate=8_000) == "narrowband"
    assert upper_band_share(np.zeros(16_000, dtype=np.float32)) == 0.0
    assert upper_band_share(np.zeros(10, dtype=np.float32)) == 0.0


def _channel_head() -> SpeechEmotionHead:
    torch.manual_seed(4)
    net = SpeechEmotionHead(in_dim=24, hidden=16, standardise=True, channel_statistics=True).eval()
    net.standardise.mean.copy_(torch.randn(24))
    net.standardise.std.copy_(torch.rand(24) + 0.5)
    net.standardise.narrowband_mean.copy_(torch.randn(24) + 1.0)
    net.standardise.narrowband_std.copy_(torch.rand(24) + 0.2)
    return net


def test_a_narrowband_clip_is_read_against_the_narrowband_statistics(tmp_path: Path) -> None:
    """Through the reader, the head standardises a narrowband clip by the narrowband statistics and a
    wideband clip by the wideband ones; the statistics survive the weights file."""
    net = _channel_head()
    frames = [torch.randn(20, 24) * 2 + 1, torch.randn(20, 24)]
    mapped = ChannelReader(net.standardise).map(frames, ["narrowband", "wideband"])
    std = net.standardise
    torch.testing.assert_close(std(mapped[0]), (frames[0] - std.narrowband_mean) / std.narrowband_std)
    torch.testing.assert_close(std(mapped[1]), (frames[1] - std.mean) / std.std)
    save_speech_weights(net, tmp_path / "head.safetensors", {})
    loaded, _ = load_speech_head(tmp_path / "head.safetensors")
    assert loaded.standardise.channels
    torch.testing.assert_close(loaded.standardise.narrowband_std, std.narrowband_std)
    batch, mask = pad_frames(mapped)
    with torch.no_grad():
        torch.testing.assert_close(loaded(batch, mask), net(batch, mask))
    with pytest.raises(ValueError):
        ChannelReader(net.standardise).map(frames, ["wideband"])
    with pytest.raises(ValueError):
        SpeechEmotionHead(in_dim=24, hidden=16, channel_statistics=True)


def test_adapting_keeps_one_estimate_per_channel() -> None:
    """A deployment's phone calls move only the narrowband estimate; a head without channel
    statistics keeps one estimate over all its traffic (speech@4's behaviour)."""
    net = _channel_head()
    reader = ChannelReader(net.standardise, adapt=True)
    reader.map([torch.randn(300, 24)], ["narrowband"])
    assert reader.adaptation["narrowband"].frames_heard == 300
    assert reader.adaptation["wideband"].frames_heard == 0
    assert reader.frames_heard == 300
    plain = SpeechEmotionHead(in_dim=24, hidden=16, standardise=True).eval()
    shared = ChannelReader(plain.standardise, adapt=True)
    shared.map([torch.randn(300, 24), torch.randn(100, 24)], ["narrowband", "wideband"])
    assert shared.adaptation["narrowband"] is shared.adaptation["wideband"]
    assert shared.frames_heard == 400
    frames = [torch.randn(10, 24)]  # without channel statistics and not adapting, frames pass unchanged
    torch.testing.assert_close(ChannelReader(plain.standardise).map(frames, ["narrowband"])[0], frames[0])

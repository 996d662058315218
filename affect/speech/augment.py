"""Audio degradations for training and for testing what callers really send.

``telephone_band`` imitates a narrow-band phone call: 8 kHz, 300-3400 Hz, 8-bit mu-law. The
others are the recipe's training augmentations. All take and return mono float32 samples.
"""

from __future__ import annotations

import numpy as np
import torch
import torchaudio.functional as AF

from affect.speech._audio import MODEL_RATE

PHONE_RATE = 8_000
PHONE_LOW_HZ, PHONE_HIGH_HZ = 300.0, 3400.0


def telephone_band(samples: np.ndarray, rate: int = MODEL_RATE, *, back_to_rate: bool = True) -> np.ndarray:
    """Down to 8 kHz, band-pass 300-3400 Hz, mu-law encode and decode, and (by default) back up."""
    x = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))
    x = AF.resample(x, rate, PHONE_RATE)
    for _ in range(2):  # two biquads each side: a steeper band edge
        x = AF.highpass_biquad(x, PHONE_RATE, PHONE_LOW_HZ)
        x = AF.lowpass_biquad(x, PHONE_RATE, PHONE_HIGH_HZ)
    x = x.clamp(-1.0, 1.0)
    x = AF.mu_law_decoding(AF.mu_law_encoding(x, 256), 256)
    if back_to_rate:
        x = AF.resample(x, PHONE_RATE, rate)
    return x.numpy().astype(np.float32)


def level_dbfs(samples: np.ndarray) -> float:
    """The signal's RMS level in dB below full scale (1.0)."""
    return float(10.0 * np.log10(np.mean(np.asarray(samples, dtype=np.float64) ** 2) + 1e-20))


def change_gain(samples: np.ndarray, db: float) -> np.ndarray:
    return np.clip(samples * (10.0 ** (db / 20.0)), -1.0, 1.0).astype(np.float32)


def add_noise(samples: np.ndarray, snr_db: float, rng: np.random.Generator, *, colour: str = "white") -> np.ndarray:
    """Noise at ``snr_db`` below the signal's power; ``colour`` white or pink (1/f)."""
    noise = rng.standard_normal(len(samples)).astype(np.float32)
    if colour == "pink":
        spectrum = np.fft.rfft(noise)
        spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1.0))
        noise = np.fft.irfft(spectrum, n=len(samples)).astype(np.float32)
    signal_power = float(np.mean(samples**2)) + 1e-10
    noise *= np.sqrt(signal_power / (10.0 ** (snr_db / 10.0)) / (float(np.mean(noise**2)) + 1e-10))
    return np.clip(samples + noise, -1.0, 1.0).astype(np.float32)


def change_speed(samples: np.ndarray, factor: float, rate: int = MODEL_RATE) -> np.ndarray:
    """Speed and pitch together by ``factor`` (1.1 = 10% faster and higher), by resampling."""
    target = int(round(rate / factor / 100.0)) * 100
    if target == rate:
        return samples
    out = AF.resample(torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32)), rate, target)
    return out.numpy().astype(np.float32)


TEMPO_FFT, TEMPO_HOP = 512, 128  # 32 ms windows, 8 ms hops at 16 kHz


def change_tempo(samples: np.ndarray, factor: float) -> np.ndarray:
    """Delivery ``factor`` times faster (0.8 = slower) with the pitch kept: a phase-vocoder time
    stretch. Unlike ``change_speed`` it leaves the voice's pitch and timbre where they were, so a
    head trained with it cannot read a slow, deliberate delivery as an emotion by itself."""
    if factor == 1.0 or len(samples) < TEMPO_FFT:
        return samples
    window = torch.hann_window(TEMPO_FFT)
    x = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))
    spec = torch.stft(x, TEMPO_FFT, TEMPO_HOP, window=window, return_complex=True)
    advance = torch.linspace(0, np.pi * TEMPO_HOP, spec.shape[0])[..., None]  # each bin's phase per hop
    stretched = AF.phase_vocoder(spec, factor, advance)
    out = torch.istft(stretched, TEMPO_FFT, TEMPO_HOP, window=window, length=int(round(len(samples) / factor)))
    # the vocoder loses about 4 dB when it slows down (not when it speeds up): the level is put
    # back, or "slow" would also mean "quiet" to a head trained on it
    out = out * (x.square().mean().sqrt() / out.square().mean().sqrt().clamp(min=1e-8))
    return out.clamp(-1.0, 1.0).numpy().astype(np.float32)


def add_reverb(samples: np.ndarray, rt60: float, rng: np.random.Generator, rate: int = MODEL_RATE,
               wet: float = 0.5) -> np.ndarray:
    """A room: the dry signal plus a synthetic late reverberation with decay time ``rt60`` seconds.

    The impulse response is Gaussian noise under an exponential envelope that falls 60 dB in
    ``rt60`` (the statistical model of a diffuse late field); ``wet`` sets its energy against the
    dry path. Cheaper than measured room responses and enough to teach the head that a room's
    tail is not an emotion.
    """
    length = max(1, int(rt60 * rate))
    t = np.arange(length, dtype=np.float32) / rate
    tail = rng.standard_normal(length).astype(np.float32) * np.exp(-6.9078 * t / rt60).astype(np.float32)
    tail *= np.sqrt(wet / (float(np.sum(tail**2)) + 1e-10))
    n = len(samples) + length - 1
    size = 1 << (n - 1).bit_length()
    wet_signal = np.fft.irfft(np.fft.rfft(samples, size) * np.fft.rfft(tail, size), size)[: len(samples)]
    out = samples + wet_signal.astype(np.float32)
    peak = float(np.max(np.abs(out))) or 1.0
    return (out / max(1.0, peak)).astype(np.float32)


def low_bitrate(samples: np.ndarray, bits: int) -> np.ndarray:
    """Uniform requantisation to ``bits`` bits: the hiss of cheap codecs and converters."""
    levels = float(2 ** (bits - 1))
    return (np.round(np.clip(samples, -1.0, 1.0) * levels) / levels).astype(np.float32)

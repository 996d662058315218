"""Checking and normalising audio before it reaches the models: mono float32 at 16 kHz.

Arrays (16-bit PCM or float samples, mono or multi-channel) come with their sample rate;
files (WAV, FLAC, OGG, given as a path or as the file's bytes) are read with ``soundfile``.
Anything that cannot be analysed honestly is refused with an ``InvalidInputError`` that names
the offending field, rather than guessed at.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np
import torch
import torchaudio.functional as AF

from affect._errors import InputTooLargeError, InvalidInputError

MODEL_RATE = 16_000
MIN_RATE, MAX_RATE = 8_000, 192_000
DEFAULT_MAX_SECONDS = 600.0
MAX_CHANNELS = 8
MAX_FILE_BYTES = 512 * 2**20
# Float samples live in [-1, 1]; a little overshoot happens after filtering, much more means
# integer PCM was passed as floats, which would be read as extreme clipping.
FLOAT_SLACK = 4.0

AudioSource = Union[str, Path, bytes, bytearray, memoryview]
_WAV_HEAD_BYTES = 1 << 20


@dataclass(frozen=True)
class Audio:
    """Mono float32 samples at ``MODEL_RATE`` with the rate and duration they arrived with."""

    samples: np.ndarray
    source_rate: int

    @property
    def duration(self) -> float:
        return len(self.samples) / MODEL_RATE


def check_rate(sample_rate: object, field: str = "sample_rate") -> int:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer, float, np.floating)):
        raise InvalidInputError(f"{field} must be a number of samples per second, got {type(sample_rate).__name__}", field=field)
    if not np.isfinite(sample_rate) or float(sample_rate) != int(sample_rate):
        raise InvalidInputError(f"{field} must be a whole number of Hz, got {sample_rate!r}", field=field)
    rate = int(sample_rate)
    if not MIN_RATE <= rate <= MAX_RATE:
        raise InvalidInputError(f"{field} is {rate} Hz; supported rates are {MIN_RATE}-{MAX_RATE} Hz", field=field)
    return rate


def _to_mono_float(samples: np.ndarray, field: str) -> np.ndarray:
    """``[frames]``, ``[frames, channels]`` or ``[channels, frames]`` of int16/float -> mono float32."""
    if samples.dtype == np.int16:
        data = samples.astype(np.float32) / 32768.0
    elif samples.dtype in (np.float32, np.float64):
        data = samples.astype(np.float32, copy=False)
    else:
        raise InvalidInputError(
            f"{field} must hold 16-bit PCM (int16) or float samples, got dtype {samples.dtype}", field=field
        )
    if data.ndim == 2:
        rows, cols = data.shape
        if min(rows, cols) == 0:
            raise InvalidInputError(f"{field} is empty", field=field)
        if cols <= MAX_CHANNELS and cols <= rows:
            data = data.mean(axis=1)
        elif rows <= MAX_CHANNELS:
            data = data.mean(axis=0)
        else:
            raise InvalidInputError(f"{field} has shape {samples.shape}: expected [frames] or [frames, channels]", field=field)
    elif data.ndim != 1:
        raise InvalidInputError(f"{field} has {data.ndim} dimensions; expected 1 (mono) or 2 (channels)", field=field)
    if data.size == 0:
        raise InvalidInputError(f"{field} is empty", field=field)
    if not np.isfinite(data).all():
        raise InvalidInputError(f"{field} contains NaN or infinite samples", field=field)
    peak = float(np.abs(data).max())
    if peak > FLOAT_SLACK:
        raise InvalidInputError(
            f"{field} has float samples up to {peak:.3g}; float audio must be in [-1, 1] (pass int16 PCM as int16)",
            field=field,
        )
    return np.ascontiguousarray(data, dtype=np.float32)


def resample(samples: np.ndarray, from_rate: int, to_rate: int = MODEL_RATE) -> np.ndarray:
    if from_rate == to_rate:
        return samples
    out = AF.resample(torch.from_numpy(samples), from_rate, to_rate)
    return out.numpy().astype(np.float32, copy=False)


def prepare_array(
    samples: object, sample_rate: object, *, max_seconds: float = DEFAULT_MAX_SECONDS, field: str = "audio"
) -> Audio:
    """Validated mono 16 kHz audio from an array of samples and its sample rate."""
    if isinstance(samples, torch.Tensor):
        samples = samples.detach().cpu().numpy()
    if not isinstance(samples, np.ndarray):
        raise InvalidInputError(f"{field} must be a numpy array of samples, got {type(samples).__name__}", field=field)
    rate = check_rate(sample_rate)
    frames = samples.shape[0] if samples.ndim == 1 else (max(samples.shape) if samples.ndim == 2 else 0)
    if frames / rate > max_seconds:
        raise InputTooLargeError(
            f"{field} lasts {frames / rate:,.0f} s; the limit is {max_seconds:,.0f} s (split long recordings into turns)",
            field=field,
        )
    mono = _to_mono_float(samples, field)
    return Audio(samples=resample(mono, rate), source_rate=rate)


def prepare_file(source: AudioSource, *, max_seconds: float = DEFAULT_MAX_SECONDS, field: str = "audio_file") -> Audio:
    """Validated mono 16 kHz audio from a WAV/FLAC/OGG file, given as a path or as its bytes."""
    import soundfile as sf

    if isinstance(source, (bytes, bytearray, memoryview)):
        raw = bytes(source)
        if not raw:
            raise InvalidInputError(f"{field} is empty (0 bytes)", field=field)
        if len(raw) > MAX_FILE_BYTES:
            raise InputTooLargeError(f"{field} has {len(raw):,} bytes; the limit is {MAX_FILE_BYTES:,}", field=field)
        handle: object = io.BytesIO(raw)
        name, head, size = "the audio bytes", raw[:_WAV_HEAD_BYTES], len(raw)
    elif isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise InvalidInputError(f"{field}: no such file {str(path)!r}", field=field)
        if path.stat().st_size == 0:
            raise InvalidInputError(f"{field}: {path.name} is empty (0 bytes)", field=field)
        handle, name, size = str(path), path.name, path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(_WAV_HEAD_BYTES)
    else:
        raise InvalidInputError(f"{field} must be a path or the file's bytes, got {type(source).__name__}", field=field)
    missing = wav_missing_bytes(head, size)
    if missing:
        raise InvalidInputError(f"{field}: {name} is a truncated WAV file ({missing:,} bytes of audio missing)", field=field)
    try:
        with sf.SoundFile(handle) as fh:
            rate = check_rate(fh.samplerate, field=f"{field}.sample_rate")
            if fh.frames / rate > max_seconds:
                raise InputTooLargeError(
                    f"{field}: {name} lasts {fh.frames / rate:,.0f} s; the limit is {max_seconds:,.0f} s",
                    field=field,
                )
            data = fh.read(dtype="float32", always_2d=True)
            expected = fh.frames
    except InvalidInputError:
        raise
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError) as exc:
        raise InvalidInputError(f"{field}: {name} is not a readable WAV/FLAC/OGG file, or is truncated or corrupt ({exc})", field=field) from None
    if data.shape[0] == 0:
        raise InvalidInputError(f"{field}: {name} holds no samples", field=field)
    if expected > 0 and data.shape[0] < expected:
        raise InvalidInputError(
            f"{field}: {name} is truncated ({data.shape[0]:,} of {expected:,} frames readable)", field=field
        )
    mono = _to_mono_float(data, field)
    return Audio(samples=resample(mono, rate), source_rate=rate)


def wav_missing_bytes(head: bytes, size: int) -> int:
    """Bytes of audio a WAV file's header promises but the file lacks (0 if complete or not a WAV).

    libsndfile quietly reads what is there, so a cut-off upload would otherwise pass as a
    shorter turn. Streaming writers mark an unknown length with 0 or 0xFFFFFFFF: not checked.
    """
    if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
        return 0
    order = "little" if head[:4] == b"RIFF" else "big"
    pos = 12
    while pos + 8 <= len(head):
        chunk, length = head[pos : pos + 4], int.from_bytes(head[pos + 4 : pos + 8], order)
        if chunk == b"data":
            if length in (0, 0xFFFFFFFF):
                return 0
            return max(0, pos + 8 + length - size)
        pos += 8 + length + (length & 1)
    return 0

"""Checking and normalising audio before it reaches the models: mono float32 at 16 kHz.

Arrays (16-bit PCM or float samples, mono or multi-channel) come with their sample rate;
files (WAV, FLAC, OGG, given as a path or as the file's bytes) are read with ``soundfile``.
Anything that cannot be analysed honestly is refused with an ``InvalidInputError`` that names
the offending field, rather than guessed at.

Cost is bounded before any decoding: a file's header is read first (``probe_file``), so its
format, rate, channels and length are checked, and its decoded size (frames x channels) is
held to a budget, before a sample is decoded. Resampling goes through soxr, whose cost per
second of audio does not grow with the rate (torchaudio's sinc kernel grows with
rate / gcd(rate, 16000): 3.8 s declared at 48,001 Hz took 13 GB there).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import soxr
import torch

from affect._errors import InputTooLargeError, InvalidInputError
from affect.media import AudioFile
from affect_proto.rules import (MAX_AUDIO_CHANNELS, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, audio_budget_problem,
                                audio_dtype_problem, audio_layout, audio_shape_problem, checked_file_size,
                                read_checked_file, sample_rate_problem, samples_peak_problem, shown_name)

MODEL_RATE = 16_000
DEFAULT_MAX_SECONDS = 600.0
MAX_FILE_BYTES = 512 * 2**20
# Decoded samples x channels of one clip: 600 s of 48 kHz mono, 300 s of stereo (115 MB as float32).
DEFAULT_MAX_VALUES = 28_800_000
# What libsndfile may read: the formats the contract names. Everything else it can read (MP3,
# AIFF, CAF, ...) is refused, so that what is accepted is what is documented and tested.
ACCEPTED_FORMATS = {"WAV": "WAV", "WAVEX": "WAV", "FLAC": "FLAC", "OGG": "OGG"}

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
    """The rate as a whole number of Hz, by the contract's rule (``affect_proto.rules``), which
    the client applies before sending."""
    if problem := sample_rate_problem(sample_rate, field):
        raise InvalidInputError(problem, field=field)
    return int(sample_rate)  # type: ignore[call-overload]  # the rule has checked it is a whole number


def _to_mono_float(samples: np.ndarray, field: str) -> np.ndarray:
    """``[frames]``, ``[frames, channels]`` or ``[channels, frames]`` of int16/float -> mono float32,
    the layout read by the contract's rule (``affect_proto.rules.audio_layout``), as the client reads it."""
    if problem := audio_dtype_problem(str(samples.dtype), field) or audio_shape_problem(samples.shape, field):
        raise InvalidInputError(problem, field=field)
    data = samples.astype(np.float32) / 32768.0 if samples.dtype == np.int16 else samples.astype(np.float32, copy=False)
    if data.ndim == 2:
        layout = audio_layout(data.shape)
        assert layout is not None  # audio_shape_problem has refused every shape it cannot read
        _, _, channels_first = layout
        data = data.mean(axis=0 if channels_first else 1)
    if problem := samples_peak_problem(float(np.abs(data).max()), field):  # NaN or inf make the peak so
        raise InvalidInputError(problem, field=field)
    return np.ascontiguousarray(data, dtype=np.float32)


def resample(samples: np.ndarray, from_rate: int, to_rate: int = MODEL_RATE) -> np.ndarray:
    """soxr's high-quality resampler: a few ms per second of audio at any rate, memory a small
    multiple of the audio."""
    if from_rate == to_rate:
        return samples
    out = soxr.resample(np.ascontiguousarray(samples, dtype=np.float32), from_rate, to_rate, quality="HQ")
    return np.asarray(out, dtype=np.float32)


def check_budget(frames: int, channels: int, rate: int, *, max_seconds: float, max_values: int, field: str,
                 name: str | None = None) -> None:
    """Refuse audio longer than ``max_seconds`` or with more than ``max_values`` samples x channels
    (its decoded size), from what the header or the array's shape says: before decoding, by the
    contract's rule (``affect_proto.rules.audio_budget_problem``), which the client applies too."""
    if problem := audio_budget_problem(frames, channels, rate, max_seconds=max_seconds, max_values=max_values,
                                       field=field, name=name):
        raise InputTooLargeError(problem, field=field)


def prepare_array(
    samples: object, sample_rate: object, *, max_seconds: float = DEFAULT_MAX_SECONDS,
    max_values: int = DEFAULT_MAX_VALUES, field: str = "audio"
) -> Audio:
    """Validated mono 16 kHz audio from an array of samples and its sample rate."""
    if isinstance(samples, torch.Tensor):
        samples = samples.detach().cpu().numpy()
    if not isinstance(samples, np.ndarray):
        raise InvalidInputError(f"{field} must be a numpy array of samples, got {type(samples).__name__}", field=field)
    rate = check_rate(sample_rate)
    frames = samples.shape[0] if samples.ndim == 1 else (max(samples.shape) if samples.ndim == 2 else 0)
    channels = 1 if samples.ndim != 2 else min(samples.shape)
    check_budget(frames, channels, rate, max_seconds=max_seconds, max_values=max_values, field=field)
    mono = _to_mono_float(samples, field)
    return Audio(samples=resample(mono, rate), source_rate=rate)


@dataclass(frozen=True)
class AudioInfo:
    """What a file's header says, checked against the contract: format, rate, channels, frames."""

    format: str
    sample_rate: int
    channels: int
    frames: int


def probe_file(source: AudioFile, *, max_seconds: float = DEFAULT_MAX_SECONDS, max_values: int = DEFAULT_MAX_VALUES,
               field: str = "audio") -> AudioInfo:
    """Read and check a file's header only (nothing is decoded): its format is WAV, FLAC or
    OGG, a WAV's length fields are true, its rate is supported and its decoded size is within
    ``max_seconds`` and ``max_values`` (frames x channels)."""
    import soundfile as sf

    handle, name = _structurally_sound(source, field)
    try:
        info = sf.info(handle)
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError) as exc:
        raise InvalidInputError(f"{field}: {name} is not a readable WAV/FLAC/OGG file ({_reason(exc)})", field=field) from None
    return _checked_header(info, name, max_seconds=max_seconds, max_values=max_values, field=field)


def prepare_file(source: AudioFile, *, max_seconds: float = DEFAULT_MAX_SECONDS, max_values: int = DEFAULT_MAX_VALUES,
                 field: str = "audio") -> Audio:
    """Validated mono 16 kHz audio from a WAV/FLAC/OGG file, given as a path or as its bytes:
    the checks of ``probe_file`` on the header of the one handle that is then decoded."""
    import soundfile as sf

    handle, name = _structurally_sound(source, field)
    try:
        with sf.SoundFile(handle) as fh:
            info = _checked_header(fh, name, max_seconds=max_seconds, max_values=max_values, field=field)
            data = fh.read(frames=info.frames, dtype="float32", always_2d=True)
    except InvalidInputError:
        raise
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError) as exc:
        raise InvalidInputError(f"{field}: {name} is not a readable WAV/FLAC/OGG file, or is truncated or corrupt "
                                f"({_reason(exc)})", field=field) from None
    if data.shape[0] == 0:
        raise InvalidInputError(f"{field}: {name} holds no samples", field=field)
    if info.frames > 0 and data.shape[0] < info.frames:
        raise InvalidInputError(
            f"{field}: {name} is truncated ({data.shape[0]:,} of {info.frames:,} frames readable)", field=field
        )
    mono = _to_mono_float(data, field)
    return Audio(samples=resample(mono, info.sample_rate), source_rate=info.sample_rate)


def _structurally_sound(source: AudioFile, field: str) -> tuple[object, str]:
    """(handle for soundfile, a name for messages) of a source whose structure libsndfile may
    safely read: a WAV's length fields are true, an Ogg file is pages end to end."""
    handle, name, head, size = _open_source(source, field)
    problem = wav_header_problem(head, size)
    if problem is None and head.startswith(b"OggS"):
        whole = _whole(source)
        problem = ogg_structure_problem(whole)
        handle = io.BytesIO(whole)  # the bytes checked are the bytes read
    if problem:
        raise InvalidInputError(f"{field}: {name} {problem}", field=field)
    return handle, name


def _checked_header(info: Any, name: str, *, max_seconds: float, max_values: int, field: str) -> AudioInfo:
    """An ``sf.info`` result or an open ``sf.SoundFile`` checked against the contract."""
    kind = ACCEPTED_FORMATS.get(info.format)
    if kind is None:
        raise InvalidInputError(f"{field}: {name} is {info.format} audio; accepted files are WAV, FLAC and OGG", field=field)
    rate = int(info.samplerate)
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:  # the contract's range (affect_proto.rules), arrays and files alike
        raise InvalidInputError(f"{field}: {name} is sampled at {rate} Hz; supported rates are "
                                f"{MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz", field=field)
    if not 1 <= info.channels <= MAX_AUDIO_CHANNELS:
        raise InvalidInputError(f"{field}: {name} has {info.channels} channels; at most {MAX_AUDIO_CHANNELS} are accepted",
                                field=field)
    if info.frames >= 2**62:  # libsndfile's "unknown": a FLAC written as a stream leaves its length out
        raise InvalidInputError(f"{field}: {name} does not say how long it is (written as a stream?); send a complete "
                                "file", field=field)
    check_budget(max(info.frames, 0), info.channels, rate, max_seconds=max_seconds, max_values=max_values, field=field, name=name)
    return AudioInfo(kind, rate, info.channels, info.frames)


def _whole(source: AudioFile) -> bytes:
    """The file's bytes (``_open_source`` has checked the source and its size)."""
    return bytes(source) if isinstance(source, (bytes, bytearray, memoryview)) else Path(source).read_bytes()


def _open_source(source: AudioFile, field: str) -> tuple[object, str, bytes, int]:
    """(handle for soundfile, a name for messages, the first bytes, the size) of a path or bytes."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        raw = bytes(source)
        if not raw:
            raise InvalidInputError(f"{field} is empty (0 bytes)", field=field)
        if len(raw) > MAX_FILE_BYTES:
            raise InputTooLargeError(f"{field} has {len(raw):,} bytes; the limit is {MAX_FILE_BYTES:,}", field=field)
        return io.BytesIO(raw), "the file", raw[:_WAV_HEAD_BYTES], len(raw)  # "the file is MP3 audio"
    if isinstance(source, (str, Path)):
        return _open_path(source, field)
    raise InvalidInputError(f"{field} must be a path or the file's bytes, got {type(source).__name__}", field=field)


def _open_path(source: str | Path, field: str) -> tuple[object, str, bytes, int]:
    """``_open_source`` of a path; one that cannot be read is refused as ``rules.file_path_problem``
    says (``rules.checked_file_size``, ``rules.read_checked_file``), never quoting a string that is
    no path (base64, a data: URI)."""
    size, problem = checked_file_size(source, field)
    if problem:
        raise InvalidInputError(problem, field=field)
    path, name = Path(source), shown_name(source) or "the file"
    if size == 0:
        raise InvalidInputError(f"{field}: {name} is empty (0 bytes)", field=field)
    if size > MAX_FILE_BYTES:
        raise InputTooLargeError(f"{field}: {name} has {size:,} bytes; the limit is {MAX_FILE_BYTES:,}",
                                 field=field)
    head, problem = read_checked_file(path, field, _WAV_HEAD_BYTES)
    if problem:
        raise InvalidInputError(problem, field=field)
    return str(path), name, head, size


_ADDRESS = re.compile(r"<[^<>]* at 0x[0-9a-fA-F]+>|0x[0-9a-fA-F]{6,}")


def _reason(exc: BaseException) -> str:
    """libsndfile's own words for an error, without the object reprs (heap addresses) that
    soundfile puts around them."""
    text = getattr(exc, "error_string", None) or str(exc)
    text = _ADDRESS.sub("the data", text).strip()
    return text.splitlines()[0] if text else type(exc).__name__


MAX_OGG_PAGES = 100_000  # 600 s of Vorbis at 500 kbit/s is about 10,000 pages of 4 KB


def ogg_structure_problem(data: bytes) -> str | None:
    """What is wrong with an Ogg file's pages, or None (also None for data that is not Ogg).

    libsndfile finds an Ogg file's length by searching back from its end for the last page, a
    search whose cost grows with every byte that only looks like a page: 15 MB of ``OggS``
    after one second of audio cost 21 s of CPU to probe. So the file must be Ogg pages end to
    end (each header's segment table gives its length), and at most ``MAX_OGG_PAGES`` of them.
    CRCs are left to the decoder.
    """
    if not data.startswith(b"OggS"):
        return None
    at, pages, size = 0, 0, len(data)
    while at < size:
        if data[at : at + 4] != b"OggS" or at + 27 > size or data[at + 4] != 0:
            return f"is not Ogg pages end to end (byte {at:,} does not start a page)"
        segments = data[at + 26]
        if at + 27 + segments > size:
            return f"ends inside a page header (byte {at:,})"
        at += 27 + segments + sum(data[at + 27 : at + 27 + segments])
        pages += 1
        if pages > MAX_OGG_PAGES:
            return f"has more than {MAX_OGG_PAGES:,} Ogg pages"
    return None if at == size else "ends inside an Ogg page (truncated)"


def wav_header_problem(head: bytes, size: int) -> str | None:
    """What is wrong with a WAV file's length fields, or None (also None for files that are not WAV).

    libsndfile quietly reads what is there, so a cut-off upload would pass as a shorter turn
    and a header whose lengths lie would be believed. A complete file is asked for: the RIFF
    and data lengths must be given (streaming writers leave 0 or 0xFFFFFFFF), lie within the
    file and agree with each other, and the data must be whole frames.
    """
    if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
        return None
    order: Literal["little", "big"] = "little" if head[:4] == b"RIFF" else "big"
    riff_end = 8 + int.from_bytes(head[4:8], order)
    if riff_end - 8 in (0, 0xFFFFFFFF):
        return "is a WAV file whose header gives no length (a streamed WAV); send the complete file"
    if riff_end > size:
        return f"is a truncated WAV file ({riff_end - size:,} bytes of audio missing)"
    block_align = 0
    pos = 12
    while pos + 8 <= min(len(head), riff_end):
        chunk, length = head[pos : pos + 4], int.from_bytes(head[pos + 4 : pos + 8], order)
        if chunk == b"fmt " and pos + 22 <= len(head):
            block_align = int.from_bytes(head[pos + 20 : pos + 22], order)
        if chunk == b"data":
            end = pos + 8 + length
            if length == 0 and end == riff_end == size:  # a complete file whose data chunk is empty
                return "holds no samples (a WAV file of 0 frames)"
            if length in (0, 0xFFFFFFFF):
                return "is a WAV file whose data length is not given (a streamed WAV); send the complete file"
            if end > size:
                return f"is a truncated WAV file ({end - size:,} bytes of audio missing)"
            if end > riff_end:
                return "is a WAV file whose data chunk runs past the length its RIFF header gives"
            if block_align and length % block_align:
                return f"is a WAV file whose data length ({length:,} bytes) is not a whole number of {block_align}-byte frames"
            return None
        pos += 8 + length + (length & 1)
    if riff_end <= len(head):
        return "is a WAV file without a data chunk"
    return None


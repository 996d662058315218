"""Building a turn's wire message from what a caller has: text, audio, images."""

from __future__ import annotations

from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any, Sequence

from affect_client._proto import affect_pb2 as pb


@dataclass(frozen=True)
class Audio:
    """A turn's audio. Build it with one of the class methods."""

    data: bytes
    encoding: int
    sample_rate_hz: int = 0
    channels: int = 0

    @classmethod
    def from_file(cls, path: str | PathLike[str]) -> "Audio":
        """A WAV, FLAC or OGG file, sent whole; the server reads its rate and channels."""
        return cls(Path(path).read_bytes(), pb.AUDIO_FILE)

    @classmethod
    def pcm16(cls, data: bytes, sample_rate_hz: int, channels: int = 1) -> "Audio":
        """Raw 16-bit little-endian PCM, channels interleaved."""
        return cls(bytes(data), pb.PCM_S16LE, sample_rate_hz, channels)

    @classmethod
    def from_array(cls, samples: Any, sample_rate_hz: int) -> "Audio":
        """A numpy array of float samples in [-1, 1], shape (n,) or (n, channels)."""
        channels = 1 if samples.ndim == 1 else int(samples.shape[1])
        return cls(samples.astype("<f4").tobytes(), pb.FLOAT32_LE, sample_rate_hz, channels)

    def to_pb(self) -> pb.Audio:
        return pb.Audio(data=self.data, encoding=self.encoding, sample_rate_hz=self.sample_rate_hz, channels=self.channels)


@dataclass(frozen=True)
class Image:
    """A turn's image (a video frame, a webcam still). Build it with one of the class methods."""

    data: bytes
    encoding: int
    width: int = 0
    height: int = 0

    @classmethod
    def from_file(cls, path: str | PathLike[str]) -> "Image":
        """A JPEG or PNG file."""
        return cls(Path(path).read_bytes(), pb.ENCODED)

    @classmethod
    def encoded(cls, data: bytes) -> "Image":
        return cls(bytes(data), pb.ENCODED)

    @classmethod
    def from_array(cls, pixels: Any, *, color_order: str) -> "Image":
        """A uint8 numpy array: (h, w) gray, or (h, w, 3) with ``color_order`` "bgr" or "rgb"."""
        if pixels.ndim == 2:
            encoding = pb.RAW_GRAY8
        elif color_order.lower() in ("bgr", "rgb"):
            encoding = pb.RAW_BGR8 if color_order.lower() == "bgr" else pb.RAW_RGB8
        else:
            raise ValueError('color_order must be "bgr" or "rgb"')
        return cls(pixels.astype("u1").tobytes(), encoding, int(pixels.shape[1]), int(pixels.shape[0]))

    def to_pb(self) -> pb.Image:
        return pb.Image(data=self.data, encoding=self.encoding, width=self.width, height=self.height)


def turn_message(
    text: str | bytes | None = None,
    *,
    speaker: str | None = None,
    audio: Audio | None = None,
    images: Sequence[Image] = (),
    turn_id: str = "",
) -> pb.Turn:
    turn = pb.Turn(turn_id=turn_id, speaker=speaker or "")
    if text is not None:
        turn.text = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    if audio is not None:
        turn.audio.CopyFrom(audio.to_pb())
    turn.images.extend(image.to_pb() for image in images)
    return turn

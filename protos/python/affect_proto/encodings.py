"""How a ``Turn``'s media are laid out on the wire, and what the message alone shows of their size.

Written once, keyed by the contract's enums, for the server's conversion and budget
(``affect_server.convert``, ``affect_server.budget``) and the client's checks before sending
(``affect_client._inputs``, ``affect_client._limits``): text is UTF-8, raw audio is interleaved
samples of a numpy type, raw pixels are rows of 8-bit channels. The rules themselves (limits and
their messages) are ``affect_proto.rules``, which stays free of protobuf for the library; this
module reads them from the messages. Hand-written: ``python -m protos.generate`` leaves it alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from affect_proto import affect_pb2 as pb
from affect_proto import rules

# The raw audio encodings, as numpy's array-protocol type strings (byte order, kind, bytes per sample).
RAW_AUDIO_DTYPES: Mapping[pb.AudioEncoding, str] = {pb.PCM_S16LE: "<i2", pb.FLOAT32_LE: "<f4"}
# The raw pixel encodings, as the channels (bytes) of each pixel.
RAW_IMAGE_CHANNELS: Mapping[pb.ImageEncoding, int] = {pb.RAW_GRAY8: 1, pb.RAW_BGR8: 3, pb.RAW_RGB8: 3}


def sample_bytes(encoding: pb.AudioEncoding) -> int:
    """The bytes of one sample of one channel in a raw audio ``encoding`` (``RAW_AUDIO_DTYPES``)."""
    return int(RAW_AUDIO_DTYPES[encoding][2:])


def channels_problem(channels: int, field: str = "turn.audio.channels") -> str | None:
    """Why ``channels`` may not be raw audio's ``channels`` field, or None: 0 (unset: mono) to
    ``rules.MAX_AUDIO_CHANNELS``, as many as a file may have."""
    if 0 <= channels <= rules.MAX_AUDIO_CHANNELS:
        return None
    return f"{field} must be 1 to {rules.MAX_AUDIO_CHANNELS}"


def text_too_long(text: bytes, limit: int, field: str = "turn.text") -> str | None:
    """Why ``text`` as sent (UTF-8) is over ``limit`` characters (``rules.text_too_long``), or None.
    UTF-8 never has fewer bytes than characters: the characters are counted only when the bytes
    are over the limit."""
    if len(text) <= limit:
        return None
    return rules.text_too_long(len(text.decode("utf-8", "replace")), field, limit)


@dataclass(frozen=True)
class RawAudioSize:
    """The size of raw audio samples, read from the data's length, its encoding and its fields."""

    values: int  # whole samples in the data: frames x channels
    channels: int
    rate: int  # Hz

    @property
    def frames(self) -> int:
        return self.values // self.channels

    @property
    def seconds(self) -> float:
        return self.values / self.channels / self.rate

    def budget_problem(self, *, max_seconds: float, max_values: float, field: str = "turn.audio.data") -> str | None:
        """Why the audio is over a per-turn budget (``rules.audio_budget_problem``), or None."""
        return rules.audio_budget_problem(self.frames, self.channels, self.rate, max_seconds=max_seconds,
                                          max_values=max_values, field=field)


def raw_audio_size(audio: pb.Audio) -> RawAudioSize | None:
    """The size of ``audio``'s raw samples, or None for a file (its size is in its header) or raw
    audio without its rate (``channels`` 0 is mono)."""
    if audio.encoding not in RAW_AUDIO_DTYPES or not audio.sample_rate_hz:
        return None
    return RawAudioSize(len(audio.data) // sample_bytes(audio.encoding), audio.channels or 1, audio.sample_rate_hz)

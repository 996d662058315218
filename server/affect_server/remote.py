"""Conversations whose encoders run elsewhere (Ray Serve deployments): the small stand-ins.

A conversation needs little of an encoder itself: the text encoder's context window and
character limit, the speech encoder's audio checks, the fact that a face encoder exists. The
stand-ins here ("fronts") carry just that, so the replica that holds the conversation state
loads no model; the ``Remote*`` submitters send each request to the encoder's deployment, where
it joins a batch, and behave like the in-process ``MicroBatcher`` (``await submit(request)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from affect.speech.encoder import PreparedClip, prepare_clip
from affect.text.encoder import TextContext


@dataclass(frozen=True)
class TextFront:
    """What a conversation needs of a text encoder that runs in another process."""

    model_id: str
    max_chars: int
    window: int

    def new_context(self) -> TextContext:
        return TextContext(window=self.window)


@dataclass(frozen=True)
class SpeechFront:
    """What a conversation needs of a speech encoder that runs in another process."""

    model_id: str
    max_seconds: float

    def prepare(self, audio: Any, sample_rate: int | None = None) -> PreparedClip:
        return prepare_clip(audio, sample_rate, max_seconds=self.max_seconds)


@dataclass(frozen=True)
class FaceFront:
    """A face encoder runs elsewhere; images are decoded here and sent as gray arrays."""

    model_id: str


def front_of(encoder: Any) -> TextFront | SpeechFront | FaceFront:
    """The stand-in for a loaded encoder (what its deployment hands to the ingress)."""
    modality = encoder.modality.value
    if modality == "text":
        return TextFront(encoder.model_id, encoder.max_chars, encoder.window)
    if modality == "speech":
        return SpeechFront(encoder.model_id, encoder.max_seconds)
    return FaceFront(encoder.model_id)


class RemoteEncoder:
    """``await submit(request)`` on an encoder deployment's batched ``run`` method.

    The answer comes back as the encoder gave it; what the conversation keeps of it (the text
    context's new embedding) is recorded here, by ``affect.turn_flow``, as in one process.
    """

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    async def submit(self, request: Any) -> Any:
        return await self.handle.run.remote(request)

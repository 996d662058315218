"""affect: emotion, sentiment, valence and arousal per conversation turn, offline.

    >>> from affect import Analyzer
    >>> analyzer = Analyzer()
    >>> with analyzer.conversation() as conversation:
    ...     result = conversation.analyze(text="My parcel is lost again.", speaker="caller")
    >>> result.emotion, result.sentiment, round(result.valence, 2)

Everything a user needs is importable from here; the submodules are implementation.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# Where each public name lives. Nothing is imported until it is first used, so that
# ``import affect`` (and ``affect --help``) does not pay for torch, OpenCV or the models.
_LAZY: dict[str, str] = {
    "AffectError": "affect._errors",
    "ConversationClosedError": "affect._errors",
    "InputTooLargeError": "affect._errors",
    "InvalidInputError": "affect._errors",
    "ModelLoadError": "affect._errors",
    "UnknownModelError": "affect._errors",
    "Analyzer": "affect.analyzer",
    "Conversation": "affect.conversation",
    "Turn": "affect.conversation",
    "EMOTIONS": "affect.labels",
    "SENTIMENTS": "affect.labels",
    "Emotion": "affect.labels",
    "Sentiment": "affect.labels",
    "AudioInput": "affect.media",
    "ImageInput": "affect.media",
    "VideoInput": "affect.media",
    "list_weights": "affect.registry",
    "AffectEstimate": "affect.results",
    "Modality": "affect.results",
    "ModalityResult": "affect.results",
    "ModelLoadEvent": "affect.results",
    "TurnResult": "affect.results",
    "TurnResults": "affect.results",
    "TextEncoder": "affect.text.encoder",
    "TextWeights": "affect.text.weights",
    "FaceEncoder": "affect.face",
    "SpeechEncoder": "affect.speech",
}

if TYPE_CHECKING:
    from affect._errors import (
        AffectError,
        ConversationClosedError,
        InputTooLargeError,
        InvalidInputError,
        ModelLoadError,
        UnknownModelError,
    )
    from affect.analyzer import Analyzer
    from affect.conversation import Conversation, Turn
    from affect.face import FaceEncoder
    from affect.labels import EMOTIONS, SENTIMENTS, Emotion, Sentiment
    from affect.media import AudioInput, ImageInput, VideoInput
    from affect.registry import list_weights
    from affect.results import AffectEstimate, Modality, ModalityResult, ModelLoadEvent, TurnResult, TurnResults
    from affect.speech import SpeechEncoder
    from affect.text.encoder import TextEncoder
    from affect.text.weights import TextWeights


if not TYPE_CHECKING:  # type checkers see the imports above: a misspelt name is an error, not Any

    def __getattr__(name: str) -> object:
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module 'affect' has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = [
    "AffectError",
    "ConversationClosedError",
    "AffectEstimate",
    "Analyzer",
    "Conversation",
    "EMOTIONS",
    "Emotion",
    "FaceEncoder",
    "InputTooLargeError",
    "InvalidInputError",
    "Modality",
    "ModalityResult",
    "ModelLoadError",
    "ModelLoadEvent",
    "SENTIMENTS",
    "Sentiment",
    "SpeechEncoder",
    "TextEncoder",
    "TextWeights",
    "Turn",
    "TurnResult",
    "TurnResults",
    "UnknownModelError",
    "list_weights",
]

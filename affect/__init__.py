"""affect: emotion, sentiment, valence and arousal per conversation turn, offline.

    >>> from affect import Analyzer
    >>> analyzer = Analyzer()
    >>> with analyzer.conversation() as conversation:
    ...     result = conversation.analyze(text="My parcel is lost again.", speaker="caller")
    >>> result.emotion, result.sentiment_label, round(result.valence, 2)

Everything a user needs is importable from here; the submodules are implementation.
"""

from affect._errors import AffectError, InputTooLargeError, InvalidInputError, ModelLoadError, UnknownModelError
from affect.analyzer import Analyzer
from affect.conversation import Conversation, Turn
from affect.labels import EMOTIONS, SENTIMENTS, Emotion, Sentiment
from affect.registry import list_weights
from affect.results import AffectEstimate, Modality, ModalityResult, TurnResult
from affect.text.encoder import TextEncoder
from affect.text.weights import TextWeights

__version__ = "0.1.0"


def __getattr__(name: str):
    """The face and speech encoders load OpenCV, ctranslate2 and Silero: import them on first use."""
    if name == "FaceEncoder":
        from affect.face import FaceEncoder

        return FaceEncoder
    if name == "SpeechEncoder":
        from affect.speech import SpeechEncoder

        return SpeechEncoder
    raise AttributeError(f"module 'affect' has no attribute {name!r}")


__all__ = [
    "AffectError",
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
    "SENTIMENTS",
    "Sentiment",
    "SpeechEncoder",
    "TextEncoder",
    "TextWeights",
    "Turn",
    "TurnResult",
    "UnknownModelError",
    "list_weights",
]

"""Speech branch: emotion from the voice with Silero VAD, a frozen Whisper tiny.en encoder and a trained head."""

from affect.speech._audio import DEFAULT_MAX_SECONDS, MODEL_RATE
from affect.speech._vad import SpeechSegment, VadSettings
from affect.speech.encoder import NO_SPEECH, PreparedClip, SpeechEncoder, SpeechRequest, SpeechResult
from affect.speech.weights import SpeechWeights

__all__ = [
    "DEFAULT_MAX_SECONDS",
    "MODEL_RATE",
    "NO_SPEECH",
    "PreparedClip",
    "SpeechEncoder",
    "SpeechRequest",
    "SpeechResult",
    "SpeechSegment",
    "SpeechWeights",
    "VadSettings",
]

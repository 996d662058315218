"""A speech answer as a class index: what the speech benchmarks and probes score alike."""

from __future__ import annotations

import numpy as np

from affect.labels import EMOTION_NAMES, emotion_index
from affect.speech import SpeechResult

NO_ANSWER = -1  # the encoder found no speech: counted as a wrong answer (and by no class in answer_counts)


def prediction(answer: SpeechResult) -> tuple[int, np.ndarray]:
    """The answer's emotion index and probabilities; ``NO_ANSWER`` and a uniform vector when the VAD found no speech."""
    if answer.result is None:
        return NO_ANSWER, np.full(len(EMOTION_NAMES), 1.0 / len(EMOTION_NAMES))
    return emotion_index(answer.result.emotion), np.array(answer.result.emotion_vector())

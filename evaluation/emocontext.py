"""EmoContext's measures (SemEval-2019 Task 3): its three emotions, and "others" for any other answer.

The one definition the text recipes and benchmarks share. ``emotions`` are the label indices of the
corpus's three emotions (happy, sad, angry as ``affect.labels`` maps them); -1 stands for "others".
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import f1_score

OTHERS = -1


def with_others(pred: np.ndarray, emotions: list[int]) -> np.ndarray:
    """Answers outside the three emotions as ``OTHERS``."""
    pred = np.asarray(pred)
    return np.where(np.isin(pred, emotions), pred, OTHERS)


def micro_f1_emotions(gold: np.ndarray, pred: np.ndarray, emotions: list[int]) -> float:
    """The shared task's measure: micro-F1 over the three emotions ("others" counts only as a miss)."""
    return float(f1_score(gold, with_others(pred, emotions), labels=emotions, average="micro", zero_division=0))


def macro_f1_with_others(gold: np.ndarray, pred: np.ndarray, emotions: list[int]) -> float:
    """Macro-F1 over the four classes, "others" included."""
    return float(f1_score(gold, with_others(pred, emotions), labels=[*emotions, OTHERS], average="macro", zero_division=0))

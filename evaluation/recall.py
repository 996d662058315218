"""Accuracy and unweighted average recall (UAR): the one definition the speech and face recipes
and benchmarks share, so a recipe's held-out figure and a report's are the same number."""

from __future__ import annotations

import numpy as np


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Share of answers equal to the label."""
    return float((np.asarray(y_true) == np.asarray(y_pred)).mean())


def uar(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Unweighted average recall over the classes present in ``y_true`` (classes it lacks do not count,
    so a corpus with four labels is scored over those four, whatever else the model may answer)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float(np.mean([(y_pred[y_true == c] == c).mean() for c in np.unique(y_true)]))

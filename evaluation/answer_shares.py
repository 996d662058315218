"""How much of a set goes to one answer: the sign of a model that answers one class whatever it hears.

Used by the speech recipe's held-out scores and by the speech benchmark, so both count alike.
"""

from __future__ import annotations

import numpy as np

SPEAKER_SHARE_MIN_CLIPS = 20  # a speaker's share of one answer means little over fewer clips


def max_predicted_share(y_pred: np.ndarray) -> float:
    """Share of the most frequent answer (every answer counted, "no speech" too): near 1 means one class for all."""
    if len(y_pred) == 0:
        return 0.0
    _, counts = np.unique(y_pred, return_counts=True)
    return float(counts.max() / len(y_pred))


def answer_counts(y: np.ndarray, n_classes: int) -> list[int]:
    """How many items got each class ``0..n_classes-1`` (a negative "no answer" is counted by none):
    the "clips per predicted emotion" row of the speech reports, for true labels too."""
    y = np.asarray(y, dtype=int)
    return [int(n) for n in np.bincount(y[y >= 0], minlength=n_classes)[:n_classes]]


def largest_class_share(y_true: np.ndarray) -> float:
    """The most frequent true label's share: a predicted share up to this is no sign of collapse."""
    return max_predicted_share(y_true)


def speaker_max_shares(pred: np.ndarray, speakers: np.ndarray) -> dict[str, float]:
    """For each speaker with at least ``SPEAKER_SHARE_MIN_CLIPS`` clips, the share of their clips
    given to the answer given most: a model that reads one voice as one emotion shows here even
    when the set as a whole looks balanced (the speech model card's EMOVO test actor)."""
    out = {}
    for speaker in np.unique(speakers):
        mine = pred[speakers == speaker]
        if len(mine) >= SPEAKER_SHARE_MIN_CLIPS:
            out[str(speaker)] = round(max_predicted_share(mine), 3)
    return out

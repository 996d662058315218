"""What the forecaster reads: the recent readings of a conversation, seen from one speaker.

One rule, used by the library at run time, by ``recipes/forecast`` in training and by
``benchmarks.accuracy.forecast``: a conversation's analysed turns are kept as ``Reading``s (turn
index, speaker, the fused emotion and sentiment probabilities), and for a *target* speaker the
last ``window`` of them become one row per turn::

    7 emotion probabilities, 3 sentiment probabilities,
    same   1 if the turn is the target's own, else 0
    unknown 1 if the turn has no speaker, else 0
    gap    log(1 + turns skipped before it): turns without a reading leave a gap in the indices
    age    log(1 + how many turns ago it was)

and a few numbers about the target itself (``target_features``): its latest reading's ten
probabilities, how long ago that was, and how many of the window's turns are its own. The
forecast is for the target's *next* turn, whenever it comes. No torch here: plain numpy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from affect.labels import EMOTION_NAMES, SENTIMENT_NAMES

PROBS = len(EMOTION_NAMES) + len(SENTIMENT_NAMES)  # 10
STEP_FEATURES = PROBS + 4  # + same, unknown, gap, age
TARGET_FEATURES = PROBS + 2  # + turns since the target's latest reading, the target's share of the window
NEGATIVE_INDEX = len(EMOTION_NAMES) + SENTIMENT_NAMES.index("negative")
ANGER_INDEX = EMOTION_NAMES.index("anger")


@dataclass(frozen=True)
class Reading:
    """One analysed turn as the forecaster sees it: no text, only probabilities."""

    turn_index: int
    speaker: str | None
    probs: tuple[float, ...]  # the 7 emotion probabilities (EMOTION_NAMES order), then the 3 sentiment ones

    @classmethod
    def of(cls, turn_index: int, speaker: str | None, emotions: Sequence[float], sentiments: Sequence[float]) -> "Reading":
        if len(emotions) != len(EMOTION_NAMES) or len(sentiments) != len(SENTIMENT_NAMES):
            raise ValueError(f"expected {len(EMOTION_NAMES)} emotion and {len(SENTIMENT_NAMES)} sentiment probabilities")
        return cls(int(turn_index), speaker, tuple(float(p) for p in emotions) + tuple(float(p) for p in sentiments))


def targets(readings: Sequence[Reading]) -> list[str | None]:
    """The speakers a forecast is made for: everyone with a reading in ``readings``, most recent first."""
    seen: dict[str | None, None] = {}
    for r in reversed(readings):
        seen.setdefault(r.speaker, None)
    return list(seen)


def step_features(readings: Sequence[Reading], target: str | None) -> np.ndarray:
    """``[len(readings), STEP_FEATURES]`` float32 rows, oldest first (``readings`` is the window)."""
    out = np.zeros((len(readings), STEP_FEATURES), dtype=np.float32)
    if not readings:
        return out
    now = readings[-1].turn_index
    previous = None
    for i, r in enumerate(readings):
        out[i, :PROBS] = r.probs
        out[i, PROBS] = float(r.speaker == target)
        out[i, PROBS + 1] = float(r.speaker is None)
        out[i, PROBS + 2] = math.log1p(max(0, r.turn_index - previous - 1)) if previous is not None else 0.0
        out[i, PROBS + 3] = math.log1p(max(0, now - r.turn_index))
        previous = r.turn_index
    return out


def latest_of(readings: Sequence[Reading], target: str | None) -> Reading | None:
    """The target's most recent reading in ``readings``, or ``None``."""
    return next((r for r in reversed(readings) if r.speaker == target), None)


def target_features(readings: Sequence[Reading], target: str | None) -> np.ndarray:
    """``[TARGET_FEATURES]`` float32: the target's latest probabilities, its age and its share."""
    out = np.zeros(TARGET_FEATURES, dtype=np.float32)
    latest = latest_of(readings, target)
    if latest is None:
        raise ValueError(f"speaker {target!r} has no reading in the window")
    out[:PROBS] = latest.probs
    out[PROBS] = math.log1p(readings[-1].turn_index - latest.turn_index)
    out[PROBS + 1] = sum(r.speaker == target for r in readings) / len(readings)
    return out


@dataclass(frozen=True)
class ForecastPair:
    """One forecast to score: after the reading at ``now`` (a position in the dialogue's
    readings), for ``target``, whose next reading is at position ``next``."""

    now: int
    target: str | None
    next: int


def next_turn_pairs(readings: Sequence[Reading], window: int) -> list[ForecastPair]:
    """Every forecast a conversation asks for: after each reading, for each speaker with a
    reading in the window who speaks again (what the forecast is judged on)."""
    out = []
    for now in range(len(readings)):
        for who in targets(readings[max(0, now - window + 1): now + 1]):
            nxt = next((q for q in range(now + 1, len(readings)) if readings[q].speaker == who), None)
            if nxt is not None:
                out.append(ForecastPair(now, who, nxt))
    return out

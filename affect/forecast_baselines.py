"""The two baselines a forecast is judged against, scored on the same pairs as the forecaster.

``persistence``: the target's next turn will feel as its latest turn did (its latest P(negative
sentiment) and P(anger)). ``trend``: the conversation state's per-speaker smoothing
(``affect.state``) carried one turn ahead along its recent slope: the negative score is minus
the extrapolated valence, the anger score the extrapolated smoothed anger. Both are scores for
ranking (AUROC), not probabilities.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from affect.forecast_features import ANGER_INDEX, NEGATIVE_INDEX, PROBS, ForecastPair, Reading, latest_of
from affect.labels import EMOTION_NAMES
from affect.results import AffectEstimate
from affect.state import ConversationState


def persistence_scores(readings: Sequence[Reading], pairs: Sequence[ForecastPair], window: int) -> np.ndarray:
    """``[len(pairs), 2]``: the target's latest P(negative) and P(anger) at the time of each pair."""
    out = np.zeros((len(pairs), 2), dtype=np.float32)
    for i, p in enumerate(pairs):
        latest = latest_of(readings[max(0, p.now - window + 1): p.now + 1], p.target)
        assert latest is not None
        out[i] = latest.probs[NEGATIVE_INDEX], latest.probs[ANGER_INDEX]
    return out


def trend_scores(readings: Sequence[Reading], pairs: Sequence[ForecastPair]) -> np.ndarray:
    """``[len(pairs), 2]``: minus the target's extrapolated smoothed valence, and its extrapolated anger."""
    by_now: dict[int, list[int]] = {}
    for i, p in enumerate(pairs):
        by_now.setdefault(p.now, []).append(i)
    out = np.zeros((len(pairs), 2), dtype=np.float32)
    state = ConversationState()
    emotions = len(EMOTION_NAMES)
    for now, r in enumerate(readings):
        estimate = AffectEstimate(**AffectEstimate.fields_from_probs(r.probs[:emotions], r.probs[emotions:PROBS]))
        state.update(estimate, r.speaker, r.turn_index)
        for i in by_now.get(now, ()):
            ahead = state.extrapolate(pairs[i].target)
            assert ahead is not None
            out[i] = -ahead[0], ahead[1]
    return out

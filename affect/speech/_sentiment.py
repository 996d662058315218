"""Sentiment of a speech turn, derived from its emotion distribution (the model predicts emotions only).

Rule: each emotion's probability goes to the sentiment ``affect.labels.EMOTION_SENTIMENT`` gives
it (neutral -> neutral, happiness -> positive, sadness/anger/fear/disgust -> negative). Surprise
has no sentiment of its own (it is as often bad news as good), so its probability is split
evenly between negative and positive: a surprised voice makes the sentiment less certain, not
neutral.
"""

from __future__ import annotations

from collections.abc import Sequence

from affect.labels import EMOTION_SENTIMENT, EMOTIONS, SENTIMENTS, Sentiment

_SENTIMENT_INDEX = {s: i for i, s in enumerate(SENTIMENTS)}


def sentiment_from_emotions(emotion_probs: Sequence[float]) -> list[float]:
    """Negative/neutral/positive probabilities from the 7 emotion probabilities."""
    if len(emotion_probs) != len(EMOTIONS):
        raise ValueError(f"expected {len(EMOTIONS)} emotion probabilities, got {len(emotion_probs)}")
    out = [0.0] * len(SENTIMENTS)
    for emotion, p in zip(EMOTIONS, emotion_probs):
        sentiment = EMOTION_SENTIMENT[emotion]
        if sentiment is None:
            out[_SENTIMENT_INDEX[Sentiment.NEGATIVE]] += p / 2
            out[_SENTIMENT_INDEX[Sentiment.POSITIVE]] += p / 2
        else:
            out[_SENTIMENT_INDEX[sentiment]] += p
    total = sum(out) or 1.0
    return [p / total for p in out]

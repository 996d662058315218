"""The label prior a deployment expects, and how calibrated probabilities follow it.

A classifier's calibrated probabilities carry the label frequencies of what it was trained on.
Trained on emotion-dense corpora, a model over-reads emotion in a support desk's mostly neutral
traffic. When the class-conditional evidence is the same and only the label frequencies differ,
the right probabilities for the new setting are the old ones re-weighted by the ratio of the new
prior to the training prior, then renormalised (Saerens, Latinne and Decaestecker 2002). That is
all this module does: no second model.

A prior is a preset name (``PRIOR_PRESETS``) or a mapping of emotion names to relative
frequencies (missing emotions get 0 and can then never be predicted: pass a small value
instead to make one rare rather than impossible).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Union

import torch

from affect.labels import EMOTION_NAMES, EMOTIONS, Emotion

# MELD train's label frequencies (9,989 turns of everyday dialogue).
CONVERSATIONAL_PRIOR: Mapping[Emotion, float] = {
    Emotion.NEUTRAL: 0.472,
    Emotion.HAPPINESS: 0.174,
    Emotion.SADNESS: 0.068,
    Emotion.ANGER: 0.111,
    Emotion.FEAR: 0.027,
    Emotion.DISGUST: 0.027,
    Emotion.SURPRISE: 0.121,
}

PRIOR_PRESETS: Mapping[str, Mapping[Emotion, float] | None] = {
    # as trained: the probabilities the model gives, unchanged
    "trained": None,
    # everyday conversation: about half the turns carry no marked emotion
    "conversational": CONVERSATIONAL_PRIOR,
    # every emotion equally likely a priori: the reading most sensitive to rare emotions
    "uniform": {e: 1.0 / len(EMOTIONS) for e in EMOTIONS},
}
# Chosen on the dev splits of the two dialogue corpora (MELD dev weighted-F1, EmoContext dev
# micro-F1): "trained" 0.574 / 0.798, "conversational" 0.515 / 0.784, "uniform" 0.572 / 0.800.
# The conversational preset over-corrects: the head already reads dialogue as mostly neutral,
# so its learnt prior is not the only difference between its training mix and a conversation.
DEFAULT_PRIOR = "trained"

PriorSpec = Union[str, Mapping[str, float], Mapping[Emotion, float], None]


def resolve_prior(spec: PriorSpec) -> torch.Tensor | None:
    """The prior as a probability vector in ``EMOTIONS`` order, or ``None`` for "as trained".

    Raises ``ValueError`` for an unknown preset, an unknown emotion, a negative value or an
    all-zero prior, naming what was wrong.
    """
    if spec is None:
        return None
    if isinstance(spec, str):
        if spec not in PRIOR_PRESETS:
            raise ValueError(f"unknown text prior {spec!r}; presets: {', '.join(PRIOR_PRESETS)}, or a mapping of emotions")
        spec = PRIOR_PRESETS[spec]
        if spec is None:
            return None
    values = torch.zeros(len(EMOTIONS))
    for key, value in spec.items():
        name = key.value if isinstance(key, Emotion) else str(key)
        if name not in EMOTION_NAMES:
            raise ValueError(f"text prior names {name!r}, which is not an emotion; known: {', '.join(EMOTION_NAMES)}")
        if not float(value) >= 0:
            raise ValueError(f"text prior for {name} must be >= 0, got {value!r}")
        values[EMOTION_NAMES.index(name)] = float(value)
    if values.sum() <= 0:
        raise ValueError("text prior must give some emotion a positive weight")
    return values / values.sum()


def prior_log_ratio(target: torch.Tensor | None, trained: torch.Tensor | None) -> torch.Tensor:
    """What to add to calibrated emotion logits so that their softmax follows ``target``."""
    if target is None or trained is None:
        return torch.zeros(len(EMOTIONS))
    return target.clamp(min=1e-12).log() - trained.clamp(min=1e-12).log()

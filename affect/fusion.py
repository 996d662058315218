"""Combining the modalities present in a turn into one answer.

Until the trained late-fusion head ships, turns are fused by a confidence-weighted average of
the present modalities' distributions. With one modality present the answer is exactly that
modality's, so a missing modality never changes the others' results.
"""

from __future__ import annotations

from collections.abc import Mapping

from affect.results import AffectEstimate, Modality, ModalityResult

AVERAGE_FUSION = "confidence-weighted-average@1"


def fuse(results: Mapping[Modality, ModalityResult]) -> tuple[dict, dict[Modality, float], str]:
    """Keyword fields of the fused estimate, each modality's share, and the rule's name."""
    if not results:
        raise ValueError("nothing to fuse: no modality gave a result")
    if len(results) == 1:
        (modality, only), = results.items()
        fields = {k: getattr(only, k) for k in ("emotions", "sentiment", "valence", "arousal", "confidence")}
        return fields, {modality: 1.0}, AVERAGE_FUSION
    total = sum(r.confidence for r in results.values())
    shares = {m: r.confidence / total for m, r in results.items()}
    emotions = [sum(shares[m] * r.emotion_vector()[i] for m, r in results.items()) for i in range(7)]
    sentiment = [sum(shares[m] * r.sentiment_vector()[i] for m, r in results.items()) for i in range(3)]
    valence = sum(shares[m] * r.valence for m, r in results.items())
    arousal = sum(shares[m] * r.arousal for m, r in results.items())
    return AffectEstimate.fields_from_probs(emotions, sentiment, valence, arousal), shares, AVERAGE_FUSION

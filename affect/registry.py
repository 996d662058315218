"""Every shipped model, in one place: what ``affect models`` and the server's ListModels show."""

from __future__ import annotations

from typing import Any

from affect._weights import WeightsEnum
from affect.face.weights import FaceWeights
from affect.forecast import ForecastWeights
from affect.fusion import FusionWeights
from affect.speech.weights import SpeechWeights
from affect.text.weights import TextWeights

WEIGHT_FAMILIES: tuple[type[WeightsEnum], ...] = (TextWeights, SpeechWeights, FaceWeights, FusionWeights,
                                                  ForecastWeights)


def list_weights() -> list[dict[str, Any]]:
    """One row per shipped weights file (``DEFAULT`` aliases are not repeated)."""
    rows = []
    for family in WEIGHT_FAMILIES:
        for name, member in family.__members__.items():
            if name == "DEFAULT":
                continue
            meta = member.meta
            rows.append({
                "id": member.value.id,
                "family": family.__name__,
                "member": name,
                "default": member is family["DEFAULT"],
                "modality": meta["modality"],
                "file": member.value.file,
                "sha256": member.value.sha256,
                "categories": list(meta["categories"]),
                "trained_on": meta["trained_on"],
                "licence": meta["licence"],
                "metrics": dict(meta["metrics"]),
            })
    return rows

"""Every shipped model, in one place: what ``affect models`` and the server's ListModels show."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from affect._weights import WeightsEnum, licence_parts
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


def licences(model_ids: Iterable[str]) -> str:
    """The licences of these models (weights ids, ``name@version``) in one line, by the terms of
    use each weights entry's ``licence`` states first, each model with the data it comes from:
    ``research use only: text-minilm-meld@1 (MELD GPL-3.0, GoEmotions Apache-2.0); non-commercial
    use only: speech-whisper-tiny-ravdess@1 (RAVDESS CC BY-NC-SA 4.0)``. An id no shipped entry
    has is said to be so."""
    by_id = {row["id"]: row["licence"] for row in list_weights()}
    groups: dict[str, list[str]] = {}
    for model_id in dict.fromkeys(model_ids):
        if model_id in by_id:
            terms, data = licence_parts(by_id[model_id])
            groups.setdefault(terms, []).append(f"{model_id} ({data})")
        else:
            groups.setdefault("not a shipped model, its licence its own", []).append(model_id)
    return "; ".join(f"{terms}: {', '.join(models)}" for terms, models in groups.items())


ENCODER_FAMILIES: dict[str, type[WeightsEnum]] = {family["DEFAULT"].meta["modality"]: family
                                                  for family in (TextWeights, SpeechWeights, FaceWeights)}


def model_choice(modality: str, name: str) -> str | bool | None:
    """One encoder's model as a setting names it (``affect analyze --face-model``, ``affect serve
    --face-model`` / ``AFFECT_FACE_MODEL``), as ``Analyzer(face=...)`` takes it: ``default`` (any
    case) for the default weights (``True``), ``none`` to leave the modality out (``None``), else a
    name or id that ``affect models`` lists, checked here: a name no family knows raises
    ``UnknownModelError`` saying which are known."""
    if name.lower() == "default":
        return True
    if name.lower() == "none":
        return None
    ENCODER_FAMILIES[modality].resolve(name)
    return name

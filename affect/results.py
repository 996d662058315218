"""Typed results: what one modality says about a turn, and the fused answer for the turn.

Plain frozen dataclasses. ``to_dict()`` gives JSON-ready data (enums as their string values,
probabilities as ``{label: p}`` in the fixed label order) and ``from_dict()`` reads it back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from affect.labels import EMOTION_NAMES, SENTIMENT_NAMES, Emotion, Sentiment, valence_arousal

if TYPE_CHECKING:
    from affect.state import Event, StateSnapshot


class Modality(str, Enum):
    TEXT = "text"
    SPEECH = "speech"
    FACE = "face"


MODALITIES: tuple[Modality, ...] = (Modality.FACE, Modality.SPEECH, Modality.TEXT)


def _probs(names: Sequence[str], values: Sequence[float]) -> dict[str, float]:
    if len(values) != len(names):
        raise ValueError(f"expected {len(names)} probabilities, got {len(values)}")
    return {name: float(v) for name, v in zip(names, values)}


@dataclass(frozen=True)
class AffectEstimate:
    """What is felt: emotion and sentiment distributions, valence and arousal, and a confidence.

    ``emotions`` maps each of the 7 emotion names to a probability (they sum to 1);
    ``sentiment`` maps negative/neutral/positive to probabilities; ``valence`` and ``arousal``
    are in [-1, 1]; ``confidence`` is the probability of the top emotion.
    """

    emotions: Mapping[str, float]
    sentiment: Mapping[str, float]
    valence: float
    arousal: float
    confidence: float

    @property
    def emotion(self) -> Emotion:
        """The most probable emotion."""
        return Emotion(max(self.emotions, key=self.emotions.__getitem__))

    @property
    def sentiment_label(self) -> Sentiment:
        """The most probable sentiment."""
        return Sentiment(max(self.sentiment, key=self.sentiment.__getitem__))

    def emotion_vector(self) -> list[float]:
        return [self.emotions[name] for name in EMOTION_NAMES]

    def sentiment_vector(self) -> list[float]:
        return [self.sentiment[name] for name in SENTIMENT_NAMES]

    def estimate_dict(self) -> dict[str, Any]:
        """The estimate's own fields as JSON-ready data (shared by every result's ``to_dict``)."""
        return {
            "emotion": self.emotion.value,
            "emotions": dict(self.emotions),
            "sentiment": self.sentiment_label.value,
            "sentiment_probs": dict(self.sentiment),
            "valence": self.valence,
            "arousal": self.arousal,
            "confidence": self.confidence,
        }

    @staticmethod
    def estimate_fields(data: Mapping[str, Any]) -> dict[str, Any]:
        """Keyword arguments of the estimate's fields, read back from ``estimate_dict`` data."""
        return {
            "emotions": dict(data["emotions"]),
            "sentiment": dict(data["sentiment_probs"]),
            "valence": float(data["valence"]),
            "arousal": float(data["arousal"]),
            "confidence": float(data["confidence"]),
        }

    @staticmethod
    def fields_from_probs(
        emotion_probs: Sequence[float],
        sentiment_probs: Sequence[float],
        valence: float | None = None,
        arousal: float | None = None,
    ) -> dict[str, Any]:
        """Keyword arguments for any estimate from raw vectors; valence/arousal default to the
        circumplex mapping of the emotion distribution (``affect.labels.valence_arousal``)."""
        mapped_v, mapped_a = valence_arousal(list(emotion_probs))
        return {
            "emotions": _probs(EMOTION_NAMES, emotion_probs),
            "sentiment": _probs(SENTIMENT_NAMES, sentiment_probs),
            "valence": float(mapped_v if valence is None else valence),
            "arousal": float(mapped_a if arousal is None else arousal),
            "confidence": float(max(emotion_probs)),
        }


@dataclass(frozen=True)
class ModalityResult(AffectEstimate):
    """One encoder's reading of one turn. ``model`` is ``name@version`` of the weights used."""

    modality: Modality = Modality.TEXT
    model: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"modality": self.modality.value, "model": self.model, **self.estimate_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ModalityResult":
        return cls(**cls.estimate_fields(data), modality=Modality(data["modality"]), model=str(data["model"]))


@dataclass(frozen=True)
class FaceReading:
    """One face found in a turn's images: which image, its box in pixels, and its reading."""

    image_index: int
    x: int
    y: int
    width: int
    height: int
    detection_score: float
    result: ModalityResult

    def to_dict(self) -> dict[str, Any]:
        return {"image_index": self.image_index, "box": [self.x, self.y, self.width, self.height],
                "detection_score": self.detection_score, **self.result.to_dict()}


@dataclass(frozen=True)
class TurnResult(AffectEstimate):
    """The fused answer for one turn of a conversation.

    ``present`` lists the modalities that contributed; ``modalities`` holds each one's own
    result; ``absent`` says why a modality that was sent gave no result (for example
    ``{"face": "no face detected"}``); ``shares`` is each present modality's share in the answer;
    ``state`` is how the conversation stands after this turn and ``events`` what this turn raised.
    """

    turn_index: int = 0
    speaker: str | None = None
    present: tuple[Modality, ...] = ()
    modalities: Mapping[Modality, ModalityResult] = field(default_factory=dict)
    absent: Mapping[Modality, str] = field(default_factory=dict)
    shares: Mapping[Modality, float] = field(default_factory=dict)
    fusion: str = ""
    state: "StateSnapshot | None" = None
    events: "tuple[Event, ...]" = ()
    faces: tuple[FaceReading, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "turn_index": self.turn_index,
            "speaker": self.speaker,
            "present": [m.value for m in self.present],
            **self.estimate_dict(),
            "shares": {m.value: s for m, s in self.shares.items()},
            "fusion": self.fusion,
            "modalities": {m.value: r.to_dict() for m, r in self.modalities.items()},
            "absent": {m.value: why for m, why in self.absent.items()},
            "state": self.state.to_dict() if self.state else None,
            "events": [e.__dict__ for e in self.events],
            "faces": [f.to_dict() for f in self.faces],
        }

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TurnResult":
        return cls(
            **cls.estimate_fields(data),
            turn_index=int(data["turn_index"]),
            speaker=data.get("speaker"),
            present=tuple(Modality(m) for m in data["present"]),
            modalities={Modality(m): ModalityResult.from_dict(r) for m, r in data.get("modalities", {}).items()},
            absent={Modality(m): why for m, why in data.get("absent", {}).items()},
            shares={Modality(m): float(s) for m, s in data.get("shares", {}).items()},
            fusion=str(data.get("fusion", "")),
            state=_state_from_dict(data.get("state")),
            events=tuple(_event_from_dict(e) for e in data.get("events", ())),
            faces=tuple(
                FaceReading(f["image_index"], *f["box"], f["detection_score"], ModalityResult.from_dict(f))
                for f in data.get("faces", ())
            ),
        )


def _state_from_dict(data: Mapping[str, Any] | None) -> "StateSnapshot | None":
    from affect.state import SpeakerSnapshot, StateSnapshot

    if not data:
        return None
    speakers = tuple(SpeakerSnapshot(**s) for s in data.get("speakers", ()))
    return StateSnapshot(**{**data, "speakers": speakers})


def _event_from_dict(data: Mapping[str, Any]) -> "Event":
    from affect.state import Event

    return Event(**data)


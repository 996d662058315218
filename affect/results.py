"""Typed results: what one modality says about a turn, the fused answer for the turn, and the
conversation's state after it (snapshots and events, computed by ``affect.state``).

Plain frozen dataclasses. ``to_dict()`` gives JSON-ready data (enums as their string values,
probabilities as ``{label: p}`` in the fixed label order) and ``from_dict()`` reads it back.
Names are one vocabulary: ``emotion`` is the top label and ``emotions`` the distribution,
``sentiment`` the top label and ``sentiments`` the distribution, here, in ``to_dict()``, on
the wire and in the client.

A turn in which no modality could be read (silence, no face) has no reading: its ``fused`` is
``None`` and so are ``emotion``, ``valence`` and the rest; ``absent`` says why.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal, Mapping, Sequence

from affect.labels import EMOTION_NAMES, SENTIMENT_NAMES, Emotion, Sentiment, valence_arousal


class Modality(str, Enum):
    """A modality; prints as its value (``text``), as the enums of ``affect.labels`` do.

    The members' order is the one order of modalities everywhere: a turn's ``present``, the
    fusion head's inputs (it was trained in this order), the encoders of an ``Analyzer``."""

    FACE = "face"
    SPEECH = "speech"
    TEXT = "text"

    def __str__(self) -> str:
        return self.value

    def __repr__(self) -> str:
        return repr(self.value)

    def __format__(self, format_spec: str) -> str:
        return str.__format__(self, format_spec)


MODALITIES: tuple[Modality, ...] = tuple(Modality)


def _probs(names: Sequence[str], values: Sequence[float]) -> dict[str, float]:
    if len(values) != len(names):
        raise ValueError(f"expected {len(names)} probabilities, got {len(values)}")
    return {name: float(v) for name, v in zip(names, values)}


@dataclass(frozen=True)
class AffectEstimate:
    """What is felt: emotion and sentiment distributions, valence and arousal, and a confidence.

    ``emotions`` maps each of the 7 emotion names to a probability (they sum to 1);
    ``sentiments`` maps negative/neutral/positive to probabilities; ``valence`` and ``arousal``
    are in [-1, 1]; ``confidence`` is the probability of the top emotion. ``emotion`` and
    ``sentiment`` are the top labels.
    """

    emotions: Mapping[str, float]
    sentiments: Mapping[str, float]
    valence: float
    arousal: float
    confidence: float

    @property
    def emotion(self) -> Emotion:
        """The most probable emotion."""
        return Emotion(max(self.emotions, key=self.emotions.__getitem__))

    @property
    def sentiment(self) -> Sentiment:
        """The most probable sentiment."""
        return Sentiment(max(self.sentiments, key=self.sentiments.__getitem__))

    @property
    def sentiment_label(self) -> Sentiment:
        """The most probable sentiment (the older name of ``sentiment``)."""
        return self.sentiment

    def emotion_vector(self) -> list[float]:
        return [self.emotions[name] for name in EMOTION_NAMES]

    def sentiment_vector(self) -> list[float]:
        return [self.sentiments[name] for name in SENTIMENT_NAMES]

    def estimate_dict(self) -> dict[str, Any]:
        """The estimate's own fields as JSON-ready data (shared by every result's ``to_dict``)."""
        return {
            "emotion": self.emotion.value,
            "emotions": dict(self.emotions),
            "sentiment": self.sentiment.value,
            "sentiments": dict(self.sentiments),
            "valence": self.valence,
            "arousal": self.arousal,
            "confidence": self.confidence,
        }

    @staticmethod
    def estimate_fields(data: Mapping[str, Any]) -> dict[str, Any]:
        """Keyword arguments of the estimate's fields, read back from ``estimate_dict`` data
        (``sentiment_probs`` is how files written before the names were unified call ``sentiments``)."""
        return {
            "emotions": dict(data["emotions"]),
            "sentiments": dict(data["sentiments"] if "sentiments" in data else data["sentiment_probs"]),
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
            "sentiments": _probs(SENTIMENT_NAMES, sentiment_probs),
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
    track_id: int | None = None  # the same face in the conversation's earlier images has the same id (from 1)

    def to_dict(self) -> dict[str, Any]:
        return {"image_index": self.image_index, "box": [self.x, self.y, self.width, self.height],
                "detection_score": self.detection_score, "track_id": self.track_id, **self.result.to_dict()}


# What an Analyzer reports while it loads its models (its ``on_progress`` hook).

@dataclass(frozen=True)
class ModelLoadEvent:
    """One model an ``Analyzer`` loads: told once with ``stage="start"`` before it is read, and
    once with ``"done"`` when it is ready to run (on its runtime), with what was loaded.

    ``model`` is the modality (``"face"``, ``"speech"``, ``"text"``) or ``"forecast"``;
    ``model_id`` (``name@version``), ``runtime`` and ``seconds`` (since its start) come with
    ``"done"`` only, ``None`` at the start."""

    model: str
    stage: Literal["start", "done"]
    model_id: str | None = None
    runtime: str | None = None
    seconds: float | None = None


# The conversation's state after a turn (computed by affect.state.ConversationState).

@dataclass(frozen=True)
class Event:
    """Something a service agent cares about, raised by one turn."""

    kind: str  # "sustained_negative_shift", "rising_anger", "negative_recovered" or "escalation_risk"
    speaker: str | None
    turn_index: int
    value: float
    message: str


@dataclass(frozen=True)
class SpeakerSnapshot:
    speaker: str | None
    turns: int
    valence: float
    arousal: float
    dominant_emotion: str


@dataclass(frozen=True)
class SpeakerForecast:
    """How a speaker's next turn is likely to feel: P(negative sentiment) and P(anger)."""

    speaker: str | None
    negative: float
    anger: float


@dataclass(frozen=True)
class StateSnapshot:
    """The conversation after a turn."""

    turns: int
    valence: float
    arousal: float
    valence_trend: float
    arousal_trend: float
    speakers: tuple[SpeakerSnapshot, ...] = ()
    forecast: tuple[SpeakerForecast, ...] = ()  # next turn, per recent speaker (most recent first)

    def to_dict(self) -> dict:
        return {
            "turns": self.turns, "valence": self.valence, "arousal": self.arousal,
            "valence_trend": self.valence_trend, "arousal_trend": self.arousal_trend,
            "speakers": [dict(s.__dict__) for s in self.speakers],  # copies: editing the dict leaves the result
            "forecast": [dict(f.__dict__) for f in self.forecast],
        }


@dataclass(frozen=True)
class TurnResult:
    """The fused answer for one turn of a conversation.

    ``fused`` is the turn's reading, or ``None`` when no modality gave one (every modality sent
    was absent: silence, no face); ``emotion``, ``emotions``, ``sentiment``, ``sentiments``,
    ``valence``, ``arousal`` and ``confidence`` read through to it and are ``None`` then too.
    ``present`` lists the modalities that contributed; ``modalities`` holds each one's own
    result; ``absent`` says why a modality that was sent gave no result (for example
    ``{"face": "no face detected"}``); ``shares`` is each present modality's share in the answer;
    ``state`` is how the conversation stands after this turn and ``events`` what this turn raised.
    A turn without a reading leaves the conversation's state as it was and raises no event.
    """

    fused: AffectEstimate | None
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

    @property
    def has_reading(self) -> bool:
        return self.fused is not None

    @property
    def no_reading_reason(self) -> str | None:
        """Why there is no reading ("speech: no speech detected; face: no face detected"), or
        ``None`` when there is one."""
        if self.fused is not None:
            return None
        return "; ".join(f"{m.value}: {why}" for m, why in self.absent.items()) or "nothing was sent"

    @property
    def emotion(self) -> Emotion | None:
        return self.fused.emotion if self.fused else None

    @property
    def emotions(self) -> Mapping[str, float] | None:
        return self.fused.emotions if self.fused else None

    @property
    def sentiment(self) -> Sentiment | None:
        return self.fused.sentiment if self.fused else None

    @property
    def sentiment_label(self) -> Sentiment | None:
        """The older name of ``sentiment``."""
        return self.sentiment

    @property
    def sentiments(self) -> Mapping[str, float] | None:
        return self.fused.sentiments if self.fused else None

    @property
    def valence(self) -> float | None:
        return self.fused.valence if self.fused else None

    @property
    def arousal(self) -> float | None:
        return self.fused.arousal if self.fused else None

    @property
    def confidence(self) -> float | None:
        return self.fused.confidence if self.fused else None

    def to_dict(self) -> dict[str, Any]:
        reading = self.fused.estimate_dict() if self.fused else dict.fromkeys(_ESTIMATE_KEYS)
        return {
            "turn_index": self.turn_index,
            "speaker": self.speaker,
            "present": [m.value for m in self.present],
            **reading,
            "shares": {m.value: s for m, s in self.shares.items()},
            "fusion": self.fusion,
            "modalities": {m.value: r.to_dict() for m, r in self.modalities.items()},
            "absent": {m.value: why for m, why in self.absent.items()},
            "state": self.state.to_dict() if self.state else None,
            "events": [dict(e.__dict__) for e in self.events],
            "faces": [f.to_dict() for f in self.faces],
        }

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    def to_row(self) -> dict[str, Any]:
        """One flat row for a table (CSV, a DataFrame): see ``affect.export``."""
        from affect.export import turn_row

        return turn_row(self.to_dict())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TurnResult":
        return cls(
            fused=AffectEstimate(**AffectEstimate.estimate_fields(data)) if data.get("emotions") else None,
            turn_index=int(data["turn_index"]),
            speaker=data.get("speaker"),
            present=tuple(Modality(m) for m in data["present"]),
            modalities={Modality(m): ModalityResult.from_dict(r) for m, r in data.get("modalities", {}).items()},
            absent={Modality(m): why for m, why in data.get("absent", {}).items()},
            shares={Modality(m): float(s) for m, s in data.get("shares", {}).items()},
            fusion=str(data.get("fusion", "")),
            state=_state_from_dict(data.get("state")),
            events=tuple(_event_from_dict(e) for e in data.get("events", ())),
            faces=tuple(_face_from_dict(f) for f in data.get("faces", ())),
        )


_ESTIMATE_KEYS = ("emotion", "emotions", "sentiment", "sentiments", "valence", "arousal", "confidence")


class TurnResults(list["TurnResult"]):
    """The results of several turns (a conversation, a folder of files): a list that also
    converts to a table. ``to_pandas()`` needs pandas (``pip install pandas``)."""

    def to_rows(self) -> list[dict[str, Any]]:
        return [r.to_row() for r in self]

    def to_pandas(self) -> Any:
        from affect.export import to_pandas

        return to_pandas(self.to_rows())


def _state_from_dict(data: Mapping[str, Any] | None) -> StateSnapshot | None:
    if not data:
        return None
    speakers = tuple(SpeakerSnapshot(**s) for s in data.get("speakers", ()))
    forecast = tuple(SpeakerForecast(**f) for f in data.get("forecast", ()))
    return StateSnapshot(**{**data, "speakers": speakers, "forecast": forecast})


def _event_from_dict(data: Mapping[str, Any]) -> Event:
    return Event(**data)


def _face_from_dict(data: Mapping[str, Any]) -> FaceReading:
    x, y, width, height = data["box"]
    return FaceReading(data["image_index"], x, y, width, height, data["detection_score"], ModalityResult.from_dict(data),
                       data.get("track_id"))


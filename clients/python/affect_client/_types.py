"""Typed results, as the client sees them (no dependency on the affect library).

The names, types and ``to_dict()`` keys are the library's (``affect.results``): ``emotion`` is
the top label and ``emotions`` the distribution, ``sentiment`` the top label and ``sentiments``
the distribution; the labels and modalities are string enums that print as their value and
compare equal to it (``result.emotion == "anger"``). A turn without a reading has ``fused``
``None`` and so are ``emotion``, ``valence`` and the rest; ``absent`` says why.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Mapping, TypeVar

from affect_proto import affect_pb2 as pb


class _Label(str, Enum):
    """A string enum that prints as its value, alone and inside containers."""

    def __str__(self) -> str:
        return self.value

    def __repr__(self) -> str:
        return repr(self.value)

    def __format__(self, format_spec: str) -> str:
        return str.__format__(self, format_spec)


class Emotion(_Label):
    NEUTRAL = "neutral"
    HAPPINESS = "happiness"
    SADNESS = "sadness"
    ANGER = "anger"
    FEAR = "fear"
    DISGUST = "disgust"
    SURPRISE = "surprise"


class Sentiment(_Label):
    NEGATIVE = "negative"
    NEUTRAL = "neutral"
    POSITIVE = "positive"


class Modality(_Label):
    """In the library's one order of modalities (``affect.results.Modality``)."""

    FACE = "face"
    SPEECH = "speech"
    TEXT = "text"


MODALITY_NAMES: dict[int, Modality] = {pb.TEXT: Modality.TEXT, pb.SPEECH: Modality.SPEECH, pb.FACE: Modality.FACE}
_L = TypeVar("_L", bound=_Label)


def _modality(value: int) -> Modality | str:
    """The modality, or ``"modality_<n>"`` for one this client does not know (a newer server), as
    ``_label`` does for labels."""
    return MODALITY_NAMES.get(value, f"modality_{value}")


def _label(cls: type[_L], value: str) -> _L | str:
    """The enum member, or the plain string for a label this client does not know (a newer server)."""
    try:
        return cls(value)
    except ValueError:
        return value


@dataclass(frozen=True)
class Affect:
    """What is felt: the library's ``AffectEstimate``. Emotion (7 labels) and sentiment (3)
    distributions with their top labels, valence and arousal in [-1, 1], and the probability of
    the top emotion as ``confidence``."""

    emotion: Emotion | str  # a label this client does not know (a newer server) stays a string
    emotions: Mapping[str, float]
    sentiment: Sentiment | str
    sentiments: Mapping[str, float]
    valence: float
    arousal: float
    confidence: float

    @property
    def sentiment_label(self) -> Sentiment | str:
        """The library's older name of ``sentiment``."""
        return self.sentiment

    def estimate_dict(self) -> dict[str, Any]:
        return {"emotion": str(self.emotion), "emotions": dict(self.emotions), "sentiment": str(self.sentiment),
                "sentiments": dict(self.sentiments), "valence": self.valence, "arousal": self.arousal,
                "confidence": self.confidence}

    to_dict = estimate_dict

    @staticmethod
    def fields_from_pb(m: pb.Affect) -> dict[str, Any]:
        return {
            "emotion": _label(Emotion, m.emotion),
            "emotions": {p.label: p.probability for p in m.emotions},
            "sentiment": _label(Sentiment, m.sentiment),
            "sentiments": {p.label: p.probability for p in m.sentiments},
            "valence": m.valence,
            "arousal": m.arousal,
            "confidence": m.confidence,
        }

    @classmethod
    def from_pb(cls, m: pb.Affect) -> "Affect":
        return cls(**cls.fields_from_pb(m))


AffectEstimate = Affect  # the library's name


@dataclass(frozen=True)
class ModalityResult(Affect):
    """One modality's own reading of a turn; ``model`` is ``name@version`` of the weights used.
    For the face, ``faces`` holds every face found (also in ``TurnResult.faces``)."""

    modality: Modality | str = Modality.TEXT
    model: str = ""
    faces: tuple["Face", ...] = ()

    @property
    def affect(self) -> Affect:
        """The reading alone (how earlier versions of this client nested it)."""
        return Affect(**{k: getattr(self, k) for k in Affect.__dataclass_fields__})

    def to_dict(self) -> dict[str, Any]:
        return {"modality": str(self.modality), "model": self.model, **self.estimate_dict()}


@dataclass(frozen=True)
class Face:
    """One face found in a turn's images (the library's ``FaceReading``): which image, its box
    in pixels, the detector's score, and its reading."""

    image_index: int
    x: int
    y: int
    width: int
    height: int
    detection_score: float
    result: ModalityResult
    track_id: int | None = None  # the same face in the conversation's earlier images has the same id (from 1)

    @property
    def affect(self) -> Affect:
        return self.result.affect

    def to_dict(self) -> dict[str, Any]:
        return {"image_index": self.image_index, "box": [self.x, self.y, self.width, self.height],
                "detection_score": self.detection_score, "track_id": self.track_id, **self.result.to_dict()}


FaceReading = Face  # the library's name


@dataclass(frozen=True)
class SpeakerState:
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
class ConversationState:
    """How the conversation stands after a turn (the library's ``StateSnapshot``)."""

    turns: int
    valence: float
    arousal: float
    valence_trend: float
    arousal_trend: float
    speakers: tuple[SpeakerState, ...] = ()
    forecast: tuple[SpeakerForecast, ...] = ()  # next turn, per recent speaker (most recent first)

    def to_dict(self) -> dict[str, Any]:
        return {"turns": self.turns, "valence": self.valence, "arousal": self.arousal,
                "valence_trend": self.valence_trend, "arousal_trend": self.arousal_trend,
                "speakers": [dict(s.__dict__) for s in self.speakers],
                "forecast": [dict(f.__dict__) for f in self.forecast]}


@dataclass(frozen=True)
class Event:
    kind: str
    speaker: str | None
    turn_index: int
    value: float
    message: str


@dataclass(frozen=True)
class TurnResult:
    """The answer to one turn: the fused reading, each modality's own, and the conversation state.

    ``fused`` is ``None`` when no modality gave a reading; ``emotion``, ``emotions``,
    ``sentiment``, ``sentiments``, ``valence``, ``arousal`` and ``confidence`` read through to it.
    ``resumed``: this turn's stream had ended (a server restart) and the conversation was carried
    to a new one before this turn was sent again (``affect_client._resume``); ``replayed``: how many
    earlier turns' texts the new stream read before it (fewer than were kept when the new server
    refused some, e.g. a smaller text limit). Both the client's own fields.
    """

    turn_id: str
    turn_index: int
    speaker: str | None
    fused: Affect | None
    present: tuple[Modality | str, ...]  # a modality this client does not know stays a string (see _modality)
    modalities: Mapping[Modality | str, ModalityResult] = field(default_factory=dict)
    absent: Mapping[Modality | str, str] = field(default_factory=dict)
    shares: Mapping[Modality | str, float] = field(default_factory=dict)
    fusion: str = ""
    state: ConversationState | None = None
    events: tuple[Event, ...] = ()
    faces: tuple[Face, ...] = ()
    resumed: bool = False
    replayed: int = 0

    @property
    def has_reading(self) -> bool:
        return self.fused is not None

    @property
    def no_reading_reason(self) -> str | None:
        """Why there is no reading ("speech: no speech detected; face: no face detected")."""
        if self.fused is not None:
            return None
        return "; ".join(f"{m}: {why}" for m, why in self.absent.items()) or "nothing was sent"

    @property
    def emotion(self) -> Emotion | str | None:
        return self.fused.emotion if self.fused else None

    @property
    def emotions(self) -> Mapping[str, float] | None:
        return self.fused.emotions if self.fused else None

    @property
    def sentiment(self) -> Sentiment | str | None:
        return self.fused.sentiment if self.fused else None

    @property
    def sentiment_label(self) -> Sentiment | str | None:
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
        """The library's ``TurnResult.to_dict()`` keys, and ``turn_id``, ``resumed`` and ``replayed``."""
        reading = self.fused.estimate_dict() if self.fused else dict.fromkeys(
            ("emotion", "emotions", "sentiment", "sentiments", "valence", "arousal", "confidence"))
        return {
            "turn_id": self.turn_id,
            "turn_index": self.turn_index,
            "speaker": self.speaker,
            "present": [str(m) for m in self.present],
            **reading,
            "shares": {str(m): s for m, s in self.shares.items()},
            "fusion": self.fusion,
            "modalities": {str(m): r.to_dict() for m, r in self.modalities.items()},
            "absent": {str(m): why for m, why in self.absent.items()},
            "state": self.state.to_dict() if self.state else None,
            "events": [dict(e.__dict__) for e in self.events],
            "faces": [f.to_dict() for f in self.faces],
            "resumed": self.resumed,
            "replayed": self.replayed,
        }

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_pb(cls, m: pb.TurnResult) -> "TurnResult":
        state = None
        if m.HasField("state"):
            s = m.state
            state = ConversationState(
                turns=s.turns, valence=s.valence, arousal=s.arousal, valence_trend=s.valence_trend,
                arousal_trend=s.arousal_trend,
                speakers=tuple(SpeakerState(p.speaker or None, p.turns, p.valence, p.arousal, p.dominant_emotion)
                               for p in s.speakers),
                forecast=tuple(SpeakerForecast(f.speaker or None, f.negative, f.anger) for f in s.forecast),
            )
        modalities = {_modality(r.modality): _modality_result(r) for r in m.modalities}
        # A server older than the no-reading rule sent a uniform `fused` with nothing present.
        fused = Affect.from_pb(m.fused) if m.HasField("fused") and len(m.present) else None
        return cls(
            turn_id=m.turn_id,
            turn_index=m.turn_index,
            speaker=m.speaker or None,
            fused=fused,
            present=tuple(_modality(p) for p in m.present),
            modalities=modalities,
            absent={_modality(a.modality): a.reason for a in m.absent},
            shares={_modality(s.modality): s.share for s in m.shares},
            fusion=m.fusion,
            state=state,
            events=tuple(Event(e.kind, e.speaker or None, e.turn_index, e.value, e.message) for e in m.events),
            faces=modalities[Modality.FACE].faces if Modality.FACE in modalities else (),
        )


def _modality_result(r: pb.ModalityResult) -> ModalityResult:
    modality = _modality(r.modality)
    faces = tuple(
        Face(f.image_index, f.x, f.y, f.width, f.height, f.detection_score,
             ModalityResult(**Affect.fields_from_pb(f.affect), modality=modality, model=r.model),
             f.track_id or None)
        for f in r.faces
    )
    return ModalityResult(**Affect.fields_from_pb(r.affect), modality=modality, model=r.model, faces=faces)


@dataclass(frozen=True)
class ModelInfo:
    id: str
    modality: str
    version: str
    categories: tuple[str, ...]
    trained_on: str
    licence: str
    is_default: bool
    metrics: Mapping[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "categories": list(self.categories), "metrics": dict(self.metrics)}

    @classmethod
    def from_pb(cls, m: pb.ModelInfo) -> "ModelInfo":
        names = {pb.TEXT: "text", pb.SPEECH: "speech", pb.FACE: "face"}
        return cls(m.id, names.get(m.modality, "unspecified"), m.version, tuple(m.categories), m.trained_on,
                   m.licence, m.is_default, dict(m.metrics))


@dataclass(frozen=True)
class TurnLimits:
    """What a conversation's turns must fit, as its server told them on opening
    (``ConversationOpened.limits``): ``conversation.limits``. The client refuses a turn over one
    before sending it (``TurnTooLargeError`` for the message size, else ``TurnRefusedError``, as
    the server would). 0: not told (a server from before it told them; ``max_message_bytes`` behind
    Ray Serve's gRPC proxy, whose own limit applies): the client keeps to its own 16 MiB a message."""

    max_message_bytes: int = 0  # a request's size on the wire: the server's max_message_mb, in bytes
    max_text_chars: int = 0  # characters of a turn's text
    max_audio_seconds: float = 0.0  # seconds of a turn's audio
    max_audio_samples: int = 0  # samples x channels of a turn's audio, at its own rate
    max_image_pixels: int = 0  # width x height summed over a turn's images
    max_images: int = 0  # images a turn may carry

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_pb(cls, m: pb.TurnLimits) -> "TurnLimits":
        return cls(m.max_message_bytes, m.max_text_chars, m.max_audio_seconds, m.max_audio_samples, m.max_image_pixels,
                   m.max_images)

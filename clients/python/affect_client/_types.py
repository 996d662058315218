"""Typed results, as the client sees them (no dependency on the affect library)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from affect_client._proto import affect_pb2 as pb

MODALITY_NAMES = {pb.TEXT: "text", pb.SPEECH: "speech", pb.FACE: "face"}


@dataclass(frozen=True)
class Affect:
    """Emotion (7 labels) and sentiment (3) distributions, valence and arousal in [-1, 1]."""

    emotion: str
    emotions: Mapping[str, float]
    sentiment: str
    sentiments: Mapping[str, float]
    valence: float
    arousal: float
    confidence: float

    @classmethod
    def from_pb(cls, m: pb.Affect) -> "Affect":
        return cls(
            emotion=m.emotion,
            emotions={p.label: p.probability for p in m.emotions},
            sentiment=m.sentiment,
            sentiments={p.label: p.probability for p in m.sentiments},
            valence=m.valence,
            arousal=m.arousal,
            confidence=m.confidence,
        )


@dataclass(frozen=True)
class Face:
    x: int
    y: int
    width: int
    height: int
    detection_score: float
    image_index: int
    affect: Affect


@dataclass(frozen=True)
class ModalityResult:
    modality: str
    affect: Affect
    model: str
    faces: tuple[Face, ...] = ()


@dataclass(frozen=True)
class SpeakerState:
    speaker: str
    turns: int
    valence: float
    arousal: float
    dominant_emotion: str


@dataclass(frozen=True)
class ConversationState:
    turns: int
    valence: float
    arousal: float
    valence_trend: float
    arousal_trend: float
    speakers: tuple[SpeakerState, ...] = ()


@dataclass(frozen=True)
class Event:
    kind: str
    speaker: str
    turn_index: int
    value: float
    message: str


@dataclass(frozen=True)
class TurnResult:
    """The answer to one turn: the fused reading, each modality's own, and the conversation state."""

    turn_id: str
    turn_index: int
    speaker: str | None
    fused: Affect
    present: tuple[str, ...]
    modalities: Mapping[str, ModalityResult] = field(default_factory=dict)
    absent: Mapping[str, str] = field(default_factory=dict)
    shares: Mapping[str, float] = field(default_factory=dict)
    fusion: str = ""
    state: ConversationState | None = None
    events: tuple[Event, ...] = ()

    @property
    def emotion(self) -> str:
        return self.fused.emotion

    @property
    def sentiment(self) -> str:
        return self.fused.sentiment

    @classmethod
    def from_pb(cls, m: pb.TurnResult) -> "TurnResult":
        state = None
        if m.HasField("state"):
            s = m.state
            state = ConversationState(
                turns=s.turns, valence=s.valence, arousal=s.arousal, valence_trend=s.valence_trend,
                arousal_trend=s.arousal_trend,
                speakers=tuple(SpeakerState(p.speaker, p.turns, p.valence, p.arousal, p.dominant_emotion) for p in s.speakers),
            )
        return cls(
            turn_id=m.turn_id,
            turn_index=m.turn_index,
            speaker=m.speaker or None,
            fused=Affect.from_pb(m.fused),
            present=tuple(MODALITY_NAMES[p] for p in m.present),
            modalities={
                MODALITY_NAMES[r.modality]: ModalityResult(
                    modality=MODALITY_NAMES[r.modality], affect=Affect.from_pb(r.affect), model=r.model,
                    faces=tuple(Face(f.x, f.y, f.width, f.height, f.detection_score, f.image_index, Affect.from_pb(f.affect))
                                for f in r.faces),
                )
                for r in m.modalities
            },
            absent={MODALITY_NAMES[a.modality]: a.reason for a in m.absent},
            shares={MODALITY_NAMES[s.modality]: s.share for s in m.shares},
            fusion=m.fusion,
            state=state,
            events=tuple(Event(e.kind, e.speaker, e.turn_index, e.value, e.message) for e in m.events),
        )


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

    @classmethod
    def from_pb(cls, m: pb.ModelInfo) -> "ModelInfo":
        return cls(m.id, MODALITY_NAMES.get(m.modality, "unspecified"), m.version, tuple(m.categories), m.trained_on,
                   m.licence, m.is_default, dict(m.metrics))

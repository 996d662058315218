"""Between the wire (affect.v1 messages) and the library's types."""

from __future__ import annotations

from affect import InvalidInputError, Modality as LibModality, ModalityResult, Turn, TurnResult
from affect.labels import EMOTION_NAMES, SENTIMENT_NAMES
from affect.results import AffectEstimate
from affect_client._proto import affect_pb2 as pb

MAX_ID_CHARS = 128

MODALITY_TO_PB = {LibModality.TEXT: pb.TEXT, LibModality.SPEECH: pb.SPEECH, LibModality.FACE: pb.FACE}


def _short_string(value: str, field: str) -> str | None:
    if len(value) > MAX_ID_CHARS:
        raise InvalidInputError(f"{field} is longer than {MAX_ID_CHARS} characters", field=field)
    return value or None


def turn_from_pb(message: pb.Turn) -> Turn:
    """The library's Turn; raises ``InvalidInputError`` naming the field (``turn.*``)."""
    _short_string(message.turn_id, "turn.turn_id")
    speaker = _short_string(message.speaker, "turn.speaker")
    text: str | None = None
    if message.HasField("text"):
        try:
            text = message.text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInputError(f"turn.text is not valid UTF-8 (byte {exc.start})", field="turn.text") from None
    if message.HasField("audio"):
        raise InvalidInputError("this server has no speech model loaded", field="turn.audio")
    if len(message.images):
        raise InvalidInputError("this server has no face model loaded", field="turn.images")
    if text is None:
        raise InvalidInputError("a turn needs at least one of text, audio or images", field="turn")
    return Turn(text=text, speaker=speaker)


def affect_to_pb(estimate: AffectEstimate) -> pb.Affect:
    return pb.Affect(
        emotion=estimate.emotion.value,
        emotions=[pb.LabelProbability(label=n, probability=estimate.emotions[n]) for n in EMOTION_NAMES],
        sentiment=estimate.sentiment_label.value,
        sentiments=[pb.LabelProbability(label=n, probability=estimate.sentiment[n]) for n in SENTIMENT_NAMES],
        valence=estimate.valence,
        arousal=estimate.arousal,
        confidence=estimate.confidence,
    )


def modality_result_to_pb(result: ModalityResult) -> pb.ModalityResult:
    return pb.ModalityResult(modality=MODALITY_TO_PB[result.modality], affect=affect_to_pb(result), model=result.model)


def turn_result_to_pb(result: TurnResult, turn_id: str, *, include_modalities: bool = True) -> pb.TurnResult:
    return pb.TurnResult(
        turn_id=turn_id,
        turn_index=result.turn_index,
        speaker=result.speaker or "",
        fused=affect_to_pb(result),
        present=[MODALITY_TO_PB[m] for m in result.present],
        modalities=[modality_result_to_pb(r) for r in result.modalities.values()] if include_modalities else [],
        absent=[pb.AbsentModality(modality=MODALITY_TO_PB[m], reason=why) for m, why in result.absent.items()],
        shares=[pb.ModalityShare(modality=MODALITY_TO_PB[m], share=s) for m, s in result.shares.items()],
        fusion=result.fusion,
        state=state_to_pb(result.state) if result.state else None,
        events=[pb.ConversationEvent(kind=e.kind, speaker=e.speaker or "", turn_index=e.turn_index, value=e.value,
                                     message=e.message) for e in result.events],
    )


def state_to_pb(state) -> pb.ConversationState:
    return pb.ConversationState(
        turns=state.turns, valence=state.valence, arousal=state.arousal, valence_trend=state.valence_trend,
        arousal_trend=state.arousal_trend,
        speakers=[pb.SpeakerState(speaker=s.speaker or "", turns=s.turns, valence=s.valence, arousal=s.arousal,
                                  dominant_emotion=s.dominant_emotion) for s in state.speakers],
    )


def model_infos(rows: list[dict]) -> list[pb.ModelInfo]:
    modality = {"text": pb.TEXT, "speech": pb.SPEECH, "face": pb.FACE}
    return [
        pb.ModelInfo(
            id=r["id"], modality=modality.get(r["modality"], pb.MODALITY_UNSPECIFIED), version=r["id"].split("@")[-1],
            categories=r["categories"], trained_on=r["trained_on"], licence=r["licence"], is_default=r["default"],
            metrics={k: float(v) for k, v in r["metrics"].items()},
        )
        for r in rows
    ]


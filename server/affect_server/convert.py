"""Between the wire (affect.v1 messages) and the library's types."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from affect import InvalidInputError, Modality as LibModality, ModalityResult, Turn, TurnResult
from affect.face._input import check_size
from affect.labels import EMOTION_NAMES, SENTIMENT_NAMES
from affect.limits import check_event_speakers, check_id as check_id_rule, check_named_speaker, check_not_empty
from affect.results import AffectEstimate, FaceReading, StateSnapshot
from affect.state import StateThresholds, escalation_at
from affect.text.prior import PriorSpec, parse_prior
from affect_proto import affect_pb2 as pb
from affect_proto.encodings import RAW_AUDIO_DTYPES, RAW_IMAGE_CHANNELS, channels_problem

MODALITY_TO_PB = {LibModality.TEXT: pb.TEXT, LibModality.SPEECH: pb.SPEECH, LibModality.FACE: pb.FACE}


def check_id(value: str, field: str) -> str | None:
    """An id or name as the contract allows it (``affect.limits.check_id``); None if empty."""
    check_id_rule(value, field)
    return value or None


def text_prior_from_pb(options: pb.ConversationOptions) -> PriorSpec:
    """The conversation's text prior (``None``: the server's); raises ``InvalidInputError``
    naming ``options.text_prior``."""
    if not options.text_prior:
        return None
    try:
        return parse_prior(options.text_prior)
    except ValueError as exc:
        raise InvalidInputError(f"options.text_prior: {exc}", field="options.text_prior") from None


def thresholds_from_pb(options: pb.ConversationOptions) -> StateThresholds | None:
    """The conversation's event thresholds (``None``: the library's); raises ``InvalidInputError``
    naming ``options.escalation_anger``."""
    if not options.HasField("escalation_anger"):
        return None
    try:
        return escalation_at(options.escalation_anger)
    except ValueError as exc:
        raise InvalidInputError(f"options.{exc}", field="options.escalation_anger") from None


def event_speakers_from_pb(options: pb.ConversationOptions) -> tuple[str, ...]:
    """The speakers whose events the conversation raises (empty: everyone's); raises
    ``InvalidInputError`` naming ``options.event_speakers``."""
    return check_event_speakers(list(options.event_speakers), "options.event_speakers")


def reset_speaker_from_pb(message: pb.ResetSpeaker) -> str:
    """The speaker a ``ResetSpeaker`` starts anew; raises ``InvalidInputError`` naming ``reset_speaker.speaker``."""
    return check_named_speaker(message.speaker, "reset_speaker.speaker")


def turn_from_pb(message: pb.Turn) -> Turn:
    """The library's Turn; raises ``InvalidInputError`` naming the field (``turn.*``)."""
    check_id(message.turn_id, "turn.turn_id")
    speaker = check_id(message.speaker, "turn.speaker")
    text: str | None = None
    if message.HasField("text"):
        try:
            text = message.text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInputError(f"turn.text is not valid UTF-8 (byte {exc.start})", field="turn.text") from None
    audio, sample_rate = _audio(message.audio) if message.HasField("audio") else (None, None)
    images = [_image(image, i) for i, image in enumerate(message.images)]
    turn = Turn(text=text, speaker=speaker, audio=audio, sample_rate=sample_rate, images=images, channel_order="bgr")
    check_not_empty(turn)
    return turn


def _audio(audio: pb.Audio) -> tuple[bytes | np.ndarray, int | None]:
    if audio.encoding == pb.AUDIO_FILE:
        if not audio.data:
            raise InvalidInputError("turn.audio.data is empty", field="turn.audio.data")
        return bytes(audio.data), None
    if audio.encoding not in RAW_AUDIO_DTYPES:
        raise InvalidInputError("turn.audio.encoding must be PCM_S16LE, FLOAT32_LE or AUDIO_FILE",
                                field="turn.audio.encoding")
    if audio.sample_rate_hz == 0:
        raise InvalidInputError("turn.audio.sample_rate_hz is required for raw audio", field="turn.audio.sample_rate_hz")
    if problem := channels_problem(audio.channels):
        raise InvalidInputError(problem, field="turn.audio.channels")
    channels = audio.channels or 1
    dtype = np.dtype(RAW_AUDIO_DTYPES[audio.encoding])
    if len(audio.data) % (dtype.itemsize * channels):
        raise InvalidInputError(f"turn.audio.data is not a whole number of {channels}-channel {dtype.itemsize * 8}-bit frames",
                                field="turn.audio.data")
    samples = np.frombuffer(audio.data, dtype=dtype).astype(dtype.newbyteorder("="), copy=False)  # no copy on little-endian
    return (samples.reshape(-1, channels) if channels > 1 else samples), audio.sample_rate_hz


def _image(image: pb.Image, index: int) -> bytes | np.ndarray:
    field = f"turn.images[{index}]"
    if image.encoding == pb.ENCODED:
        return bytes(image.data)
    if image.encoding not in RAW_IMAGE_CHANNELS:
        raise InvalidInputError(f"{field}.encoding must be ENCODED, RAW_GRAY8, RAW_BGR8 or RAW_RGB8", field=f"{field}.encoding")
    channels = RAW_IMAGE_CHANNELS[image.encoding]
    if not image.width or not image.height:
        if not image.data:  # a picture of no pixels (0x0, or 0 rows): proto3 cannot tell a 0 from a field unset
            check_size(image.width, image.height, field)  # "turn.images[0] has zero size (0x0)", the library's words
        raise InvalidInputError(f"{field}: width and height are required for raw pixels (got {image.width}x{image.height} "
                                f"for {len(image.data):,} bytes)", field=f"{field}.width")
    if len(image.data) != image.width * image.height * channels:
        raise InvalidInputError(f"{field}.data has {len(image.data)} bytes; {image.width}x{image.height}x{channels} "
                                f"needs {image.width * image.height * channels}", field=f"{field}.data")
    pixels = np.frombuffer(image.data, dtype=np.uint8).reshape(image.height, image.width, channels)
    if channels == 1:
        return pixels[:, :, 0]
    return pixels[:, :, ::-1] if image.encoding == pb.RAW_RGB8 else pixels  # the turn is sent on as BGR


def affect_to_pb(estimate: AffectEstimate) -> pb.Affect:
    return pb.Affect(
        emotion=estimate.emotion.value,
        emotions=[pb.LabelProbability(label=n, probability=estimate.emotions[n]) for n in EMOTION_NAMES],
        sentiment=estimate.sentiment.value,
        sentiments=[pb.LabelProbability(label=n, probability=estimate.sentiments[n]) for n in SENTIMENT_NAMES],
        valence=estimate.valence,
        arousal=estimate.arousal,
        confidence=estimate.confidence,
    )


def modality_result_to_pb(result: ModalityResult, faces: Sequence[FaceReading] = ()) -> pb.ModalityResult:
    return pb.ModalityResult(
        modality=MODALITY_TO_PB[result.modality], affect=affect_to_pb(result), model=result.model,
        faces=[pb.FaceBox(x=f.x, y=f.y, width=f.width, height=f.height, detection_score=f.detection_score,
                          image_index=f.image_index, affect=affect_to_pb(f.result),
                          track_id=f.track_id or 0) for f in faces],
    )


def turn_result_to_pb(result: TurnResult, turn_id: str, *, include_modalities: bool = True) -> pb.TurnResult:
    return pb.TurnResult(
        turn_id=turn_id,
        turn_index=result.turn_index,
        speaker=result.speaker or "",
        fused=affect_to_pb(result.fused) if result.fused is not None else None,  # absent: no reading
        present=[MODALITY_TO_PB[m] for m in result.present],
        modalities=[modality_result_to_pb(r, result.faces if m is LibModality.FACE else ())
                    for m, r in result.modalities.items()] if include_modalities else [],
        absent=[pb.AbsentModality(modality=MODALITY_TO_PB[m], reason=why) for m, why in result.absent.items()],
        shares=[pb.ModalityShare(modality=MODALITY_TO_PB[m], share=s) for m, s in result.shares.items()],
        fusion=result.fusion,
        state=state_to_pb(result.state) if result.state else None,
        events=[pb.ConversationEvent(kind=e.kind, speaker=e.speaker or "", turn_index=e.turn_index, value=e.value,
                                     message=e.message) for e in result.events],
    )


def state_to_pb(state: StateSnapshot) -> pb.ConversationState:
    return pb.ConversationState(
        turns=state.turns, valence=state.valence, arousal=state.arousal, valence_trend=state.valence_trend,
        arousal_trend=state.arousal_trend,
        speakers=[pb.SpeakerState(speaker=s.speaker or "", turns=s.turns, valence=s.valence, arousal=s.arousal,
                                  dominant_emotion=s.dominant_emotion) for s in state.speakers],
        forecast=[pb.SpeakerForecast(speaker=f.speaker or "", negative=f.negative, anger=f.anger) for f in state.forecast],
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


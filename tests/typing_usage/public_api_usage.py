"""User code of the public API as README.md and clients/python/README.md show it, for the type
checker only (tests/test_typing.py runs mypy on it; nothing here is run, and pytest does not
collect it). A wrong annotation in the library or the client makes this file fail to check."""

from __future__ import annotations

import numpy as np

from affect import (
    Analyzer,
    Emotion,
    Modality,
    ModalityResult,
    ModelLoadEvent,
    Sentiment,
    TextWeights,
    Turn,
    TurnResult,
    TurnResults,
)
from affect.face import FaceEncoder, FaceWeights
from affect.speech import SpeechWeights
from affect_client import AffectClient, Audio, AsyncAffectClient, ClientOptions
from affect_client import TurnResult as ClientTurnResult


def on_progress(event: ModelLoadEvent) -> None:
    if event.stage == "done" and event.seconds is not None:
        print(f"loaded {event.model_id} on {event.runtime} in {event.seconds:.1f} s")


def library() -> None:
    analyzer = Analyzer(text_prior="conversational", runtime={"text": "onnx-int8"}, on_progress=on_progress,
                        encoder_options={"face": {"min_face_fraction": 0.3}})
    with analyzer.conversation(text_prior={"neutral": 0.8, "anger": 0.2}) as conversation:
        for speaker, text in [("caller", "My parcel is lost again."), ("agent", "I'm so sorry, let me check.")]:
            turn: TurnResult = conversation.analyze(text=text, speaker=speaker)
            emotion: Emotion | None = turn.emotion
            sentiment: Sentiment | None = turn.sentiment
            if turn.valence is not None and turn.state is not None:
                print(emotion, sentiment, round(turn.valence, 2), turn.state.valence_trend, [e.kind for e in turn.events])
            print(turn.to_json())
        result = conversation.analyze(Turn(text="Are you serious?", audio="turn.flac", image="frame.png", speaker="caller"))
        face: ModalityResult | None = result.modalities.get(Modality.FACE)
        shares: dict[str, float] = {m.value: round(s, 2) for m, s in result.shares.items()}
        print(face.emotion if face else None, shares, [f.width for f in result.faces], result.no_reading_reason)

    text_only = Analyzer(speech=None, face=None)
    results = TurnResults(text_only.analyze_conversation([Turn(text="Cancel my account, now!", speaker="caller")]))
    rows: list[dict[str, object]] = results.to_rows()
    silent = text_only.analyze(Turn(audio=np.zeros(32000, dtype=np.float32), sample_rate=16000))
    print(rows, silent.has_reading, TurnResult.from_dict(silent.to_dict()).present)

    weights: FaceWeights = FaceWeights.resolve("DEFAULT")
    encoder = FaceEncoder(weights=weights, detector="blazeface")
    chosen: FaceWeights = encoder.weights
    print(chosen.meta["metrics"], TextWeights.DEFAULT.meta["name"], SpeechWeights.DEFAULT.value.id)


def client() -> None:
    with AffectClient(options=ClientOptions(target="127.0.0.1:50051", timeout=5.0)) as client, \
            client.conversation(text_prior="conversational") as conversation:
        result: ClientTurnResult = conversation.send("My parcel is lost again.", speaker="caller")
        if result.confidence is not None and result.valence is not None:
            print(result.turn_index, result.speaker, result.emotion, f"{result.confidence:.2f}", result.sentiment,
                  f"{result.valence:+.2f}", result.present)
        result = conversation.send("Are you serious?", audio=Audio.from_file("turn.flac"), image="frame.png")
        print(result.emotion == "surprise", {m: round(s, 2) for m, s in result.shares.items()},
              {m: r.emotion for m, r in result.modalities.items()}, [f.width for f in result.faces])
        silent = conversation.send(audio=np.zeros(32000, dtype=np.float32), sample_rate=16000, speaker="caller")
        print(silent.emotion, silent.present, silent.no_reading_reason, silent.to_json()[:124])
    print([m.to_dict() for m in client.with_options(timeout=2.0).list_models()])


async def async_client() -> None:
    async with AsyncAffectClient() as client, client.conversation() as conversation:
        result = await conversation.send("Where is my refund?", speaker="caller")
        if result.valence is not None and result.state is not None:
            print(result.emotion, result.sentiment, f"{result.valence:+.2f}", result.state.valence_trend)
    one: ClientTurnResult = await client.analyze("Thank you!")
    print(one.to_dict())

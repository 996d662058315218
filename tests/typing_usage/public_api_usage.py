"""User code of the public API, for the type checker only (tests/test_typing.py runs mypy on it;
nothing here is run, and pytest does not collect it). The READMEs' ```python examples are checked
as they are written (test_typing.py reads them out of README.md and clients/python/README.md);
this file holds what the READMEs show in their prose (``Analyzer(on_progress=print)``,
``client.with_options(timeout=5)``, ...) and what a user reads off the results and the loaded
models. ``assert_type`` fails the check when an attribute's type is not exactly the one written
(``Any`` included), so a wrong or lost annotation in the library or the client makes this file
fail to check."""

from __future__ import annotations

import asyncio
import warnings
from pathlib import Path
from typing import assert_type

import numpy as np
import torch

import affect
from affect import (
    Analyzer,
    AudioInput,
    Emotion,
    FaceEncoder,
    ImageInput,
    Modality,
    ModalityResult,
    ModelLoadEvent,
    Sentiment,
    SpeechEncoder,
    TextEncoder,
    TextWeights,
    Turn,
    TurnResult,
    TurnResults,
    VideoInput,
)
from affect.face import FaceWeights, VideoFrameFaces, VideoIncompleteWarning
from affect.forecast import Forecaster
from affect.results import AffectEstimate, StateSnapshot
from affect.speech import SpeechResult, SpeechWeights
from affect.state import StateThresholds, escalation_at
from affect_client import (
    AffectClient,
    AsyncAffectClient,
    Audio,
    ClientOptions,
    ConversationTakenOverError,
    DeadlineExceededError,
    Image,
    InvalidInputError,
    ModelInfo,
    TurnLimits,
    TurnRefusedError,
    TurnTimeoutError,
    TurnTooLargeError,
)
from affect_client import AudioInput as ClientAudioInput
from affect_client import ImageInput as ClientImageInput
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
            reading: AffectEstimate | None = turn.fused  # one check gives every reading as a number
            if reading is not None:
                print(reading.emotion, f"{reading.confidence:.2f}", round(reading.valence, 2), round(reading.arousal, 2))
            print(turn.to_json())
        result = conversation.analyze(Turn(text="Are you serious?", audio="turn.flac", image="frame.png", speaker="caller"))
        face: ModalityResult | None = result.modalities.get(Modality.FACE)
        shares: dict[str, float] = {m.value: round(s, 2) for m, s in result.shares.items()}
        print(face.emotion if face else None, shares, [f.width for f in result.faces], result.no_reading_reason)
        print(conversation.analyze("Where is my refund?", speaker="caller").emotion)  # its text first
    state: StateSnapshot | None = result.state
    print(state.valence_trend if state else None)

    text_only = Analyzer(speech=None, face=None)
    with text_only.conversation(event_speakers=["customer"]) as watched:
        said = watched.analyze("I'm furious. Cancel my account now!", speaker="customer")
        if said.state is not None:
            print([f"{f.speaker} {f.anger:.2f}" for f in said.state.forecast], [e.kind for e in said.events])
        dropped: int = watched.reset_speaker("customer")
        print("reset:", dropped, "turns dropped", [(s.speaker, s.turns) for s in watched.state.snapshot().speakers])
    results = TurnResults(text_only.analyze_conversation([Turn(text="Cancel my account, now!", speaker="caller")]))
    rows: list[dict[str, object]] = results.to_rows()
    silent = text_only.analyze(Turn(audio=np.zeros(32000, dtype=np.float32), sample_rate=16000))
    print(rows, silent.has_reading, TurnResult.from_dict(silent.to_dict()).present)

    # The README's prose: progress, weights by name, encoder options, a conversation's thresholds.
    Analyzer(on_progress=print)
    Analyzer(face="VGG_DISTILLED_FER_V5", text=TextWeights.DEFAULT, speech=SpeechWeights.DEFAULT, forecast=False)
    Analyzer(encoder_options={"face": {"full_search_every": 1}, "speech": {"adapt": True},
                              "text": {"context_weight": 1.0}})
    text_only.conversation(thresholds=StateThresholds(escalation_anger=0.3))
    text_only.conversation(thresholds=escalation_at(0.3))

    # The loaded models, typed as their classes (None when left out), never Any.
    assert_type(analyzer.text, TextEncoder | None)
    assert_type(analyzer.speech, SpeechEncoder | None)
    assert_type(analyzer.face, FaceEncoder | None)
    assert_type(analyzer.forecaster, Forecaster | None)
    assert_type(affect.Analyzer, type[Analyzer])  # the package's lazy names are the classes
    if analyzer.speech is not None:
        clip: SpeechResult = analyzer.speech.analyze_file("turn.flac")
        print(clip.has_speech, clip.speech_seconds, analyzer.speech.model_id)
    if analyzer.face is not None:
        with warnings.catch_warnings(record=True) as caught:
            frames: list[VideoFrameFaces] = analyzer.face.analyze_video("call.mp4", fps=2, max_frames=600)
        for warning in caught:
            if isinstance(warning.message, VideoIncompleteWarning):
                print(warning.message.reason, warning.message.frames_read, warning.message.read_to_s)
        print([frame.analysis.faces for frame in frames])

    # Every kind of media the checks accept, typed as such (affect.media), never Any.
    pcm = np.zeros((2, 16000), dtype=np.int16)  # (channels, n)
    sounds: list[AudioInput] = [Path("turn.flac"), "turn.wav", b"RIFF", bytearray(b"OggS"), memoryview(b"fLaC"), pcm,
                                torch.zeros(16000)]
    pictures: list[ImageInput] = [Path("frame.png"), "frame.jpg", b"\x89PNG", np.zeros((48, 64, 3), dtype=np.uint8)]
    for sound in sounds:
        text_only.analyze(audio=sound, sample_rate=16000, images=pictures, channel_order="rgb")
    framed = Turn(audio=pcm, sample_rate=8000, image=pictures[0])
    assert_type(framed.audio, AudioInput | None)
    assert_type(framed.image, ImageInput | None)
    assert_type(framed.all_images(), list[ImageInput])
    video: VideoInput = Path("call.mp4")
    if analyzer.face is not None:
        print(analyzer.face.analyze(pictures[3], channel_order="rgb").faces, len(analyzer.face.analyze_video(video)))

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
        # Every kind of media the client sends, typed as such (numpy arrays by their shape: numpy is no dependency).
        sounds: list[ClientAudioInput] = [Path("turn.flac"), "turn.wav", b"RIFF", np.zeros(8000, dtype=np.int16),
                                          Audio.from_array(np.zeros((8000, 2), dtype=np.float32), 16000),
                                          Audio.pcm16(bytes(3200), 16000)]
        pictures: list[ClientImageInput] = [Path("frame.png"), b"\x89PNG", np.zeros((48, 64), dtype=np.uint8),
                                            Image.from_file("frame.jpg"), Image.from_array(np.zeros((48, 64, 3), np.uint8),
                                                                                           channel_order="bgr")]
        for sound in sounds:
            conversation.send(audio=sound, sample_rate=16000, images=pictures, channel_order="bgr", speaker="caller")
        models: list[ModelInfo] = conversation.models
        print(conversation.id, conversation.resumes, result.resumed, result.replayed, [m.to_dict() for m in models])
    print([m.to_dict() for m in client.with_options(timeout=2.0).list_models()])
    with AffectClient() as console, console.conversation(event_speakers=["customer"]) as watched:
        said = watched.send("I'm furious. Cancel my account now!", speaker="customer")
        held: int = watched.reset_speaker("customer")
        if said.state is not None:
            print(said.turn_index, [(s.speaker, s.turns) for s in said.state.speakers], [e.message for e in said.events], held)

    # The README's prose: settings, a conversation's prior and escalation level, the errors' fields.
    with AffectClient("127.0.0.1:50051", token="s3cret", tls=True, root_certificates=b"PEM", timeout=5.0,
                      max_retries=6, resume_turns=8, keepalive_s=15.0) as configured:
        patient = configured.with_options(timeout=5, busy_retries=3)
        with patient.conversation(text_prior={"neutral": 0.8, "anger": 0.2}, escalation_anger=0.3) as conversation:
            limits: TurnLimits = conversation.limits
            print(limits.max_message_bytes, limits.max_text_chars, limits.max_audio_seconds, limits.to_dict())
            try:
                conversation.send("Where is my refund?", speaker="caller")
            except TurnTooLargeError as too_large:
                print(too_large.size, too_large.limit, too_large.field, too_large.code)
            except TurnRefusedError as refused:
                print(refused.code)
            except TurnTimeoutError as slow:
                print(slow.code, conversation.send("Are you there?", speaker="caller").turn_index)
            except DeadlineExceededError as late:
                print(late.reason == "idle", conversation.resumes)
            except ConversationTakenOverError as taken:
                print(taken.code, taken.reason == "taken_over")
            except InvalidInputError as invalid:
                print(invalid.field)
        print(configured.analyze("Thank you!", text_prior="conversational").emotion)


async def async_client() -> None:
    async with AsyncAffectClient() as client, client.conversation() as conversation:
        result = await conversation.send("Where is my refund?", speaker="caller")
        if result.valence is not None and result.state is not None:
            print(result.emotion, result.sentiment, f"{result.valence:+.2f}", result.state.valence_trend)
    one: ClientTurnResult = await client.analyze("Thank you!")
    await client.analyze(audio=Path("turn.flac"), image=np.zeros((48, 64), dtype=np.uint8))
    print(one.to_dict())
    await asyncio.wait_for(client.with_options(turn_timeout=10.0).analyze("Hello?"), timeout=30)
    async with AsyncAffectClient() as client, client.conversation(event_speakers=("customer",)) as watched:
        await watched.send("I'm furious. Cancel my account now!", speaker="customer")
        dropped: int = await watched.reset_speaker("customer")
        print(dropped)

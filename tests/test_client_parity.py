"""The library and the client speak one vocabulary: the same conversation through both gives the
same fields, names and types, and the client takes the inputs the library takes."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import soundfile as sf

from affect import Analyzer
from affect_client import AffectClient, Emotion, InvalidInputError, Modality, Sentiment
from tests._serving import ServerThread
from tests.conftest import framed_face_png


@pytest.fixture(scope="module")
def media(tmp_path_factory, data_root: Path) -> dict:
    folder = tmp_path_factory.mktemp("media")
    face = folder / "face.png"
    face.write_bytes(framed_face_png(data_root, "happy"))
    clip = sorted((data_root / "speech" / "ravdess-test-slice" / "Actor_23").glob("*.flac"))[12]
    samples, rate = sf.read(clip, dtype="float32")
    return {
        "face_path": str(face),
        "face_bgr": cv2.imread(str(face), cv2.IMREAD_COLOR),
        "clip_path": str(clip),
        "clip_bytes": clip.read_bytes(),
        "clip_int16": (np.clip(samples, -1, 1) * 32767).astype(np.int16),
        "rate": rate,
        "silence": np.zeros(16000 * 2, dtype=np.float32),
        "blank": np.full((240, 320), 128, np.uint8),
    }


def _script(m: dict) -> list[dict]:
    """One conversation, each turn in a form both the library and the client accept."""
    return [
        {"text": "Hi, I ordered a present for my daughter and it never came.", "speaker": "caller"},
        {"text": "I'm so sorry, let me look into it.", "speaker": "agent", "image": m["face_path"]},
        {"audio": m["clip_path"], "speaker": "caller"},
        {"audio": m["silence"], "sample_rate": 16000, "image": m["blank"], "speaker": "caller"},  # no reading
        {"text": "Are you serious? Her birthday is on Saturday!", "speaker": "caller", "audio": m["clip_bytes"],
         "images": [m["face_bgr"]], "channel_order": "bgr"},
        {"audio": m["clip_int16"], "sample_rate": m["rate"], "speaker": "caller"},
    ]


def _assert_same(lib, got, where: str = "") -> None:
    """Field by field: the same keys, the same values (floats to float32 precision on the wire)."""
    if isinstance(lib, dict):
        assert isinstance(got, dict) and set(got) == set(lib), (where, sorted(set(got) ^ set(lib)))
        for key in lib:
            _assert_same(lib[key], got[key], f"{where}.{key}")
    elif isinstance(lib, (list, tuple)):
        assert isinstance(got, (list, tuple)) and len(got) == len(lib), where
        for i, (a, b) in enumerate(zip(lib, got)):
            _assert_same(a, b, f"{where}[{i}]")
    elif isinstance(lib, float):
        assert got == pytest.approx(lib, abs=2e-4), where
    else:
        assert got == lib and type(got) is type(lib), (where, lib, got)


def test_the_same_conversation_through_library_and_client_gives_the_same_results(full_analyzer, media):
    script = _script(media)
    with full_analyzer.conversation() as conversation:
        expected = [conversation.analyze(**turn) for turn in script]
    with ServerThread(full_analyzer, max_turns_per_second=1000) as server:
        with AffectClient(server.target) as client, client.conversation() as conversation:
            got = [conversation.send(**turn) for turn in script]

    assert [r.has_reading for r in expected] == [True, True, True, False, True, True]
    for i, (e, g) in enumerate(zip(expected, got)):
        lib, wire = e.to_dict(), g.to_dict()
        assert (wire.pop("turn_id"), wire.pop("resumed"), wire.pop("replayed")) == ("", False, 0)  # the client's own fields
        _assert_same(lib, wire, f"turn {i}")
        # attributes too, with the same names and types
        assert g.emotion == e.emotion and g.sentiment == e.sentiment and g.present == e.present
        if e.has_reading:
            assert isinstance(g.emotion, Emotion) and isinstance(g.sentiment, Sentiment)
            assert str(g.emotion) == e.emotion.value and f"{g.sentiment}" == e.sentiment.value
            assert g.sentiments == pytest.approx(dict(e.sentiments), abs=1e-6)
        assert all(isinstance(m, Modality) for m in g.present)

    silent = got[3]
    assert silent.fused is None and silent.emotion is None and silent.valence is None and silent.present == ()
    assert silent.no_reading_reason == expected[3].no_reading_reason == "speech: no speech detected; face: no face detected"
    assert silent.state == got[2].state  # the state ignored the turn
    assert silent.to_json() and got[1].faces and got[1].faces[0].result.model.startswith("face-")


def test_client_reads_target_and_token_from_the_environment(analyzer, monkeypatch):
    with ServerThread(analyzer, token="s3cret") as server:
        monkeypatch.setenv("AFFECT_TARGET", server.target)
        monkeypatch.setenv("AFFECT_TOKEN", "s3cret")
        with AffectClient() as client:
            assert client.options.target == server.target and client.options.token == "s3cret"
            assert client.analyze("Thanks, that was quick!").has_reading
        with AffectClient(server.target, token="other") as client:  # arguments win over the environment
            assert client.options.token == "other"


@pytest.mark.parametrize("kwargs, field", [
    ({"audio": "/no/such/clip.wav"}, "audio"),
    ({"audio": np.zeros(100, np.float32)}, "sample_rate"),
    ({"audio": np.zeros(100, np.int32), "sample_rate": 16000}, "audio"),
    ({"image": np.zeros((8, 8, 3), np.uint8)}, "channel_order"),
    ({"image": np.zeros((8, 8), np.float32)}, "image"),  # the argument the user wrote, not the wire's list
    ({"image": "."}, "image"),
    ({"image": np.zeros((8, 8), np.uint8), "images": [np.zeros((8, 8), np.uint8), "."]}, "images[1]"),
    ({"images": "face.png"}, "images"),
])
def test_client_refuses_what_it_cannot_send_before_sending(kwargs, field):
    """An ``InvalidInputError`` (a ``ValueError``) as always, and one turn's refusal too
    (``TurnInputError``, a ``TurnRefusedError``), as the same turn over a limit its server told is."""
    from affect_client import TurnInputError

    with AffectClient("127.0.0.1:9") as client:  # nothing listens: the error must come first
        with pytest.raises(InvalidInputError) as refused:
            client.analyze(**kwargs)
    assert refused.value.field == field and isinstance(refused.value, ValueError)
    assert isinstance(refused.value, TurnInputError) and refused.value.code.name == "INVALID_ARGUMENT"


def test_the_sync_and_async_twins_offer_the_same_calls_alike():
    """httpx's habit: the blocking and asyncio clients have the same methods, arguments, defaults
    and documentation (the async conversation alone has ``open()``, which ``async with`` calls)."""
    import inspect

    from affect_client import AsyncAffectClient, AsyncConversation, Conversation

    def public(cls: type) -> dict[str, object]:
        return {n: getattr(cls, n) for n in dir(cls) if not n.startswith("_") and callable(getattr(cls, n))}

    def properties(cls: type) -> set[str]:
        return {n for n in dir(cls) if not n.startswith("_") and isinstance(getattr(cls, n), property)}

    assert properties(Conversation) == properties(AsyncConversation) == {"resumes", "limits"}
    for sync_cls, async_cls in ((AffectClient, AsyncAffectClient), (Conversation, AsyncConversation)):
        sync_calls, async_calls = public(sync_cls), public(async_cls)
        assert set(sync_calls) == set(async_calls) - {"open"}, (sync_cls, set(sync_calls) ^ set(async_calls))
        for name, call in sync_calls.items():
            twin = async_calls[name]
            assert list(inspect.signature(call).parameters.values()) == list(inspect.signature(twin).parameters.values()), name
            assert inspect.getdoc(call) and inspect.getdoc(twin), f"{sync_cls.__name__}.{name} or its twin has no docstring"


def test_the_typed_settings_are_the_options_fields():
    """``AffectClient(target, **settings)`` and ``with_options(**changes)`` take typed keywords
    (``ClientSettings``, ``CallSettings``), so that mypy catches a misspelt one: they name every
    field of ``ClientOptions`` (the target apart: the first argument), and the copy's keywords
    leave out exactly the connection's own, which ``with_options`` refuses at run time."""
    from dataclasses import fields

    from affect_client import ClientOptions
    from affect_client._core import CONNECTION_OPTIONS, CallSettings, ClientSettings

    settings, changes = set(ClientSettings.__annotations__), set(CallSettings.__annotations__)
    assert settings | {"target"} == {f.name for f in fields(ClientOptions)}
    assert "target" not in settings and changes < settings
    assert settings - changes == CONNECTION_OPTIONS - {"target"}


_CLIP = np.sin(np.arange(16000) / 8.0).astype(np.float32) * 0.1


@pytest.mark.parametrize("kwargs, field", [
    ({"audio": _CLIP, "sample_rate": -1}, "sample_rate"),  # was protobuf's ValueError
    ({"audio": _CLIP, "sample_rate": 16000.5}, "sample_rate"),  # was sent as 16000
    ({"audio": _CLIP, "sample_rate": float("nan")}, "sample_rate"),
    ({"audio": _CLIP, "sample_rate": "16000"}, "sample_rate"),
    ({"audio": _CLIP.astype(np.float16), "sample_rate": 16000}, "audio"),  # was sent; the library refuses it
    ({"audio": np.zeros(0, np.float32), "sample_rate": 16000}, "audio"),
    ({"audio": np.zeros((9, 10), np.float32), "sample_rate": 16000}, "audio"),
    ({"audio": _CLIP.reshape(1, -1, 1), "sample_rate": 16000}, "audio"),
    # the samples' values, which only the server checked (a round trip; a TurnError in a stream)
    ({"audio": np.where(np.arange(16000) == 700, np.nan, _CLIP).astype(np.float32), "sample_rate": 16000}, "audio"),
    ({"audio": np.where(np.arange(16000) == 9, -np.inf, _CLIP), "sample_rate": 16000}, "audio"),  # float64
    ({"audio": np.stack([_CLIP, _CLIP * 0 + np.inf]), "sample_rate": 16000}, "audio"),  # (channels, n): one channel inf
    ({"audio": (_CLIP * 32767).astype(np.float32), "sample_rate": 16000}, "audio"),  # int16 PCM passed as floats
    ({"audio": np.stack([_CLIP * 90, _CLIP * 90], axis=1), "sample_rate": 16000}, "audio"),  # (n, 2), over range
])
def test_the_client_refuses_audio_by_the_librarys_rules_before_sending(kwargs, field):
    """One rule per check (``affect_proto.rules``): what the library refuses in an array of samples
    the client refuses before anything is sent, with the library's message and field."""
    from affect import InvalidInputError as LibraryInputError
    from affect.speech._audio import prepare_array

    with AffectClient("127.0.0.1:9", max_retries=0) as client:  # nothing listens: the error must come first
        with pytest.raises(InvalidInputError) as refused:
            client.analyze(**kwargs)
    with pytest.raises(LibraryInputError) as library:
        prepare_array(kwargs["audio"], kwargs["sample_rate"])
    assert refused.value.field == library.value.field == field and str(refused.value) == str(library.value)


def test_arrays_of_several_channels_reach_the_server_as_the_library_reads_them(full_analyzer, media):
    """A ``(channels, n)`` array went out as n channels and a 3-channel one as 3, both refused by the
    server ("channels must be 1 or 2") though the library reads them: the client lays them out as
    the library reads them (``rules.audio_layout``) and the server takes as many channels as a file
    may have, so both give the library's reading."""
    clip, rate = media["clip_int16"], media["rate"]
    arrays = [np.stack([clip, clip]), np.stack([clip / 32768.0] * 3, axis=1)]  # (2, n) int16; (n, 3) float
    with ServerThread(full_analyzer, max_turns_per_second=1000) as server:
        with AffectClient(server.target) as client:
            for samples in arrays:
                expected = full_analyzer.analyze(audio=samples, sample_rate=rate)
                got = client.analyze(audio=samples, sample_rate=rate)
                assert got.present == expected.present == ("speech",)
                assert got.emotions == pytest.approx(expected.emotions, abs=2e-4)


@pytest.mark.parametrize("prior", [{"neutral": "x"}, {"neutral": -1.0, "anger": 1.0}, {"anger": float("inf")}, {"anger": None}])
def test_a_text_prior_whose_weights_the_library_refuses_is_refused_before_sending(prior):
    """``text_prior={"neutral": "x"}`` raised float()'s ValueError: the weights are checked by the
    library's rule, with its message, as ``InvalidInputError`` naming ``text_prior``."""
    from affect.text.prior import checked_weights

    with AffectClient("127.0.0.1:9", max_retries=0) as client:
        for call in (lambda: client.analyze("hello", text_prior=prior), lambda: client.conversation(text_prior=prior)):
            with pytest.raises(InvalidInputError) as refused:
                call()
            assert refused.value.field == "text_prior"
            with pytest.raises(ValueError) as library:
                checked_weights(prior)
            assert str(refused.value) == str(library.value)
        with pytest.raises(InvalidInputError, match="preset name or a mapping") as not_a_prior:
            client.analyze("hello", text_prior=3)  # type: ignore[arg-type]
        assert not_a_prior.value.field == "text_prior"


def test_samples_within_range_are_not_refused_at_the_edge() -> None:
    """The rule reads the peak of the mono mix, as the library does: a channel over range beside a
    quiet one (their mean within range) is sent, and is what the library takes too."""
    from affect.speech._audio import prepare_array
    from affect_client._inputs import to_audio

    loud_and_quiet = np.stack([np.full(16000, 6.0, np.float32), np.full(16000, -0.5, np.float32)], axis=1)  # mean 2.75
    assert prepare_array(loud_and_quiet, 16000).source_rate == 16000
    assert to_audio(loud_and_quiet, 16000).channels == 2


@pytest.mark.parametrize("prior, message", [
    ("desk", "unknown text prior 'desk'"),
    (" calm ", "unknown text prior 'calm'"),
    ("calm=1", "text prior names 'calm', which is not an emotion"),
    ("neutral=0.8,neutral=0.2", "text prior names 'neutral' twice"),
    ("neutral=0.8,anger", "text prior: 'anger' is not emotion=weight"),
    ("neutral=0,anger=0", "some emotion a positive weight"),
    ("neutral=1e308,anger=1e308", "too large to add up"),
    ("neutral=" + "1" * 600, "at most 512"),
    ({"joy": 1.0}, "text prior names 'joy', which is not an emotion"),
    ({"neutral": 0.0}, "some emotion a positive weight"),
])
def test_a_text_prior_the_server_refuses_is_refused_before_sending_by_both_twins(prior: str | dict[str, float],
                                                                                message: str) -> None:
    """Unknown preset and emotion names (and the rest of what the server's ``parse_prior`` refuses)
    were refused only by the server, on opening or in an Analyze call: one rule
    (``affect_proto.rules.text_prior_problem``, ``prior_weights_problem``) now checks them in the
    library, the server and both client twins, which refuse them before anything is sent, with the
    library's message, as ``InvalidInputError`` naming ``text_prior``."""
    import asyncio

    from affect.text.prior import checked_weights, parse_prior
    from affect_client import AsyncAffectClient

    with pytest.raises(ValueError, match=message) as library:
        parse_prior(prior) if isinstance(prior, str) else checked_weights(prior)
    refusals: list[InvalidInputError] = []
    with AffectClient("127.0.0.1:9", max_retries=0) as client:  # nothing listens: the error must come first
        for call in (lambda: client.analyze("hello", text_prior=prior), lambda: client.conversation(text_prior=prior)):
            with pytest.raises(InvalidInputError) as refused:
                call()
            refusals.append(refused.value)

    async def async_twin() -> None:
        async with AsyncAffectClient("127.0.0.1:9", max_retries=0) as client:
            with pytest.raises(InvalidInputError) as alone:
                await client.analyze("hello", text_prior=prior)
            with pytest.raises(InvalidInputError) as opened:
                async with client.conversation(text_prior=prior):
                    pass
            refusals.extend((alone.value, opened.value))

    asyncio.run(async_twin())
    assert len(refusals) == 4
    assert all(r.field == "text_prior" and str(r) == str(library.value) for r in refusals), refusals


@pytest.mark.parametrize("level", [0, 0.0, -0.2, 1.5, float("nan"), float("inf"), True, "0.3"])
def test_an_escalation_level_the_server_refuses_is_refused_before_sending_by_both_twins(level: object) -> None:
    """``escalation_anger`` outside (0, 1] was refused only by the server, on opening: one rule
    (``affect_proto.rules.escalation_anger_problem``) now checks it in the library
    (``affect.state.escalation_at``), the server and both twins, which refuse it before anything
    is sent with the library's message, as ``InvalidInputError`` naming ``escalation_anger``."""
    import asyncio

    from affect.state import escalation_at
    from affect_client import AsyncAffectClient

    with pytest.raises(ValueError, match=r"escalation_anger must be in \(0, 1\]") as library:
        escalation_at(level)  # type: ignore[arg-type]
    with AffectClient("127.0.0.1:9", max_retries=0) as client, pytest.raises(InvalidInputError) as refused:
        client.conversation(escalation_anger=level)  # type: ignore[arg-type]

    async def async_twin() -> InvalidInputError:
        async with AsyncAffectClient("127.0.0.1:9", max_retries=0) as client:
            with pytest.raises(InvalidInputError) as opened:
                async with client.conversation(escalation_anger=level):  # type: ignore[arg-type]
                    pass
        return opened.value

    for error in (refused.value, asyncio.run(async_twin())):
        assert error.field == "escalation_anger" and str(error) == str(library.value)


def test_values_the_client_now_checks_never_reach_the_server_and_the_conversation_goes_on(analyzer: Analyzer) -> None:
    """Through a real server: NaN samples, an unknown prior and a bad escalation level are refused
    by the client (no TurnError, nothing counted refused on the server), and the conversation they
    were tried in goes on; what the rules take is still answered."""
    with ServerThread(analyzer) as server, AffectClient(server.target) as client:
        registry = server.running.servicer.metrics.registry
        with client.conversation() as conversation:
            assert conversation.send("first", speaker="caller").turn_index == 0
            with pytest.raises(InvalidInputError, match="NaN or infinite samples") as samples:
                conversation.send(audio=np.full(16000, np.nan, np.float32), sample_rate=16000)
            assert samples.value.field == "audio"
            assert conversation.send("second", speaker="caller").turn_index == 1
        with pytest.raises(InvalidInputError, match="unknown text prior 'desk'"):
            client.conversation(text_prior="desk")
        with pytest.raises(InvalidInputError, match="escalation_anger"):
            client.conversation(escalation_anger=0.0)
        with client.conversation(text_prior="neutral=0.9,anger=0.1", escalation_anger=1.0) as taken:
            assert taken.send("fine").turn_index == 0
        refused = [s for metric in registry.collect() if metric.name == "affect_refused" for s in metric.samples
                   if s.name == "affect_refused_total" and s.value]
        assert refused == [], refused


@pytest.mark.parametrize("settings, field", [
    ({"max_retries": -1}, "max_retries"),  # was accepted
    ({"resume_turns": -1}, "resume_turns"),  # was a plain ValueError
    ({"busy_retries": 1.5}, "busy_retries"),
    ({"timeout": 0}, "timeout"),
    ({"turn_timeout": -5.0}, "turn_timeout"),
    ({"open_timeout": "30"}, "open_timeout"),
    ({"token": 12345}, "token"),
    ({"metadata": "x-trace: 1"}, "metadata"),
])
def test_every_bad_setting_is_an_invalid_setting_error_before_anything_is_sent(settings, field):
    """Settings errors were plain ValueErrors outside the client's tree (and ``max_retries=-1`` was
    taken): each is an ``InvalidSettingError`` (an ``InvalidInputError``, so a ``ValueError`` too)
    naming the setting, from both twins, their options and ``with_options``."""
    from affect_client import AffectClientError, AsyncAffectClient, ClientOptions, InvalidSettingError

    for make in (AffectClient, AsyncAffectClient):
        for attempt in (lambda: make("127.0.0.1:9", **settings),
                        lambda: make(options=ClientOptions(target="127.0.0.1:9", **settings)),
                        lambda: make("127.0.0.1:9").with_options(**settings)):
            with pytest.raises(InvalidSettingError) as refused:
                attempt()
            assert refused.value.field == field
            assert all(isinstance(refused.value, kind) for kind in (AffectClientError, InvalidInputError, ValueError))
    with pytest.raises(InvalidSettingError) as fixed:
        AffectClient("127.0.0.1:9").with_options(target="127.0.0.1:10")  # type: ignore[call-arg]
    assert fixed.value.field == "target"


def test_raw_samples_given_as_bytes_with_a_sample_rate_are_refused_by_the_client_and_the_library(
        full_analyzer: Analyzer, media: dict) -> None:
    """``send(audio=x.tobytes(), sample_rate=8000)``, a voice bot's RTP payload, went out as a file and
    came back INVALID_ARGUMENT ("the file is not a readable WAV/FLAC/OGG file"; the library the same,
    field ``audio_file``). Bytes are a file: given with a rate, both refuse them before anything is
    sent or decoded, by one rule (``affect_proto.rules.file_bytes_with_rate_problem``), saying how
    raw samples are given each side; and what it names reads the samples."""
    import asyncio
    import io

    import soxr
    from affect import InvalidInputError as LibraryInputError
    from affect_client import Audio, AsyncAffectClient
    from affect_proto import rules

    telephone = (soxr.resample(media["clip_int16"], media["rate"], 8000)).astype(np.int16)  # a call's 8 kHz PCM
    ulaw = io.BytesIO()
    sf.write(ulaw, telephone, 8000, format="WAV", subtype="ULAW")
    client_says = rules.file_bytes_with_rate_problem(b"x", 8000, "Audio.pcm16(data, sample_rate)")
    library_says = rules.file_bytes_with_rate_problem(b"x", 8000, "np.frombuffer(data, np.int16) with sample_rate=")
    assert client_says and library_says and "read as an audio file (WAV/FLAC/OGG)" in client_says
    assert "ULAW subtype" in client_says and "decoded to int16" in client_says
    refusals: list[InvalidInputError] = []

    async def async_twin(payload: bytes | bytearray | memoryview) -> None:
        async with AsyncAffectClient("127.0.0.1:9", max_retries=0) as client:
            with pytest.raises(InvalidInputError) as refused:
                await client.analyze(audio=payload, sample_rate=8000)
            refusals.append(refused.value)

    for payload in (telephone.tobytes(), bytearray(telephone.tobytes()), memoryview(ulaw.getvalue())):
        with AffectClient("127.0.0.1:9", max_retries=0) as client:  # nothing listens: the error must come first
            with pytest.raises(InvalidInputError) as refused:
                client.analyze(audio=payload, sample_rate=8000)
            refusals.append(refused.value)
        asyncio.run(async_twin(payload))
        with pytest.raises(LibraryInputError) as library:
            full_analyzer.analyze(audio=payload, sample_rate=8000)
        assert library.value.field == "audio" and str(library.value) == library_says
    assert len(refusals) == 6 and all(r.field == "audio" and str(r) == client_says for r in refusals), refusals

    # What the message names: the library's int16 array, a μ-law WAV (no rate: it carries its own),
    # and the client's Audio.pcm16 through a real server, each read as the samples they hold.
    from_array = full_analyzer.analyze(audio=np.frombuffer(telephone.tobytes(), np.int16), sample_rate=8000)
    from_ulaw = full_analyzer.analyze(audio=ulaw.getvalue())
    assert from_array.present == from_ulaw.present == ("speech",)
    assert from_ulaw.emotions == pytest.approx(from_array.emotions, abs=0.05)  # μ-law's quantisation apart
    with ServerThread(full_analyzer, max_turns_per_second=1000) as server, AffectClient(server.target) as client:
        got = client.analyze(audio=Audio.pcm16(telephone.tobytes(), 8000))
    assert got.present == ("speech",) and got.emotions == pytest.approx(from_array.emotions, abs=2e-4)


def test_every_type_a_result_holds_is_importable_from_the_package() -> None:
    """``ConversationState.forecast`` held ``SpeakerForecast``s that only ``affect_client._types``
    named, so a type hint needed the private module: every class of the client that a public
    result's fields hold, however deep, is exported (``__all__``) under its own name."""
    import dataclasses
    import typing

    import affect_client
    from affect_client import ConversationState, ModelInfo, TurnLimits, TurnResult

    def held(hint: object) -> set[type]:
        found = {hint} if isinstance(hint, type) and hint.__module__.startswith("affect_client") else set()
        return found.union(*(held(arg) for arg in typing.get_args(hint)))

    seen: set[type] = set()
    todo: list[type] = [TurnResult, ModelInfo, TurnLimits, ConversationState]
    while todo:
        cls = todo.pop()
        if cls not in seen:
            seen.add(cls)
            if dataclasses.is_dataclass(cls):
                for hint in typing.get_type_hints(cls).values():
                    todo.extend(held(hint))
    assert {"SpeakerForecast", "SpeakerState", "Face", "Event"} <= {c.__name__ for c in seen}
    missing = {c.__name__ for c in seen if getattr(affect_client, c.__name__, None) is not c
               or c.__name__ not in affect_client.__all__}
    assert not missing, missing

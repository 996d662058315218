"""A server tells its turn limits on opening (``ConversationOpened.limits``), and the client refuses
a turn that would not fit before sending it: over the message size (which, sent, ends the whole
stream) with ``TurnTooLargeError``, over a per-turn limit with ``TurnInputError`` (the server's
field and message for a limit it told, the argument and the library's message for the contract's
own); each a ``TurnRefusedError`` and an ``InvalidInputError``, whatever the server's limits, and
the conversation goes on. Real servers on loopback, the real client."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import numpy as np
import pytest

from affect_client import (
    AffectClient,
    AsyncAffectClient,
    InvalidInputError,
    TurnInputError,
    TurnLimits,
    TurnRefusedError,
    TurnTooLargeError,
)
from affect_client import _constants as C
from affect_client._core import ClientOptions, analyze_request
from affect_client._inputs import turn_message
from affect_client._limits import check_size, turn_problem
from affect_client._resume import ConversationMemory, driving
from affect_proto import affect_pb2 as pb
from affect_proto import affect_pb2_grpc as pb_grpc
from affect_proto import rules
from tests._serving import ServerThread

RATE = 16_000
SPEECH = (np.sin(np.arange(RATE * 40) / 8.0) * 3000).astype(np.int16)  # 40 s of 16 kHz PCM: 1.22 MiB on the wire


def _refused(server: ServerThread) -> float:
    """Turns and calls the server refused, of every code and reason."""
    registry = server.running.servicer.metrics.registry
    return sum(sample.value for metric in registry.collect() if metric.name == "affect_refused"
               for sample in metric.samples if sample.name == "affect_refused_total")


def test_the_opened_answer_tells_the_servers_limits(analyzer: Any) -> None:
    """What a raw stub reads on opening is the server's settings (``max_message_mb`` in bytes, the
    contract's 8 images), and a client's conversation keeps them as ``limits``."""
    settings = {"max_message_mb": 1.5, "max_text_chars": 500, "max_audio_seconds": 30.5, "max_audio_samples": 2_000_000,
                "max_image_pixels": 1_000_000}
    expected = TurnLimits(max_message_bytes=int(1.5 * 2**20), max_text_chars=500, max_audio_seconds=30.5,
                          max_audio_samples=2_000_000, max_image_pixels=1_000_000, max_images=rules.MAX_IMAGES_PER_TURN)
    with ServerThread(analyzer, **settings) as server:
        with grpc.insecure_channel(server.target) as channel:
            responses = pb_grpc.AffectServiceStub(channel).Converse(iter([pb.ConverseRequest(open=pb.OpenConversation())]),
                                                                    timeout=30)
            opened = next(responses).opened
            responses.cancel()
        assert TurnLimits.from_pb(opened.limits) == expected
        with AffectClient(server.target) as client, client.conversation() as conversation:
            assert conversation.limits == expected

        async def told_async() -> TurnLimits:
            async with AsyncAffectClient(server.target) as client, client.conversation() as conversation:
                return conversation.limits

        assert asyncio.run(told_async()) == expected


def _assert_too_large(error: TurnTooLargeError, request_size: int) -> None:
    assert error.code == grpc.StatusCode.RESOURCE_EXHAUSTED and error.field == "turn" and error.retry_after is None
    assert error.limit == 2**20 and error.size == request_size > error.limit and error.turn_id == "long"
    assert "max_message_mb of 1 MiB (1,048,576 bytes)" in error.details and f"({request_size:,} bytes)" in error.details
    assert "not sent" in error.details
    assert isinstance(error, TurnRefusedError) and isinstance(error, InvalidInputError)


@pytest.mark.parametrize("twin", ["sync", "async"])
def test_a_turn_over_the_message_size_is_refused_unsent_and_the_conversation_goes_on(analyzer: Any, twin: str) -> None:
    """``max_message_mb 1`` and 1.2 MiB of audio: sent, gRPC refused it and ended the whole stream
    (RESOURCE_EXHAUSTED; the conversation was over). Now the client refuses it unsent, naming the
    limit and the turn's size, and the next turn is answered on the same stream as the first."""
    request_size = pb.ConverseRequest(turn=turn_message(audio=SPEECH, sample_rate=RATE, turn_id="long")).ByteSize()
    with ServerThread(analyzer, max_message_mb=1.0) as server:
        if twin == "sync":
            with AffectClient(server.target) as client, client.conversation() as conversation:
                first = conversation.send("Hello, my parcel never arrived.")
                with pytest.raises(TurnTooLargeError) as refused:
                    conversation.send(audio=SPEECH, sample_rate=RATE, turn_id="long")
                after = conversation.send("Can you look into it?")
                resumes = conversation.resumes
        else:
            async def run() -> tuple[Any, pytest.ExceptionInfo[TurnTooLargeError], Any, int]:
                async with AsyncAffectClient(server.target) as client, client.conversation() as conversation:
                    first = await conversation.send("Hello, my parcel never arrived.")
                    with pytest.raises(TurnTooLargeError) as refused:
                        await conversation.send(audio=SPEECH, sample_rate=RATE, turn_id="long")
                    after = await conversation.send("Can you look into it?")
                    return first, refused, after, conversation.resumes

            first, refused, after, resumes = asyncio.run(run())
        _assert_too_large(refused.value, request_size)
        assert (first.turn_index, after.turn_index, after.resumed, resumes) == (0, 1, False, 0)
        assert after.state.turns == 2 and _refused(server) == 0  # the server never saw it


@pytest.mark.parametrize("setting, turn, field", [
    ({"max_text_chars": 50}, {"text": "x" * 60}, "turn.text"),
    ({"max_text_chars": 50}, {"text": "é" * 30}, None),  # 60 bytes of UTF-8, 30 characters: fits
    ({"max_audio_seconds": 2.0}, {"audio": SPEECH[:RATE * 3], "sample_rate": RATE}, "turn.audio.data"),
    ({"max_audio_samples": 40_000}, {"audio": np.zeros((RATE, 3), np.float32), "sample_rate": RATE}, "turn.audio.data"),
    ({"max_image_pixels": 1_000}, {"images": [np.zeros((20, 30), np.uint8), np.zeros((20, 30), np.uint8)]}, "turn.images"),
])
def test_a_turn_over_a_told_limit_is_refused_as_the_server_would_without_being_sent(
        analyzer: Any, setting: dict[str, Any], turn: dict[str, Any], field: str | None) -> None:
    """A server set below the library's limits (text, audio, pixels): a turn over one is refused
    before it is sent, with the code, field and message the server gives the same turn sent to
    ``analyze()`` (which no opening told); the server refused nothing in the conversation."""
    with ServerThread(analyzer, **setting) as server, AffectClient(server.target, max_retries=0) as client:
        with client.conversation() as conversation:
            if field is None:
                assert conversation.send(**turn, turn_id="t1").turn_id == "t1"
                return
            with pytest.raises(TurnRefusedError) as unsent:
                conversation.send(**turn, turn_id="t1")
            assert _refused(server) == 0
            assert conversation.send("Still there?").turn_index == 0
        with pytest.raises(TurnRefusedError) as by_server:
            client.analyze(**turn, turn_id="t1")
        assert _refused(server) == 1
    assert isinstance(unsent.value, TurnInputError) and isinstance(unsent.value, InvalidInputError)  # refused unsent
    assert not isinstance(by_server.value, InvalidInputError)  # the server's refusal, which was sent
    assert unsent.value.field == by_server.value.field == field and unsent.value.turn_id == "t1"
    assert unsent.value.code == by_server.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert unsent.value.details == by_server.value.details == str(unsent.value) and unsent.value.retry_after is None


_TEXT_OVER = "a" * (rules.MAX_TEXT_CHARS + 1)
_IMAGES_OVER = [np.zeros((8, 8), np.uint8)] * (rules.MAX_IMAGES_PER_TURN + 1)


@pytest.mark.parametrize("twin", ["sync", "async"])
@pytest.mark.parametrize("setting, turn, field, message", [
    # the server at its defaults: the contract's own limits, which the client checks first
    ({}, {"text": _TEXT_OVER}, "text", "text has 10,001 characters; the limit is 10,000"),
    ({}, {"images": _IMAGES_OVER}, "images", "a turn may carry at most 8 images"),
    # a lower limit the server told: refused with the server's field and message
    ({"max_text_chars": 50}, {"text": "x" * 60}, "turn.text", "turn.text has 60 characters; the limit is 50"),
    # over both: the contract's limit is checked first, as before the turn is made
    ({"max_text_chars": 50}, {"text": _TEXT_OVER}, "text", "text has 10,001 characters; the limit is 10,000"),
])
def test_every_turn_refused_before_sending_for_its_input_is_one_type_whatever_the_servers_limits(
        analyzer: Any, twin: str, setting: dict[str, Any], turn: dict[str, Any], field: str, message: str) -> None:
    """At the server's defaults the client's own checks of the contract's limits fired first and
    raised a plain ``InvalidInputError``; under a lower told limit, a ``TurnRefusedError`` that was
    not one: ``except TurnRefusedError`` (the turn could not be read, carry on) missed the first.
    Every one is now ``TurnInputError``, both at once, INVALID_ARGUMENT; the server never sees the
    turn and the conversation goes on, sync and async alike."""
    with ServerThread(analyzer, **setting) as server:
        if twin == "sync":
            with AffectClient(server.target) as client, client.conversation() as conversation:
                with pytest.raises(TurnRefusedError) as refused:
                    conversation.send(**turn, turn_id="t1")
                after = conversation.send("Can you look into it?")
        else:
            async def run() -> tuple[pytest.ExceptionInfo[TurnRefusedError], Any]:
                async with AsyncAffectClient(server.target) as client, client.conversation() as conversation:
                    with pytest.raises(TurnRefusedError) as refused:
                        await conversation.send(**turn, turn_id="t1")
                    return refused, await conversation.send("Can you look into it?")

            refused, after = asyncio.run(run())
        assert _refused(server) == 0 and after.turn_index == 0
    error = refused.value
    assert type(error) is TurnInputError and isinstance(error, InvalidInputError) and isinstance(error, ValueError)
    assert (error.field, error.code, error.turn_id, error.retry_after) == (field, grpc.StatusCode.INVALID_ARGUMENT, "t1", None)
    assert error.details == str(error) == message


def test_an_async_turn_over_the_told_text_limit_is_refused_unsent(analyzer: Any) -> None:
    async def run(target: str) -> tuple[TurnRefusedError, int]:
        async with AsyncAffectClient(target) as client, client.conversation() as conversation:
            with pytest.raises(TurnRefusedError) as refused:
                await conversation.send("x" * 60)
            return refused.value, (await conversation.send("short enough")).turn_index

    with ServerThread(analyzer, max_text_chars=50) as server:
        refused, next_index = asyncio.run(run(server.target))
        assert _refused(server) == 0
    assert (refused.field, refused.code, next_index) == ("turn.text", grpc.StatusCode.INVALID_ARGUMENT, 0)
    assert refused.details == "turn.text has 60 characters; the limit is 50"


def test_a_raw_stub_over_the_message_size_still_ends_its_stream(analyzer: Any) -> None:
    """Without the client's check (any other client), an oversize turn is gRPC's to refuse, as
    before: RESOURCE_EXHAUSTED, and the stream is over."""
    turn = pb.ConverseRequest(turn=pb.Turn(audio=pb.Audio(data=bytes(2 * 2**20), encoding=pb.PCM_S16LE,
                                                            sample_rate_hz=RATE)))
    with ServerThread(analyzer, max_message_mb=1.0) as server:
        with grpc.insecure_channel(server.target, [("grpc.max_send_message_length", 8 * 2**20)]) as channel:
            responses = pb_grpc.AffectServiceStub(channel).Converse(
                iter([pb.ConverseRequest(open=pb.OpenConversation()), turn]), timeout=30)
            assert next(responses).opened.limits.max_message_bytes == 2**20
            with pytest.raises(grpc.RpcError) as ended:
                next(responses)
    assert ended.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def _flow_sends(memory: ConversationMemory, request: pb.ConverseRequest) -> list[pb.ConverseRequest]:
    """The requests a turn's flow put on the stream; its refusal raised."""
    sent: list[pb.ConverseRequest] = []

    def exchange(sent_request: pb.ConverseRequest, timeout: float | None) -> Any:
        sent.append(sent_request)
        raise TurnRefusedError(grpc.StatusCode.INVALID_ARGUMENT, "refused by the server", "turn", "")

    with pytest.raises(TurnRefusedError):
        driving(memory.turn_flow(request, pb.ConverseRequest()), exchange, lambda r: pb.ConversationOpened())
    return sent


def test_without_told_limits_the_clients_own_message_size_holds() -> None:
    """An older server tells no limits: a turn over the client's own 16 MiB is refused unsent, as
    it always was (an ``InvalidInputError`` still, field ``turn``), by ``analyze()`` too; a
    stream opened again replaces the limits told before (here, by none)."""
    big = pb.Turn(audio=pb.Audio(data=bytes(C.MAX_MESSAGE_BYTES), encoding=pb.PCM_S16LE, sample_rate_hz=RATE))
    memory = ConversationMemory(ClientOptions())
    memory.opened(pb.ConversationOpened(limits=pb.TurnLimits(max_message_bytes=2**20, max_text_chars=50)))
    assert memory.limits.max_text_chars == 50 and _flow_sends(memory, pb.ConverseRequest(turn=pb.Turn(text=b"x" * 60))) == []
    memory.opened(pb.ConversationOpened())  # a resume reached an older server
    assert memory.limits == TurnLimits()
    assert len(_flow_sends(memory, pb.ConverseRequest(turn=pb.Turn(text=b"x" * 60)))) == 1  # its own to refuse
    assert _flow_sends(memory, pb.ConverseRequest(turn=big)) == []
    with pytest.raises(InvalidInputError) as refused:
        analyze_request(big)
    assert isinstance(refused.value, TurnTooLargeError) and refused.value.field == "turn"
    assert refused.value.limit == C.MAX_MESSAGE_BYTES and f"the 16 MiB ({C.MAX_MESSAGE_BYTES:,} bytes) this client" in str(refused.value)
    with pytest.raises(TurnTooLargeError, match="this client sends"):  # a server reading more than the client sends
        check_size(pb.ConverseRequest(turn=big), TurnLimits(max_message_bytes=64 * 2**20))


def test_a_busy_refusal_names_the_turns_heaviest_part(analyzer: Any) -> None:
    """The client README said ``.field`` is ``turn`` for the whole turn; a refusal because the server
    is busy (``--max-in-flight-turns`` full) names the part of the turn that weighs most on it, as
    the server measures it (``budget.heaviest_field``): ``turn`` for text alone."""
    turns: list[tuple[dict[str, Any], str]] = [
        ({"text": "Hello?"}, "turn"),
        ({"text": "Hello?", "image": np.zeros((64, 64), np.uint8)}, "turn.images"),
        ({"audio": SPEECH[:RATE], "sample_rate": RATE}, "turn.audio.data"),
        ({"audio": SPEECH[:RATE // 10], "sample_rate": RATE, "image": np.zeros((640, 640), np.uint8)}, "turn.images"),
    ]
    with ServerThread(analyzer, max_in_flight_turns=1) as server:
        async def hold() -> Any:
            return server.running.servicer.budget.admit(0, False)

        held = server.call(hold())  # the one turn in flight the server takes
        with AffectClient(server.target, busy_retries=0) as client, client.conversation() as conversation:
            for turn, field in turns:
                with pytest.raises(TurnRefusedError) as busy:
                    conversation.send(**turn)
                assert (busy.value.code, busy.value.field) == (grpc.StatusCode.RESOURCE_EXHAUSTED, field), turn
                assert busy.value.retry_after and "turns in flight" in busy.value.details
            server.loop.call_soon_threadsafe(held.release)
            assert conversation.send("Hello again.").turn_index == 0


_RAW_TURNS = [  # raw samples (a budget read from the bytes, the rate and the channels) and UTF-8 text, over and within
    pb.Turn(audio=pb.Audio(data=bytes(2 * 16_000 * 3), encoding=pb.PCM_S16LE, sample_rate_hz=16_000)),  # 3 s
    pb.Turn(audio=pb.Audio(data=bytes(2 * 16_000 * 2), encoding=pb.PCM_S16LE, sample_rate_hz=16_000)),  # 2 s: fits
    pb.Turn(audio=pb.Audio(data=bytes(4 * 20_000 * 2 + 3), encoding=pb.FLOAT32_LE, sample_rate_hz=8_000, channels=2)),  # 2.5 s
    pb.Turn(audio=pb.Audio(data=bytes(4 * 11_025 * 8), encoding=pb.FLOAT32_LE, sample_rate_hz=44_100, channels=8)),
    pb.Turn(audio=pb.Audio(data=bytes(2 * 48_000 * 3 + 1), encoding=pb.PCM_S16LE, sample_rate_hz=48_000, channels=3)),
    pb.Turn(audio=pb.Audio(data=bytes(2 * 16_000 * 9), encoding=pb.PCM_S16LE, sample_rate_hz=16_000, channels=9)),
    pb.Turn(audio=pb.Audio(data=bytes(2 * 16_000 * 3), encoding=pb.PCM_S16LE)),  # no rate: the conversion's to refuse
    pb.Turn(text="é".encode() * 30), pb.Turn(text="é".encode() * 51), pb.Turn(text=b"\xff" * 60),
]


@pytest.mark.parametrize("turn", _RAW_TURNS, ids=range(len(_RAW_TURNS)))
@pytest.mark.parametrize("seconds, samples, chars", [(2.0, 10**9, 50), (100.0, 40_000, 50), (2.5, 64_000, 10_000)])
def test_the_client_measures_a_raw_turn_as_the_server_does(turn: pb.Turn, seconds: float, samples: int, chars: int) -> None:
    """Text bytes, raw samples and their channels are read by one module (``affect_proto.encodings``):
    the client's check before sending answers a turn with the server's field and message, or lets
    it through where the server's measure does."""
    from affect import InvalidInputError as ServerRefusal
    from affect_server.budget import measure
    from affect_server.config import ServerConfig

    told = TurnLimits(max_text_chars=chars, max_audio_seconds=seconds, max_audio_samples=samples)
    try:
        measure(turn, ServerConfig(max_text_chars=chars, max_audio_seconds=seconds, max_audio_samples=samples))
        server: tuple[str, str] | None = None
    except ServerRefusal as refused:
        server = (refused.field, str(refused))
    client = turn_problem(turn, told)
    if turn.audio.channels > rules.MAX_AUDIO_CHANNELS:  # refused by the client's own input checks before this one
        assert client is None
        return
    assert client == server


@pytest.mark.parametrize("twin", ["sync", "async"])
def test_media_given_as_base64_is_refused_unsent_and_never_quoted(analyzer: Any, twin: str) -> None:
    """A base64 picture or a data: URI given where a file path belongs escaped as ``OSError: [Errno
    36] File name too long: '<the whole face>'``: now a ``TurnInputError`` that gives the string's
    length, not its text (``rules.file_path_problem``); the server never sees the turn and the
    conversation goes on."""
    import base64

    face = "ZQXMARK" + base64.b64encode(bytes(range(256)) * 12).decode()
    data_uri = "data:audio/wav;base64," + face
    with ServerThread(analyzer) as server:
        if twin == "sync":
            with AffectClient(server.target) as client:
                with pytest.raises(TurnInputError) as by_analyze:
                    client.analyze("Here I am", images=[face])
                with client.conversation() as conversation:
                    with pytest.raises(TurnInputError) as by_send:
                        conversation.send("Hear this", audio=data_uri)
                    after = conversation.send("Can you look into it?")
        else:
            async def run() -> tuple[pytest.ExceptionInfo[TurnInputError], pytest.ExceptionInfo[TurnInputError], Any]:
                async with AsyncAffectClient(server.target) as client:
                    with pytest.raises(TurnInputError) as by_analyze:
                        await client.analyze("Here I am", images=[face])
                    async with client.conversation() as conversation:
                        with pytest.raises(TurnInputError) as by_send:
                            await conversation.send("Hear this", audio=data_uri)
                        return by_analyze, by_send, await conversation.send("Can you look into it?")

            by_analyze, by_send, after = asyncio.run(run())
        assert _refused(server) == 0 and after.turn_index == 0
    hint = "characters; media given as base64 or a data: URI must be decoded to bytes first)"
    for error, field, blob in ((by_analyze.value, "images[0]", face), (by_send.value, "audio", data_uri)):
        assert error.field == field and isinstance(error, ValueError) and error.code == grpc.StatusCode.INVALID_ARGUMENT
        assert str(error) == f"{field}: a string is a file path; this one is not a file that exists ({len(blob):,} {hint}"
        chained: BaseException | None = error
        while chained is not None:  # no OSError quoting the string behind it, not even suppressed
            assert "ZQXMARK" not in str(chained) and not isinstance(chained, OSError), repr(chained)
            chained = chained.__cause__ or chained.__context__

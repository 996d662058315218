"""Liveness of a conversation's connection: the client's keepalive pings (``keepalive_s``) find a
path that died silently, so that the conversation is resumed instead of its turn waiting out
``turn_timeout``; and the server accepts a client's pings at the rate the contract allows
(``affect_proto.rules.MIN_KEEPALIVE_S``). Against real servers on loopback, through a proxy that
can blackhole its connections (``tests/_proxy.py``)."""

from __future__ import annotations

import asyncio
import time

import pytest

from affect_client import AffectClient, AsyncAffectClient, DeadlineExceededError
from affect_client import _constants as C
from affect_client._core import ClientOptions, channel_arguments
from affect_client._types import TurnResult
from affect_proto import rules
from affect_server.app import KEEPALIVE
from tests._proxy import HalfOpenProxy
from tests._serving import ServerThread
from tests.test_client_resume import AFTER, SCRIPT, _until

FAST = rules.MIN_KEEPALIVE_S  # the shortest keepalive a client may ask for: a dead path is found within twice this
QUIET_S = 1.0  # after an answer, until the pings gRPC sends on its own (flow control's) are answered


def test_the_keepalive_setting_is_the_channels_and_the_servers_policy_takes_it():
    def keepalive(options: ClientOptions) -> dict[str, int]:
        return {k: v for k, v in channel_arguments(options) if "ping" in k or "keepalive" in k}

    assert keepalive(ClientOptions()) == {}  # off by default: a proxy with gRPC's default policy ends pinged connections
    assert keepalive(ClientOptions(keepalive_s=C.RECOMMENDED_KEEPALIVE_S)) == {
        "grpc.keepalive_time_ms": 15_000, "grpc.keepalive_timeout_ms": 10_000, "grpc.http2.ping_timeout_ms": 10_000,
        "grpc.keepalive_permit_without_calls": 0, "grpc.http2.max_pings_without_data": 0}
    assert C.DEFAULT_KEEPALIVE_S == ClientOptions().keepalive_s
    short = keepalive(ClientOptions(keepalive_s=FAST))  # answered within the interval, when that is shorter than 10 s
    assert short["grpc.keepalive_time_ms"] == short["grpc.keepalive_timeout_ms"] == short["grpc.http2.ping_timeout_ms"] == 5_000
    assert keepalive(ClientOptions(keepalive_s=0)) == {}  # off: no pings, gRPC's defaults
    for wrong in (-1.0, FAST / 2, float("nan")):
        with pytest.raises(ValueError, match="keepalive_s must be 0"):
            AffectClient("127.0.0.1:9", keepalive_s=wrong)
    with AffectClient("127.0.0.1:9") as client, pytest.raises(ValueError, match="keepalive_s"):
        client.with_options(keepalive_s=30.0)  # the connection's own
    # The server takes a ping as a strike only when it comes sooner than any a client may send.
    policy = dict(KEEPALIVE)
    assert policy["grpc.http2.min_ping_interval_without_data_ms"] <= FAST * 1000 / 2
    assert policy["grpc.http2.max_ping_strikes"] == 2


@pytest.mark.parametrize("twin", ["sync", "async"])
def test_a_conversation_whose_path_dies_silently_is_resumed(analyzer, twin):
    """The path drops every byte, both ways, with no reset (a NAT or load balancer forgot the
    connection): the client's keepalive ping goes unanswered, the stream ends UNAVAILABLE, and the
    turn waiting on it is carried to a new connection (reopened, its context replayed), answered
    long before its turn_timeout. Without pings the turn waits out turn_timeout and ends
    DEADLINE_EXCEEDED (below), which is not resumed: the conversation was lost."""
    turn_timeout = 20.0
    server = ServerThread(analyzer).__enter__()
    proxy = HalfOpenProxy(server.running.port)

    async def async_twin() -> tuple[TurnResult, float, int]:
        async with AsyncAffectClient(proxy.target, keepalive_s=FAST, turn_timeout=turn_timeout) as client, \
                client.conversation() as conversation:
            for speaker, text in SCRIPT[:2]:
                await conversation.send(text, speaker=speaker)
            await asyncio.sleep(QUIET_S)
            proxy.blackhole()
            started = time.monotonic()
            after = await conversation.send(AFTER[1], speaker=AFTER[0])
            return after, time.monotonic() - started, conversation.resumes

    try:
        if twin == "async":
            after, took, resumes = asyncio.run(async_twin())
        else:
            with AffectClient(proxy.target, keepalive_s=FAST, turn_timeout=turn_timeout) as client, \
                    client.conversation() as conversation:
                for speaker, text in SCRIPT[:2]:
                    conversation.send(text, speaker=speaker)
                time.sleep(QUIET_S)
                proxy.blackhole()
                started = time.monotonic()
                after = conversation.send(AFTER[1], speaker=AFTER[0])
                took, resumes = time.monotonic() - started, conversation.resumes
        assert after.resumed and resumes == 1
        assert after.turn_index == 2 and after.replayed == 2 and after.state.turns == 3
        assert took < 15.0  # found within about twice the keepalive (10 s), not at the timeout
        _until(lambda: server.open_conversations() == 0)  # the new stream closed, the old one taken over or dropped
    finally:
        proxy.close()
        server.__exit__(None, None, None)


def test_with_keepalive_off_a_silent_path_holds_the_turn_until_its_timeout(analyzer):
    """What the pings are for: with ``keepalive_s=0`` nothing tells the client that its path died,
    so the turn waits its whole ``turn_timeout`` (shortened here) and raises, not resumed: the
    conversation stays on its dead stream, where every later turn times out too."""
    with ServerThread(analyzer) as server:
        proxy = HalfOpenProxy(server.running.port)
        try:
            with AffectClient(proxy.target, keepalive_s=0, turn_timeout=6.0) as client, \
                    client.conversation() as conversation:
                conversation.send(SCRIPT[0][1], speaker=SCRIPT[0][0])
                time.sleep(QUIET_S)
                proxy.blackhole()
                with pytest.raises(DeadlineExceededError):
                    conversation.send(AFTER[1], speaker=AFTER[0])
                assert conversation.resumes == 0
        finally:
            proxy.close()


def test_a_quiet_conversation_pinged_at_the_shortest_keepalive_keeps_its_connection(analyzer):
    """A conversation with no turn for a while, its client pinging every ``MIN_KEEPALIVE_S`` (the
    most often a client may, so three times as often as the default; the server sends nothing
    between, its own pings put off by the client's): the server answers every ping and never sends
    GOAWAY, and the next turn is answered on the same stream. With gRPC's default policy (a ping
    without data at most every 5 minutes, 2 strikes) the fourth ping ended the connection with
    GOAWAY "too_many_pings", and the turn was answered only by resuming."""
    with ServerThread(analyzer) as server:
        proxy = HalfOpenProxy(server.running.port)
        try:
            with AffectClient(proxy.target, keepalive_s=FAST) as client, client.conversation() as conversation:
                conversation.send(SCRIPT[0][1], speaker=SCRIPT[0][0])
                time.sleep(QUIET_S)
                before = proxy.pings["client"]
                _until(lambda: proxy.pings["client"] >= before + 6 or proxy.goaways, timeout=12 * FAST)
                assert proxy.goaways == [] and proxy.connections == 1
                after = conversation.send(AFTER[1], speaker=AFTER[0])
                assert not after.resumed and after.turn_index == 1 and conversation.resumes == 0
            assert proxy.goaways == []
        finally:
            proxy.close()


def test_an_async_write_that_failed_as_its_connection_closed_is_read_unavailable():
    """grpc.aio reports a write that fails as its call ends as INTERNAL "Internal error from Core"
    (grpc/grpc#36066). The async client reads the call's own status instead when it comes (the
    server's ABORTED of a takeover is not resumed), and UNAVAILABLE when none comes: a stream
    reopened onto the connection a keepalive had just closed got none, and its opening was not
    retried, so the resume failed (about one blackholed async conversation in six; 0 of 60 after)."""
    import grpc

    from affect_client._async import _WRITE_FAILED, _StatusOnly, _real_status

    class Call:
        def __init__(self, later: _StatusOnly | None) -> None:
            self.status, self.later = _StatusOnly(grpc.StatusCode.INTERNAL, _WRITE_FAILED), later

        async def code(self) -> grpc.StatusCode:
            return self.status.code()

        async def details(self) -> str | None:
            if self.later is not None:
                self.status = self.later  # Core's status arrives after the write's
            return self.status.details()

        async def trailing_metadata(self) -> tuple:
            return ()

    async def read(later: _StatusOnly | None, error: _StatusOnly) -> tuple[grpc.StatusCode, str | None]:
        status = await _real_status(Call(later), error)
        return status.code(), status.details()

    failed = _StatusOnly(grpc.StatusCode.INTERNAL, _WRITE_FAILED)
    taken_over = _StatusOnly(grpc.StatusCode.ABORTED, "taken over by a newer stream of this conversation")
    assert asyncio.run(read(taken_over, failed)) == (grpc.StatusCode.ABORTED, taken_over.details())
    code, details = asyncio.run(read(None, failed))
    assert code == grpc.StatusCode.UNAVAILABLE and _WRITE_FAILED in details
    servers = _StatusOnly(grpc.StatusCode.INTERNAL, "the model failed (error id 1234)")  # a server's own: as it is
    assert asyncio.run(read(None, servers)) == (grpc.StatusCode.INTERNAL, servers.details())

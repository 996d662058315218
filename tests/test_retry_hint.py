"""The retry hint of a busy refusal: how long the turns in flight take to drain, from the rate the
server has lately answered turns (``affect_server.retry_hint.DrainEstimate``), on its own with its
clock in hand and on a real server on loopback."""

from __future__ import annotations

import threading

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from affect_client import AffectClient, TurnRefusedError
from affect_proto import affect_pb2 as pb
from affect_proto import affect_pb2_grpc as pb_grpc
from affect_proto import rules
from affect_server.limits import Ticket
from affect_server.retry_hint import MAX_MS, MIN_MS, DrainEstimate, LatencyEstimate
from tests._serving import ServerThread

from affect import Analyzer

BATCH = 32  # a text encoder's batch (--batch-max-size)


def test_turns_answered_together_drain_fast_and_slow_turns_slowly() -> None:
    """32 text turns answered together by one batch drain at 32 per the batch's time, where the
    mean latency times the backlog per worker counted each turn's whole latency per worker (16
    times as long on 2 workers); slow turns answered one after another drain one per turn's time.
    Times are binary fractions, so that the rates come out exact."""
    now = [100.0]
    drain, old = DrainEstimate(clock=lambda: now[0]), LatencyEstimate()
    assert drain.turns_per_second() is None
    assert drain.retry_after_ms(64, 2) == old.retry_after_ms(64, 2) == 6400  # nothing answered yet: 0.2 s x 64 / 2
    now[0] = 100.03125
    for _ in range(BATCH):  # received at 100.0, answered together 31.25 ms later
        drain.answered(0.03125)
        old.observe(0.03125)
    assert drain.turns_per_second() == 1024.0
    assert drain.retry_after_ms(128, 2) == 125  # 128 turns at 1,024 a second
    assert old.retry_after_ms(128, 2) > 16 * 125
    assert drain.retry_after_ms(1, 2) == drain.retry_after_ms(0, 2) == MIN_MS  # the clamps stand
    now[0] = 160.0  # a minute idle: the rate the server showed while it worked stands
    assert drain.retry_after_ms(128, 2) == 125

    for _ in range(3):  # slow turns, one after another: 2 s each
        now[0] += 2.0
        drain.answered(2.0)
    # the batch was answered more than WINDOW_S (3 s) of work ago: only the last two slow turns count
    assert drain.turns_per_second() == 0.5
    assert drain.retry_after_ms(4, 2) == 8000
    assert drain.retry_after_ms(64, 2) == MAX_MS


def test_overlapping_turns_count_the_time_any_of_them_was_in_flight() -> None:
    """Two turns in flight together (received at 0 and 1, answered at 2 and 3) took 3 s of the
    server's time, not 4: the second adds only what came after the first's answer."""
    now = [2.0]
    drain = DrainEstimate(clock=lambda: now[0])
    drain.answered(2.0)
    now[0] = 3.0
    drain.answered(2.0)
    assert drain.turns_per_second() == 2 / 3
    assert drain.retry_after_ms(2, 2) == 3000


def _retry_info_ms(error: grpc.RpcError) -> int:
    """The delay of the ``google.rpc.RetryInfo`` in a call's ``grpc-status-details-bin``."""
    status = status_pb2.Status.FromString(dict(error.trailing_metadata())["grpc-status-details-bin"])
    info = error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(info)
    return info.retry_delay.ToMilliseconds()


def test_a_busy_refusal_is_told_when_the_batched_turns_in_flight_drain(analyzer: Analyzer) -> None:
    """A server whose text turns were answered in batches of 32 (each 200 ms after its receipt),
    its in-flight budget full (64 turns, the default): a refused turn is told the 64 turns drain in
    about 0.4 s (160 turns a second), where the mean latency times the backlog per worker said 6.4 s.
    The same hint goes in ``TurnError.retry_after_ms`` of a Converse turn, and in the
    ``grpc-retry-pushback-ms`` trailer and the ``google.rpc.RetryInfo`` of an Analyze call (whose
    own call is one more in the backlog). A client with the default ``busy_retries`` waits it out."""
    old = LatencyEstimate()
    for _ in range(BATCH):
        old.observe(0.2)
    assert old.retry_after_ms(64, 2) == 6400

    with ServerThread(analyzer) as server:
        assert server.running is not None
        servicer = server.running.servicer

        async def batched_then_full() -> list[Ticket]:
            for _ in range(BATCH):
                servicer.drain.answered(0.2)
            tickets = [servicer.budget.admit(0, False) for _ in range(servicer.budget.max_turns)]
            assert all(isinstance(t, Ticket) for t in tickets)
            return [t for t in tickets if isinstance(t, Ticket)]

        held = server.call(batched_then_full())
        try:
            with AffectClient(server.target, max_retries=0, busy_retries=0) as client, \
                    client.conversation() as conversation, pytest.raises(TurnRefusedError) as busy:
                conversation.send("Where is my parcel?")
            with grpc.insecure_channel(server.target) as channel, pytest.raises(grpc.RpcError) as analyze_busy:
                pb_grpc.AffectServiceStub(channel).Analyze(pb.AnalyzeRequest(turn=pb.Turn(text=b"Hello?")), timeout=30)
            # A client with the defaults waits the hint out (busy_retries, 3): room is made meanwhile.
            threading.Timer(0.2, lambda: [server.loop.call_soon_threadsafe(t.release) for t in held]).start()
            with AffectClient(server.target) as patient:
                assert patient.analyze("Hello again?").emotion
        finally:
            for ticket in held:
                server.loop.call_soon_threadsafe(ticket.release)

    assert busy.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "the server has 64 turns in flight" in busy.value.details
    assert busy.value.retry_after is not None and 0.400 <= busy.value.retry_after <= 0.440  # 64 / 160 a second
    error = analyze_busy.value
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    pushback = int(dict(error.trailing_metadata())[rules.RETRY_PUSHBACK_TRAILER])
    assert 406 <= pushback <= 450 and _retry_info_ms(error) == pushback  # 65 / 160 a second


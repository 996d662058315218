"""What the client's timeouts bound. ``timeout`` (a call) and ``open_timeout`` (a conversation's
opening) are deadlines for the whole, its retries included, as gRPC's own deadline covers its
retry policy: a chatbot that sets ``timeout=2`` gets an answer or an error within about 2 s, not
after the 20 s of retries UNAVAILABLE used to take, and the error says how many attempts were made.
``turn_timeout`` bounds one turn, and a turn that times out leaves the conversation usable: its late
answer is dropped when it comes. Against a real server on loopback (or none), both twins."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest

from affect import Analyzer
from affect_client import (
    AffectClient,
    AsyncAffectClient,
    ClientOptions,
    DeadlineExceededError,
    TurnRefusedError,
    TurnResult,
    TurnTimeoutError,
    UnavailableError,
)
from affect_client import _constants as C
from affect_client import _core
from affect_proto import affect_pb2 as pb
from affect_server.launch import free_port as _free_port
from tests._serving import ServerThread, server_starting_later
from tests.test_server import _workers_held

NOBODY = "127.0.0.1:1"  # nothing listens: every attempt is refused UNAVAILABLE at once


def _analyzed_within(twin: str, target: str, timeout: float) -> tuple[UnavailableError, float]:
    """``analyze`` against ``target`` with ``timeout``: its error and how long it took."""
    async def async_twin() -> None:
        async with AsyncAffectClient(target, timeout=timeout) as client:
            await client.analyze("Is anyone there?")

    started = time.monotonic()
    with pytest.raises(UnavailableError) as refused:
        if twin == "async":
            asyncio.run(async_twin())
        else:
            with AffectClient(target, timeout=timeout) as client:
                client.analyze("Is anyone there?")
    return refused.value, time.monotonic() - started


def _opened_within(twin: str, target: str, open_timeout: float) -> tuple[UnavailableError, float]:
    """A conversation opened against ``target`` with ``open_timeout``: its error and how long it took."""
    async def async_twin() -> None:
        async with AsyncAffectClient(target, open_timeout=open_timeout) as client, client.conversation():
            pass

    started = time.monotonic()
    with pytest.raises(UnavailableError) as refused:
        if twin == "async":
            asyncio.run(async_twin())
        else:
            with AffectClient(target, open_timeout=open_timeout) as client, client.conversation():
                pass
    return refused.value, time.monotonic() - started


@pytest.mark.parametrize("twin", ["sync", "async"])
def test_a_calls_timeout_bounds_its_retries_and_the_error_says_how_many_were_made(twin: str) -> None:
    """``timeout=1`` against an address nobody listens on: UnavailableError within about 1 s (it
    took 19.8 s, the 8 default retries and their backoff), its message naming the attempts, the
    time and the timeout; three calls, so that the jitter's draws are several."""
    for _ in range(3):
        error, took = _analyzed_within(twin, NOBODY, 1.0)
        assert took < 1.5, took
        assert error.code == grpc.StatusCode.UNAVAILABLE
        assert error.details.endswith(": timeout=1 s reached)") and " attempts over " in error.details, error.details
        assert str(error) == f"UNAVAILABLE: {error.details}"


@pytest.mark.parametrize("twin", ["sync", "async"])
def test_an_open_timeout_bounds_the_openings_retries(twin: str) -> None:
    """``open_timeout=1`` on ``conversation()``: the same bound for the opening, named so."""
    for _ in range(3):
        error, took = _opened_within(twin, NOBODY, 1.0)
        assert took < 1.5, took
        assert error.details.endswith(": open_timeout=1 s reached)") and " attempts over " in error.details, error.details


def test_the_deadline_rule_gives_each_attempt_the_time_left_and_starts_none_past_it() -> None:
    """The rule itself (``_core.Retries``), its clock advanced by each wait and each attempt's
    0.1 s: every attempt starts before the deadline with what is left of it as its own deadline,
    no wait ends past it, and the last one is made. Without a timeout the window is today's."""
    import random

    refused = UnavailableError(grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses")
    for seed in range(200):
        random.seed(seed)
        now = [0.0]
        retries = _core.Retries(ClientOptions(timeout=2.0), within="timeout", clock=lambda: now[0])
        starts: list[float] = []
        while True:
            left = retries.left()
            assert left is not None and left == pytest.approx(2.0 - now[0]) and left > 0
            starts.append(now[0])
            now[0] += min(0.1, left)  # the attempt, refused
            if (delay := retries.delay(refused)) is None:
                break
            assert now[0] + delay < 2.0
            now[0] += delay
        assert starts[-1] < 2.0 and 2.0 - starts[-1] <= C.MAX_BACKOFF_S
        error = retries.given_up(refused)
        assert error.details.endswith(f"({len(starts)} attempts over {now[0]:.1f} s: timeout=2 s reached)"), error.details
    untimed = _core.Retries(ClientOptions(timeout=None), within="timeout", clock=lambda: 0.0)
    assert untimed.left() is None
    clock = [0.0]
    window = _core.Retries(ClientOptions(timeout=None, max_retries=2), within="timeout", clock=lambda: clock[0])
    while (delay := window.delay(refused)) is not None:
        clock[0] += delay
    assert clock[0] == pytest.approx(_core.retry_window_s(2))  # today's window: 0.75 s at 2
    assert window.given_up(refused).details.endswith(": max_retries=2 spent and their 0.8 s window passed)")


def test_a_call_made_before_its_server_listens_is_answered_within_its_timeout(analyzer: Analyzer) -> None:
    """The deadline bounds the retries; it does not stop them early: a server listening 1 s after
    the call is reached within a 10 s timeout."""
    port = _free_port()
    with server_starting_later(analyzer, port, 1.0), AffectClient(f"127.0.0.1:{port}", timeout=10) as client:
        assert client.analyze("Are you there?").present == ("text",)


@pytest.mark.parametrize("twin", ["sync", "async"])
def test_a_turn_that_times_out_leaves_the_conversation_usable(analyzer: Analyzer, twin: str) -> None:
    """Two turns time out while the server's workers are held (the server still reads them): each
    raises TurnTimeoutError, saying the conversation goes on. Once the workers are free the next
    send gets its own answer on the same stream (not one of the late ones, which are dropped),
    numbered after them, with the state counting them: the server read them. It raised
    DeadlineExceededError, then ConversationClosedError for every later send, the context lost."""
    with ServerThread(analyzer) as server:

        async def async_twin() -> tuple[list[TurnTimeoutError], TurnResult, TurnResult, int]:
            async with AsyncAffectClient(server.target, turn_timeout=1.0) as client, \
                    client.conversation() as conversation:
                await conversation.send("Hello, I have a question.", speaker="caller", turn_id="first")
                timed_out: list[TurnTimeoutError] = []
                with _workers_held(server):
                    for turn_id in ("late-1", "late-2"):
                        with pytest.raises(TurnTimeoutError) as late:
                            await conversation.send("Where is my parcel?", speaker="caller", turn_id=turn_id)
                        timed_out.append(late.value)
                answered = await conversation.send("Are you still there?", speaker="caller", turn_id="next")
                after = await conversation.send("Thanks.", speaker="caller", turn_id="after")
                return timed_out, answered, after, conversation.resumes

        if twin == "async":
            timed_out, answered, after, resumes = asyncio.run(async_twin())
        else:
            with AffectClient(server.target, turn_timeout=1.0) as client, client.conversation() as conversation:
                conversation.send("Hello, I have a question.", speaker="caller", turn_id="first")
                timed_out = []
                with _workers_held(server):
                    for turn_id in ("late-1", "late-2"):
                        with pytest.raises(TurnTimeoutError) as late:
                            conversation.send("Where is my parcel?", speaker="caller", turn_id=turn_id)
                        timed_out.append(late.value)
                answered = conversation.send("Are you still there?", speaker="caller", turn_id="next")
                after = conversation.send("Thanks.", speaker="caller", turn_id="after")
                resumes = conversation.resumes
    for late in timed_out:
        assert isinstance(late, DeadlineExceededError) and late.code == grpc.StatusCode.DEADLINE_EXCEEDED
        assert late.reason == "" and str(late) == ("DEADLINE_EXCEEDED: no answer within 1 s; the conversation goes on "
                                                   "(this turn's answer is dropped when it comes)")
    assert (answered.turn_id, answered.turn_index, after.turn_id, after.turn_index) == ("next", 3, "after", 4)
    assert answered.state is not None and answered.state.turns == 4 and not answered.resumed and resumes == 0


def test_a_busy_refusal_whose_hint_passes_the_deadline_is_not_sent_again() -> None:
    """gRPC's pushback rule: a server that asks for more time than the call has left is not asked
    again (the deadline's cut to half the time left sent it back before its hint, where it was
    refused again and its contention window started anew); the UNAVAILABLE backoff is still cut."""
    now = [0.0]
    retries = _core.Retries(ClientOptions(turn_timeout=1.0, busy_retries=3), within="turn_timeout", clock=lambda: now[0])
    busy = TurnRefusedError(grpc.StatusCode.RESOURCE_EXHAUSTED, "the server has 64 turns in flight", "turn", "t",
                            retry_after=2.0)
    assert retries.delay(busy) is None
    assert retries.given_up(busy).details.endswith(": turn_timeout=1 s reached)")
    soon = _core.Retries(ClientOptions(turn_timeout=1.0, busy_retries=3), within="turn_timeout", clock=lambda: now[0])
    delay = soon.delay(TurnRefusedError(grpc.StatusCode.RESOURCE_EXHAUSTED, "busy", "turn", "t", retry_after=0.2))
    assert delay is not None and 0.2 <= delay <= 0.25  # a hint within the deadline is waited out


def test_a_replayed_turn_without_an_answer_in_time_does_not_stand_for_the_callers_turn() -> None:
    """After a resume the kept turns are sent again before the caller's; one whose answer is late
    raised the caller's ``TurnTimeoutError`` ("this turn's answer is dropped when it comes") though
    the caller's turn was never sent, and the rest of the replay was skipped. Now the replay goes on
    without it, and the caller's turn is sent and answered."""
    from affect_client import _resume

    memory = _resume.ConversationMemory(ClientOptions())
    opened = pb.ConversationOpened(max_turns_per_second=1000)
    memory.opened(opened)
    reopen = pb.ConverseRequest(open=pb.OpenConversation(conversation_id="c"))
    script = iter(["answer", "unavailable", "late", "answer"])
    sent: list[tuple[str, str]] = []

    def exchange(request: pb.ConverseRequest, timeout: float | None) -> TurnResult:
        what = next(script)
        sent.append((request.turn.turn_id, what))
        if what == "unavailable":
            raise UnavailableError(grpc.StatusCode.UNAVAILABLE, "the connection broke")
        if what == "late":
            raise TurnTimeoutError(60.0)
        return TurnResult.from_pb(pb.TurnResult(turn_id=request.turn.turn_id, turn_index=len(sent)))

    def turn(turn_id: str) -> pb.ConverseRequest:
        return pb.ConverseRequest(turn=pb.Turn(turn_id=turn_id, text=f"hello {turn_id}".encode()))

    assert _resume.driving(memory.turn_flow(turn("t1"), reopen), exchange, lambda _: opened).turn_id == "t1"
    assert _resume.driving(memory.turn_flow(turn("t2"), reopen), exchange, lambda _: opened).turn_id == "t2"
    assert sent == [("t1", "answer"), ("t2", "unavailable"), ("t1", "late"), ("t2", "answer")]
    assert not memory.closed and memory.resumes == 1

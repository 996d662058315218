"""A conversation the server closed for idleness (no turn for its ``idle_timeout_s``: a caller on
hold) is resumed on the next send, as after a restart (``affect_client._resume``), told apart from
the client's own ``turn_timeout`` and any other DEADLINE_EXCEEDED by the reason the server gives in
its trailer (``affect_proto.rules.ABORT_REASON_TRAILER``), never by its message. Against a real
server on loopback with a short idle timeout."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest

from affect_client import (
    AffectClient,
    AsyncAffectClient,
    ConversationClosedError,
    DeadlineExceededError,
    TurnTimeoutError,
)
from affect_client import _constants as C
from affect_client._core import ClientOptions
from affect_client._exceptions import APIStatusError
from affect_client._types import TurnResult
from affect_proto import affect_pb2 as pb
from affect_proto import rules
from tests._serving import ServerThread
from tests.test_client_resume import AFTER, SCRIPT, _assert_same_answer, _control, _until

IDLE_S = 2.0  # the server's idle_timeout_s here; the turns of a script come well within it


def _closed_for_idleness(server: ServerThread) -> None:
    """Wait (the caller's hold) until the server has closed every conversation for idleness, and
    a little more, so that the stream's end has reached the client."""
    _until(lambda: server.open_conversations() == 0, timeout=IDLE_S + 30)
    time.sleep(0.3)


def _idle_closes(server: ServerThread) -> float:
    value = server.running.servicer.metrics.registry.get_sample_value(
        "affect_refused_total", {"code": "DEADLINE_EXCEEDED", "reason": rules.IDLE_REASON})
    return value or 0.0


@pytest.mark.parametrize("twin", ["sync", "async"])
def test_a_conversation_closed_for_idleness_is_resumed_on_the_next_send(analyzer, twin):
    """A hold longer than the server's idle timeout: the server closes the conversation and frees
    its state; the next send reopens it under the same id, replays the kept texts and is answered
    ``resumed``, as a control conversation that never idled answers it (the text context rebuilt),
    numbered on; the conversation goes on. Without the resume: DeadlineExceededError ("no turn for
    2 s"), then ConversationClosedError."""
    with ServerThread(analyzer, idle_timeout_s=IDLE_S) as server:

        async def async_twin() -> tuple[TurnResult, TurnResult, int, str, str]:
            async with AsyncAffectClient(server.target) as client, client.conversation() as conversation:
                for speaker, text in SCRIPT:
                    await conversation.send(text, speaker=speaker)
                first_id = conversation.id
                await asyncio.to_thread(_closed_for_idleness, server)
                after = await conversation.send(AFTER[1], speaker=AFTER[0], turn_id="after")
                then = await conversation.send("Thank you.", speaker="caller")
                return after, then, conversation.resumes, first_id, conversation.id

        if twin == "async":
            after, then, resumes, first_id, last_id = asyncio.run(async_twin())
        else:
            with AffectClient(server.target) as client, client.conversation() as conversation:
                for speaker, text in SCRIPT:
                    conversation.send(text, speaker=speaker)
                first_id = conversation.id
                _closed_for_idleness(server)
                after = conversation.send(AFTER[1], speaker=AFTER[0], turn_id="after")
                then = conversation.send("Thank you.", speaker="caller")
                resumes, last_id = conversation.resumes, conversation.id
        assert _idle_closes(server) == 1
        assert resumes == 1 and last_id == first_id
        assert after.resumed and after.turn_index == len(SCRIPT) and after.turn_id == "after"
        assert after.replayed == len(SCRIPT)
        assert not then.resumed and then.turn_index == len(SCRIPT) + 1
        _assert_same_answer(after, _control(server.target))


@pytest.mark.parametrize("twin", ["sync", "async"])
def test_a_turn_sent_as_the_idle_close_happens_is_resumed_not_lost(analyzer, twin):
    """A turn sent at the moment the server closes the conversation: at once once the server has
    dropped it (its stream ended, the status maybe not yet at the client), and around the idle
    timeout as the client counts it. The server either reads it (an ordinary answer) or closes
    the stream without it, and then it is sent again on the reopened stream: every one answered,
    in the conversation's numbering, none lost, none read twice."""
    idle = 1.0
    delays = (None, idle - 0.03, idle, idle + 0.01, idle + 0.03)  # None: as soon as the server dropped it

    def hold(server: ServerThread, delay: float | None) -> None:
        if delay is None:
            deadline = time.monotonic() + idle + 30
            while server.open_conversations() and time.monotonic() < deadline:
                pass  # each look is a round trip to the server's loop: no sleep, to send at its close
        else:
            time.sleep(delay)

    with ServerThread(analyzer, idle_timeout_s=idle) as server:

        async def async_twin() -> list[TurnResult]:
            answers = []
            async with AsyncAffectClient(server.target) as client:
                for delay in delays:
                    async with client.conversation() as conversation:
                        await conversation.send(SCRIPT[0][1], speaker=SCRIPT[0][0])
                        await asyncio.to_thread(hold, server, delay)
                        answers.append(await conversation.send(AFTER[1], speaker=AFTER[0]))
            return answers

        if twin == "async":
            answers = asyncio.run(async_twin())
        else:
            answers = []
            with AffectClient(server.target) as client:
                for delay in delays:
                    with client.conversation() as conversation:
                        conversation.send(SCRIPT[0][1], speaker=SCRIPT[0][0])
                        hold(server, delay)
                        answers.append(conversation.send(AFTER[1], speaker=AFTER[0]))
        assert [(a.turn_index, a.state.turns) for a in answers] == [(1, 2)] * len(delays)
        assert answers[0].resumed and answers[0].replayed == 1  # the stream had ended: sent again
        assert all(a.replayed == (1 if a.resumed else 0) for a in answers)
        assert _idle_closes(server) == sum(a.resumed for a in answers)


@pytest.mark.parametrize("twin", ["sync", "async"])
def test_the_clients_own_turn_timeout_is_not_resumed(analyzer, twin):
    """In a conversation that resumes after an idle close, a turn whose answer does not come within
    the client's ``turn_timeout`` (the server's loop held up) raises TurnTimeoutError (a
    DeadlineExceededError) with no reason and is not resumed: it is not the server's idle close.
    The conversation goes on on its stream: the next send, once the server is back, is answered
    without a resume (it was closed, ConversationClosedError)."""
    with ServerThread(analyzer, idle_timeout_s=IDLE_S) as server:

        def stall_server() -> None:  # the server's loop held for longer than the turn_timeout
            server.loop.call_soon_threadsafe(time.sleep, 1.5)

        async def async_twin() -> tuple[TurnResult, DeadlineExceededError, TurnResult, int]:
            async with AsyncAffectClient(server.target, turn_timeout=0.5) as client, client.conversation() as conversation:
                await conversation.send(SCRIPT[0][1], speaker=SCRIPT[0][0])
                await asyncio.to_thread(_closed_for_idleness, server)
                resumed = await conversation.send(AFTER[1], speaker=AFTER[0])
                stall_server()
                with pytest.raises(TurnTimeoutError) as timed_out:
                    await conversation.send("Hello?", speaker="caller")
                await asyncio.sleep(1.5)  # the server's loop free again
                later = await conversation.send("Hello??", speaker="caller")
                return resumed, timed_out.value, later, conversation.resumes

        if twin == "async":
            resumed, timed_out, later, resumes = asyncio.run(async_twin())
        else:
            with AffectClient(server.target, turn_timeout=0.5) as client, client.conversation() as conversation:
                conversation.send(SCRIPT[0][1], speaker=SCRIPT[0][0])
                _closed_for_idleness(server)
                resumed = conversation.send(AFTER[1], speaker=AFTER[0])
                stall_server()
                with pytest.raises(TurnTimeoutError) as raised:
                    conversation.send("Hello?", speaker="caller")
                time.sleep(1.5)  # the server's loop free again
                later = conversation.send("Hello??", speaker="caller")
                timed_out, resumes = raised.value, conversation.resumes
        assert resumed.resumed and resumes == 1 and not later.resumed and later.turn_index == 3
        assert isinstance(timed_out, DeadlineExceededError)
        assert timed_out.reason == "" and "no answer within 0.5 s; the conversation goes on" in str(timed_out)


@pytest.mark.parametrize("twin", ["sync", "async"])
def test_with_resume_turns_0_an_idle_close_is_raised_as_before(analyzer, twin):
    """``resume_turns=0``: the send after the hold raises DeadlineExceededError, whose reason says
    the server closed the conversation for idleness, and the conversation has ended."""
    with ServerThread(analyzer, idle_timeout_s=IDLE_S) as server:

        async def async_twin() -> tuple[DeadlineExceededError, int]:
            async with AsyncAffectClient(server.target, resume_turns=0) as client, client.conversation() as conversation:
                await conversation.send(SCRIPT[0][1], speaker=SCRIPT[0][0])
                await asyncio.to_thread(_closed_for_idleness, server)
                with pytest.raises(DeadlineExceededError) as raised:
                    await conversation.send(AFTER[1], speaker=AFTER[0])
                with pytest.raises(ConversationClosedError):
                    await conversation.send(AFTER[1], speaker=AFTER[0])
                return raised.value, conversation.resumes

        if twin == "async":
            error, resumes = asyncio.run(async_twin())
        else:
            with AffectClient(server.target, resume_turns=0) as client, client.conversation() as conversation:
                conversation.send(SCRIPT[0][1], speaker=SCRIPT[0][0])
                _closed_for_idleness(server)
                with pytest.raises(DeadlineExceededError) as raised:
                    conversation.send(AFTER[1], speaker=AFTER[0])
                with pytest.raises(ConversationClosedError):
                    conversation.send(AFTER[1], speaker=AFTER[0])
                error, resumes = raised.value, conversation.resumes
        assert resumes == 0 and error.code == grpc.StatusCode.DEADLINE_EXCEEDED
        assert error.reason == rules.IDLE_REASON and f"no turn for {IDLE_S:g} s" in error.details


# ---------------------------------------------------------------- the decision, without a server


def _deadline(reason: str = "") -> DeadlineExceededError:
    return DeadlineExceededError(grpc.StatusCode.DEADLINE_EXCEEDED, "no turn for 900 s; the conversation was closed",
                                 reason=reason)


def _answer(index: int) -> TurnResult:
    return TurnResult(turn_id="", turn_index=index, speaker=None, fused=None, present=())


def test_only_the_servers_idle_close_is_resumed_of_deadlines():
    """The reason decides, not the message: the same words without the reason "idle" (a client's
    timeout, a deadline, a proxy's) or with another ("unread": answers the client never read)
    are not resumed; nor anything with ``resume_turns=0`` or once the conversation is closed."""
    from affect_client._resume import ConversationMemory

    memory = ConversationMemory(ClientOptions())
    assert memory.resumable(_deadline(rules.IDLE_REASON))
    assert not memory.resumable(_deadline())
    assert not memory.resumable(_deadline("unread"))
    assert not memory.resumable(APIStatusError(grpc.StatusCode.ABORTED, "closed", reason=rules.IDLE_REASON))
    assert not ConversationMemory(ClientOptions(resume_turns=0)).resumable(_deadline(rules.IDLE_REASON))
    memory.close()
    assert not memory.resumable(_deadline(rules.IDLE_REASON))


def test_idle_closes_are_resumed_as_often_as_holds_come_but_once_a_send():
    """A call with more holds than ``MAX_RESUMES`` keeps its conversation (an idle close is the
    server's rule, not a failing server: it does not use up the resumes after UNAVAILABLE), and
    ``resumes`` counts each; a reopened stream closed for idleness again before its turn is
    answered is raised, so that a send cannot loop."""
    from affect_client._resume import ConversationMemory, driving, reopen_request

    memory = ConversationMemory(ClientOptions())
    turn = pb.ConverseRequest(turn=pb.Turn(text=b"hello", speaker="caller"))
    again = reopen_request(pb.ConverseRequest(open=pb.OpenConversation()), "c1")
    stream = {"held": False, "next_index": 0, "opened": 1}

    def reopen(request: pb.ConverseRequest) -> pb.ConversationOpened:
        assert request.open.resume and request.open.conversation_id == "c1"
        stream.update(next_index=0, opened=stream["opened"] + 1)  # a new stream counts from 0
        return pb.ConversationOpened()

    def closed_after_a_hold(request: pb.ConverseRequest, timeout: float | None) -> TurnResult:
        if stream["held"]:  # the first request after a hold finds the stream closed
            stream["held"] = False
            raise _deadline(rules.IDLE_REASON)
        stream["next_index"] += 1
        return _answer(stream["next_index"] - 1)

    assert not driving(memory.turn_flow(turn, again), closed_after_a_hold, reopen).resumed
    for hold in range(1, C.MAX_RESUMES + 3):
        stream["held"] = True
        answer = driving(memory.turn_flow(turn, again), closed_after_a_hold, reopen)
        assert answer.resumed and answer.turn_index == hold and answer.replayed == min(hold, C.DEFAULT_RESUME_TURNS)
    assert memory.resumes == C.MAX_RESUMES + 2 == stream["opened"] - 1 and not memory.closed

    def always_idle(request: pb.ConverseRequest, timeout: float | None) -> TurnResult:
        raise _deadline(rules.IDLE_REASON)

    opened = stream["opened"]
    with pytest.raises(DeadlineExceededError):
        driving(memory.turn_flow(turn, again), always_idle, reopen)
    assert stream["opened"] == opened + 1 and memory.closed  # reopened once, then raised

"""A conversation carried across a server restart (``affect_client._resume``): against real
servers on loopback, drained and started again on the same port mid-conversation."""

from __future__ import annotations

import asyncio
import threading
import time

import grpc
import pytest

from affect import Analyzer

from affect_client import (
    AffectClient,
    AsyncAffectClient,
    ClientClosedError,
    ConversationClosedError,
    TurnRefusedError,
    UnavailableError,
)
from affect_client import _constants as C
from affect_client._core import ClientOptions
from affect_client._types import TurnResult
from affect_proto import affect_pb2 as pb
from affect_server.launch import free_port
from tests._serving import ServerThread
from tests.conftest import framed_face_png

SCRIPT = [  # (speaker, text): the conversation before the restart
    ("caller", "Hi, I ordered a present for my daughter and it never came."),
    ("agent", "I'm so sorry, let me look into it."),
    ("caller", "This is the third time this has happened!"),
    ("agent", "I understand. I can see the parcel was returned to our depot."),
]
AFTER = ("caller", "Returned? I want my money back, now.")  # the turn sent once the server is gone


def _restarted(server: ServerThread, analyzer, **settings) -> ServerThread:
    """``server`` drained (its open conversations told UNAVAILABLE), and a new one on its port."""
    port = server.running.port
    server.__exit__(None, None, None)
    return ServerThread(analyzer, port=port, **settings).__enter__()


def _control(target: str) -> TurnResult:
    """The answer to AFTER in a conversation that sent SCRIPT to one server, with no restart."""
    with AffectClient(target) as client, client.conversation() as conversation:
        for speaker, text in SCRIPT:
            conversation.send(text, speaker=speaker)
        return conversation.send(AFTER[1], speaker=AFTER[0])


def _assert_same_answer(resumed: TurnResult, control: TurnResult) -> None:
    assert resumed.emotions == pytest.approx(control.emotions, abs=1e-5)
    assert resumed.state.valence == pytest.approx(control.state.valence, abs=1e-5)
    assert resumed.state.arousal == pytest.approx(control.state.arousal, abs=1e-5)
    assert resumed.state.turns == control.state.turns == len(SCRIPT) + 1


def test_the_default_replay_is_the_text_models_context_window(text_encoder):
    assert C.DEFAULT_RESUME_TURNS == text_encoder.window == ClientOptions().resume_turns
    with pytest.raises(ValueError, match="resume_turns must be 0"):
        AffectClient("127.0.0.1:9", resume_turns=-1)


def test_a_conversation_resumes_on_the_restarted_server_with_its_context_rebuilt(analyzer):
    """The new server reads the turn after the restart as the old one would have: the replayed
    texts rebuilt the text context and the trajectory (the answer equals a control's that never
    met a restart); the turn is numbered on, marked resumed, and the conversation goes on."""
    server = ServerThread(analyzer, port=free_port()).__enter__()
    try:
        with AffectClient(server.target) as client, client.conversation() as conversation:
            before = [conversation.send(text, speaker=speaker) for speaker, text in SCRIPT]
            first_id = conversation.id
            server = _restarted(server, analyzer)
            after = conversation.send(AFTER[1], speaker=AFTER[0], turn_id="after")
            then = conversation.send("Thank you.", speaker="caller")
            assert conversation.resumes == 1 and conversation.id == first_id
        assert [r.turn_index for r in before] == [0, 1, 2, 3] and not any(r.resumed for r in before)
        assert after.resumed and after.turn_index == 4 and after.turn_id == "after" and after.to_dict()["resumed"] is True
        assert after.replayed == len(SCRIPT) and then.replayed == 0
        assert not then.resumed and then.turn_index == 5
        _assert_same_answer(after, _control(server.target))
    finally:
        server.__exit__(None, None, None)


def test_an_async_conversation_resumes_alike(analyzer):
    server = ServerThread(analyzer, port=free_port()).__enter__()

    async def twin() -> tuple[TurnResult, TurnResult, int]:
        nonlocal server
        async with AsyncAffectClient(server.target) as client, client.conversation() as conversation:
            for speaker, text in SCRIPT:
                await conversation.send(text, speaker=speaker)
            server = await asyncio.to_thread(_restarted, server, analyzer)
            after = await conversation.send(AFTER[1], speaker=AFTER[0])
            then = await conversation.send("Thank you.", speaker="caller")
            return after, then, conversation.resumes

    try:
        after, then, resumes = asyncio.run(twin())
        assert resumes == 1 and after.resumed and after.turn_index == 4
        assert not then.resumed and then.turn_index == 5
        _assert_same_answer(after, _control(server.target))
    finally:
        server.__exit__(None, None, None)


def test_a_turn_whose_answer_never_came_is_sent_again(analyzer):
    """The server stops at once while a turn waits in its batch window (a crash, a replica's
    death): that turn is sent again on the new server, once its context is replayed."""
    server = ServerThread(analyzer, port=free_port(), batch_max_wait_ms=1000, adaptive_batch_wait=False).__enter__()
    answers: list[TurnResult] = []
    try:
        with AffectClient(server.target) as client, client.conversation() as conversation:
            conversation.send(SCRIPT[0][1], speaker=SCRIPT[0][0])
            waiting = threading.Thread(target=lambda: answers.append(conversation.send(AFTER[1], speaker=AFTER[0])))
            waiting.start()
            _until(lambda: server.running.servicer.in_flight >= 1)  # admitted: it waits in the 1 s batch window
            port = server.running.port
            server.call(server.running.drain_and_stop(0.0))  # no grace: the turn in flight is cut off
            server.loop.call_soon_threadsafe(server.loop.stop)
            server._thread.join(10)
            server = ServerThread(analyzer, port=port).__enter__()
            waiting.join(60)
            assert conversation.resumes == 1
        assert [(a.resumed, a.turn_index, a.state.turns) for a in answers] == [(True, 1, 2)]
    finally:
        server.__exit__(None, None, None)


@pytest.mark.parametrize("twin", ["sync", "async"])
def test_with_resume_turns_0_the_failure_is_raised_as_before(analyzer, twin):
    server = ServerThread(analyzer, port=free_port()).__enter__()

    async def async_twin() -> None:
        nonlocal server
        async with AsyncAffectClient(server.target, resume_turns=0) as client, client.conversation() as conversation:
            await conversation.send(SCRIPT[0][1])
            server = await asyncio.to_thread(_restarted, server, analyzer)
            with pytest.raises(UnavailableError):
                await conversation.send(AFTER[1])
            assert conversation.resumes == 0

    try:
        if twin == "async":
            asyncio.run(async_twin())
        else:
            with AffectClient(server.target, resume_turns=0) as client, client.conversation() as conversation:
                conversation.send(SCRIPT[0][1])
                server = _restarted(server, analyzer)
                with pytest.raises(UnavailableError):
                    conversation.send(AFTER[1])
                assert conversation.resumes == 0
    finally:
        server.__exit__(None, None, None)


def test_only_the_text_of_past_turns_is_kept_and_replayed(full_analyzer, data_root):
    """A turn with a face and text: after the restart the new server read its text alone (no
    turn with a face reached it but the one resent), and the client holds no image."""
    face = framed_face_png(data_root, "happy")
    server = ServerThread(full_analyzer, port=free_port()).__enter__()
    try:
        with AffectClient(server.target) as client, client.conversation() as conversation:
            seen = conversation.send(SCRIPT[0][1], speaker="caller", image=face)
            conversation.send(SCRIPT[1][1], speaker="agent")
            assert seen.present == ("face", "text")
            server = _restarted(server, full_analyzer)
            after = conversation.send(AFTER[1], speaker="caller", image=face)
            kept = conversation._memory.kept()
        assert after.resumed and after.turn_index == 2 and after.present == ("face", "text")
        assert [(k.speaker, k.text.decode()) for k in kept] == [("caller", SCRIPT[0][1]), ("agent", SCRIPT[1][1]),
                                                                ("caller", AFTER[1])]
        assert all(type(value) in (bytes, str) for k in kept for value in vars(k).values())

        def turns(modalities: str) -> float:
            return server.running.servicer.metrics.registry.get_sample_value(
                "affect_turn_latency_seconds_count", {"modalities": modalities}) or 0.0

        assert (turns("text"), turns("face+text")) == (2.0, 1.0)  # the two replayed, the one resent
        assert not conversation._memory.kept()  # dropped at close
    finally:
        server.__exit__(None, None, None)


def test_a_resumed_answer_says_how_many_turns_the_new_server_read(analyzer):
    """A new server with a smaller text limit: some replayed turns are over it, left out and the
    answer says how many were read (it said nothing of what was lost). The limit the new stream
    told replaced the old one's, so those turns were refused by the client, never sent."""
    server = ServerThread(analyzer, port=free_port()).__enter__()
    try:
        with AffectClient(server.target) as client, client.conversation() as conversation:
            for speaker, text in SCRIPT:
                conversation.send(text, speaker=speaker)
            assert conversation.limits.max_text_chars == 10_000
            limit = 40
            server = _restarted(server, analyzer, max_text_chars=limit)
            after = conversation.send(AFTER[1], speaker=AFTER[0])
            assert conversation.limits.max_text_chars == limit
        fits = sum(len(text) <= limit for _, text in SCRIPT)
        assert 0 < fits < len(SCRIPT) and after.resumed and after.replayed == fits
        assert after.state.turns == fits + 1
        assert server.running.servicer.metrics.registry.get_sample_value(
            "affect_refused_total", {"code": "INVALID_ARGUMENT", "reason": "too_large"}) is None
    finally:
        server.__exit__(None, None, None)


def test_the_replay_keeps_within_the_servers_turn_rate(analyzer):
    """A server allowing 1 turn a second (a bucket of 2): the replay of four turns and the turn
    resent are paced by the rate the new stream announced, and none is refused."""
    server = ServerThread(analyzer, port=free_port()).__enter__()
    try:
        with AffectClient(server.target) as client, client.conversation() as conversation:
            for speaker, text in SCRIPT:
                conversation.send(text, speaker=speaker)
            server = _restarted(server, analyzer, max_turns_per_second=1.0)
            after = conversation.send(AFTER[1], speaker=AFTER[0])
        assert after.resumed and after.turn_index == len(SCRIPT) and after.state.turns == len(SCRIPT) + 1
        registry = server.running.servicer.metrics.registry
        assert registry.get_sample_value("affect_refused_total", {"code": "RESOURCE_EXHAUSTED", "reason": "rate"}) is None
        assert registry.get_sample_value("affect_turns_total") == len(SCRIPT) + 1
    finally:
        server.__exit__(None, None, None)


RESET_BEFORE = [("caller", "This is ridiculous, I'm paying for this and nothing works!"),
                ("caller", "I'm furious. Cancel my account now!"),
                ("agent", "I understand. I'm putting you through to a colleague who can help.")]
RESET_AFTER = ("caller", "Hello? I've been on hold for an hour, this is outrageous!")


@pytest.mark.parametrize("twin", ["sync", "async"])
def test_a_speakers_reset_is_replayed_in_its_place_after_a_restart(analyzer, twin):
    """A caller reset (``reset_speaker``: a new caller put through) before the server restarts:
    the replay sends the reset again between the same turns, so the new server starts the caller
    anew where the old one did, and the new caller's turn is answered as with no restart (replayed
    without it, the new server held the earlier caller's state: three turns, rising_anger disarmed)."""
    server = ServerThread(analyzer, port=free_port()).__enter__()

    def before(conversation) -> None:
        for speaker, text in RESET_BEFORE[:2]:
            conversation.send(text, speaker=speaker)
        assert conversation.reset_speaker("caller") == 2
        conversation.send(RESET_BEFORE[2][1], speaker=RESET_BEFORE[2][0])

    async def async_twin() -> TurnResult:
        nonlocal server
        async with AsyncAffectClient(server.target) as client, client.conversation() as conversation:
            for speaker, text in RESET_BEFORE[:2]:
                await conversation.send(text, speaker=speaker)
            assert await conversation.reset_speaker("caller") == 2
            await conversation.send(RESET_BEFORE[2][1], speaker=RESET_BEFORE[2][0])
            server = await asyncio.to_thread(_restarted, server, analyzer)
            return await conversation.send(RESET_AFTER[1], speaker=RESET_AFTER[0])

    try:
        if twin == "async":
            resumed = asyncio.run(async_twin())
        else:
            with AffectClient(server.target) as client, client.conversation() as conversation:
                before(conversation)
                server = _restarted(server, analyzer)
                resumed = conversation.send(RESET_AFTER[1], speaker=RESET_AFTER[0])
        with AffectClient(server.target) as client, client.conversation() as conversation:
            before(conversation)
            control = conversation.send(RESET_AFTER[1], speaker=RESET_AFTER[0])
        assert resumed.resumed and resumed.replayed == 3 and resumed.turn_index == control.turn_index == 3
        assert [e.kind for e in resumed.events] == [e.kind for e in control.events] == ["rising_anger", "escalation_risk"]
        assert [e.value for e in resumed.events] == pytest.approx([e.value for e in control.events], abs=1e-5)
        assert resumed.emotions == pytest.approx(control.emotions, abs=1e-5)
        assert [(s.speaker, s.turns) for s in resumed.state.speakers] == [("agent", 1), ("caller", 1)]
        assert [(f.speaker, f.anger) for f in resumed.state.forecast] == \
            [(f.speaker, pytest.approx(f.anger, abs=1e-5)) for f in control.state.forecast]
    finally:
        server.__exit__(None, None, None)


def test_a_reset_is_kept_only_while_a_kept_turn_of_its_speaker_is_before_it():
    """The replay keeps the last ``resume_turns`` turns and the resets among them; a reset before
    every kept turn of its speaker would change nothing on a new server, and is not kept (so
    resets never outnumber the kept turns)."""
    from affect_client._resume import ConversationMemory, KeptReset, KeptTurn, driving

    memory = ConversationMemory(ClientOptions(resume_turns=2))

    def say(speaker: str) -> None:
        request = pb.ConverseRequest(turn=pb.Turn(text=speaker.encode(), speaker=speaker))
        driving(memory.turn_flow(request, pb.ConverseRequest()), lambda r, t: _answer(0), lambda r: pb.ConversationOpened())

    def reset(speaker: str) -> None:
        request = pb.ConverseRequest(reset_speaker=pb.ResetSpeaker(speaker=speaker))
        answer = driving(memory.reset_flow(request, pb.ConverseRequest()), lambda r, t: pb.SpeakerReset(speaker=speaker),
                         lambda r: pb.ConversationOpened())
        assert answer.speaker == speaker

    def kept() -> list[str]:
        return [f"{'turn' if isinstance(k, KeptTurn) else 'reset'} {k.speaker}" for k in memory.kept()]

    reset("caller")
    assert kept() == []  # nothing of the caller kept: nothing to reset
    say("caller")
    reset("caller")
    reset("caller")  # a second reset with no turn between: the same as one
    reset("agent")
    assert kept() == ["turn caller", "reset caller"]
    say("agent")
    assert kept() == ["turn caller", "reset caller", "turn agent"]
    say("caller")  # the first turn goes, and with it the reset after it
    assert kept() == ["turn agent", "turn caller"]
    assert all(isinstance(k, (KeptTurn, KeptReset)) for k in memory.kept())


# ---------------------------------------------------------------- the decision, without a server


def _answer(index: int) -> TurnResult:
    return TurnResult(turn_id="", turn_index=index, speaker=None, fused=None, present=())


def _unavailable() -> UnavailableError:
    return UnavailableError(grpc.StatusCode.UNAVAILABLE, "server is shutting down")


def test_resumes_are_bounded_and_a_refused_or_closed_conversation_is_not_resumed():
    from affect_client._resume import ConversationMemory, driving

    memory = ConversationMemory(ClientOptions())
    turn = pb.ConverseRequest(turn=pb.Turn(text=b"hello"))
    reopened: list[str] = []

    def reopen(request: pb.ConverseRequest) -> pb.ConversationOpened:
        reopened.append(request.open.conversation_id)
        return pb.ConversationOpened()

    def fails(request: pb.ConverseRequest, timeout: float | None) -> TurnResult:
        raise _unavailable()

    assert driving(memory.turn_flow(turn, pb.ConverseRequest()), lambda request, timeout: _answer(0), reopen).turn_index == 0
    with pytest.raises(UnavailableError):  # never answered: resumed MAX_RESUMES times, then raised
        driving(memory.turn_flow(turn, pb.ConverseRequest()), fails, reopen)
    # reopened MAX_RESUMES times, but no resume got its turn answered: none counts
    assert memory.resumes == 0 and len(reopened) == C.MAX_RESUMES and memory.closed and not memory.kept()

    refusing = ConversationMemory(ClientOptions())
    refused = TurnRefusedError(grpc.StatusCode.INVALID_ARGUMENT, "text is empty", "turn.text", "")
    with pytest.raises(TurnRefusedError):
        driving(refusing.turn_flow(turn, pb.ConverseRequest()), lambda request, timeout: (_ for _ in ()).throw(refused), reopen)
    assert refusing.resumes == 0 and not refusing.closed  # the conversation goes on

    closed = ConversationMemory(ClientOptions())
    closed.close()
    with pytest.raises(ConversationClosedError):  # not even sent
        driving(closed.turn_flow(turn, pb.ConverseRequest()), fails, reopen)
    assert closed.resumes == 0 and len(reopened) == C.MAX_RESUMES


def test_a_kept_turns_repr_shows_no_text():
    from affect_client._resume import KeptTurn

    kept = KeptTurn(b"my account number is 12345", "caller", "t1")
    assert "12345" not in repr(kept) and "caller" in repr(kept)


# ------------------------------------------------ while a resume waits for its server to come back


def _down(server: ServerThread) -> int:
    """``server`` drained and stopped (its conversations told UNAVAILABLE); its port."""
    port = server.running.port
    server.__exit__(None, None, None)
    return port


def _until(condition, timeout: float = 30.0) -> None:
    """Wait until ``condition()`` holds (polled): a state the test needs, not a guessed delay."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.02)


async def _until_async(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        await asyncio.sleep(0.02)


async def _a_send_resuming(client: AsyncAffectClient, server: ServerThread):
    """A conversation of one turn, its server stopped, and a send resuming (retrying its reopen):
    the conversation, the send's task and the port a new server may take."""
    conversation = await client.conversation().open()
    await conversation.send(SCRIPT[0][1], speaker="caller")
    port = await asyncio.to_thread(_down, server)
    sending = asyncio.ensure_future(conversation.send(AFTER[1], speaker="caller"))
    await _until_async(lambda: conversation._memory._attempts == 1)
    return conversation, sending, port


def _in_thread(call) -> tuple[threading.Thread, list]:
    """``call()`` run in a thread; what it returned or raised lands in the list."""
    outcome: list = []

    def run() -> None:
        try:
            outcome.append(call())
        except BaseException as error:  # noqa: BLE001 - the test looks at it
            outcome.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


@pytest.mark.parametrize("closing", ["conversation", "client"])
def test_a_close_during_a_resume_ends_it_and_is_not_undone(analyzer, closing):
    """The server is gone and a send resumes (its reopen retried while no server listens); the
    conversation (or its client) is closed from another thread: the send raises at once, nothing
    is reopened when the server is back, no text is kept, later sends raise."""
    server = ServerThread(analyzer, port=free_port()).__enter__()
    client = AffectClient(server.target)
    try:
        conversation = client.conversation()
        conversation.send(SCRIPT[0][1], speaker="caller")
        port = _down(server)
        thread, outcome = _in_thread(lambda: conversation.send(AFTER[1], speaker="caller"))
        _until(lambda: conversation._memory._attempts == 1)  # the send is resuming: retrying its reopen
        started = time.monotonic()
        conversation.close() if closing == "conversation" else client.close()
        thread.join(30)
        expected = ConversationClosedError if closing == "conversation" else ClientClosedError
        assert isinstance(outcome[0], expected), outcome
        assert time.monotonic() - started < C.MAX_BACKOFF_S + 2  # at its next attempt, not after the whole budget
        assert not conversation._memory.kept() and conversation.resumes == 0
        server = ServerThread(analyzer, port=port).__enter__()
        time.sleep(0.5)
        assert server.open_conversations() == 0  # nothing reopened once a server is back
        with pytest.raises(expected):
            conversation.send("Hello again.")
    finally:
        client.close()
        server.__exit__(None, None, None)


def test_an_async_close_during_a_resume_ends_it(analyzer):
    server = ServerThread(analyzer, port=free_port()).__enter__()

    async def twin() -> None:
        nonlocal server
        async with AsyncAffectClient(server.target) as client:
            conversation, sending, port = await _a_send_resuming(client, server)
            await conversation.close()
            with pytest.raises(ConversationClosedError):
                await asyncio.wait_for(sending, 30)
            assert not conversation._memory.kept() and conversation.resumes == 0
            server = await asyncio.to_thread(lambda: ServerThread(analyzer, port=port).__enter__())
            await asyncio.sleep(0.5)
            assert server.open_conversations() == 0
            with pytest.raises(ConversationClosedError):
                await conversation.send("Hello again.")

    try:
        asyncio.run(twin())
    finally:
        server.__exit__(None, None, None)


def test_an_async_send_cancelled_during_a_resume_ends_the_conversation(analyzer):
    """As a cancelled send always did (its answer would go to the next turn): and its texts go."""
    server = ServerThread(analyzer, port=free_port()).__enter__()

    async def twin() -> None:
        async with AsyncAffectClient(server.target) as client:
            conversation, sending, _ = await _a_send_resuming(client, server)
            sending.cancel()
            with pytest.raises(asyncio.CancelledError):
                await sending
            assert conversation._memory.closed and not conversation._memory.kept()
            with pytest.raises(ConversationClosedError):
                await conversation.send("Hello again.")

    try:
        asyncio.run(twin())
    finally:
        server.__exit__(None, None, None)


def test_a_send_from_another_thread_during_a_resume_waits_and_is_answered(analyzer):
    server = ServerThread(analyzer, port=free_port()).__enter__()
    try:
        with AffectClient(server.target) as client, client.conversation() as conversation:
            for speaker, text in SCRIPT[:2]:
                conversation.send(text, speaker=speaker)
            port = _down(server)
            first, first_outcome = _in_thread(lambda: conversation.send(AFTER[1], speaker="caller"))
            _until(lambda: conversation._memory._attempts == 1)  # the first send is resuming
            second, second_outcome = _in_thread(lambda: conversation.send("And quickly.", speaker="caller"))
            time.sleep(0.5)  # the second send waits behind it (nothing to poll: it waits on the turn lock)
            server = ServerThread(analyzer, port=port).__enter__()
            first.join(60)
            second.join(60)
            assert [(r.resumed, r.turn_index) for r in first_outcome + second_outcome] == [(True, 2), (False, 3)]
            assert conversation.resumes == 1
    finally:
        server.__exit__(None, None, None)


def test_tasks_sharing_a_conversation_wait_for_its_resume(analyzer):
    server = ServerThread(analyzer, port=free_port()).__enter__()

    async def twin() -> list[TurnResult]:
        nonlocal server
        async with AsyncAffectClient(server.target) as client, client.conversation() as conversation:
            await conversation.send(SCRIPT[0][1], speaker="caller")
            port = await asyncio.to_thread(_down, server)
            first = asyncio.ensure_future(conversation.send(AFTER[1], speaker="caller"))
            await _until_async(lambda: conversation._memory._attempts == 1)
            second = asyncio.ensure_future(conversation.send("And quickly.", speaker="caller"))
            await asyncio.sleep(0.5)  # the second send waits behind it on the turn lock
            server = await asyncio.to_thread(lambda: ServerThread(analyzer, port=port).__enter__())
            return list(await asyncio.wait_for(asyncio.gather(first, second), 60))

    try:
        answers = asyncio.run(twin())
        assert [(r.resumed, r.turn_index) for r in answers] == [(True, 1), (False, 2)]
    finally:
        server.__exit__(None, None, None)


def test_a_send_waiting_behind_a_failed_resume_gets_its_error():
    """The unit of the rule: a turn that waited behind a resume that failed raises that error."""
    from affect_client._resume import ConversationMemory, driving

    memory = ConversationMemory(ClientOptions())
    turn = pb.ConverseRequest(turn=pb.Turn(text=b"hello"))

    def reopen(request: pb.ConverseRequest) -> pb.ConversationOpened:
        raise _unavailable()

    def fails(request: pb.ConverseRequest, timeout: float | None) -> TurnResult:
        raise _unavailable()

    with pytest.raises(UnavailableError) as first:
        driving(memory.turn_flow(turn, pb.ConverseRequest()), fails, reopen)
    with pytest.raises(UnavailableError) as waiting:
        driving(memory.turn_flow(turn, pb.ConverseRequest()), fails, reopen)
    assert (waiting.value.code, str(waiting.value)) == (first.value.code, str(first.value)) and memory.resumes == 0
    assert waiting.value is not first.value  # each waiting turn its own error, not one shared by threads


def test_a_failed_resume_keeps_nothing_of_the_turn_that_failed():
    """The error a failed resume ended the conversation with was kept for the turns waiting behind
    it, and its traceback's frames held the failed turn's text and audio (and a replayed turn's
    text) after the kept texts were dropped: the conversation keeps only how to make that error."""
    import gc
    import types

    from affect_client._resume import ConversationMemory, driving

    memory = ConversationMemory(ClientOptions(max_retries=0))
    driving(memory.turn_flow(pb.ConverseRequest(turn=pb.Turn(text=b"kept secret")), pb.ConverseRequest()),
            lambda request, timeout: TurnResult(turn_id="", turn_index=0, speaker=None, fused=None, present=()),
            lambda request: pb.ConversationOpened())

    def gone(request: pb.ConverseRequest, timeout: float | None = None) -> TurnResult:
        raise _unavailable()

    turn = pb.ConverseRequest(turn=pb.Turn(text=b"my card 4929", audio=pb.Audio(data=b"RAWAUDIO")))
    with pytest.raises(UnavailableError):
        driving(memory.turn_flow(turn, pb.ConverseRequest()), gone, gone)
    del turn
    gc.collect()
    seen, todo, found = set(), [memory], []
    while todo:  # what the conversation's memory reaches (a function: its closure, not its module)
        item = todo.pop()
        if id(item) in seen or isinstance(item, (type, types.ModuleType)):
            continue
        seen.add(id(item))
        if isinstance(item, types.FunctionType):
            todo.extend(cell.cell_contents for cell in item.__closure__ or ())
            continue
        if isinstance(item, pb.ConverseRequest) or (
                isinstance(item, bytes) and any(secret in item for secret in (b"4929", b"RAWAUDIO", b"kept secret"))):
            found.append(item)
        todo.extend(gc.get_referents(item))
    assert memory.closed and not found, found


@pytest.mark.parametrize("twin", ["sync", "async"])
def test_a_blip_while_the_same_server_holds_the_conversation_is_taken_over(analyzer, twin):
    """The client's connection resets but the server's end stays open (half-open: a NAT dropped
    it, or a proxy that sends no keepalive pings holds it), so the server still holds the
    conversation: an opening of its id without ``resume`` is refused ALREADY_EXISTS. The resume's
    reopen says it is a resume, with the token the server gave the stream, and takes the
    conversation over at once: it is never refused (it would wait until the server's keepalive, or
    behind Ray's proxy its idle limit, freed the old stream), the old stream is ended as taken
    over, and the turn is carried on. A second blip is met alike: the resume sends the token of
    the stream the first resume opened, not the first stream's."""
    from affect_client import AlreadyExistsError

    from tests._proxy import HalfOpenProxy

    server = ServerThread(analyzer, port=free_port()).__enter__()
    proxy = HalfOpenProxy(server.running.port)
    registry = server.running.servicer.metrics.registry

    def refused(code: str, reason: str) -> float | None:
        return registry.get_sample_value("affect_refused_total", {"code": code, "reason": reason})

    def fresh_open_is_refused(conversation_id: str) -> None:
        with AffectClient(server.target, max_retries=0) as other:  # the same address, no resume
            with pytest.raises(AlreadyExistsError):
                other.conversation(conversation_id)

    async def async_twin() -> tuple[TurnResult, TurnResult]:
        async with AsyncAffectClient(proxy.target) as client, client.conversation() as conversation:
            for speaker, text in SCRIPT[:2]:
                await conversation.send(text, speaker=speaker)
            proxy.cut_client_side()
            await asyncio.to_thread(fresh_open_is_refused, conversation.id)
            after = await conversation.send(AFTER[1], speaker=AFTER[0])
            assert conversation.resumes == 1
            proxy.cut_client_side()
            again = await conversation.send(SCRIPT[2][1], speaker=SCRIPT[2][0])
            assert conversation.resumes == 2
            return after, again

    try:
        if twin == "async":
            after, again = asyncio.run(async_twin())
        else:
            with AffectClient(proxy.target) as client, client.conversation() as conversation:
                for speaker, text in SCRIPT[:2]:
                    conversation.send(text, speaker=speaker)
                proxy.cut_client_side()
                fresh_open_is_refused(conversation.id)
                after = conversation.send(AFTER[1], speaker=AFTER[0])
                assert conversation.resumes == 1
                proxy.cut_client_side()
                again = conversation.send(SCRIPT[2][1], speaker=SCRIPT[2][0])
                assert conversation.resumes == 2
        assert after.resumed and after.turn_index == 2 and after.replayed == 2 and after.state.turns == 3
        assert again.resumed and again.turn_index == 3 and again.replayed == 3 and again.state.turns == 4
        assert refused("ALREADY_EXISTS", "duplicate") == 1  # the fresh opening only: the resumes were never refused
        assert refused("ABORTED", "taken_over") == 2
        _until(lambda: server.running.servicer.slots.open == 0)  # the old stream ended too, its slot given back
        assert server.open_conversations() == 0 and server.running.servicer.budget.turns == 0
    finally:
        proxy.close()
        server.__exit__(None, None, None)


@pytest.mark.parametrize("twin", ["sync", "async"])
def test_a_conversation_another_stream_took_over_raises_its_own_error_and_is_not_resumed(analyzer: Analyzer,
                                                                                           twin: str) -> None:
    """A second client on the same address resumes the first's conversation id (the opening a
    resume sends, ``OpenConversation.resume``). Without the first stream's resume token (a caller
    behind the same NAT that knows the id) it is refused ALREADY_EXISTS, as a fresh opening is,
    and the first goes on. With it (handed over by the first's own program) the server ends the
    first's stream ABORTED with the reason ``taken_over``. The first's next send raised a generic
    ``APIStatusError``: it raises ``ConversationTakenOverError`` (an ``APIStatusError``, code and
    reason kept), is not resumed (that would take the conversation back, and the second would then
    resume: a fight), and is closed; the second goes on with the conversation, taken over once."""
    from affect_client import (AffectClientError, AlreadyExistsError, APIStatusError, AsyncConversation, Conversation,
                               ConversationTakenOverError)
    from affect_client._core import open_request
    from affect_client._resume import reopen_request
    from affect_proto import rules

    def resume_of(conversation_id: str) -> pb.ConverseRequest:
        return reopen_request(open_request(conversation_id, omit_modality_results=False, disable_text_context=False),
                              conversation_id)

    def checked(taken: AffectClientError, closed_after: AffectClientError, first_resumes: int,
                second: TurnResult) -> None:
        assert isinstance(taken, ConversationTakenOverError) and isinstance(taken, APIStatusError)
        assert taken.code == grpc.StatusCode.ABORTED and taken.reason == rules.TAKEN_OVER_REASON == "taken_over"
        assert "taken over" in str(taken)
        assert isinstance(closed_after, ConversationClosedError) and first_resumes == 0
        assert second.turn_index == 1 and not second.resumed  # the second's own state: its first turn, then this

    with ServerThread(analyzer, max_turns_per_second=1000) as server:
        registry = server.running.servicer.metrics.registry

        async def async_twin() -> tuple[AffectClientError, AffectClientError, int, TurnResult]:
            async with AsyncAffectClient(server.target) as client, client.conversation() as first:
                await first.send(SCRIPT[0][1], speaker=SCRIPT[0][0])
                async with AsyncAffectClient(server.target, max_retries=0) as other:
                    with pytest.raises(AlreadyExistsError):
                        await AsyncConversation(other, resume_of(first.id)).open()
                    assert (await first.send(SCRIPT[1][1], speaker=SCRIPT[1][0])).turn_index == 1
                    async with AsyncConversation(other, first._memory.reopening(resume_of(first.id))) as second:
                        assert (await second.send(SCRIPT[1][1], speaker=SCRIPT[1][0])).turn_index == 0
                        with pytest.raises(AffectClientError) as taken:
                            await first.send(SCRIPT[2][1], speaker=SCRIPT[2][0])
                        with pytest.raises(AffectClientError) as closed_after:
                            await first.send(SCRIPT[2][1], speaker=SCRIPT[2][0])
                        later = await second.send(SCRIPT[3][1], speaker=SCRIPT[3][0])
                        assert server.open_conversations() == 1
                return taken.value, closed_after.value, first.resumes, later

        if twin == "async":
            checked(*asyncio.run(async_twin()))
        else:
            with AffectClient(server.target) as client, client.conversation() as first:
                first.send(SCRIPT[0][1], speaker=SCRIPT[0][0])
                with AffectClient(server.target, max_retries=0) as other, pytest.raises(AlreadyExistsError):
                    Conversation(other, resume_of(first.id))
                assert first.send(SCRIPT[1][1], speaker=SCRIPT[1][0]).turn_index == 1
                with AffectClient(server.target) as other, \
                        Conversation(other, first._memory.reopening(resume_of(first.id))) as second:
                    assert second.send(SCRIPT[1][1], speaker=SCRIPT[1][0]).turn_index == 0
                    with pytest.raises(AffectClientError) as taken:
                        first.send(SCRIPT[2][1], speaker=SCRIPT[2][0])
                    with pytest.raises(AffectClientError) as closed_after:
                        first.send(SCRIPT[2][1], speaker=SCRIPT[2][0])
                    later = second.send(SCRIPT[3][1], speaker=SCRIPT[3][0])
                    assert server.open_conversations() == 1
                checked(taken.value, closed_after.value, first.resumes, later)
        assert registry.get_sample_value("affect_refused_total", {"code": "ABORTED", "reason": "taken_over"}) == 1
        assert registry.get_sample_value("affect_refused_total", {"code": "ALREADY_EXISTS", "reason": "duplicate"}) == 1


def test_a_taken_over_stream_is_never_resumed_and_a_server_without_the_reason_gives_the_generic_error() -> None:
    """The rule under the test above: the takeover's status and reason make ``ConversationTakenOverError``,
    which no resume meets; ABORTED without the reason (a server from before it) stays ``APIStatusError``."""
    from affect_client import APIStatusError, ConversationTakenOverError
    from affect_client._async import _StatusOnly
    from affect_client._exceptions import status_error
    from affect_client._resume import ConversationMemory
    from affect_proto import rules

    details = "taken over by a newer stream of this conversation (this client's resume)"
    taken = status_error(_StatusOnly(grpc.StatusCode.ABORTED, details, [(rules.ABORT_REASON_TRAILER, rules.TAKEN_OVER_REASON)]))
    older = status_error(_StatusOnly(grpc.StatusCode.ABORTED, details))
    assert type(taken) is ConversationTakenOverError and taken.reason == "taken_over"
    assert type(older) is APIStatusError and older.reason == ""
    memory = ConversationMemory(ClientOptions())
    assert not memory.resumable(taken) and not memory.resumable(older)
    assert memory.resumable(UnavailableError(grpc.StatusCode.UNAVAILABLE, "gone"))  # what is resumed, for contrast

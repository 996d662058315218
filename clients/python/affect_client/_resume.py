"""Carrying a conversation across a server restart, written once for both clients.

A conversation's state lives in the server that holds its stream. When that stream ends with
UNAVAILABLE (the server drained on SIGTERM, a Ray Serve replica was stopped or died, the
connection broke), or the server closed it for idleness (DEADLINE_EXCEEDED with the reason
``"idle"`` in its trailer: no turn for its ``idle_timeout_s``, a caller on hold; the next send
finds the stream ended), the conversation opens a new stream under the same id (marked
``OpenConversation.resume``, with the ``resume_token`` the server gave the stream opened last:
a server still holding the id on the broken connection hands it over at once, ending the old
stream with ABORTED; a caller without the token cannot), sends the text of its last
``resume_turns`` answered turns again as ordinary turns, with their speakers, discarding their
answers (so that the new server rebuilds the text context and the trajectory from them), then
sends the turn that failed again and returns its answer, marked ``resumed``, numbered on from
the turns before. A turn whose answer never came is sent again: at-least-once.

Only text is kept, never audio or images (biometric data, not held once a turn is answered),
in a bounded deque that is emptied when the conversation closes or fails. A speaker's reset
(``reset_speaker``) is kept in its place among the texts and replayed there, so that the new
server starts that speaker anew where the old one did; a reset before every kept text of its
speaker is not kept (the new server has nothing of them to reset). A conversation is
resumed after UNAVAILABLE at most ``MAX_RESUMES`` times in its life; after an idle close as
often as holds come (one resume a send: a reopened stream closed for idleness again before its
turn is answered raises). One closed by its user, a turn refused (``TurnRefusedError``: its
content, a limit), any other DEADLINE_EXCEEDED (``turn_timeout``, a deadline) and a stream taken
over by a newer one of the same conversation (``ConversationTakenOverError``) are never resumed.
A turn refused or timed out (``TurnTimeoutError``: the stream goes on, its late answer dropped
by the twin) leaves the conversation open.

How long each part may take: a turn (its busy resends included) has ``turn_timeout``, its own
deadline (``Retries``, ``within``). A resume is recovery, not part of the failed turn's budget:
its reopening has its own window (``Retries``, ``resuming``), and each turn it sends then (every
kept text replayed, the turn sent again) has a ``turn_timeout`` of its own.

A user's ``close()`` is final: from any thread or task, during a resume too, the send waiting on
it raises ``ConversationClosedError``, a stream opened after it is ended at once, no text is kept.
A send cancelled or interrupted (``CancelledError``, ``KeyboardInterrupt``) ends the conversation
as it always did (its answer would go to the next turn): the flow is closed, the texts dropped.
Sends waiting their turn behind a resume are answered on the new stream, or raise the error
the resume ended with.

``ConversationMemory.turn_flow`` (and ``reset_flow``, a reset's) is a generator of steps
(``Exchange``, ``Reopen``, ``Wait``); ``driving`` (blocking) and
``driving_async`` (asyncio) perform them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import deque
from collections.abc import Awaitable, Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, Union

import grpc
from affect_proto import affect_pb2 as pb

from affect_client import _constants as C
from affect_client._core import Answer, ClientOptions, Retries
from affect_client._exceptions import (
    AffectClientError,
    APIStatusError,
    ConversationClosedError,
    TurnRefusedError,
    TurnTimeoutError,
    closed_for_idleness,
)
from affect_client._limits import NOT_TOLD, check_fits
from affect_client._types import TurnLimits, TurnResult


@dataclass(frozen=True)
class Exchange:
    """Send ``request`` on the stream and wait at most ``timeout`` s for its answer (None: no
    limit); the answer is sent back into the flow (a ``TurnResult``, or a ``SpeakerReset`` for a
    reset), or its failure thrown in."""

    request: pb.ConverseRequest = field(repr=False)  # a turn (its text, audio and images) or a reset
    timeout: float | None = None


@dataclass(frozen=True)
class Reopen:
    """Open the conversation's stream again with ``request`` (with the opening's retries on
    UNAVAILABLE); the server's ``ConversationOpened`` is sent back into the flow."""

    request: pb.ConverseRequest = field(repr=False)


@dataclass(frozen=True)
class Wait:
    seconds: float


Step = Union[Exchange, Reopen, Wait]
R = TypeVar("R")
TurnFlow = Generator[Step, Any, TurnResult]


@dataclass(frozen=True)
class KeptTurn:
    """What is kept of an answered turn to replay it: its text and who said it."""

    text: bytes = field(repr=False)  # not in logs or tracebacks
    speaker: str
    turn_id: str

    def request(self) -> pb.ConverseRequest:
        return pb.ConverseRequest(turn=pb.Turn(text=self.text, speaker=self.speaker, turn_id=self.turn_id))


@dataclass(frozen=True)
class KeptReset:
    """A speaker's reset, kept in its place among the kept turns to replay it there."""

    speaker: str

    def request(self) -> pb.ConverseRequest:
        return pb.ConverseRequest(reset_speaker=pb.ResetSpeaker(speaker=self.speaker))


def reopen_request(open_request: pb.ConverseRequest, conversation_id: str, resume_token: str = "") -> pb.ConverseRequest:
    """The opening a resume sends: the conversation's own options, under the id it already has
    (the one the first server gave, when the caller gave none), so that it stays one conversation,
    marked ``resume`` with the ``resume_token`` of the stream opened last (``ConversationMemory``
    sets it as it reopens): a server that still holds the id on this client's broken stream (it
    never learnt the connection died) ends that stream and opens this one at once, instead of
    refusing it ALREADY_EXISTS until it frees the old one itself."""
    again = pb.ConverseRequest()
    again.CopyFrom(open_request)
    again.open.conversation_id = conversation_id
    again.open.resume = True
    again.open.resume_token = resume_token
    return again


def replay_pace(turns_per_second: float) -> Iterator[float]:
    """Seconds to wait before each turn sent on a reopened stream (the replay, then the turn that
    failed), so that the server's per-conversation rate limit (``ConversationOpened.max_turns_per_second``)
    does not refuse them: its bucket starts full with 2 s of that rate (at least one turn), so one
    second's worth goes at once, then one turn per 1/rate. At the default rate (10 a second) the
    8 turns of a replay and the turn resent go without a wait. A refusal anyway (a server with a
    smaller burst) is waited out after its hint (``RESUME_BUSY_RETRIES``)."""
    if turns_per_second <= 0:  # no limit said
        while True:
            yield 0.0
    for _ in range(max(1, int(turns_per_second))):
        yield 0.0
    while True:
        yield 1.0 / turns_per_second


class ConversationMemory:
    """What one conversation keeps to resume on a new stream: the text of its last answered turns,
    its own turn numbering, and how often it has resumed. The twins run each turn through
    ``turn_flow`` under their turn lock, and ``close()`` it when the conversation closes."""

    def __init__(self, options: ClientOptions) -> None:
        self._options = options
        # A resume's requests wait out more busy refusals than a turn's own (a replay is a burst).
        self._resume_options = options.replace(busy_retries=max(options.busy_retries, C.RESUME_BUSY_RETRIES))
        self._kept: deque[KeptTurn | KeptReset] = deque()  # the last resume_turns turns, and resets among them
        self._next_index = 0  # the conversation's index of its next answered turn
        self._offset: int | None = 0  # added to the stream's turn_index; None: set by the next answer
        self._turns_per_second = 0.0
        self.limits = NOT_TOLD  # what a turn must fit on the stream open now (_limits.check_fits)
        self._resume_token = ""  # the stream open now's (ConversationOpened.resume_token): a secret, never shown
        self._attempts = 0  # resumes begun, bounded by MAX_RESUMES
        self.resumes = 0  # resumes that got their turn answered
        self.closed = False
        # Makes the error a failed resume ended the conversation with, afresh for each turn that waited
        # behind it (the error itself is not kept: its traceback's frames hold the failed turn).
        self._ended_by: Callable[[], AffectClientError] | None = None

    def opened(self, opened: pb.ConversationOpened) -> None:
        """The stream (first or reopened) is open: its rate limit paces a replay, its limits
        (none told by an older server) replace the stream's before, and its resume token is the
        one the next resume sends (empty from an older server, which needs none)."""
        self._turns_per_second = opened.max_turns_per_second
        self.limits = TurnLimits.from_pb(opened.limits)
        self._resume_token = opened.resume_token

    def reopening(self, reopen: pb.ConverseRequest) -> pb.ConverseRequest:
        """``reopen`` (``reopen_request``) carrying the resume token of the stream opened last, so
        that the server hands this conversation over to it: a resume that failed after its stream
        opened resumes from that stream, with that stream's token."""
        return reopen_request(reopen, reopen.open.conversation_id, self._resume_token)

    def close(self) -> None:
        """Forget the kept texts; the conversation is not resumed after this."""
        self.closed = True
        self._kept.clear()

    def check_open(self) -> None:
        """Raise ``ConversationClosedError`` once the conversation has ended (closed, or failed)."""
        if self.closed:
            raise ConversationClosedError("the conversation is closed")

    def kept(self) -> tuple[KeptTurn | KeptReset, ...]:
        return tuple(self._kept)

    def _keep(self, item: KeptTurn | KeptReset) -> None:
        """``item`` kept for a later resume, the memory pruned: the last ``resume_turns`` turns, and
        a reset only after a kept turn of its speaker (before it, replaying it changes nothing),
        so at most as many resets as turns."""
        if self.closed or self._options.resume_turns <= 0:
            return
        self._kept.append(item)
        turns = sum(isinstance(k, KeptTurn) for k in self._kept)
        while turns > self._options.resume_turns:
            turns -= isinstance(self._kept.popleft(), KeptTurn)
        heard: set[str] = set()  # speakers with a kept turn since their last kept reset
        pruned: deque[KeptTurn | KeptReset] = deque()
        for k in self._kept:
            if isinstance(k, KeptTurn):
                heard.add(k.speaker)
            elif k.speaker in heard:
                heard.discard(k.speaker)
            else:
                continue
            pruned.append(k)
        self._kept = pruned
        if self.closed:  # closed from another thread meanwhile (close() sets closed, then clears)
            self._kept.clear()

    def resumable(self, failure: AffectClientError) -> bool:
        """Whether a turn's failure is met by resuming, when resuming is on and the conversation
        open: its stream ended UNAVAILABLE (a Ray replica's death reads as that, ``effective_code``)
        and it may resume again (``MAX_RESUMES``), or the server closed it for idleness
        (``closed_for_idleness``: DEADLINE_EXCEEDED, reason ``"idle"``; never a deadline or
        ``turn_timeout``), which is not counted against ``MAX_RESUMES``: a caller on hold past the
        server's idle timeout, as often in a call as holds come. ``_flow`` meets that once a send.
        Never a stream taken over by a newer one of the same conversation (``ConversationTakenOverError``,
        ABORTED: neither of the two): resuming it would take the conversation back from that stream,
        which would resume in turn."""
        if self.closed or self._options.resume_turns <= 0:
            return False
        if closed_for_idleness(failure):
            return True
        return (isinstance(failure, APIStatusError) and failure.code == grpc.StatusCode.UNAVAILABLE
                and self._attempts < C.MAX_RESUMES)

    def turn_flow(self, request: pb.ConverseRequest, reopen: pb.ConverseRequest) -> TurnFlow:
        """One turn: sent (a busy refusal resent as ``busy_retries`` allows), and when its stream
        ends UNAVAILABLE or was closed by the server for idleness (``resumable``), the
        conversation reopened with ``reopen``, its kept texts replayed and the turn sent again.
        Returns the turn's answer in this conversation's numbering.

        A turn that waited behind a resume that failed raises that resume's error; one sent
        after the conversation ended, ``ConversationClosedError``."""
        answer = yield from self._flow(request, reopen)
        assert isinstance(answer, TurnResult)
        return answer

    def reset_flow(self, request: pb.ConverseRequest,
                   reopen: pb.ConverseRequest) -> Generator[Step, Any, pb.SpeakerReset]:
        """A speaker's reset (``ResetSpeaker``), carried to a new stream as a turn is; kept to be
        replayed in its place among the kept texts."""
        answer = yield from self._flow(request, reopen)
        assert isinstance(answer, pb.SpeakerReset)
        return answer

    def _flow(self, request: pb.ConverseRequest, reopen: pb.ConverseRequest) -> Generator[Step, Any, Answer]:
        """One request's way (``turn_flow``, ``reset_flow``)."""
        if self.closed:
            raise self._ended_by() if self._ended_by else ConversationClosedError("the conversation is closed")
        resumed, replayed = False, 0
        idle_resumed = False  # a send resumes once at most for idleness: a new stream closed so at once is raised
        try:
            while True:
                try:
                    if not resumed:
                        answer = yield from _sent(request, self._turn_retries(self._options), self.limits)
                    else:
                        pace = replay_pace(self._turns_per_second)
                        replayed = 0
                        for kept in tuple(self._kept):
                            self.check_open()
                            is_turn = isinstance(kept, KeptTurn)  # a reset is not paced: it takes no turn's rate
                            pause = next(pace) if is_turn else 0.0
                            answered = yield from _replayed(kept.request(), self._resume_retries, pause, self.limits)
                            replayed += answered if is_turn else 0
                        yield Wait(next(pace) if request.HasField("turn") else 0.0)
                        answer = yield from _sent(request, self._resume_retries(), self.limits)
                    if isinstance(answer, pb.SpeakerReset):  # the answer to a reset (``_core.parse_answer``)
                        return self._reset_answered(request.reset_speaker, answer, resumed)
                    return self._answered(request.turn, answer, resumed, replayed)
                except APIStatusError as failure:
                    idle = closed_for_idleness(failure)
                    if not self.resumable(failure) or (idle and idle_resumed):
                        raise
                if idle:
                    idle_resumed = True
                else:
                    self._attempts += 1
                resumed = True
                self._offset = None  # the new stream counts from 0, the replay included
                self.check_open()  # closed by its user while the turn waited
                opened = yield Reopen(self.reopening(reopen))
                self.check_open()  # closed while the stream opened: the twin ends that stream
                self.opened(opened)
        except (TurnRefusedError, TurnTimeoutError):
            raise  # one turn refused, or its answer late: the conversation goes on
        except AffectClientError as failure:
            if resumed:
                self._ended_by = _error_again(failure)  # for the turns waiting behind this one
            self.close()  # the conversation has ended
            raise
        except BaseException:  # GeneratorExit: the send was cancelled or interrupted, which ends it
            self.close()
            raise

    @staticmethod
    def _turn_retries(options: ClientOptions) -> Retries:
        """A turn's busy resends, within its ``turn_timeout``."""
        return Retries(options, within="turn_timeout", unavailable=False)

    def _resume_retries(self) -> Retries:
        return self._turn_retries(self._resume_options)

    def _reset_answered(self, reset: pb.ResetSpeaker, answer: pb.SpeakerReset, resumed: bool) -> pb.SpeakerReset:
        """The reset kept in its place, to be replayed there by a later resume."""
        if resumed:
            self.check_open()
            self.resumes += 1
        self._keep(KeptReset(reset.speaker))
        return answer

    def _answered(self, turn: pb.Turn, answer: TurnResult, resumed: bool, replayed: int = 0) -> TurnResult:
        """The answer numbered on from the conversation's earlier turns (a reopened stream counts
        its replayed turns from 0), its text kept for a later resume. A resumed turn answered
        after its conversation was closed is not returned: that close ended the send."""
        if resumed:
            self.check_open()
        if self._offset is None:
            self._offset = self._next_index - answer.turn_index
        offset = self._offset
        self._next_index = answer.turn_index + offset + 1
        if turn.HasField("text"):
            self._keep(KeptTurn(turn.text, turn.speaker, turn.turn_id))
        if resumed:
            self.resumes += 1
        if not offset and not resumed:
            return answer
        return dataclasses.replace(
            answer, turn_index=answer.turn_index + offset, resumed=resumed, replayed=replayed,
            events=tuple(dataclasses.replace(e, turn_index=e.turn_index + offset) for e in answer.events))


def _error_again(failure: AffectClientError) -> Callable[[], AffectClientError]:
    """A maker of ``failure`` anew, holding only its status and message: kept, the error's
    traceback would keep the frames of the turn that failed, and with them its text, audio and images."""
    if isinstance(failure, APIStatusError):
        status = type(failure)
        code, details, retry_after = failure.code, failure.details, failure.retry_after
        field, reason = failure.field, failure.reason
        return lambda: status(code, details, retry_after, field=field, reason=reason)
    kind = type(failure)
    args = failure.args
    return lambda: kind(*args)


def _sent(request: pb.ConverseRequest, retries: Retries, limits: TurnLimits) -> Generator[Step, Any, Answer]:
    """The turn's answer; a refusal that ``retries`` allows is resent after its delay. One that
    would not fit the stream's ``limits`` is refused unsent (``TurnRefusedError``)."""
    check_fits(request, limits)
    while True:
        try:
            return (yield Exchange(request, retries.left()))
        except TurnRefusedError as refused:
            delay = retries.delay(refused)
            if delay is None:
                raise retries.given_up(refused) from None
        yield Wait(delay)


def _replayed(request: pb.ConverseRequest, retries: Callable[[], Retries], pause: float,
              limits: TurnLimits) -> Generator[Step, Any, int]:
    """A kept turn sent again, its answer discarded: 1, or 0 when it is refused for good (over a
    smaller text limit the new server told, unsent, or refused by it) or its answer is late (the
    caller's own turn was not sent yet: its timeout is not the caller's): the replay goes on without it.
    Its ``retries`` (its own ``turn_timeout``) start after the pause."""
    yield Wait(pause)
    try:
        yield from _sent(request, retries(), limits)
    except (TurnRefusedError, TurnTimeoutError):  # a late answer is owed and dropped, as for any turn
        return 0
    return 1


@dataclass(frozen=True)
class _Done(Generic[R]):
    result: R


def _advance(flow: Generator[Step, Any, R], outcome: Any, failure: AffectClientError | None) -> Step | _Done[R]:
    """The flow's next step, given the last step's outcome (or its failure thrown in); ``_Done``
    with the flow's result (the turn's, or the reset's) when it has returned. Both drivers advance it so."""
    try:
        return flow.throw(failure) if failure is not None else flow.send(outcome)
    except StopIteration as done:
        return _Done(done.value)


def driving(flow: Generator[Step, Any, R], exchange: Callable[[pb.ConverseRequest, float | None], Answer],
            reopen: Callable[[pb.ConverseRequest], pb.ConversationOpened]) -> R:
    """Run a turn's flow, blocking: each step performed, its outcome sent back in (or its
    failure thrown in), until the flow returns the turn's result."""
    perform: dict[type, Callable[[Any], Any]] = {
        Exchange: lambda step: exchange(step.request, step.timeout),
        Reopen: lambda step: reopen(step.request),
        Wait: lambda step: time.sleep(step.seconds) if step.seconds > 0 else None,
    }
    outcome: Any = None  # the first send starts the flow
    failure: AffectClientError | None = None
    while not isinstance(step := _advance(flow, outcome, failure), _Done):
        try:
            outcome, failure = perform[type(step)](step), None
        except AffectClientError as error:
            outcome, failure = None, error
        except BaseException:  # interrupted: the flow ends the conversation
            flow.close()
            raise
    return step.result


async def driving_async(flow: Generator[Step, Any, R],
                        exchange: Callable[[pb.ConverseRequest, float | None], Awaitable[Answer]],
                        reopen: Callable[[pb.ConverseRequest], Awaitable[pb.ConversationOpened]]) -> R:
    """``driving`` for coroutines: the same flow, waiting with ``asyncio.sleep``."""
    perform: dict[type, Callable[[Any], Awaitable[Any]]] = {
        Exchange: lambda step: exchange(step.request, step.timeout),
        Reopen: lambda step: reopen(step.request),
        Wait: lambda step: asyncio.sleep(step.seconds),
    }
    outcome: Any = None
    failure: AffectClientError | None = None
    while not isinstance(step := _advance(flow, outcome, failure), _Done):
        try:
            outcome, failure = await perform[type(step)](step), None
        except AffectClientError as error:
            outcome, failure = None, error
        except BaseException:  # cancelled: the flow ends the conversation
            flow.close()
            raise
    return step.result

"""The asyncio client: the same surface as the blocking one, with ``await``."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable, Generator, Iterable, Sequence
from typing import Any, TypeVar, Unpack

import grpc
from affect_proto import affect_pb2 as pb
from affect_proto import affect_pb2_grpc as pb_grpc

from affect_client import _core, _resume
from affect_client._exceptions import (
    APIStatusError,
    ClientClosedError,
    ConversationClosedError,
    status_error,
)
from affect_client._inputs import AudioInput, ImageInput, turn_message
from affect_client._loop_channel import LoopChannel as _LoopChannel
from affect_client._types import ModelInfo, TurnLimits, TurnResult

_R = TypeVar("_R")  # a unary call's response message


class AsyncAffectClient:
    """asyncio client of the affect service. One client may serve one event loop after another
    (its connection is made in each and closed with it: ``affect_client._loop_channel``).

    >>> async with AsyncAffectClient("127.0.0.1:50051") as client:
    ...     async with client.conversation() as conversation:
    ...         result = await conversation.send("Where is my parcel?", speaker="caller")
    """

    def __init__(self, target: str | None = None, *, options: _core.ClientOptions | None = None,
                 **settings: Unpack[_core.ClientSettings]) -> None:
        self.options = _core.resolve_options(options, target, settings)
        self._connection = _LoopChannel(self._new_channel)  # one per event loop, made on first use
        self._owns_channel = True
        self._channel_state = _core.ChannelState()  # shared with the copies with_options makes

    def with_options(self, **changes: Unpack[_core.CallSettings]) -> "AsyncAffectClient":
        """A client sharing this one's connection, with some options changed (e.g. ``timeout=5``);
        not ``target``, ``tls`` or ``root_certificates`` (the connection's own: make a new client)."""
        clone = object.__new__(AsyncAffectClient)
        clone.options = _core.copied_options(self.options, changes)
        clone._connection, clone._owns_channel = self._connection, False
        clone._channel_state = self._channel_state
        return clone

    async def analyze(self, text: str | bytes | None = None, *, speaker: str | None = None, audio: AudioInput | None = None,
                      sample_rate: int | None = None, image: ImageInput | None = None, images: Sequence[ImageInput] = (),
                      channel_order: str | None = None, turn_id: str = "",
                      text_prior: _core.TextPrior = None) -> TurnResult:
        """One turn on its own (no conversation context). A turn the server refuses raises
        ``TurnRefusedError``, as in a conversation."""
        request = _core.analyze_request(turn_message(
            text, speaker=speaker, audio=audio, sample_rate=sample_rate, image=image, images=images,
            channel_order=channel_order, turn_id=turn_id), text_prior=text_prior)
        return TurnResult.from_pb((await self._unary(self._stub.Analyze, request, turn_id=turn_id)).result)

    async def list_models(self) -> list[ModelInfo]:
        """The models the server runs."""
        return [ModelInfo.from_pb(m) for m in (await self._unary(self._stub.ListModels, pb.ListModelsRequest())).models]

    def conversation(self, conversation_id: str | None = None, *, omit_modality_results: bool = False,
                     disable_text_context: bool = False, text_prior: _core.TextPrior = None,
                     escalation_anger: float | None = None, event_speakers: Sequence[str] = ()) -> "AsyncConversation":
        """A conversation; ``async with`` opens it (retried on UNAVAILABLE) and closes it.

        ``text_prior``: the emotion frequencies this conversation's text is expected to have (a preset
        such as ``"conversational"`` or a mapping such as ``{"neutral": 0.8, "anger": 0.08, "sadness": 0.05,
        "happiness": 0.05, "fear": 0.01, "disgust": 0.005, "surprise": 0.005}``: an emotion left out gets
        0 and is never read); ``None``: the server's. A value the contract's rule refuses raises
        ``InvalidInputError`` (field ``text_prior``) here, before anything is sent.

        ``escalation_anger``: the forecast P(anger) of a speaker's next turn that raises
        ``escalation_risk`` in this conversation, in (0, 1] (``None``: the server's, 0.20; outside it:
        ``InvalidInputError`` here); higher for fewer, surer warnings.

        ``omit_modality_results``: each answer carries the fused reading alone, without each
        modality's own result; the face boxes (and track ids) are part of the face modality's
        result, so they are left out too.

        ``event_speakers``: the speakers whose events are raised, e.g. ``["customer"]`` for a console
        that wants no warnings about its own agents (empty: every speaker's). Every turn still gets
        its reading, state and forecast. At most 16 names, each a speaker's name (checked here,
        before anything is sent: ``InvalidInputError``, field ``event_speakers``).
        """
        return AsyncConversation(self, _core.open_request(conversation_id, omit_modality_results=omit_modality_results,
                                                          disable_text_context=disable_text_context, text_prior=text_prior,
                                                          escalation_anger=escalation_anger, event_speakers=event_speakers))

    async def close(self) -> None:
        """Close the connection (copies made by ``with_options`` share it and are closed too); its
        conversations still open are cancelled."""
        if self._owns_channel:
            self._channel_state.closed = True
            await self._connection.close()

    @property
    def _stub(self) -> pb_grpc.AffectServiceStub:
        self._channel_state.check_open()
        return self._connection.stub()

    def _new_channel(self) -> grpc.aio.Channel:
        creds, args = _core.credentials(self.options), _core.channel_arguments(self.options)
        return (grpc.aio.secure_channel(self.options.target, creds, args) if creds
                else grpc.aio.insecure_channel(self.options.target, args))

    async def __aenter__(self) -> "AsyncAffectClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _unary(self, method: Callable[..., Awaitable[_R]], request: object, *, turn_id: str | None = None) -> _R:
        """A unary call, retried as the options say within its ``timeout``; ``turn_id``: the call
        carries that one turn (Analyze)."""
        self._channel_state.check_open()

        async def attempt(left: float | None) -> _R:
            try:
                call = method(request, timeout=left, metadata=_core.call_metadata(self.options))
                self._connection.watch(call)
                return await call
            except grpc.RpcError as error:
                raise status_error(error, turn_id=turn_id) from None

        return await _core.retrying_async(attempt, self.options, within="timeout")


class AsyncConversation:
    """One conversation stream; ``async with`` opens (retried on UNAVAILABLE) and closes it.

    A turn refused because the server is busy (RESOURCE_EXHAUSTED with a retry hint) is sent
    again after the hinted delay when ``busy_retries`` allows. A stream that ends UNAVAILABLE
    (the server restarted), or that the server closed for idleness (no turn for its
    ``idle_timeout_s``: a caller on hold), is opened again and the text of the last
    ``resume_turns`` turns replayed before the turn is sent again (``affect_client._resume``;
    ``resumes`` counts it).
    A turn that gets no answer within ``turn_timeout`` raises ``TurnTimeoutError`` and the
    conversation goes on: answers come once each and in order, so its late answer is dropped
    when it comes. A ``send()`` that is cancelled (``asyncio.CancelledError``, e.g. from
    ``asyncio.wait_for``) cancels the stream; later ``send()`` calls raise
    ``ConversationClosedError`` and a new conversation must be opened.
    """

    def __init__(self, client: AsyncAffectClient, open_request: pb.ConverseRequest) -> None:
        self._client = client
        self._options = client.options
        self._open_request = open_request
        self._call: grpc.aio.StreamStreamCall | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the stream's: grpc.aio binds a call to its loop
        self._closed = False
        self._reading: asyncio.Future[Any] | None = None  # the stream's read under way (_next_message)
        self._late = _core.LateAnswers()  # the stream's
        self._turn = asyncio.Lock()  # one turn on the stream at a time: answers come back in order
        self._memory = _resume.ConversationMemory(self._options)
        self.id = ""
        self.models: list[ModelInfo] = []

    @property
    def resumes(self) -> int:
        """How many times this conversation was carried to a new stream after its server went
        away or closed it for idleness."""
        return self._memory.resumes

    @property
    def limits(self) -> TurnLimits:
        """What a turn must fit, as the server told on opening (after a resume, the new stream's
        server); a turn over one is refused before it is sent (``TurnTooLargeError``,
        ``TurnRefusedError``) and the conversation goes on. Zeros: not told (an older server)."""
        return self._memory.limits

    async def open(self) -> "AsyncConversation":
        """Open the stream (``async with`` does it); a conversation already open is left as it is."""
        if self._call is not None and not self._closed and self._loop is asyncio.get_running_loop():
            return self
        self._client._channel_state.check_open()
        self._memory = _resume.ConversationMemory(self._options)  # a new stream: a new conversation
        self._memory.opened(await self._open(self._open_request))
        return self

    async def _reopen(self, open_request: pb.ConverseRequest) -> pb.ConversationOpened:
        if self._call is not None:
            self._call.cancel()  # the stream that failed, if it has not ended yet
        return await self._open(open_request, resuming=True)

    async def _open(self, open_request: pb.ConverseRequest, *, resuming: bool = False) -> pb.ConversationOpened:
        """Open the stream, retried on UNAVAILABLE within ``open_timeout`` (and as a resume's opening
        is, ``resuming``)."""
        async def attempt(left: float | None) -> pb.ConverseResponse:
            self._memory.check_open()  # closed by its user between a resume's attempts
            self._client._channel_state.check_open()
            self._closed = False  # this stream's; the conversation's own end is the memory's
            self._reading, self._late = None, _core.LateAnswers()
            self._call = self._client._stub.Converse(timeout=self._options.conversation_deadline,
                                                     metadata=_core.call_metadata(self._options))
            self._client._connection.watch(self._call)
            self._loop = asyncio.get_running_loop()
            failure: Exception
            try:
                await self._call.write(open_request)
                opened = await self._read(left)
                if self._memory.closed:  # closed while this stream opened: it ends at once
                    self._call.cancel()
                    self._closed = True
                    self._memory.check_open()
                return opened
            except grpc.RpcError as error:
                failure = status_error(await _real_status(self._call, error))
            except asyncio.InvalidStateError:  # the call already ended: its status says why
                failure = await self._ended()
            except APIStatusError as error:
                failure = error
            except asyncio.CancelledError:  # a later open() must open a new stream, not find this one
                self._call.cancel()
                self._closed = True
                if (gone := self._client_gone()) is not None:
                    raise gone from None
                raise
            self._call.cancel()
            self._closed = True  # open again when the flow retries
            raise failure

        opened = await _core.retrying_async(attempt, self._options, within="open_timeout", resuming=resuming)
        assert self._call is not None  # attempt() made it
        if (earlier := getattr(self, "_finalizer", None)) is not None:
            earlier.detach()  # a stream reopened: the one before has ended (and is not kept alive by it)
        self._finalizer = weakref.finalize(self, self._call.cancel)  # dropped without close(): the stream ends with it
        self.id = opened.opened.conversation_id
        self.models = [ModelInfo.from_pb(m) for m in opened.opened.models]
        return opened.opened

    async def send(self, text: str | bytes | None = None, *, speaker: str | None = None, audio: AudioInput | None = None,
                   sample_rate: int | None = None, image: ImageInput | None = None, images: Sequence[ImageInput] = (),
                   channel_order: str | None = None, turn_id: str = "") -> TurnResult:
        """Send one turn and wait for its result. A refused turn raises ``TurnRefusedError``;
        the conversation stays usable. A turn over the server's ``limits`` is refused so before it
        is sent (``TurnTooLargeError`` for its size). One whose server went away is sent again on a
        new stream (at-least-once; ``resumed`` in its result)."""
        self._check_usable()
        request = _core.turn_request(turn_message(
            text, speaker=speaker, audio=audio, sample_rate=sample_rate, image=image, images=images,
            channel_order=channel_order, turn_id=turn_id))
        return await self._exchange(request, self._memory.turn_flow)

    async def reset_speaker(self, speaker: str) -> int:
        """Start ``speaker`` anew, as a speaker this conversation has not heard (a human agent taking
        over from a bot under the same name, a new caller put through): their smoothed state is
        dropped, their events armed again, their earlier turns read as another person's by the
        forecast and the text context. The other speakers' state is kept. Returns how many turns
        the speaker's state held (0: no one by that name). Taken in order with the turns, and
        carried to a new stream as they are. An empty name or one a turn's speaker could not have
        raises ``InvalidInputError`` before anything is sent; a server older than the reset
        refuses it (``TurnRefusedError``, INVALID_ARGUMENT)."""
        self._check_usable()
        return (await self._exchange(_core.reset_request(speaker), self._memory.reset_flow)).turns

    def _check_usable(self) -> None:
        """Raise unless a turn (or a reset) may be sent now, in this event loop."""
        self._client._channel_state.check_open()
        if self._call is None:
            raise ConversationClosedError("the conversation is not open; use `async with client.conversation() as "
                                          "conversation` or `await conversation.open()`")
        if self._loop is not asyncio.get_running_loop():
            raise ConversationClosedError(
                f"conversation {self.id} was opened in another event loop (an earlier asyncio.run?), and its stream "
                "is bound to that loop and ends with it: open a new conversation in this one")
        if self._memory.closed:  # not the stream's state: a send during another's resume waits its turn
            raise ConversationClosedError(f"conversation {self.id} is closed")

    async def _exchange(self, request: pb.ConverseRequest,
                        flow_of: Callable[[pb.ConverseRequest, pb.ConverseRequest], Generator[_resume.Step, Any, _R]]) -> _R:
        """Send the request (a turn, a reset) and wait for its answer, as its flow says (busy
        refusals resent, the conversation resumed on a new stream)."""
        async with self._turn:  # tasks sharing a conversation take turns, each getting its own answer
            flow = flow_of(request, _resume.reopen_request(self._open_request, self.id))
            try:
                return await _resume.driving_async(flow, self._exchange_once, self._reopen)
            finally:
                if self._memory.closed and not self._closed and self._call is not None:  # ended with its stream open
                    self._closed = True
                    self._call.cancel()

    async def _exchange_once(self, request: pb.ConverseRequest, timeout: float | None) -> _core.Answer:
        # Checked under the lock: a stream that ended (cancelled) must not be written to again.
        if self._closed:
            raise ConversationClosedError(f"conversation {self.id} is closed")
        assert self._call is not None
        call = self._call
        try:
            await call.write(request)
            response = await self._answer(timeout)
        except grpc.RpcError as error:
            self._closed = True
            raise self._client_gone() or status_error(await _real_status(call, error)) from None
        except asyncio.InvalidStateError:  # grpc.aio: the server already ended the stream
            self._closed = True
            raise self._client_gone() or await self._ended() from None
        except asyncio.CancelledError:  # the answer would go to the next turn: the stream ends here
            self._closed = True
            call.cancel()
            if (gone := self._client_gone()) is not None:
                raise gone from None
            raise
        return _core.parse_answer(request, response)

    def _client_gone(self) -> ClientClosedError | None:
        """The error for a stream that ended because its client was closed (grpc.aio cancels the
        call, which surfaces as a ``CancelledError`` in a task nobody cancelled), else None; a
        real cancellation of this task stays a cancellation."""
        if self._client._channel_state.closed and not _cancelling():
            return ClientClosedError("the client was closed; make a new one")
        return None

    async def _ended(self) -> Exception:
        """The error for a call the server has ended."""
        assert self._call is not None
        code = await self._call.code()
        if code == grpc.StatusCode.OK:
            return ConversationClosedError("the server ended the conversation")
        return status_error(await _StatusOnly.of(self._call))

    async def close(self) -> None:
        """End the stream politely (the server frees the conversation's state), waiting for the
        server's end of it at most ``open_timeout`` seconds, then cancelling."""
        self._memory.close()
        if self._call is not None and not self._closed:
            self._closed = True
            call = self._call
            if call.done():  # ended already (the client closed, the server ended it): nothing to say
                return
            if self._loop is not asyncio.get_running_loop():  # its stream ends with its own loop's channel
                return

            async def drain() -> None:
                await call.done_writing()
                while await self._next_message(None) is not grpc.aio.EOF:
                    pass

            try:
                await asyncio.wait_for(drain(), self._options.open_timeout)
            except (grpc.RpcError, asyncio.TimeoutError, asyncio.InvalidStateError):
                call.cancel()
            except asyncio.CancelledError:
                call.cancel()
                if _cancelling():  # this task was cancelled: let it be
                    raise

    async def __aenter__(self) -> "AsyncConversation":
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _read(self, timeout: float | None) -> pb.ConverseResponse:
        """The stream's next message (its opening's answer), within ``timeout`` s, or the stream ends."""
        assert self._call is not None
        try:
            response = await self._next_message(timeout)
        except asyncio.TimeoutError:
            self._closed = True
            self._call.cancel()
            raise _core.not_opened(timeout) from None
        if response is grpc.aio.EOF:
            self._closed = True
            raise await self._ended()
        return response

    async def _answer(self, timeout: float | None) -> pb.ConverseResponse:
        """The answer to the request just sent, within ``timeout`` s: the late answers of turns that
        timed out before it come first (the server answers in order) and are dropped; if it does
        not come in time, it is owed too, and ``TurnTimeoutError`` is raised with the stream kept."""
        loop = asyncio.get_running_loop()
        end = None if timeout is None else loop.time() + timeout
        while True:
            try:
                response = await self._next_message(None if end is None else max(0.0, end - loop.time()))
            except asyncio.TimeoutError:
                raise self._late.timed_out(self._options.turn_timeout) from None
            if response is grpc.aio.EOF:
                self._closed = True
                raise await self._ended()
            if not self._late.drops():
                return response

    async def _next_message(self, timeout: float | None) -> Any:
        """The stream's next message (or ``grpc.aio.EOF``), waited for at most ``timeout`` s
        (``asyncio.TimeoutError``). The read itself is not cancelled when the wait ends (grpc.aio
        cancels the whole call with a cancelled read): a message that comes later is the next one read."""
        assert self._call is not None
        if self._reading is None:
            self._reading = asyncio.ensure_future(self._call.read())
            self._reading.add_done_callback(_retrieved)
        reading = self._reading
        done, _ = await asyncio.wait({reading}, timeout=timeout)
        if not done:
            raise asyncio.TimeoutError
        self._reading = None
        return reading.result()


def _retrieved(read: "asyncio.Future[Any]") -> None:
    """A read's outcome marked as seen: one whose stream was cancelled meanwhile is nobody's."""
    if not read.cancelled():
        read.exception()


class _StatusOnly(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str | None, trailers: Iterable[tuple[str, str | bytes]] = ()) -> None:
        self._code, self._details, self._trailers = code, details, trailers

    @classmethod
    async def of(cls, call: grpc.aio.Call) -> "_StatusOnly":
        """The status ``call`` ended with: its code, details and trailing metadata."""
        return cls(await call.code(), await call.details(), await call.trailing_metadata())

    def trailing_metadata(self) -> Iterable[tuple[str, str | bytes]]:
        return self._trailers

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str | None:
        return self._details


_WRITE_FAILED = "Internal error from Core"  # grpc.aio's status for a write that failed as its call ended


async def _real_status(call: grpc.aio.StreamStreamCall, error: grpc.RpcError) -> grpc.RpcError:
    """The status ``call`` ended with, when ``error`` is grpc.aio's for a write that failed as the
    call ended: grpc.aio reports such a write as INTERNAL "Internal error from Core" (grpc/grpc#36066)
    in place of the call's own status, which it sets when Core's arrives: waited for, at most a
    second (a stream the server ended has its trailers, ABORTED for a takeover, read already). A
    stream put on a connection as a keepalive closed it (the reopen of a resume) got none in 5 s
    with gRPC 1.85, and its opening was not retried: its message never left, and it is read as
    UNAVAILABLE, retried and resumed as the blocking client's is."""
    if error.code() != grpc.StatusCode.INTERNAL or error.details() != _WRITE_FAILED:
        return error
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 1.0
    while loop.time() < deadline:
        await asyncio.sleep(0.01)
        if await call.details() != _WRITE_FAILED:
            return await _StatusOnly.of(call)
    return _StatusOnly(grpc.StatusCode.UNAVAILABLE, "the stream's connection closed as a message was written "
                       f"(grpc.aio: INTERNAL, {_WRITE_FAILED})")


def _cancelling() -> bool:
    """Whether this task is being cancelled (rather than seeing its gRPC call cancelled under it)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0

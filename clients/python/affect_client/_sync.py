"""The blocking client."""

from __future__ import annotations

import queue
import threading
import time
import weakref
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from typing import Any, TypeVar, Unpack

import grpc
from affect_proto import affect_pb2 as pb
from affect_proto import affect_pb2_grpc as pb_grpc

from affect_client import _core, _resume
from affect_client._exceptions import (
    APIStatusError,
    ConversationClosedError,
    status_error,
)
from affect_client._inputs import AudioInput, ImageInput, turn_message
from affect_client._types import ModelInfo, TurnLimits, TurnResult

_CLOSE = object()
_R = TypeVar("_R")  # a unary call's response message


class AffectClient:
    """Blocking client of the affect service.

    >>> with AffectClient("127.0.0.1:50051") as client:
    ...     with client.conversation() as conversation:
    ...         result = conversation.send("Where is my parcel?", speaker="caller")
    ...         print(result.emotion, result.fused.valence)
    """

    def __init__(self, target: str | None = None, *, options: _core.ClientOptions | None = None,
                 **settings: Unpack[_core.ClientSettings]) -> None:
        self.options = _core.resolve_options(options, target, settings)
        creds = _core.credentials(self.options)
        args = _core.channel_arguments(self.options)
        self._channel = (grpc.secure_channel(self.options.target, creds, args) if creds
                         else grpc.insecure_channel(self.options.target, args))
        self._stub = pb_grpc.AffectServiceStub(self._channel)
        self._owns_channel = True
        self._channel_state = _core.ChannelState()  # shared with the copies with_options makes

    def with_options(self, **changes: Unpack[_core.CallSettings]) -> "AffectClient":
        """A client sharing this one's connection, with some options changed (e.g. ``timeout=5``);
        not ``target``, ``tls`` or ``root_certificates`` (the connection's own: make a new client)."""
        clone = object.__new__(AffectClient)
        clone.options = _core.copied_options(self.options, changes)
        clone._channel, clone._stub, clone._owns_channel = self._channel, self._stub, False
        clone._channel_state = self._channel_state
        return clone

    def analyze(self, text: str | bytes | None = None, *, speaker: str | None = None, audio: AudioInput | None = None,
                sample_rate: int | None = None, image: ImageInput | None = None, images: Sequence[ImageInput] = (),
                channel_order: str | None = None, turn_id: str = "",
                text_prior: _core.TextPrior = None) -> TurnResult:
        """One turn on its own (no conversation context). A turn the server refuses raises
        ``TurnRefusedError``, as in a conversation."""
        request = _core.analyze_request(turn_message(
            text, speaker=speaker, audio=audio, sample_rate=sample_rate, image=image, images=images,
            channel_order=channel_order, turn_id=turn_id), text_prior=text_prior)
        return TurnResult.from_pb(self._unary(self._stub.Analyze, request, turn_id=turn_id).result)

    def list_models(self) -> list[ModelInfo]:
        """The models the server runs."""
        return [ModelInfo.from_pb(m) for m in self._unary(self._stub.ListModels, pb.ListModelsRequest()).models]

    def conversation(self, conversation_id: str | None = None, *, omit_modality_results: bool = False,
                     disable_text_context: bool = False, text_prior: _core.TextPrior = None,
                     escalation_anger: float | None = None, event_speakers: Sequence[str] = ()) -> "Conversation":
        """Open a conversation stream (retried on UNAVAILABLE); use it as a context manager.

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
        return Conversation(self, _core.open_request(conversation_id, omit_modality_results=omit_modality_results,
                                                     disable_text_context=disable_text_context, text_prior=text_prior,
                                                     escalation_anger=escalation_anger, event_speakers=event_speakers))

    def close(self) -> None:
        """Close the connection (copies made by ``with_options`` share it and are closed too)."""
        if self._owns_channel:
            self._channel_state.closed = True
            self._channel.close()

    def __enter__(self) -> "AffectClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _unary(self, method: Callable[..., _R], request: object, *, turn_id: str | None = None) -> _R:
        """A unary call, retried as the options say within its ``timeout``; ``turn_id``: the call
        carries that one turn (Analyze)."""
        self._channel_state.check_open()

        def attempt(left: float | None) -> _R:
            try:
                return method(request, timeout=left, metadata=_core.call_metadata(self.options))
            except grpc.RpcError as error:
                raise status_error(error, turn_id=turn_id) from None

        return _core.retrying(attempt, self.options, within="timeout")


def _requests_until_close(requests: queue.Queue) -> Iterator[pb.ConverseRequest]:
    """A stream's requests, as they are put, until ``_CLOSE``."""
    while True:
        item = requests.get()
        if item is _CLOSE:
            return
        yield item


def _read_into(call: Iterable[pb.ConverseResponse], responses: queue.Queue) -> None:
    """Every answer of the stream into ``responses``, then ``_CLOSE`` (or the error that ended it)."""
    try:
        for response in call:
            responses.put(response)
        responses.put(_CLOSE)
    except grpc.RpcError as error:
        responses.put(error)


class Conversation:
    """One conversation stream. ``send()`` returns that turn's result, in order.

    Opening is retried on UNAVAILABLE (``max_retries``, jittered backoff: by default for about
    20 s), e.g. while the server starts or restarts, within ``open_timeout``. A turn refused because the server is busy (RESOURCE_EXHAUSTED
    with a retry hint) is sent again after the hinted delay when ``busy_retries`` allows.
    A stream that ends UNAVAILABLE (the server restarted), or that the server closed for
    idleness (no turn for its ``idle_timeout_s``: a caller on hold), is opened again and the text
    of the last ``resume_turns`` turns replayed before the turn is sent again
    (``affect_client._resume``; ``resumes`` counts it).
    A turn that gets no answer within ``turn_timeout`` raises ``TurnTimeoutError`` and the
    conversation goes on: answers come once each and in order, so its late answer is dropped
    when it comes. A wait interrupted (``KeyboardInterrupt``) closes the conversation; later
    ``send()`` calls raise ``ConversationClosedError`` and a new conversation must be opened.
    """

    def __init__(self, client: AffectClient, open_request: pb.ConverseRequest) -> None:
        client._channel_state.check_open()
        self._options = client.options
        self._channel_state = client._channel_state
        self._stub = client._stub
        self._open_request = open_request
        self._closed = False
        self._memory = _resume.ConversationMemory(self._options)
        self._turn = threading.Lock()  # one turn on the stream at a time: answers come back in order
        self._memory.opened(self._open(open_request))

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

    def _open(self, open_request: pb.ConverseRequest, *, resuming: bool = False) -> pb.ConversationOpened:
        """Open the stream, retried on UNAVAILABLE within ``open_timeout`` (and as a resume's opening
        is, ``resuming``)."""
        return _core.retrying(lambda left: self._start(open_request, left), self._options, within="open_timeout",
                              resuming=resuming, catch=APIStatusError)

    def _reopen(self, open_request: pb.ConverseRequest) -> pb.ConversationOpened:
        self._call.cancel()  # the stream that failed, if it has not ended yet
        return self._open(open_request, resuming=True)

    def _start(self, open_request: pb.ConverseRequest, timeout: float | None) -> pb.ConversationOpened:
        self._memory.check_open()  # closed by its user between a resume's attempts
        self._channel_state.check_open()
        self._requests: queue.Queue = queue.Queue()
        self._responses: queue.Queue = queue.Queue()
        self._closed = False  # this stream's; the conversation's own end is the memory's
        self._late = _core.LateAnswers()  # this stream's
        # Neither the stream's request iterator nor its reader thread holds this object, so a
        # conversation dropped without close() is collected and its stream ended (finalize below).
        try:
            self._call = self._stub.Converse(_requests_until_close(self._requests),
                                               timeout=self._options.conversation_deadline,
                                               metadata=_core.call_metadata(self._options))
        except ValueError:  # "Cannot invoke RPC: Channel closed!": the client was closed meanwhile
            self._closed = True
            self._channel_state.check_open()
            raise
        self._reader = threading.Thread(target=_read_into, args=(self._call, self._responses), daemon=True,
                                        name="affect-conversation-reader")
        self._reader.start()
        if (earlier := getattr(self, "_finalizer", None)) is not None:
            earlier.detach()  # a stream reopened: the one before has ended
        self._finalizer = weakref.finalize(self, self._requests.put, _CLOSE)
        self._requests.put(open_request)
        opened = self._next_response(timeout)
        if self._memory.closed:  # closed while this stream opened: it ends at once
            self._fail()
            self._memory.check_open()
        self.id: str = opened.opened.conversation_id
        self.models = [ModelInfo.from_pb(m) for m in opened.opened.models]
        return opened.opened

    def send(self, text: str | bytes | None = None, *, speaker: str | None = None, audio: AudioInput | None = None,
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
        return self._exchange(request, self._memory.turn_flow)

    def reset_speaker(self, speaker: str) -> int:
        """Start ``speaker`` anew, as a speaker this conversation has not heard (a human agent taking
        over from a bot under the same name, a new caller put through): their smoothed state is
        dropped, their events armed again, their earlier turns read as another person's by the
        forecast and the text context. The other speakers' state is kept. Returns how many turns
        the speaker's state held (0: no one by that name). Taken in order with the turns, and
        carried to a new stream as they are. An empty name or one a turn's speaker could not have
        raises ``InvalidInputError`` before anything is sent; a server older than the reset
        refuses it (``TurnRefusedError``, INVALID_ARGUMENT)."""
        self._check_usable()
        return self._exchange(_core.reset_request(speaker), self._memory.reset_flow).turns

    def _check_usable(self) -> None:
        """Raise unless a turn (or a reset) may be sent now."""
        self._channel_state.check_open()
        if self._memory.closed:  # not the stream's state: a send during another's resume waits its turn
            raise ConversationClosedError(f"conversation {getattr(self, 'id', '')} is closed")

    def _exchange(self, request: pb.ConverseRequest,
                  flow_of: Callable[[pb.ConverseRequest, pb.ConverseRequest], Generator[_resume.Step, Any, _R]]) -> _R:
        """Send the request (a turn, a reset) and wait for its answer, as its flow says (busy
        refusals resent, the conversation resumed on a new stream)."""
        with self._turn:  # threads sharing a conversation take turns, each getting its own answer
            flow = flow_of(request, _resume.reopen_request(self._open_request, self.id))
            try:
                return _resume.driving(flow, self._exchange_once, self._reopen)
            finally:
                if self._memory.closed and not self._closed:  # ended (closed, cancelled) with its stream open
                    self._fail()

    def _exchange_once(self, request: pb.ConverseRequest, timeout: float | None) -> _core.Answer:
        # Checked under the lock: a stream that ended (interrupted) may still have answers queued,
        # which must not be read as this turn's.
        if self._closed:
            raise ConversationClosedError(f"conversation {getattr(self, 'id', '')} is closed")
        self._requests.put(request)
        return _core.parse_answer(request, self._answer(timeout))

    def _answer(self, timeout: float | None) -> pb.ConverseResponse:
        """The answer to the request just sent, within ``timeout`` s: the late answers of turns that
        timed out before it come first (the server answers in order) and are dropped; if it does
        not come in time, it is owed too, and ``TurnTimeoutError`` is raised with the stream kept."""
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                item = self._responses.get(timeout=None if end is None else max(0.0, end - time.monotonic()))
            except queue.Empty:
                raise self._late.timed_out(self._options.turn_timeout) from None
            except BaseException:  # interrupted (KeyboardInterrupt): the answer would go to the next turn
                self._fail()
                raise
            response = self._received(item)
            if not self._late.drops():
                return response

    def close(self) -> None:
        """End the stream politely (the server frees the conversation's state)."""
        self._memory.close()
        if not self._closed:
            self._closed = True
            self._requests.put(_CLOSE)

    def __enter__(self) -> "Conversation":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _next_response(self, timeout: float | None) -> pb.ConverseResponse:
        """The stream's next message (its opening's answer), within ``timeout`` s, or the stream ends."""
        try:
            item = self._responses.get(timeout=timeout)
        except queue.Empty:
            self._fail()
            raise _core.not_opened(timeout) from None
        except BaseException:  # interrupted (KeyboardInterrupt): the answer would go to the next turn
            self._fail()
            raise
        return self._received(item)

    def _received(self, item: object) -> pb.ConverseResponse:
        """A message read from the stream, or the error that ended it (raised, the stream failed)."""
        if isinstance(item, grpc.RpcError):
            self._fail()
            self._channel_state.check_open()  # the stream ended because the client was closed
            raise status_error(item) from None
        if item is _CLOSE:
            self._fail()
            raise ConversationClosedError("the server ended the conversation")
        assert isinstance(item, pb.ConverseResponse)
        return item

    def _fail(self) -> None:
        self._closed = True
        self._call.cancel()
        self._requests.put(_CLOSE)

"""The AffectService implementation: conversations over one stream each, micro-batched models.

A turn's way through: its cost is read from the message and the media headers (``budget``),
it is admitted against the work in flight (``limits.InFlightBudget``) or refused with
RESOURCE_EXHAUSTED and a retry hint, then decoded off the event loop and sent to the encoders'
batchers. Heavy turns (long audio, many pixels) take their own lane: their own worker thread
and batchers, so that they cannot hold the workers every other conversation is served by.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import ipaddress
import logging
import os
import secrets
import time
import traceback
import urllib.parse
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Coroutine
from concurrent.futures import Executor
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, Final, NoReturn, Protocol, TypeVar

import grpc
from google.protobuf.descriptor import Descriptor

from affect import Analyzer, ConversationClosedError, InputTooLargeError, InvalidInputError, TurnResult
from affect.conversation import Conversation, PreparedTurn
from affect.fusion import FusionWeights
from affect.registry import list_weights
from affect.turn_flow import analyze_submitted
from affect_proto import affect_pb2 as pb
from affect_proto import affect_pb2_grpc as pb_grpc
from affect_proto import rules
from affect_server.budget import TurnCost, measure
from affect_server.config import ServerConfig
from affect_server.convert import (check_id, event_speakers_from_pb, model_infos, reset_speaker_from_pb,
                                   text_prior_from_pb, thresholds_from_pb, turn_from_pb, turn_result_to_pb)
from affect_server.limits import AnalyzeSlots, ConversationSlots, InFlightBudget, Ticket, TokenBucket
from affect_server.metrics import ServiceMetrics
from affect_server.request_bounds import Excess, excess
from affect_server.retry_hint import DrainEstimate, clamp_ms, retry_trailers

if TYPE_CHECKING:
    from affect_server.ray_metrics import RayServiceMetrics

log = logging.getLogger("affect.server")

# The status a stream ends with when a resume of its own client takes its conversation over
# (OpenConversation.resume): ABORTED, so that the client (if it is still there) does not resume it.
TAKEN_OVER = "taken over by a newer stream of this conversation (this client's resume)"
# How long a request stream that ended with no message waits for gRPC's cancellation, which
# follows at once when gRPC refused the message itself (see AffectServicer._analyze_body).
ENDED_BY_GRPC_WAIT_S = 0.5
_M = TypeVar("_M")  # a request message
_M_co = TypeVar("_M_co", covariant=True)


class _Ended(Enum):
    """The client closed its side of the stream: what ``_read_one`` gives then."""

    END = "end"


_END: Final = _Ended.END


class _Message(Protocol[_M_co]):
    """A generated message class, as a request deserializer uses it."""

    def FromString(self, data: bytes) -> _M_co: ...  # noqa: N802 - protobuf's name


@dataclass(frozen=True)
class Unreadable:
    """A request whose bytes do not parse as its message (bad UTF-8 in a string field, a broken
    varint, nesting past protobuf's limit: ``problem``, the parser's reason), or that holds more
    fields than a valid one can and was refused unread (``excess``: ``request_bounds``): answered
    as a bad turn, not by ending the stream. An excess is refused as the checks made after
    parsing refuse the same mistake: the same reason, the field named alike, the turn's id echoed."""

    problem: str = ""
    excess: Excess | None = None

    def told(self, could_not: str) -> str:
        """What the client is told: an excess in the words of the check made after parsing
        (``turn.images: a turn may carry at most 8 images``); else ``could_not`` (what could not
        be read) with the parser's reason."""
        return self.excess.message if self.excess else f"{could_not} ({self.problem})"

    def field(self, *, opening: bool) -> str:
        """The field refused: the excess's (``turn.images``), else the whole request as the call
        names it: ``open`` for a conversation's opening, else ``turn``."""
        if self.excess and self.excess.field:
            return self.excess.field
        return "open" if opening else "turn"

    def reason(self, *, opening: bool) -> str:
        """What the refusal is counted under and the trailer ``rules.ABORT_REASON_TRAILER`` says:
        ``unreadable`` for bytes that do not parse; for an excess, what the checks made after
        parsing say (``open`` for a conversation's opening, else ``invalid``), so that nine
        images are one mistake to a client or a dashboard, whichever check met them."""
        if self.excess is None:
            return "unreadable"
        return "open" if opening else "invalid"

    @property
    def turn_id(self) -> str:
        """The refused turn's ``turn_id``, as the walk read it (``Excess.turn_id``); empty for
        bytes that do not parse."""
        return self.excess.turn_id if self.excess else ""


SERVICE_NAME = pb.DESCRIPTOR.services_by_name["AffectService"].full_name


def method_handlers(converse: Callable[..., AsyncIterator[pb.ConverseResponse] | Awaitable[None]],
                    analyze: Callable[..., Awaitable[pb.AnalyzeResponse]],
                    list_models: Callable[..., Awaitable[pb.ListModelsResponse]], *,
                    analyze_streamed: bool) -> dict[str, grpc.RpcMethodHandler]:
    """The AffectService handlers as the generated code builds them, but requests parsed by
    :func:`lenient_parser`; ``analyze_streamed`` serves Analyze as a client stream (the same
    bytes on the wire), so that the in-process server can refuse a call before reading its body."""
    return {
        "Converse": grpc.stream_stream_rpc_method_handler(
            converse, request_deserializer=lenient_parser(pb.ConverseRequest),
            response_serializer=pb.ConverseResponse.SerializeToString),
        "Analyze": (grpc.stream_unary_rpc_method_handler if analyze_streamed else grpc.unary_unary_rpc_method_handler)(
            analyze, request_deserializer=lenient_parser(pb.AnalyzeRequest),
            response_serializer=pb.AnalyzeResponse.SerializeToString),
        "ListModels": grpc.unary_unary_rpc_method_handler(
            list_models, request_deserializer=pb.ListModelsRequest.FromString,
            response_serializer=pb.ListModelsResponse.SerializeToString),
    }


def lenient_parser(message_type: _Message[_M]) -> Callable[[bytes], _M | Unreadable]:
    """``message_type.FromString`` for a request deserializer, giving :class:`Unreadable` where
    gRPC would end the call with UNKNOWN, and for a request with more fields than a valid one
    can hold, before it is parsed (``request_bounds``: parsing such a request cost 28 times its
    size)."""
    from google.protobuf.message import DecodeError

    descriptor: Descriptor = getattr(message_type, "DESCRIPTOR")  # the generated stubs do not declare it

    def parse(data: bytes) -> _M | Unreadable:
        if (refused := excess(data, descriptor)) is not None:
            return Unreadable(excess=refused)
        try:
            return message_type.FromString(data)
        except DecodeError as exc:
            return Unreadable(str(exc).splitlines()[0][:200] if str(exc) else "not a valid message")

    return parse


@dataclass(frozen=True)
class Lane:
    """Where a turn's decoding and model work run: an executor and one batcher per encoder."""

    executor: Executor
    batchers: dict


@dataclass(frozen=True)
class HeldConversation:
    """A conversation in the registry, with the event its stream ends on when a resume of the
    same client takes the conversation over (``AffectServicer.Converse``), and the secret that
    resume must carry (``ConversationOpened.resume_token``, issued to this stream's client only)."""

    conversation: Conversation
    taken_over: asyncio.Event
    resume_token: str = field(default_factory=lambda: secrets.token_urlsafe(16), repr=False)  # 128 bits; never logged
    # The token the resume that opened this stream proved itself with: its client may never have
    # read this stream's own (a connection dropped before ConversationOpened arrived) and resumes
    # again with the one it holds. Only that client ever had it.
    proven_token: str = field(default="", repr=False)

    def taken_over_by(self, opening: pb.OpenConversation) -> bool:
        """Whether ``opening`` takes this conversation over: a resume carrying this stream's token,
        or the one its own opening proved itself with (compared in constant time; as bytes,
        which any string a client sends can be)."""
        given = opening.resume_token.encode()
        return opening.resume and any(token and hmac.compare_digest(given, token.encode())
                                      for token in (self.resume_token, self.proven_token))


_BUSY = {
    "turns": "the server has {n} turns in flight (limit {limit})",
    "memory": "the turns in flight hold the server's memory budget for work in flight",
    "heavy": "the server is already working on {limit} heavy turns (long audio or many pixels)",
    "peer_turns": "this client has {n} turns in flight (limit {limit} per client)",
    "peer_memory": "this client's turns in flight hold its share of the server's memory budget for work in flight",
}


def turn_limits(config: ServerConfig, max_message_bytes: int) -> pb.TurnLimits:
    """What a conversation is told on opening that its turns must fit (``ConversationOpened.limits``):
    the settings ``budget.measure`` checks a turn against, the contract's image count, and the
    request size gRPC reads (0: not told)."""
    return pb.TurnLimits(max_message_bytes=max_message_bytes, max_text_chars=config.max_text_chars,
                         max_audio_seconds=config.max_audio_seconds, max_audio_samples=config.max_audio_samples,
                         max_image_pixels=config.max_image_pixels, max_images=rules.MAX_IMAGES_PER_TURN)


class AffectServicer(pb_grpc.AffectServiceServicer):
    """``max_message_bytes``: the largest request gRPC reads for this servicer, which conversations
    are told; 0 where that is not this process's setting (behind Ray Serve's gRPC proxy)."""

    def __init__(self, analyzer: Analyzer, config: ServerConfig, metrics: ServiceMetrics | RayServiceMetrics,
                 batchers: dict, executor: Executor, heavy: Lane | None = None, *, max_message_bytes: int) -> None:
        self.analyzer = analyzer
        self.executor = executor
        self.config = config
        self.turn_limits = turn_limits(config, max_message_bytes)
        self.models = self._loaded_models()  # fixed once the models are loaded: listed once
        self.metrics = metrics
        self.batchers = batchers
        self.lane = Lane(executor, batchers)
        self.heavy_lane = heavy or self.lane
        self.slots = ConversationSlots(config.max_conversations, config.max_conversations_per_peer)
        self.budget = InFlightBudget(config.max_in_flight_turns, int(config.max_in_flight_mb * 2**20), config.max_heavy_turns,
                                     config.max_in_flight_share_per_peer)
        self.analyze_slots = AnalyzeSlots(config.max_analyze_in_flight, config.max_analyze_per_peer,
                                          config.max_analyze_per_second_per_peer, config.max_analyze_queued_per_peer)
        self._turn_tasks: set[asyncio.Future] = set()  # admitted turns' work, each holding its ticket
        self.drain = DrainEstimate()  # the retry hint of a busy refusal
        # Keyed by (client, id): ids are the client's own, so that one client's ALREADY_EXISTS
        # never tells it which ids another client has open (an id may be a caller's number), and
        # only that client's resume can take one over.
        self.conversations: dict[tuple[str, str], HeldConversation] = {}
        self._log_id_key = (config.log_id_key or "").encode() or os.urandom(32)
        metrics.conversation_states.set_function(lambda: len(self.conversations))
        self.draining = asyncio.Event()
        self.in_flight = 0

    # ------------------------------------------------------------------ RPCs

    async def Converse(self, request_iterator: AsyncIterator[pb.ConverseRequest | Unreadable],
                       context: grpc.aio.ServicerContext, *,
                       taken_over: asyncio.Event | None = None) -> AsyncGenerator[pb.ConverseResponse, None]:
        """One conversation's stream. An opening with ``resume`` whose id this client already has
        open, carrying that stream's ``resume_token`` (``HeldConversation.taken_over_by``; else it
        is refused as a duplicate), takes that conversation over (a connection that broke without
        the server learning of it still holds it): the old stream's state is closed at once and the stream ends with
        ABORTED (``TAKEN_OVER``) as soon as it wakes, its slot given back then; this stream opens
        with a new state. ``taken_over`` is the event this stream's own end waits on (given by
        ``converse_written``, which also waits on it while an answer is written)."""
        if taken_over is None:
            taken_over = asyncio.Event()
        if self.draining.is_set():
            await self._abort(context, grpc.StatusCode.UNAVAILABLE, "server is shutting down", "draining")
        peer = _peer_host(context)
        refused = self.slots.acquire(peer)
        # A client at its limit may be resuming a conversation it holds, on a stream its broken
        # connection left: the takeover frees that stream's slot, so the opening is read first.
        spare = refused == "peer" and self.slots.acquire_spare(peer)
        if refused is not None and not spare:
            await self._refuse_slot(context, refused)
        conversation: Conversation | None = None
        conversation_id = ""
        self.metrics.active_conversations.inc()
        try:
            first = await self._next_request(request_iterator, context, taken_over,  # not set before it is registered
                                             opening=True)
            if first is _END:
                return
            if isinstance(first, Unreadable):
                await self._abort(context, grpc.StatusCode.INVALID_ARGUMENT,
                                  first.told("the first message could not be read as a ConverseRequest"),
                                  first.reason(opening=True), field=first.field(opening=True))
            if first.WhichOneof("kind") != "open":
                await self._abort(context, grpc.StatusCode.INVALID_ARGUMENT,
                                  "the first message of a conversation must be `open` (OpenConversation)", "first_message",
                                  field="open")
            try:
                conversation_id = check_id(first.open.conversation_id, "open.conversation_id") or uuid.uuid4().hex
            except InvalidInputError as exc:
                await self._abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(exc), "open", field=exc.field)
            key = (peer, conversation_id)
            # Only the open stream's own client holds its token: a caller sharing the address that
            # knows the id is refused as a fresh opening is, with nothing new revealed.
            takes_over = key in self.conversations and self.conversations[key].taken_over_by(first.open)
            if spare:
                if not takes_over:
                    await self._refuse_slot(context, "peer")
                self.slots.spare_done(peer)
                spare = False
            if key in self.conversations and not takes_over:
                await self._abort(context, grpc.StatusCode.ALREADY_EXISTS,
                                  "this client already has a conversation with this open.conversation_id open",
                                  "duplicate", field="open.conversation_id")  # the id is not echoed: logs keep messages
            options = first.open.options
            try:
                conversation = self.analyzer.conversation(conversation_id, text_context=not options.disable_text_context,
                                                          text_prior=text_prior_from_pb(options),
                                                          thresholds=thresholds_from_pb(options),
                                                          event_speakers=event_speakers_from_pb(options))
            except InvalidInputError as exc:
                await self._abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(exc), "open", field=exc.field)
            # From the look-up above to here nothing awaits: no other stream can open the id between.
            if (held := self.conversations.pop(key, None)) is not None:
                self._take_over(held, conversation_id)
            self.conversations[key] = opened = HeldConversation(
                conversation, taken_over, proven_token=first.open.resume_token if takes_over else "")
            # The opening is not kept: the stream may last for hours, and an opening may carry up to
            # max_message_mb (unknown fields, padding) that a view into it (`options`) would hold.
            include_modalities = not options.omit_modality_results
            del first, options
            rates = _Rates(self._rate_bucket(), self._rate_bucket())
            log.info("conversation %s opened (%d open)", log_id(conversation_id, self._log_id_key), self.slots.open)
            yield pb.ConverseResponse(opened=pb.ConversationOpened(
                conversation_id=conversation_id, models=self.models,
                max_turns_per_second=self.config.max_turns_per_second, limits=self.turn_limits,
                resume_token=opened.resume_token))

            while True:
                request = await self._next_request(request_iterator, context, taken_over)
                if request is _END:
                    return
                answer = (self._unreadable(request, rates) if isinstance(request, Unreadable) else
                          await self._answer(request, conversation, rates, include_modalities, peer))
                del request  # the turn's bytes are not kept while the stream waits for the next one
                if taken_over.is_set():  # while the turn was read: its answer is the closed conversation's, never sent
                    await self._end_taken_over(context)
                yield self._sent(answer)
                del answer
                if self.draining.is_set():
                    await self._abort(context, grpc.StatusCode.UNAVAILABLE,
                                      "server is shutting down; reopen the conversation to continue", "draining")
        finally:
            if spare:
                self.slots.spare_done(peer)
            self.slots.release(peer)
            # Only this stream's own conversation: a stream refused as a duplicate must not close
            # the conversation that holds the id, nor a stream taken over its successor's.
            held = self.conversations.get((peer, conversation_id))
            if conversation is not None and held is not None and held.conversation is conversation:
                self.conversations.pop((peer, conversation_id)).conversation.close()
                log.info("conversation %s closed (%d open)", log_id(conversation_id, self._log_id_key), self.slots.open)
            self.metrics.active_conversations.dec()

    async def _refuse_slot(self, context: grpc.aio.ServicerContext, refused: str) -> NoReturn:
        """No slot for a new conversation: the server's (``"server"``) or this client's (``"peer"``) are all taken."""
        message = (f"too many open conversations (limit {self.config.max_conversations})" if refused == "server" else
                   f"this client has {self.config.max_conversations_per_peer} conversations open (limit per client)")
        await self._abort(context, grpc.StatusCode.RESOURCE_EXHAUSTED, message,
                          "conversations" if refused == "server" else "peer_conversations", retry_after_ms=clamp_ms(1000))

    def _take_over(self, held: HeldConversation, conversation_id: str) -> None:
        """End an open conversation for a resume of the same client: its state is dropped now (a
        turn of it still being read records nothing, ``Conversation.record``; its ticket is given
        back when that work is over, as for any turn), and its stream, woken by ``taken_over``,
        ends with ABORTED and gives its slot back. Counted here, once per takeover: a turn it was
        reading is not counted apart (its answer is never sent, ``_sent``)."""
        held.conversation.close()
        held.taken_over.set()
        self.metrics.refused.labels(grpc.StatusCode.ABORTED.name, rules.TAKEN_OVER_REASON).inc()
        log.info("conversation %s taken over by a resume of its client", log_id(conversation_id, self._log_id_key))

    async def _end_taken_over(self, context: grpc.aio.ServicerContext) -> NoReturn:
        """End a stream whose conversation was taken over (counted by ``_take_over``), saying so in
        the trailer ``rules.ABORT_REASON_TRAILER`` (``rules.TAKEN_OVER_REASON``), by which the client
        tells it apart and does not resume it."""
        await self._abort(context, grpc.StatusCode.ABORTED, TAKEN_OVER, rules.TAKEN_OVER_REASON, counted=False)

    async def converse_written(self, request_iterator: AsyncIterator[pb.ConverseRequest | Unreadable],
                               context: grpc.aio.ServicerContext) -> None:
        """``Converse`` with each answer written under a time limit. A written answer waits on the
        client's flow-control window: a client that sends turns but never reads its answers kept
        its conversation's state past every idle limit. An answer not taken within
        ``idle_timeout_s`` closes the conversation and frees its state; the stream keeps its slot
        until it really ends (the status waits behind the unread answers, and gRPC's aio server
        cannot reset a stream), so what such streams hold stays within the per-client limits."""
        taken_over = asyncio.Event()
        answers = self.Converse(_Reads(context), context, taken_over=taken_over)
        peer = _peer_host(context)
        stalled = False
        taken = asyncio.ensure_future(taken_over.wait())  # a takeover ends a stalled write too
        headers_sent = False
        try:
            async for answer in answers:
                if not headers_sent:
                    # Sent apart from the first answer (headers are not held by flow control): gRPC
                    # counts them sent only once a write is done, and an abort while the first
                    # answer waited unread sent them a second time, which gRPC refused
                    # (TOO_MANY_OPERATIONS, logged with its stack): no status ever reached the client.
                    await context.send_initial_metadata(())
                    headers_sent = True
                written = asyncio.ensure_future(context.write(answer))
                written.add_done_callback(_retrieved)
                done, _ = await asyncio.wait({written, taken}, timeout=self.config.idle_timeout_s,
                                             return_when=asyncio.FIRST_COMPLETED)
                if written not in done:
                    stalled = True
                    self.slots.take(peer)  # held for the stream, as the conversation gives its own back
                    await answers.aclose()
                    if taken_over.is_set():
                        await self._end_taken_over(context)
                    await self._abort(context, grpc.StatusCode.DEADLINE_EXCEEDED,
                                      f"the client read no answer for {self.config.idle_timeout_s:g} s; "
                                      "the conversation was closed", "unread")
        finally:
            taken.cancel()
            await answers.aclose()
            if stalled:
                self.slots.release(peer)

    async def Analyze(self, request: pb.AnalyzeRequest | Unreadable, context: grpc.aio.ServicerContext) -> pb.AnalyzeResponse:
        """One turn whose body was already read (Ray Serve's proxy reads it): a call past its
        client's slots is refused at once, since waiting it would hold the whole body."""
        async with self._analyze_admission(context, may_wait=False):
            return await self._analyze(request, context)

    async def analyze_unread(self, request_iterator: AsyncIterator[pb.AnalyzeRequest | Unreadable],
                             context: grpc.aio.ServicerContext) -> pb.AnalyzeResponse:
        """``Analyze`` served as a client-streaming method (the wire is the same for one message),
        so that a call refused by admission is refused before its body is read, and one waiting
        for its client's slot waits unread."""
        async with self._analyze_admission(context):
            body = await self._analyze_body(request_iterator, context)
            if body is None:  # a body still on its way does not hold a drain
                if self.draining.is_set():
                    await self._abort(context, grpc.StatusCode.UNAVAILABLE, "server is shutting down", "draining")
                await self._abort(context, grpc.StatusCode.DEADLINE_EXCEEDED,
                                  f"the Analyze request did not arrive whole within {self.config.analyze_body_timeout_s:g} s "
                                  "of the call", "slow_body")
            requests = body.result()
            if len(requests) > 1:
                await self._abort(context, grpc.StatusCode.INVALID_ARGUMENT, "Analyze takes one request", "invalid")
            if not requests:
                await self._abort(context, grpc.StatusCode.INVALID_ARGUMENT, "Analyze needs a request", "invalid")
            (request,) = requests
            return await self._analyze(request, context)

    async def _analyze_body(self, request_iterator: AsyncIterator[pb.AnalyzeRequest | Unreadable],
                            context: grpc.aio.ServicerContext) -> asyncio.Future | None:
        """The Analyze call's messages (as ``_unless_drained`` gives them), counting the refusal
        gRPC itself makes. A message over ``max_message_mb`` never reaches the servicer: gRPC ends
        the call with RESOURCE_EXHAUSTED, and all this side sees is the request stream ending
        without a message, then this task cancelled. Counted as the client sees it (reason
        ``message_size``), not as a call that sent no request: a stream that ended empty is
        given a moment for gRPC's cancellation to arrive before it is refused as such. A client
        that goes away while its request is on its way looks the same here and is counted alike;
        one whose own deadline passed is not (it is told DEADLINE_EXCEEDED by its own side)."""
        try:
            body = await self._unless_drained(_all_of(request_iterator, 2), self.config.analyze_body_timeout_s)
            if body is not None and not body.result():
                await asyncio.sleep(ENDED_BY_GRPC_WAIT_S)
            return body
        except asyncio.CancelledError:
            remaining = context.time_remaining()
            if remaining is None or remaining > 0:
                self.metrics.refused.labels(grpc.StatusCode.RESOURCE_EXHAUSTED.name, "message_size").inc()
            raise

    async def ListModels(self, request: pb.ListModelsRequest, context: grpc.aio.ServicerContext) -> pb.ListModelsResponse:
        return pb.ListModelsResponse(models=self.models, fusion=FusionWeights.DEFAULT.value.id)

    def idle(self) -> bool:
        """No conversation open, no turn or Analyze call in flight: what draining waits for."""
        return self.slots.open == 0 and self.in_flight == 0 and self.analyze_slots.in_flight == 0 and not self._turn_tasks

    def _loaded_models(self) -> list[pb.ModelInfo]:
        """The models this server runs (not every model the package ships)."""
        loaded = set(self.analyzer.models.values())
        return model_infos([r for r in list_weights() if r["id"] in loaded])

    # ------------------------------------------------------------------ admission

    @contextlib.asynccontextmanager
    async def _analyze_admission(self, context: grpc.aio.ServicerContext, *, may_wait: bool = True) -> AsyncIterator[None]:
        """An Analyze call's slot (``limits.AnalyzeSlots``): at most ``max_analyze_in_flight`` in all
        and ``max_analyze_per_peer`` per client address, whose further calls wait for one
        (``may_wait``), up to ``max_analyze_queued_per_peer``, within their deadlines; and at most
        ``max_analyze_per_second_per_peer`` calls a second per address. Refused: RESOURCE_EXHAUSTED
        with a retry hint."""
        if self.draining.is_set():
            await self._abort(context, grpc.StatusCode.UNAVAILABLE, "server is shutting down", "draining")
        peer = _peer_host(context)
        slots = self.analyze_slots
        admitted = slots.acquire(peer, may_wait=may_wait)
        if isinstance(admitted, asyncio.Future):
            await self._wait_for_slot(admitted, peer, context)
        elif admitted is not None:
            why, wait_s = admitted
            if why == "server":
                await self._abort(context, grpc.StatusCode.RESOURCE_EXHAUSTED,
                                  f"the server is serving {slots.in_flight} Analyze calls (limit {slots.max_total})",
                                  "analyze_in_flight", retry_after_ms=self._busy_retry_ms(), field="turn")
            message = (f"more than {slots.per_second:g} Analyze calls per second from this client" if why == "rate" else
                       f"this client has {slots.per_peer} Analyze calls in flight"
                       f"{f' and {slots.waiting(peer)} waiting' if may_wait and slots.max_queued else ''} (limit)")
            await self._abort(context, grpc.StatusCode.RESOURCE_EXHAUSTED, message, f"peer_{why}",
                              retry_after_ms=clamp_ms(wait_s * 1000) if wait_s is not None else self._busy_retry_ms(),
                              field="turn")
        try:
            yield
        finally:
            slots.release(peer)

    async def _wait_for_slot(self, waiter: asyncio.Future[None], peer: str, context: grpc.aio.ServicerContext) -> None:
        """Returns once ``waiter`` (``AnalyzeSlots.acquire``) gives the call its slot, its body
        unread meanwhile (gRPC holds a flow-control window of it, 64 KiB: ``app.start_server``).
        Draining ends the wait with UNAVAILABLE, as it ends every call; the call's deadline with
        DEADLINE_EXCEEDED, the status its client's gRPC gives it then whatever the server says:
        its time is over, so a retry hint would only invite an attempt it did not ask for."""
        drained = asyncio.ensure_future(self.draining.wait())
        either: set[asyncio.Future[Any]] = {waiter, drained}
        try:
            await asyncio.wait(either, timeout=context.time_remaining(), return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:  # the client went away (or gRPC ended the call at its deadline)
            self.analyze_slots.leave(peer, waiter)
            raise
        finally:
            drained.cancel()
        if waiter.done():
            return
        self.analyze_slots.leave(peer, waiter)
        if self.draining.is_set():
            await self._abort(context, grpc.StatusCode.UNAVAILABLE, "server is shutting down", "draining")
        await self._abort(context, grpc.StatusCode.DEADLINE_EXCEEDED,
                          f"the call's deadline passed while it waited for one of this client's "
                          f"{self.analyze_slots.per_peer} Analyze slots", "queued_deadline")

    async def _admit(self, message: pb.Turn, peer: str) -> tuple[TurnCost, Ticket | None, str, str]:
        """The turn's cost and its ticket, or (cost, None, why, reason) when the server, or this
        client's share of it (``peer``), is too busy (reason ``busy`` or ``peer_busy``).
        Raises ``InvalidInputError`` for a turn over a per-turn limit. Media headers are read off
        the event loop (a crafted header may take a fraction of a second to walk), text-only turns
        on it."""
        if message.images or (message.HasField("audio") and message.audio.encoding == pb.AUDIO_FILE):
            cost = await asyncio.to_thread(measure, message, self.config)
        else:
            cost = measure(message, self.config)
        admitted = self.budget.admit(cost.decoded_bytes, cost.is_heavy(self.config), peer)
        if isinstance(admitted, str):
            limit = {"turns": self.budget.max_turns, "heavy": self.budget.max_heavy,
                     "peer_turns": self.budget.peer_turns}.get(admitted, 0)
            by_peer = admitted.startswith("peer")
            n = self.budget.held_by(peer) if by_peer else self.budget.turns
            return cost, None, _BUSY[admitted].format(n=n, limit=limit), "peer_busy" if by_peer else "busy"
        return cost, admitted, "", ""

    def _busy_retry_ms(self) -> int:
        return self.drain.retry_after_ms(self.budget.turns + self.analyze_slots.in_flight, self.config.workers)

    # ------------------------------------------------------------------ turns

    async def _analyze(self, request: pb.AnalyzeRequest | Unreadable, context: grpc.aio.ServicerContext) -> pb.AnalyzeResponse:
        """One Analyze request, read or not (``Analyze`` and ``analyze_unread`` both end here)."""
        if isinstance(request, Unreadable):
            await self._abort(context, grpc.StatusCode.INVALID_ARGUMENT,
                              request.told("the request could not be read as an AnalyzeRequest"),
                              request.reason(opening=False), field=request.field(opening=False))
        received = time.perf_counter()
        try:
            cost, ticket, busy, reason = await self._admit(request.turn, _peer_host(context))
        except InvalidInputError as exc:
            await self._abort(context, grpc.StatusCode.INVALID_ARGUMENT, _message(exc), _reason(exc),
                              field=_wire_field(exc.field))
        if ticket is None:
            await self._abort(context, grpc.StatusCode.RESOURCE_EXHAUSTED, f"{cost.heaviest_field()}: {busy}", reason,
                              retry_after_ms=self._busy_retry_ms(), field=cost.heaviest_field())
        try:
            conversation = self.analyzer.conversation(text_context=False, text_prior=text_prior_from_pb(request.options),
                                                      thresholds=thresholds_from_pb(request.options),
                                                      event_speakers=event_speakers_from_pb(request.options))
        except InvalidInputError as exc:
            ticket.release()
            await self._abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(exc), "invalid", field=exc.field)
        result = await self._turn(conversation, request.turn, ticket, received)
        if isinstance(result, _Failure):
            await self._abort(context, result.code, result.message, result.reason, field=result.field)
        return pb.AnalyzeResponse(result=turn_result_to_pb(
            result, request.turn.turn_id, include_modalities=not request.options.omit_modality_results))

    def _rate_bucket(self) -> TokenBucket:
        """One conversation's ``max_turns_per_second``, with a burst of 2 s of it (at least one)."""
        return TokenBucket(self.config.max_turns_per_second, burst=max(1.0, 2 * self.config.max_turns_per_second))

    def _over_turn_rate(self, rates: _Rates, turn_id: str, is_turn: bool) -> _Refusal | None:
        """A message after the opening counted against the conversation's turns (``rates.turns``),
        whatever it is but a speaker reset (which has its own bucket): each is answered, and a flood
        of unreadable or empty messages was answered as fast as it came. Its refusal if over the rate."""
        if rates.turns.take():
            return None
        counted = "" if is_turn else " (a message that is no turn counts as one)"
        return self._turn_error(turn_id, grpc.StatusCode.RESOURCE_EXHAUSTED,
                                f"more than {self.config.max_turns_per_second:g} turns per second{counted}", "turn",
                                "rate", retry_after_ms=clamp_ms(rates.turns.wait_time() * 1000))

    def _unreadable(self, request: Unreadable, rates: _Rates) -> _Refusal:
        return self._over_turn_rate(rates, request.turn_id, False) or self._turn_error(
            request.turn_id, grpc.StatusCode.INVALID_ARGUMENT,
            request.told("a message could not be read as a ConverseRequest") + "; the conversation goes on",
            request.field(opening=False), request.reason(opening=False))

    async def _answer(self, request: pb.ConverseRequest, conversation: Conversation, rates: _Rates,
                      include_modalities: bool, peer: str) -> pb.ConverseResponse | _Refusal:
        received = time.perf_counter()
        kind = request.WhichOneof("kind")
        if kind == "reset_speaker":
            if not rates.resets.take():
                return self._turn_error("", grpc.StatusCode.RESOURCE_EXHAUSTED,
                                        f"more than {self.config.max_turns_per_second:g} speaker resets per second",
                                        "reset_speaker", "reset_rate",
                                        retry_after_ms=clamp_ms(rates.resets.wait_time() * 1000))
            return self._reset_speaker(request.reset_speaker, conversation)
        turn_id = request.turn.turn_id if kind == "turn" else ""
        if (over := self._over_turn_rate(rates, turn_id, kind == "turn")) is not None:
            return over
        if kind == "open":
            return self._turn_error("", grpc.StatusCode.INVALID_ARGUMENT,
                                    "only the first message may be `open`; send `turn` or `reset_speaker` messages",
                                    "open", "invalid")
        if kind != "turn":  # empty, or only fields this server does not know
            return self._turn_error("", grpc.StatusCode.INVALID_ARGUMENT,
                                    "the message carries no `turn`, `reset_speaker` or `open`; "
                                    "the conversation goes on", "turn", "invalid")
        try:
            cost, ticket, busy, reason = await self._admit(request.turn, peer)
        except InvalidInputError as exc:
            return self._turn_error(turn_id, grpc.StatusCode.INVALID_ARGUMENT, _message(exc), _wire_field(exc.field),
                                    _reason(exc))
        if ticket is None:
            return self._turn_error(turn_id, grpc.StatusCode.RESOURCE_EXHAUSTED, busy, cost.heaviest_field(), reason,
                                    retry_after_ms=self._busy_retry_ms())
        result = await self._turn(conversation, request.turn, ticket, received)
        if isinstance(result, _Failure):
            return self._turn_error(turn_id, result.code, result.message, result.field, result.reason)
        return pb.ConverseResponse(result=turn_result_to_pb(
            result, turn_id, include_modalities=include_modalities))

    def _reset_speaker(self, message: pb.ResetSpeaker, conversation: Conversation) -> pb.ConverseResponse | _Refusal:
        """One speaker started anew (``Conversation.reset_speaker``): cheap, and in order, since the
        stream's requests are answered one after another (the turn before it is complete)."""
        try:
            turns = conversation.reset_speaker(reset_speaker_from_pb(message))
        except InvalidInputError as exc:
            return self._turn_error("", grpc.StatusCode.INVALID_ARGUMENT, str(exc), "reset_speaker.speaker", "invalid")
        return pb.ConverseResponse(speaker_reset=pb.SpeakerReset(speaker=message.speaker, turns=turns))

    async def _turn(self, conversation: Conversation, message: pb.Turn, ticket: Ticket,
                    received: float) -> TurnResult | _Failure:
        """The admitted turn's work, run as a task of its own that the caller's going away does
        not cancel: its ticket is given back when that work is over, not when the caller leaves.
        (Cancelled with its caller, the decoded turn stayed in a worker's queue or a batch while
        its share of the in-flight budget was already free: a client that sent turns and cancelled
        them at once could fill memory past ``max_in_flight_mb``.) A conversation closed meanwhile
        records nothing (``Conversation.record``)."""
        async def held() -> TurnResult | _Failure:
            try:
                return await self._analysed(conversation, message, self.heavy_lane if ticket.heavy else self.lane, received)
            finally:
                ticket.release()

        work = asyncio.ensure_future(held())
        self._turn_tasks.add(work)  # the loop keeps only a weak reference to a task
        work.add_done_callback(self._turn_tasks.discard)
        return await asyncio.shield(work)

    async def _analysed(self, conversation: Conversation, message: pb.Turn, lane: Lane,
                        received: float) -> TurnResult | _Failure:
        """The turn decoded, checked and read, or why not. A turn the input rules refuse is
        INVALID_ARGUMENT; any other error (a bug, an encoder that failed) is INTERNAL for this
        turn alone: the stream goes on, the conversation's state is as before the turn, and the
        log gets the error's type and stack under an id the caller is given, never its message
        (which could quote the turn's content)."""
        try:
            prepared = await self._prepare(conversation, message, lane)
            return await self._run(conversation, prepared, lane, received)
        except InvalidInputError as exc:
            return _Failure(grpc.StatusCode.INVALID_ARGUMENT, _message(exc), _wire_field(exc.field), _reason(exc))
        except Exception as exc:  # noqa: BLE001 - one turn's failure must not end the stream
            if isinstance(exc, ConversationClosedError) and conversation.closed:
                # closed before the turn was decoded (taken over, its caller gone): nothing to read it against
                return _Failure(grpc.StatusCode.ABORTED, "the conversation was closed before this turn was read",
                                "turn", "closed")
            error_id = uuid.uuid4().hex[:12]
            log.error("a turn failed with %s (error %s); stack:\n%s", type(exc).__name__, error_id,
                      "".join(traceback.format_tb(exc.__traceback__)))
            return _Failure(grpc.StatusCode.INTERNAL, f"the server failed to analyse this turn (error {error_id}); "
                            "the conversation goes on", "turn", "internal")

    async def _prepare(self, conversation: Conversation, message: pb.Turn, lane: Lane) -> PreparedTurn:
        """Decode and check the turn (audio resampling, image decoding) off the event loop. A
        turn whose caller went away before this started is never decoded."""
        turn = turn_from_pb(message)
        return await asyncio.get_running_loop().run_in_executor(lane.executor, conversation.prepare, turn)

    async def _run(self, conversation: Conversation, prepared: PreparedTurn, lane: Lane, received: float) -> TurnResult:
        """The prepared turn read by the encoders; its latency is counted from ``received``
        (``time.perf_counter()`` when its message was in hand), so that it covers reading the
        media headers, decoding and waiting for a worker as well as the models: counted from
        here, it left out the decoding (about 8% under the client's figure)."""
        self.in_flight += 1
        try:
            # the lane's batchers (the heavy lane has its own for speech and faces), else the main ones
            result = await analyze_submitted(conversation, prepared, lambda m: (
                lane.batchers[m.value] if m.value in lane.batchers else self.batchers[m.value]).submit)
        finally:
            self.in_flight -= 1
        elapsed = time.perf_counter() - received
        if lane is self.lane:
            self.drain.answered(elapsed)
        self.metrics.turn_latency.labels("+".join(m.value for m in result.present)).observe(elapsed)
        self.metrics.turns.inc()
        return result

    @staticmethod
    def _turn_error(turn_id: str, code: grpc.StatusCode, message: str, field: str, reason: str,
                    retry_after_ms: int = 0) -> _Refusal:
        return _Refusal(pb.ConverseResponse(error=pb.TurnError(turn_id=turn_id, code=code.value[0], message=message,
                                                               field=field, retry_after_ms=retry_after_ms)),
                        code, reason)

    def _sent(self, answer: pb.ConverseResponse | _Refusal) -> pb.ConverseResponse:
        """The answer as the stream sends it; a refusal counted now, under its reason."""
        if isinstance(answer, _Refusal):
            self.metrics.refused.labels(answer.code.name, answer.reason).inc()
            return answer.answer
        return answer

    async def _next_request(self, request_iterator: AsyncIterator[pb.ConverseRequest | Unreadable],
                            context: grpc.aio.ServicerContext,
                            taken_over: asyncio.Event, *, opening: bool = False) -> pb.ConverseRequest | Unreadable | _Ended:
        """The next request, or _END when the client closed its side; ends idle streams, and a
        stream whose conversation was taken over (``taken_over`` set). The ``opening`` has
        ``open_timeout_s``, not ``idle_timeout_s``: a stream that sends nothing holds a slot."""
        timeout = self.config.open_timeout_s if opening else self.config.idle_timeout_s
        next_request = await self._unless_drained(_read_one(request_iterator), timeout, taken_over)
        if taken_over.is_set():  # a turn read meanwhile is not read against a closed state
            await self._end_taken_over(context)
        if next_request is not None:
            return next_request.result()
        if self.draining.is_set():
            await self._abort(context, grpc.StatusCode.UNAVAILABLE,
                              "server is shutting down; reopen the conversation to continue", "draining")
        if opening:
            await self._abort(context, grpc.StatusCode.DEADLINE_EXCEEDED,
                              f"no opening message (OpenConversation) within {self.config.open_timeout_s:g} s of the call",
                              "slow_open")
        await self._abort(context, grpc.StatusCode.DEADLINE_EXCEEDED,
                          f"no turn for {self.config.idle_timeout_s:g} s; the conversation was closed", rules.IDLE_REASON)

    async def _unless_drained(self, read: Coroutine[Any, Any, Any], timeout: float, *also: asyncio.Event) -> asyncio.Future | None:
        """``read`` run until it is done (the finished task), or ``None`` when the server began
        draining, one of ``also`` was set or ``timeout`` passed first (``read`` is then cancelled)."""
        task = asyncio.ensure_future(read)
        ends = [asyncio.ensure_future(event.wait()) for event in (self.draining, *also)]
        try:
            await asyncio.wait({task, *ends}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for end in ends:
                end.cancel()
        if task.done():
            return task
        task.cancel()
        return None

    async def _abort(self, context: grpc.aio.ServicerContext, code: grpc.StatusCode, message: str, reason: str,
                     retry_after_ms: int = 0, *, field: str | None = None, counted: bool = True) -> NoReturn:
        """End the call with ``code`` (``context.abort`` raises), counted under ``reason``, which
        the trailer ``rules.ABORT_REASON_TRAILER`` carries to the client (``rules.IDLE_REASON``: a
        conversation closed for idleness, which a client may resume). ``field``: what of the
        request was refused (``turn.audio.data``, ``options.text_prior``; a whole turn refused,
        e.g. as busy: ``turn``), sent in the trailer ``rules.REFUSED_FIELD_TRAILER`` as a
        ``TurnError`` names it; none for a refusal of the call itself (draining, a deadline).
        ``counted=False``: counted already where the cause was met (a takeover)."""
        if counted:
            self.metrics.refused.labels(code.name, reason).inc()
        trailers = retry_trailers(code, message, retry_after_ms) if retry_after_ms else ()
        trailers = (*trailers, (rules.ABORT_REASON_TRAILER, reason))
        if field:
            trailers = (*trailers, (rules.REFUSED_FIELD_TRAILER, field))
        await context.abort(code, message, trailing_metadata=trailers)
        raise AssertionError("grpc's abort returned")  # it raises; here for the type checker


@dataclass(frozen=True)
class _Rates:
    """One conversation's token buckets, each at ``max_turns_per_second``: its turns', and its
    speaker resets' apart (cheap, but not free: each is answered, and uncounted they were
    unbounded), so that a reset never costs a turn its place, as the client's replay expects."""

    turns: TokenBucket
    resets: TokenBucket


@dataclass(frozen=True)
class _Refusal:
    """A turn's ``TurnError`` answer, counted (``affect_refused_total``) when it is sent, not when it
    is made: a turn read while its conversation is taken over gets no answer, and is counted
    once, as taken over."""

    answer: pb.ConverseResponse
    code: grpc.StatusCode
    reason: str


@dataclass(frozen=True)
class _Failure:
    """Why a turn got no result: the status, message, field and metric reason it is refused with."""

    code: grpc.StatusCode
    message: str
    field: str
    reason: str


async def _all_of(request_iterator: AsyncIterator[_M], at_most: int) -> list[_M]:
    """The stream's messages until it ends or ``at_most`` have come."""
    messages: list[_M] = []
    async for message in request_iterator:
        messages.append(message)
        if len(messages) >= at_most:
            break
    return messages


class _Reads:
    """A call's requests read one by one with ``context.read()``, keeping none of them: gRPC's own
    request iterator (an async generator) holds the last message it gave until the next one
    arrives, and a conversation's opening stayed alive for as long as its stream waited for a
    turn (up to ``idle_timeout_s``, and an opening may carry up to ``max_message_mb``)."""

    def __init__(self, context: grpc.aio.ServicerContext) -> None:
        self._context = context

    def __aiter__(self) -> "_Reads":
        return self

    async def __anext__(self) -> Any:
        message = await self._context.read()
        if message is grpc.aio.EOF:
            raise StopAsyncIteration
        return message


async def _read_one(request_iterator: AsyncIterator[_M]) -> _M | _Ended:
    try:
        return await request_iterator.__anext__()
    except StopAsyncIteration:
        return _END


def log_id(conversation_id: str, key: bytes) -> str:
    """A conversation's id as the log shows it: a short keyed digest (HMAC-SHA-256 under the
    server's ``log_id_key``, first 12 hex digits). A client chooses its ids, and they may be
    names or phone numbers: an unkeyed digest of a phone number is found again by trying the
    numbers (121 guesses for one). The digest still follows one conversation through the log."""
    return "#" + hmac.new(key, conversation_id.encode(), hashlib.sha256).hexdigest()[:12]


def _peer_host(context: grpc.aio.ServicerContext) -> str:
    """The client's address without its port ("ipv4:10.0.0.7"), so that new connections from
    one client share its limits. An IPv6 client is its /64 network, the block one host or site
    is given: counted by full address, a client could spread its calls over its 2**64 addresses
    and escape every per-client limit. An IPv4-mapped address counts as its IPv4 address."""
    try:
        peer = context.peer() or ""
    except Exception:  # noqa: BLE001 - a context without peer(): one shared bucket (Ray's proxy passes the client's)
        return ""
    kind, _, address = peer.partition(":")
    if kind == "ipv4":
        return "ipv4:" + address.rsplit(":", 1)[0]
    if kind == "ipv6":
        host = urllib.parse.unquote(address.rsplit(":", 1)[0]).strip("[]").split("%")[0]
        try:
            ip = ipaddress.IPv6Address(host)
        except ValueError:
            return "ipv6:" + host
        if ip.ipv4_mapped is not None:
            return f"ipv4:{ip.ipv4_mapped}"
        return f"ipv6:{ipaddress.IPv6Network((ip, 64), strict=False)}"
    return peer


def _retrieved(future: asyncio.Future) -> None:
    """Marks a write's failure as seen: a write fails when its call ended first, as the call says."""
    if not future.cancelled():
        future.exception()


def _reason(exc: InvalidInputError) -> str:
    return "too_large" if isinstance(exc, InputTooLargeError) else "invalid"


def _message(exc: InvalidInputError) -> str:
    """The message under the wire's name of its field, once (``InvalidInputError.message_naming``):
    ``images[0] could not be decoded`` becomes ``turn.images[0] could not be decoded``,
    ``audio: the file is MP3 audio`` ``turn.audio.data: the file ...``."""
    return exc.message_naming(_wire_field(exc.field))


_WIRE_FIELDS = {"text": "turn.text", "speaker": "turn.speaker", "sample_rate": "turn.audio.sample_rate_hz",
                "audio": "turn.audio.data",
                "image": "turn.images", "images": "turn.images"}


def _wire_field(field: str | None) -> str:
    """Library field names (``text``, ``sample_rate``) as the wire names them (``turn.text``, ...)."""
    if not field:
        return "turn"
    if field.startswith(("turn", "open")):
        return field
    return _WIRE_FIELDS.get(field, f"turn.{field}")

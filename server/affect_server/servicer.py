"""The AffectService implementation: conversations over one stream each, micro-batched models."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator

import grpc

from affect import Analyzer, InvalidInputError, Modality
from affect.conversation import Conversation, PreparedTurn
from affect.fusion import FusionWeights
from affect.registry import list_weights
from affect_client._proto import affect_pb2 as pb
from affect_client._proto import affect_pb2_grpc as pb_grpc
from affect_server.batching import MicroBatcher
from affect_server.config import ServerConfig
from affect_server.convert import model_infos, turn_from_pb, turn_result_to_pb
from affect_server.limits import ConversationSlots, TokenBucket
from affect_server.metrics import ServiceMetrics

log = logging.getLogger("affect.server")

_END = object()


class _StreamEnded(Exception):
    """The stream is ending with a status (set before raising)."""


class AffectServicer(pb_grpc.AffectServiceServicer):
    def __init__(self, analyzer: Analyzer, config: ServerConfig, metrics: ServiceMetrics, batchers: dict[str, MicroBatcher],
                 executor) -> None:
        self.analyzer = analyzer
        self.executor = executor
        self.config = config
        self.metrics = metrics
        self.batchers = batchers
        self.slots = ConversationSlots(config.max_conversations)
        self.conversations: dict[str, Conversation] = {}
        metrics.conversation_states.set_function(lambda: len(self.conversations))
        self.draining = asyncio.Event()
        self.in_flight = 0

    # ------------------------------------------------------------------ RPCs

    async def Converse(self, request_iterator: AsyncIterator[pb.ConverseRequest], context: grpc.aio.ServicerContext):
        if self.draining.is_set():
            await self._abort(context, grpc.StatusCode.UNAVAILABLE, "server is shutting down", "draining")
        if not self.slots.acquire():
            await self._abort(context, grpc.StatusCode.RESOURCE_EXHAUSTED,
                              f"too many open conversations (limit {self.config.max_conversations})", "conversations")
        conversation_id = ""
        self.metrics.active_conversations.inc()
        try:
            first = await self._next_request(request_iterator, context)
            if first is _END:
                return
            if first.WhichOneof("kind") != "open":
                await self._abort(context, grpc.StatusCode.INVALID_ARGUMENT,
                                  "the first message of a conversation must be `open` (OpenConversation)", "first_message")
            conversation_id = first.open.conversation_id or uuid.uuid4().hex
            if len(conversation_id) > 128:
                await self._abort(context, grpc.StatusCode.INVALID_ARGUMENT,
                                  "open.conversation_id is longer than 128 characters", "open")
            if conversation_id in self.conversations:
                await self._abort(context, grpc.StatusCode.ALREADY_EXISTS,
                                  f"conversation {conversation_id!r} is already open", "duplicate")
            options = first.open.options
            conversation = self.analyzer.conversation(conversation_id, text_context=not options.disable_text_context)
            self.conversations[conversation_id] = conversation
            bucket = TokenBucket(self.config.max_turns_per_second, burst=max(1.0, 2 * self.config.max_turns_per_second))
            log.info("conversation %s opened (%d open)", conversation_id, self.slots.open)
            yield pb.ConverseResponse(opened=pb.ConversationOpened(
                conversation_id=conversation_id, models=model_infos(list_weights()),
                max_turns_per_second=self.config.max_turns_per_second))

            while True:
                request = await self._next_request(request_iterator, context)
                if request is _END:
                    return
                yield await self._answer(request, conversation, bucket, options)
                if self.draining.is_set():
                    await self._abort(context, grpc.StatusCode.UNAVAILABLE,
                                      "server is shutting down; reopen the conversation to continue", "draining")
        finally:
            self.slots.release()
            self.metrics.active_conversations.dec()
            if conversation_id and conversation_id in self.conversations:
                self.conversations.pop(conversation_id).close()
                log.info("conversation %s closed (%d open)", conversation_id, self.slots.open)

    async def Analyze(self, request: pb.AnalyzeRequest, context: grpc.aio.ServicerContext) -> pb.AnalyzeResponse:
        if self.draining.is_set():
            await self._abort(context, grpc.StatusCode.UNAVAILABLE, "server is shutting down", "draining")
        conversation = self.analyzer.conversation(text_context=False)
        try:
            prepared = await self._prepare(conversation, request.turn)
        except InvalidInputError as exc:
            await self._abort(context, grpc.StatusCode.INVALID_ARGUMENT, _message(exc), "invalid")
        result = await self._run(conversation, prepared)
        return pb.AnalyzeResponse(result=turn_result_to_pb(
            result, request.turn.turn_id, include_modalities=not request.options.omit_modality_results))

    async def ListModels(self, request: pb.ListModelsRequest, context: grpc.aio.ServicerContext) -> pb.ListModelsResponse:
        loaded = set(self.analyzer.models.values())
        return pb.ListModelsResponse(models=model_infos([r for r in list_weights() if r["id"] in loaded]),
                                     fusion=FusionWeights.DEFAULT.value.id)

    # ------------------------------------------------------------------ turns

    async def _answer(self, request: pb.ConverseRequest, conversation: Conversation, bucket: TokenBucket,
                      options: pb.ConversationOptions) -> pb.ConverseResponse:
        kind = request.WhichOneof("kind")
        turn_id = request.turn.turn_id if kind == "turn" else ""
        if kind != "turn":
            return self._turn_error(turn_id, grpc.StatusCode.INVALID_ARGUMENT,
                                    "only the first message may be `open`; send `turn` messages", "open", "invalid")
        if not bucket.take():
            return self._turn_error(turn_id, grpc.StatusCode.RESOURCE_EXHAUSTED,
                                    f"more than {self.config.max_turns_per_second:g} turns per second", "turn", "rate")
        try:
            prepared = await self._prepare(conversation, request.turn)
        except InvalidInputError as exc:
            return self._turn_error(turn_id, grpc.StatusCode.INVALID_ARGUMENT, _message(exc),
                                    _wire_field(exc.field), "invalid")
        result = await self._run(conversation, prepared)
        return pb.ConverseResponse(result=turn_result_to_pb(
            result, turn_id, include_modalities=not options.omit_modality_results))

    async def _prepare(self, conversation: Conversation, message: pb.Turn) -> PreparedTurn:
        """Decode and check the turn (audio resampling and VAD, image decoding) off the event loop."""
        turn = turn_from_pb(message)
        return await asyncio.get_running_loop().run_in_executor(self.executor, conversation.prepare, turn)

    async def _run(self, conversation: Conversation, prepared: PreparedTurn):
        started = time.perf_counter()
        self.in_flight += 1
        try:
            jobs = {}
            if prepared.text is not None:
                jobs["text"] = self.batchers["text"].submit(prepared.text)
            if prepared.speech is not None:
                jobs["speech"] = self.batchers["speech"].submit(prepared.speech)
            if prepared.faces:
                jobs["face"] = asyncio.gather(*(self.batchers["face"].submit(gray) for gray in prepared.faces))
            answers = dict(zip(jobs, await asyncio.gather(*jobs.values())))  # the encoders run side by side
            if "text" in answers:
                prepared.results[Modality.TEXT] = answers["text"]
            if "speech" in answers:
                conversation.add_speech(prepared, answers["speech"])
            if "face" in answers:
                conversation.add_faces(prepared, answers["face"])
            result = conversation.complete(prepared)
        finally:
            self.in_flight -= 1
        self.metrics.turn_latency.labels("+".join(m.value for m in result.present)).observe(time.perf_counter() - started)
        self.metrics.turns.inc()
        return result

    def _turn_error(self, turn_id: str, code: grpc.StatusCode, message: str, field: str, reason: str) -> pb.ConverseResponse:
        self.metrics.refused.labels(code.name, reason).inc()
        return pb.ConverseResponse(error=pb.TurnError(turn_id=turn_id, code=code.value[0], message=message, field=field))

    async def _next_request(self, request_iterator, context):
        """The next request, or _END when the client closed its side; ends idle streams."""
        next_request = asyncio.ensure_future(_read_one(request_iterator))
        drained = asyncio.ensure_future(self.draining.wait())
        try:
            done, _ = await asyncio.wait({next_request, drained}, timeout=self.config.idle_timeout_s,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            drained.cancel()
        if next_request in done:
            return next_request.result()
        next_request.cancel()
        if self.draining.is_set():
            await self._abort(context, grpc.StatusCode.UNAVAILABLE,
                              "server is shutting down; reopen the conversation to continue", "draining")
        await self._abort(context, grpc.StatusCode.DEADLINE_EXCEEDED,
                          f"no turn for {self.config.idle_timeout_s:g} s; the conversation was closed", "idle")

    async def _abort(self, context: grpc.aio.ServicerContext, code: grpc.StatusCode, message: str, reason: str):
        self.metrics.refused.labels(code.name, reason).inc()
        await context.abort(code, message)


async def _read_one(request_iterator):
    try:
        return await request_iterator.__anext__()
    except StopAsyncIteration:
        return _END


def _message(exc: InvalidInputError) -> str:
    message = str(exc)
    field = _wire_field(exc.field)
    return message if message.startswith(field) else f"{field}: {message}"


_WIRE_FIELDS = {"text": "turn.text", "speaker": "turn.speaker", "sample_rate": "turn.audio.sample_rate_hz",
                "audio": "turn.audio", "audio_file": "turn.audio.data", "samples": "turn.audio.data",
                "image": "turn.images", "images": "turn.images"}


def _wire_field(field: str | None) -> str:
    """Library field names (``text``, ``sample_rate``) as the wire names them (``turn.text``, ...)."""
    if not field:
        return "turn"
    if field.startswith(("turn", "open")):
        return field
    return _WIRE_FIELDS.get(field, f"turn.{field}")

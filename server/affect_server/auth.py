"""Bearer-token check as a server interceptor: a call without the right token is refused."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable

import grpc

# Health checks stay open so that probes and load balancers can reach them (they tell only
# SERVING or NOT_SERVING). Reflection, which lists the services and gives their schema, needs the
# token as the service does: a tool sends it (grpcurl -H 'authorization: Bearer ...').
OPEN_METHODS = ("/grpc.health.v1.Health/",)
REFUSAL = "missing or wrong bearer token"


def token_refusal(metadata: Iterable[tuple[str, str | bytes]] | None, token: str) -> str | None:
    """None when the call's ``authorization`` metadata is ``Bearer <token>``, else the reason
    the refusal is counted under: ``no_token`` (none sent: a client not configured) or
    ``wrong_token`` (another token, or a header of another kind)."""
    header = dict(metadata or ()).get("authorization")
    if header is None:
        return "no_token"
    return None if hmac.compare_digest(str(header).encode(), f"Bearer {token}".encode()) else "wrong_token"


class BearerTokenInterceptor(grpc.aio.ServerInterceptor):
    """``on_refused(reason)`` is called for each call refused, when its refusal is sent (the
    server counts it in ``affect_refused_total`` beside its other refusals)."""

    def __init__(self, token: str, on_refused: Callable[[str], None] = lambda reason: None) -> None:
        self._token = token
        self._on_refused = on_refused

    async def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        method = handler_call_details.method or ""
        if method.startswith(OPEN_METHODS):
            return await continuation(handler_call_details)
        reason = token_refusal(handler_call_details.invocation_metadata, self._token)
        if reason is None:
            return await continuation(handler_call_details)
        return _refusal(await continuation(handler_call_details), lambda: self._on_refused(reason))


def _skip(_: bytes) -> None:
    """The deserializer of a refused call: its body is never parsed."""
    return None


def _refusal(handler: grpc.RpcMethodHandler | None, counted: Callable[[], None]) -> grpc.RpcMethodHandler | None:
    """A handler of the same shape as the real one that aborts with UNAUTHENTICATED without
    parsing the request: a streaming request (Converse, and Analyze, which the server reads as
    a stream) is not even read; a unary one is read by gRPC but never parsed. An unknown
    method stays unknown (UNIMPLEMENTED, not a refusal)."""
    if handler is None:
        return None

    async def abort_unary(request: object, context: grpc.aio.ServicerContext) -> None:
        counted()
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, REFUSAL)

    async def abort_stream(request_iterator: object, context: grpc.aio.ServicerContext) -> AsyncIterator[None]:
        counted()
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, REFUSAL)
        yield  # pragma: no cover - makes this an async generator

    serialize = handler.response_serializer
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(abort_stream, _skip, serialize)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(abort_unary, _skip, serialize)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(abort_stream, _skip, serialize)
    return grpc.unary_unary_rpc_method_handler(abort_unary, _skip, serialize)

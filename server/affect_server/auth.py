"""Bearer-token check as a server interceptor: a call without the right token is refused."""

from __future__ import annotations

import hmac

import grpc

# Health checks and reflection stay open so that load balancers and tools can reach them.
OPEN_METHODS = ("/grpc.health.v1.Health/", "/grpc.reflection.")


class BearerTokenInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

    async def intercept_service(self, continuation, handler_call_details):
        method = handler_call_details.method or ""
        if method.startswith(OPEN_METHODS):
            return await continuation(handler_call_details)
        header = dict(handler_call_details.invocation_metadata or ()).get("authorization", "")
        if hmac.compare_digest(str(header).encode(), self._expected):
            return await continuation(handler_call_details)
        return _refusal(await continuation(handler_call_details))


def _skip(_: bytes) -> None:
    """The deserializer of a refused call: its body is never parsed."""
    return None


def _refusal(handler: grpc.RpcMethodHandler | None) -> grpc.RpcMethodHandler | None:
    """A handler of the same shape as the real one that aborts with UNAUTHENTICATED without
    parsing the request: a streaming request (Converse, and Analyze, which the server reads as
    a stream) is not even read; a unary one is read by gRPC but never parsed."""
    if handler is None:
        return None

    async def abort_unary(request, context):
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")

    async def abort_stream(request_iterator, context):
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")
        yield  # pragma: no cover - makes this an async generator

    serialize = handler.response_serializer
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(abort_stream, _skip, serialize)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(abort_unary, _skip, serialize)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(abort_stream, _skip, serialize)
    return grpc.unary_unary_rpc_method_handler(abort_unary, _skip, serialize)

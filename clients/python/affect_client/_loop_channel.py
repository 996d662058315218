"""The asyncio client's connection: one grpc.aio channel per event loop, closed with its loop.

grpc.aio binds a channel, and every call on it, to the event loop it was made in. A client kept
for the life of a program (a module-level client of a web app whose tests run a loop each, a
script that calls ``asyncio.run`` twice) meets several loops, one after another:

- the channel is made on first use, inside the loop that uses it (a client made at import time,
  no loop running, works under ``asyncio.run``);
- it is closed inside that loop before the loop closes, when the loop's runner shuts down its
  async generators (``asyncio.run``, ``asyncio.Runner``, pytest-asyncio, anyio and uvicorn do):
  a conversation left open is cancelled there, and the loop waits the few milliseconds gRPC takes
  to deliver the end of a call cut short. Delivered after its loop had closed, such an end made
  grpc.aio print "RuntimeError: Event loop is closed" from whichever loop ran next;
- the next loop gets a new channel. A loop closed without that shutdown (``loop.close()`` by
  hand) leaves its channel to the garbage collector.

Two loops running at once (one per thread) cannot share it: the second gets a clear error.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable

import grpc
from affect_proto import affect_pb2_grpc as pb_grpc

from affect_client._exceptions import AffectClientError

# How long after a call is cut short (cancelled) its loop is kept open at its end, for gRPC to
# deliver the call's end there: under a millisecond on an idle machine.
_CUT_SHORT_GRACE_S = 0.05


class LoopChannel:
    """A client's channel in the loop now using it; shared by the copies ``with_options`` makes."""

    def __init__(self, make_channel: Callable[[], grpc.aio.Channel]) -> None:
        self._make_channel = make_channel
        self._stub: pb_grpc.AffectServiceStub | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closer: AsyncGenerator[None, None] | None = None  # while the channel is open: closes it
        self._cut_short_at = float("-inf")  # time.monotonic() when a call of the channel was last cancelled

    def stub(self) -> pb_grpc.AffectServiceStub:
        """The stub of the running loop's channel, made if this loop has none yet."""
        loop = asyncio.get_running_loop()
        if self._closer is not None and self._loop is loop:
            assert self._stub is not None
            return self._stub
        if self._closer is not None and self._loop is not None and not self._loop.is_closed():
            raise AffectClientError("this client's connection belongs to another event loop, which is still open "
                                    "(another thread's?): make one client per event loop")
        channel = self._make_channel()
        self._stub, self._loop, self._cut_short_at = pb_grpc.AffectServiceStub(channel), loop, float("-inf")
        self._closer = _closed_with_its_loop(channel, self)
        _start(self._closer)
        return self._stub

    def watch(self, call: grpc.aio.Call) -> None:
        """Note when ``call`` (one of this channel's) is cut short, for the loop's end to wait for it."""
        call.add_done_callback(self._call_ended)

    async def close(self) -> None:
        """Close the channel in the loop it belongs to (another thread's, if it runs there), its
        calls cancelled; one of a loop closed already is dropped (the garbage collector closes it)."""
        closer, loop = self._closer, self._loop
        if closer is None or loop is None:
            return
        if loop is asyncio.get_running_loop():
            await closer.aclose()
        elif not loop.is_closed():
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(closer.aclose(), loop))
        self._closed(loop)

    def _call_ended(self, call: grpc.aio.Call) -> None:
        if call.cancelled():
            self._cut_short_at = time.monotonic()

    def _closed(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._loop is loop:
            self._stub, self._closer = None, None


async def _closed_with_its_loop(channel: grpc.aio.Channel, owner: LoopChannel) -> AsyncGenerator[None, None]:
    """Suspended for the loop's life; closed (``aclose``) by ``LoopChannel.close`` or when the
    loop's runner shuts down its async generators, in either case inside the loop."""
    try:
        yield
    finally:
        await channel.close()  # its calls still open are cancelled (and noted by watch)
        await asyncio.sleep(max(0.0, owner._cut_short_at + _CUT_SHORT_GRACE_S - time.monotonic()))
        owner._closed(asyncio.get_running_loop())


def _start(closer: AsyncGenerator[None, None]) -> None:
    """Run ``closer`` to its ``yield`` now. Its first step registers it with the running loop
    (through the loop's async-generator hooks), so that the loop's shutdown closes it."""
    try:
        closer.asend(None).send(None)
    except StopIteration:
        return
    raise AssertionError("the closer awaits nothing before it yields")

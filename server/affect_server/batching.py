"""Dynamic micro-batching: turns of many conversations share one forward pass per encoder.

Each encoder gets a ``MicroBatcher``. A turn's request waits at most ``max_wait`` for others
to join it (those already queued join at once), a batch holds at most ``max_size`` requests,
and the batch runs in a worker thread so the event loop keeps serving streams meanwhile. With
``demand`` (the number of turns in flight) the wait ends as soon as every turn in flight is in
the batch, so a lone conversation never waits for company that cannot come.

``concurrency`` batches of one encoder may run at once (each in its own worker thread). The
next batch is gathered only once a slot is free, so while every slot is busy, waiting turns pile
up into a bigger batch. The server runs one (``--batch-concurrency``): two batches of speech at
once were measured to serve no more turns, at more CPU per turn (smaller batches).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Generic, TypeVar

Req = TypeVar("Req")
Res = TypeVar("Res")

BatchFn = Callable[[Sequence[Req]], Sequence["Res | BaseException"]]


class MicroBatcher(Generic[Req, Res]):
    def __init__(
        self,
        name: str,
        run_batch: BatchFn,
        *,
        executor: Executor,
        max_size: int = 32,
        max_wait: float = 0.005,
        on_batch: Callable[[str, int], None] | None = None,
        demand: Callable[[], int] | None = None,
        concurrency: int = 1,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self.name = name
        self._run_batch = run_batch
        self._executor = executor
        self.max_size = max_size
        self.max_wait = max_wait
        self._on_batch = on_batch
        self._demand = demand
        self.concurrency = concurrency
        self._queue: asyncio.Queue[tuple[Req, asyncio.Future]] | None = None
        self._slots: asyncio.Semaphore | None = None
        self._task: asyncio.Task | None = None
        self._running: set[asyncio.Task] = set()
        self._unanswered: set[asyncio.Future] = set()  # every caller not yet answered, wherever its request is

    def start(self) -> None:
        self._queue = asyncio.Queue()
        self._slots = asyncio.Semaphore(self.concurrency)
        self._task = asyncio.get_running_loop().create_task(self._loop(), name=f"batcher-{self.name}")

    async def stop(self) -> None:
        """Stop gathering and running batches; every caller not yet answered is cancelled."""
        tasks = [t for t in (self._task, *self._running) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
        for future in list(self._unanswered):  # queued, being gathered, or in a batch cancelled before it ran
            future.cancel()

    async def submit(self, request: Req) -> Res:
        """The request's result, once its batch has run; raises the request's own error."""
        if self._queue is None:
            raise RuntimeError(f"batcher {self.name} is not started")
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._unanswered.add(future)
        future.add_done_callback(self._unanswered.discard)
        await self._queue.put((request, future))
        return await future

    async def _loop(self) -> None:
        assert self._queue is not None and self._slots is not None
        loop = asyncio.get_running_loop()
        while True:
            await self._slots.acquire()  # a free slot first: meanwhile the queue fills a bigger batch
            try:
                batch = [await self._queue.get()]
                deadline = loop.time() + self.max_wait
                while len(batch) < self.max_size:
                    try:  # requests already waiting join without delay, whatever max_wait is
                        batch.append(self._queue.get_nowait())
                        continue
                    except asyncio.QueueEmpty:
                        pass
                    if self._demand is not None and len(batch) >= self._demand():
                        break  # every turn in flight is already in this batch: nobody else can join
                    timeout = deadline - loop.time()
                    if timeout <= 0:
                        break
                    try:
                        batch.append(await asyncio.wait_for(self._queue.get(), timeout))
                    except asyncio.TimeoutError:
                        break
            except BaseException:
                self._slots.release()
                raise
            live = [(req, fut) for req, fut in batch if not fut.cancelled()]
            if not live:
                self._slots.release()
                continue
            if self._on_batch:
                self._on_batch(self.name, len(live))
            task = loop.create_task(self._run(live), name=f"batch-{self.name}")
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _run(self, live: list[tuple[Req, asyncio.Future]]) -> None:
        """One batch in a worker thread; each caller gets its own result or error."""
        assert self._slots is not None
        loop = asyncio.get_running_loop()
        try:
            results = await loop.run_in_executor(self._executor, self._batch_or_each, [req for req, _ in live])
        except asyncio.CancelledError:  # stopping: the callers are told, and the task ends
            for _, fut in live:
                fut.cancel()
            raise
        finally:
            self._slots.release()
        for (_, fut), result in zip(live, results):
            if fut.done():
                continue
            if isinstance(result, BaseException):
                fut.set_exception(result)
            else:
                fut.set_result(result)

    def _batch_or_each(self, requests: list[Req]) -> list["Res | BaseException"]:
        return batch_or_each(self._run_batch, requests, self.name)


def batch_or_each(run_batch: BatchFn, requests: Sequence[Req], name: str) -> list["Res | BaseException"]:
    """``run_batch``'s results, one per request. When the batch call itself fails, each request
    is run alone (in the calling worker thread), so the request that broke it fails alone and
    the others of its batch are answered. The one-process batcher and the Ray encoder
    deployments both call it."""
    try:
        return _one_each(run_batch(requests), len(requests), name)
    except Exception as exc:
        if len(requests) == 1:
            return [exc]
    answers: list[Res | BaseException] = []
    for request in requests:
        try:
            answers.extend(_one_each(run_batch([request]), 1, name))
        except Exception as exc:
            answers.append(exc)
    return answers


def _one_each(results: Sequence["Res | BaseException"], expected: int, name: str) -> list["Res | BaseException"]:
    results = list(results)
    if len(results) != expected:  # a caller without a result would wait for ever
        raise RuntimeError(f"batcher {name}: the batch call gave {len(results)} results for {expected} requests")
    return results

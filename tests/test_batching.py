"""The server's micro-batcher on its own: batches gathered, run in worker threads, answered in order."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from affect_server.batching import MicroBatcher


class CountingBatch:
    """A batch function that takes ``seconds`` and records how many of its calls ran at once."""

    def __init__(self, seconds: float, fail_on: int | None = None) -> None:
        self.seconds, self.fail_on = seconds, fail_on
        self.running = self.peak = 0
        self.sizes: list[int] = []
        self._lock = threading.Lock()

    def __call__(self, requests):
        with self._lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
            self.sizes.append(len(requests))
        try:
            time.sleep(self.seconds)
            if self.fail_on is not None and self.fail_on in requests:
                raise RuntimeError(f"request {self.fail_on} broke its batch")
            return [r * 10 for r in requests]
        finally:
            with self._lock:
                self.running -= 1


@contextlib.asynccontextmanager
async def running_batcher(batch: CountingBatch, *, max_size: int, max_wait: float, concurrency: int):
    """A started batcher over its own worker threads, stopped on the way out."""
    with ThreadPoolExecutor(max_workers=4) as executor:
        batcher = MicroBatcher("test", batch, executor=executor, max_size=max_size, max_wait=max_wait,
                               concurrency=concurrency)
        batcher.start()
        try:
            yield batcher
        finally:
            await batcher.stop()


async def _serve(batch: CountingBatch, requests: list[int], *, concurrency: int, max_size: int = 2):
    async with running_batcher(batch, max_size=max_size, max_wait=0.01, concurrency=concurrency) as batcher:
        return await asyncio.gather(*(batcher.submit(r) for r in requests), return_exceptions=True)


@pytest.mark.parametrize("concurrency", [1, 2, 3])
def test_batches_of_one_encoder_run_side_by_side_up_to_the_concurrency(concurrency: int):
    batch = CountingBatch(0.2)
    results = asyncio.run(_serve(batch, list(range(12)), concurrency=concurrency))
    assert results == [r * 10 for r in range(12)]  # each caller its own answer
    assert batch.peak == concurrency
    assert max(batch.sizes) <= 2 and sum(batch.sizes) == 12


def test_while_every_slot_is_busy_waiting_turns_join_one_batch():
    """One slot: the first request runs alone, the ones that arrived meanwhile share the next batch."""
    batch = CountingBatch(0.3)

    async def main():
        async with running_batcher(batch, max_size=32, max_wait=0.0, concurrency=1) as batcher:
            first = asyncio.ensure_future(batcher.submit(0))
            await asyncio.sleep(0.1)  # the first batch is running
            rest = await asyncio.gather(*(batcher.submit(r) for r in range(1, 6)))
            return [await first, *rest]

    assert asyncio.run(main()) == [0, 10, 20, 30, 40, 50]
    assert batch.sizes == [1, 5]


def test_a_request_that_breaks_its_batch_fails_alone():
    """When a batch call raises, its requests are run one by one: the one that broke it gets the
    error, the others of its batch their answers (before, every caller in the batch failed)."""
    batch = CountingBatch(0.05, fail_on=3)
    results = asyncio.run(_serve(batch, list(range(6)), concurrency=2))
    failed = [i for i, r in enumerate(results) if isinstance(r, RuntimeError)]
    assert failed == [3] and "request 3 broke its batch" in str(results[3])
    assert all(results[i] == i * 10 for i in range(6) if i != 3)
    assert sorted(batch.sizes).count(1) >= 2  # the broken batch of two, run again one request at a time


def test_a_batch_call_that_answers_too_few_fails_its_callers_instead_of_leaving_them_waiting():
    async def main():
        with ThreadPoolExecutor(max_workers=1) as executor:
            batcher = MicroBatcher("short", lambda requests: list(requests)[:-1], executor=executor, max_size=4,
                                   max_wait=0.05)
            batcher.start()
            try:
                return await asyncio.wait_for(asyncio.gather(*(batcher.submit(r) for r in range(3)),
                                                             return_exceptions=True), 10)
            finally:
                await batcher.stop()

    results = asyncio.run(main())
    assert all(isinstance(r, RuntimeError) and "results for" in str(r) for r in results), results


def test_stopping_cancels_the_turns_still_waiting():
    batch = CountingBatch(0.5)

    async def main():
        async with running_batcher(batch, max_size=1, max_wait=0.0, concurrency=1) as batcher:
            pending = [asyncio.ensure_future(batcher.submit(r)) for r in range(3)]
            await asyncio.sleep(0.1)
            await batcher.stop()  # the second stop, on the way out, finds nothing left to do
            return await asyncio.gather(*pending, return_exceptions=True)

    results = asyncio.run(main())
    # the running batch's caller and the two still queued are all told, none is left waiting
    assert all(isinstance(r, asyncio.CancelledError) for r in results)


def test_concurrency_below_one_is_refused():
    with ThreadPoolExecutor(max_workers=1) as executor, pytest.raises(ValueError, match="concurrency"):
        MicroBatcher("test", CountingBatch(0.0), executor=executor, concurrency=0)

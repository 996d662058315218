"""Analyze calls past their client's ``--max-analyze-per-peer`` wait, unread, for one of its slots
(``limits.AnalyzeSlots``): a real server on loopback and the real client, which retries no refusal
here (``busy_retries=0``), so that every call answered was answered on its first attempt."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from affect import Analyzer
from affect_client import AffectClient, APIStatusError, TurnRefusedError, UnavailableError
from affect_proto import affect_pb2 as pb
from affect_server.config import ServerConfig
from affect_server.limits import AnalyzeSlots
from tests._serving import ServerThread

LOOPBACK = "ipv4:127.0.0.1"  # the client address the server counts these calls under


def test_ten_concurrent_calls_of_one_client_are_all_answered(analyzer: Analyzer) -> None:
    """A chatbot backend's 10 concurrent ``analyze()`` calls, 2 slots per client: 8 were refused."""
    with ServerThread(analyzer, max_analyze_per_peer=2) as server, \
            AffectClient(server.target, busy_retries=0, max_retries=0) as client, ThreadPoolExecutor(10) as pool:
        results = list(pool.map(lambda i: client.analyze(f"Where is my order number {i}?"), range(10)))
    assert len(results) == 10 and all(r.emotion is not None for r in results)


class HeldCall:
    """A raw Analyze call whose body the client holds back until ``send`` (then a text turn)."""

    def __init__(self, channel: grpc.Channel, text: str) -> None:
        self._go = threading.Event()
        call = channel.stream_unary("/affect.v1.AffectService/Analyze",
                                    request_serializer=pb.AnalyzeRequest.SerializeToString,
                                    response_deserializer=pb.AnalyzeResponse.FromString)
        self.future = call.future(self._body(text), timeout=60)

    def _body(self, text: str) -> Iterator[pb.AnalyzeRequest]:
        self._go.wait(60)
        yield pb.AnalyzeRequest(turn=pb.Turn(text=text.encode()))

    def send(self) -> None:
        self._go.set()


def _until(server: ServerThread, read: Callable[[AnalyzeSlots], int], expected: int) -> None:
    """Wait (at most 10 s) until ``read`` of the server's Analyze slots gives ``expected``."""
    async def value() -> int:
        assert server.running is not None
        return read(server.running.servicer.analyze_slots)

    deadline = time.monotonic() + 10
    while server.call(value()) != expected:
        assert time.monotonic() < deadline, f"the server's Analyze slots never reached {expected}"
        time.sleep(0.05)


def test_past_its_queue_a_call_is_refused_busy_and_the_waiting_call_is_served_after(analyzer: Analyzer) -> None:
    with ServerThread(analyzer, max_analyze_per_peer=1, max_analyze_queued_per_peer=1) as server, \
            grpc.insecure_channel(server.target) as channel, \
            AffectClient(server.target, busy_retries=0, max_retries=0) as client:
        holder = HeldCall(channel, "first in")
        _until(server, lambda slots: slots.in_flight, 1)
        waiting = HeldCall(channel, "second in")
        _until(server, lambda slots: slots.waiting(LOOPBACK), 1)
        with pytest.raises(TurnRefusedError) as refused:
            client.analyze("one too many")
        holder.send()
        waiting.send()
        answers = holder.future.result(30), waiting.future.result(30)
    assert refused.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED and refused.value.field == "turn"
    assert "this client has 1 Analyze calls in flight and 1 waiting (limit)" in str(refused.value)
    assert refused.value.retry_after is not None and refused.value.retry_after > 0
    assert all(answer.result.HasField("fused") for answer in answers)


def test_a_call_whose_deadline_passes_while_it_waits_ends_deadline_exceeded(analyzer: Analyzer) -> None:
    """And leaves the queue: the slot it waited for goes to the next call."""
    with ServerThread(analyzer, max_analyze_per_peer=1) as server, grpc.insecure_channel(server.target) as channel, \
            AffectClient(server.target, busy_retries=0, max_retries=0, timeout=1.0) as client:
        holder = HeldCall(channel, "slow to send")
        _until(server, lambda slots: slots.in_flight, 1)
        started = time.monotonic()
        with pytest.raises(APIStatusError) as late:
            client.analyze("in a hurry")
        waited = time.monotonic() - started
        _until(server, lambda slots: slots.waiting(LOOPBACK), 0)
        holder.send()
        assert holder.future.result(30).result.HasField("fused")
        after = client.with_options(timeout=30).analyze("next one")
    assert late.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert 0.9 < waited < 5, waited
    assert after.emotion is not None


def test_a_drain_ends_waiting_calls_at_once_unavailable(analyzer: Analyzer) -> None:
    server = ServerThread(analyzer, max_analyze_per_peer=1).__enter__()
    channel = grpc.insecure_channel(server.target)
    client = AffectClient(server.target, busy_retries=0, max_retries=0, timeout=60)
    try:
        holder = HeldCall(channel, "never sent")
        _until(server, lambda slots: slots.in_flight, 1)
        with ThreadPoolExecutor(1) as pool:
            queued = pool.submit(client.analyze, "waiting my turn")
            _until(server, lambda slots: slots.waiting(LOOPBACK), 1)
            assert server.running is not None
            started = time.monotonic()
            server.call(server.running.drain_and_stop(30.0), timeout=60)
            took = time.monotonic() - started
            with pytest.raises(UnavailableError) as ended:
                queued.result(10)
        assert took < 10, took  # not the 30 s grace
        assert "server is shutting down" in str(ended.value)
        assert holder.future.exception(10).code() == grpc.StatusCode.UNAVAILABLE
    finally:
        client.close()
        channel.close()
        server.loop.call_soon_threadsafe(server.loop.stop)
        server._thread.join(10)


def test_waiting_calls_take_their_clients_slots_in_order_within_every_limit() -> None:
    async def run() -> None:
        slots = AnalyzeSlots(max_total=3, per_peer=1, per_second=100, max_queued=2)
        assert slots.acquire("a") is None
        first, second = slots.acquire("a"), slots.acquire("a")
        assert isinstance(first, asyncio.Future) and isinstance(second, asyncio.Future)
        assert slots.acquire("a") == ("in_flight", None)  # its queue is full
        assert slots.acquire("a", may_wait=False) == ("in_flight", None)
        assert slots.acquire("b") is None and slots.acquire("c") is None
        assert slots.acquire("d") == ("server", None)  # 3 in flight in all
        slots.release("a")  # passes to the first waiting, first come first served
        assert first.done() and not second.done() and slots.in_flight == 3
        assert slots.acquire("d") == ("server", None)  # the slot passed on: never more than 3
        slots.leave("a", second)  # its deadline
        slots.release("a")  # nobody waits now
        assert slots.in_flight == 2 and slots.waiting("a") == 0
        # a slot handed to a call that stops waiting at that moment passes on, not lost
        slots.release("b")
        slots.release("c")
        assert slots.acquire("a") is None
        late, next_one = slots.acquire("a"), slots.acquire("a")
        assert isinstance(late, asyncio.Future) and isinstance(next_one, asyncio.Future)
        slots.release("a")
        slots.leave("a", late)
        assert next_one.done() and slots.in_flight == 1

        rated = AnalyzeSlots(max_total=8, per_peer=1, per_second=1, max_queued=4)
        assert rated.acquire("a") is None
        refused = rated.acquire("a")  # over the rate: refused at once, not queued
        assert isinstance(refused, tuple) and refused[0] == "rate" and rated.waiting("a") == 0

    asyncio.run(run())


def test_the_help_states_what_waiting_calls_may_hold() -> None:
    config = ServerConfig()
    help_text = next(f.metadata["help"] for f in config.settings() if f.name == "max_analyze_queued_per_peer")
    assert f"{config.waiting_requests_bytes / 2**20:.0f} MiB in all with the defaults" in help_text
    per_address = config.waiting_requests_bytes // (config.max_analyze_in_flight // config.max_analyze_per_peer)
    assert f"{per_address / 2**20:.0f} MiB a client address" in help_text

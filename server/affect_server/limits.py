"""Admission limits: how many conversations may be open, how fast each may send turns, how
much work may be in flight, how much of it one client may hold while others wait, and the
Analyze calls each client may have in flight or waiting.

Plain counters, no gRPC: the servicer asks them and answers with the status.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

MIN_RETRY_HINT_MS, MAX_RETRY_HINT_MS = 50, 10_000
"""The bounds of a busy refusal's retry hint (``retry_hint.clamp_ms``), kept here, without gRPC,
for the contention window below."""

CONTENTION_WINDOW_S = 3 * MAX_RETRY_HINT_MS / 1000
"""How long a client refused as busy counts as waiting for room (``InFlightBudget``): 30 s, three
times the longest retry hint the server gives. A refused client told to come back after the hint
(which the Python client stretches by up to a quarter, so that refused clients do not all come
back at once) finds the other clients still held to their shares when it does, even after a
retry that came too soon and was refused again; each refusal starts the window anew."""


class TokenBucket:
    """``rate`` turns per second on average, bursts of up to ``burst`` turns."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.capacity, self._clock = rate, burst, clock
        self._tokens, self._last = burst, clock()

    def take(self) -> bool:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def wait_time(self) -> float:
        """Seconds until the next token (0 if one is there)."""
        return max(0.0, (1.0 - self._tokens) / self.rate)


class ConversationSlots:
    """At most ``limit`` conversations open at once, and at most ``per_peer`` of them from one
    client address, so that one client cannot hold every slot (nor buffer a partly sent turn
    in each of them); and one spare slot per client past ``per_peer`` (``acquire_spare``)."""

    def __init__(self, limit: int, per_peer: int | None = None) -> None:
        self.limit = limit
        self.per_peer = per_peer if per_peer is not None else limit
        self.open = 0
        self._by_peer: dict[str, int] = {}
        self._spares: set[str] = set()  # clients whose spare slot is taken

    def acquire(self, peer: str = "") -> str | None:
        """None when a slot was taken for ``peer``, else why not ("server" or "peer")."""
        if self.open >= self.limit:
            return "server"
        if self._by_peer.get(peer, 0) >= self.per_peer:
            return "peer"
        self.take(peer)
        return None

    def acquire_spare(self, peer: str = "") -> bool:
        """A slot past ``per_peer`` for a stream of ``peer`` that may resume a conversation this
        client holds (whose stream would give its own slot back): one at a time per client,
        within ``limit``, so that what such streams buffer stays bounded. ``spare_done`` once
        its opening is read, whatever it was; ``release`` as any slot."""
        if self.open >= self.limit or peer in self._spares:
            return False
        self._spares.add(peer)
        self.take(peer)
        return True

    def spare_done(self, peer: str = "") -> None:
        self._spares.discard(peer)

    def take(self, peer: str = "") -> None:
        """A slot taken whatever the limits: for a stream that outlives its conversation."""
        self.open += 1
        self._by_peer[peer] = self._by_peer.get(peer, 0) + 1

    def release(self, peer: str = "") -> None:
        self.open = max(0, self.open - 1)
        left = self._by_peer.get(peer, 0) - 1
        if left > 0:
            self._by_peer[peer] = left
        else:
            self._by_peer.pop(peer, None)  # no entry kept for a client with nothing open


@dataclass
class Ticket:
    """An admitted turn's share of the in-flight budget; give it back with ``release``."""

    budget: "InFlightBudget"
    nbytes: int
    heavy: bool
    peer: str = ""
    released: bool = False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.budget._give_back(self)


class InFlightBudget:
    """Turns admitted and not yet answered (Converse and Analyze alike): at most ``max_turns``,
    at most ``max_bytes`` of their estimated peak memory, at most ``max_heavy`` heavy ones.

    Of the turns and the bytes, one client address (``peer``) holds at most ``peer_share`` while
    another client contends for them, so that one client's conversations cannot fill the budget
    every other client is served from; while none does, it may use the whole budget (a chatbot
    backend that carries every conversation from one address is not refused at half the server).
    Another client contends while it has turns in flight, or for ``CONTENTION_WINDOW_S`` after it
    was refused for lack of room (the budget's turns or memory, or its own share): then a client
    past its share is refused, its turns in flight finish within a turn's time, and the refused
    client's retry finds room. Kept per admission in constant time and memory: the turns each
    address has in flight (no entry for one with none), and the two most recently refused
    addresses, forgotten once the window has passed."""

    def __init__(self, max_turns: int, max_bytes: int, max_heavy: int, peer_share: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_turns, self.max_bytes, self.max_heavy = max_turns, max_bytes, max_heavy
        self.peer_turns = max(1, int(max_turns * peer_share))
        self.peer_bytes = int(max_bytes * peer_share)
        self.turns = self.nbytes = self.heavy = 0
        self._by_peer: dict[str, list[int]] = {}  # peer -> [turns, bytes]; no entry for a peer with none
        self._clock = clock
        # The last refusal, and the last of another address before it: (peer, when), newest first.
        # Two, so that a client refused itself (the budget full) never hides another's refusal.
        self._refused: list[tuple[str, float]] = []

    def admit(self, nbytes: int, heavy: bool, peer: str = "") -> Ticket | str:
        """A ticket, or why not: "turns", "memory" or "heavy" (which limit is full), or
        "peer_turns", "peer_memory" (which of ``peer``'s shares is, while another client contends)."""
        now = self._clock()
        self._forget_refusals(now)
        why = self._refusal(nbytes, heavy, peer)
        if why is not None:
            if why != "heavy":  # the heavy lane's slots are not what the shares divide
                self._note_refusal(peer, now)
            return why
        held_turns, held_bytes = self._by_peer.get(peer, (0, 0))
        self.turns += 1
        self.nbytes += nbytes
        self.heavy += heavy
        self._by_peer[peer] = [held_turns + 1, held_bytes + nbytes]
        return Ticket(self, nbytes, heavy, peer)

    def _refusal(self, nbytes: int, heavy: bool, peer: str) -> str | None:
        held_turns, held_bytes = self._by_peer.get(peer, (0, 0))
        if self.turns >= self.max_turns:
            return "turns"
        if held_turns >= self.peer_turns and self._contended(peer):
            return "peer_turns"
        if heavy and self.heavy >= self.max_heavy:
            return "heavy"
        # a lone turn over the whole budget (or a client's share of it) is still let in: per-turn limits bound it
        if self.nbytes + nbytes > self.max_bytes and self.turns > 0:
            return "memory"
        if held_bytes + nbytes > self.peer_bytes and held_turns > 0 and self._contended(peer):
            return "peer_memory"
        return None

    def _contended(self, peer: str) -> bool:
        """Whether a client other than ``peer`` has turns in flight or was refused within the window."""
        others_in_flight = len(self._by_peer) - (peer in self._by_peer)
        return others_in_flight > 0 or any(refused != peer for refused, _ in self._refused)

    def _note_refusal(self, peer: str, now: float) -> None:
        other = next(((p, t) for p, t in self._refused if p != peer), None)
        self._refused = [(peer, now)] if other is None else [(peer, now), other]

    def _forget_refusals(self, now: float) -> None:
        self._refused = [(p, t) for p, t in self._refused if now - t < CONTENTION_WINDOW_S]

    def held_by(self, peer: str) -> int:
        """The turns ``peer`` has in flight."""
        return self._by_peer.get(peer, (0, 0))[0]

    def _give_back(self, ticket: Ticket) -> None:
        self.turns -= 1
        self.nbytes -= ticket.nbytes
        self.heavy -= ticket.heavy
        held = self._by_peer[ticket.peer]
        held[0] -= 1
        held[1] -= ticket.nbytes
        if held[0] == 0:
            del self._by_peer[ticket.peer]


class AnalyzeSlots:
    """Analyze calls in flight: at most ``max_total`` in all and ``per_peer`` from one client
    address, and at most ``per_second`` calls a second from one address (a token bucket, burst of
    1 s). A call past its address's ``per_peer`` waits for one of that address's slots, first come
    first served, up to ``max_queued`` waiting per address (past them it is refused): a slot given
    back while calls wait passes to the first of them, so the calls in flight (in all and per
    address) never go past their limits, and an address has calls waiting only while its
    ``per_peer`` slots are taken. So at most ``max_total // per_peer`` addresses have calls waiting
    (``ServerConfig.waiting_requests_bytes`` counts what their requests hold). The rate is a call's on arrival, whether it waits or not. Remembers at
    most ``max_peers`` addresses (the least recently seen idle ones are forgotten).

    A waiting call is a future (``acquire``), so this needs the event loop its callers run on."""

    def __init__(self, max_total: int, per_peer: int, per_second: float, max_queued: int = 0,
                 max_peers: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_total, self.per_peer, self.per_second, self.max_queued = max_total, per_peer, per_second, max_queued
        self.max_peers, self._clock = max_peers, clock
        self.in_flight = 0
        self._peers: OrderedDict[str, _PeerCalls] = OrderedDict()

    def acquire(self, peer: str, *, may_wait: bool = True) -> None | asyncio.Future[None] | tuple[str, float | None]:
        """None when admitted (``release`` later). A future when the call waits for a slot of
        ``peer``'s (``may_wait``): it is admitted once the future is done (``release`` then too);
        one that stops waiting calls ``leave``. Else why not: "server" (``max_total``),
        "in_flight" (``peer``'s slots, and its queue when it may wait) or "rate", and for the rate
        the seconds until the next call is allowed."""
        if self.in_flight >= self.max_total:
            return "server", None
        entry = self._peers.get(peer)
        if entry is None:
            entry = self._peers[peer] = _PeerCalls(TokenBucket(self.per_second, max(1.0, self.per_second), self._clock))
            self._forget_idle()
        self._peers.move_to_end(peer)
        waits = entry.in_flight >= self.per_peer
        if waits and (not may_wait or len(entry.waiting) >= self.max_queued):
            return "in_flight", None
        if not entry.bucket.take():
            return "rate", entry.bucket.wait_time()
        if waits:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            entry.waiting.append(waiter)
            return waiter
        entry.in_flight += 1
        self.in_flight += 1
        return None

    def waiting(self, peer: str) -> int:
        """The calls of ``peer`` waiting for a slot."""
        entry = self._peers.get(peer)
        return len(entry.waiting) if entry is not None else 0

    def leave(self, peer: str, waiter: asyncio.Future[None]) -> None:
        """A waiting call that stops waiting (its deadline, a drain, its client gone): out of the
        queue; a slot handed to it meanwhile passes on (``release``)."""
        if waiter.done() and not waiter.cancelled():
            self.release(peer)
            return
        waiter.cancel()
        entry = self._peers.get(peer)
        if entry is not None and waiter in entry.waiting:
            entry.waiting.remove(waiter)

    def release(self, peer: str) -> None:
        """A slot given back: to the first call of ``peer`` still waiting, else freed."""
        entry = self._peers.get(peer)
        if entry is None:
            return
        while entry.waiting:
            waiter = entry.waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        entry.in_flight = max(0, entry.in_flight - 1)
        self.in_flight = max(0, self.in_flight - 1)

    def _forget_idle(self) -> None:
        for peer in list(self._peers):
            if len(self._peers) <= self.max_peers:
                return
            if self._peers[peer].in_flight == 0:
                del self._peers[peer]


@dataclass
class _PeerCalls:
    """One address's Analyze calls: its rate, its calls in flight and those waiting, in order."""

    bucket: TokenBucket
    in_flight: int = 0
    waiting: deque[asyncio.Future[None]] = field(default_factory=deque)

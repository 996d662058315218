"""A loopback TCP proxy for the network failures that neither end sees happen:

- ``cut_client_side``: the client's side reset while the server's side stays open (the half-open
  connection a NAT timeout or a Wi-Fi change leaves the server with);
- ``blackhole``: every open connection silently stops carrying bytes, both ways, and stays open
  (a NAT or load balancer that drops a connection without a reset: nothing arrives, nothing is
  refused), while new connections pass.

It reads the HTTP/2 frames it carries (plaintext, as the tests' servers speak), so that a test
can count the pings each side sent and see a GOAWAY and its reason.
"""

from __future__ import annotations

import select
import socket
import struct
import threading
from dataclasses import dataclass, field

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"  # what a client sends before its first frame
PING, GOAWAY = 0x6, 0x7  # HTTP/2 frame types
ACK = 0x1  # a PING's flag: the answer to the peer's ping


class _FrameReader:
    """The HTTP/2 frames of one direction of one connection, read from the bytes as they pass."""

    def __init__(self, from_client: bool) -> None:
        self._buffer = bytearray()
        self._preface_left = len(PREFACE) if from_client else 0

    def feed(self, data: bytes) -> list[tuple[int, int, bytes]]:
        """The frames completed by ``data``: (type, flags, payload)."""
        self._buffer += data
        if self._preface_left:
            skipped = min(self._preface_left, len(self._buffer))
            del self._buffer[:skipped]
            self._preface_left -= skipped
        frames = []
        while len(self._buffer) >= 9:
            length = int.from_bytes(self._buffer[:3], "big")
            if len(self._buffer) < 9 + length:
                break
            frames.append((self._buffer[3], self._buffer[4], bytes(self._buffer[9:9 + length])))
            del self._buffer[:9 + length]
        return frames


@dataclass
class _Connection:
    client: socket.socket
    upstream: socket.socket
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopped: bool = False  # cut or blackholed: nothing more is carried, and neither socket is closed by the pump


class HalfOpenProxy:
    def __init__(self, upstream_port: int) -> None:
        self._upstream = upstream_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._connections: list[_Connection] = []
        self._orphans: list[socket.socket] = []  # sockets of cut or blackholed connections, never read again
        self._seen = threading.Lock()  # the counts below, written by every connection's pump
        self.pings = {"client": 0, "server": 0}  # pings sent (not their acks), by the side that sent them
        self.goaways: list[tuple[int, bytes]] = []  # the server's GOAWAY frames: (error code, debug data)
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def connections(self) -> int:
        """Connections accepted and still carried."""
        with self._lock:
            return len(self._connections)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            connection = _Connection(client, socket.create_connection(("127.0.0.1", self._upstream)))
            with self._lock:
                self._connections.append(connection)
            threading.Thread(target=self._pump, args=(connection,), daemon=True).start()

    def _pump(self, connection: _Connection) -> None:
        client, upstream = connection.client, connection.upstream
        readers = {client: _FrameReader(from_client=True), upstream: _FrameReader(from_client=False)}
        try:
            while not connection.stopped:
                ready, _, _ = select.select([client, upstream], [], [], 0.2)
                for source in ready:
                    data = source.recv(65536)
                    with connection.lock:  # a cut or a blackhole waits for this, and nothing passes after it
                        if connection.stopped:
                            return
                        if not data:
                            break
                        self._note(readers[source].feed(data), "client" if source is client else "server")
                        (upstream if source is client else client).sendall(data)
                else:
                    continue
                break  # one side closed: so is the other
        except (OSError, ValueError):
            pass
        with connection.lock:
            if connection.stopped:
                return
            connection.stopped = True
        with self._lock:
            if connection in self._connections:
                self._connections.remove(connection)
        for sock in (client, upstream):
            sock.close()

    def _note(self, frames: list[tuple[int, int, bytes]], side: str) -> None:
        with self._seen:
            for kind, flags, payload in frames:
                if kind == PING and not flags & ACK:
                    self.pings[side] += 1
                elif kind == GOAWAY and side == "server":
                    self.goaways.append((int.from_bytes(payload[4:8], "big"), payload[8:]))

    def _stop_all(self) -> list[_Connection]:
        """Every carried connection stopped (its pump ends without closing either socket)."""
        with self._lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            with connection.lock:
                connection.stopped = True
        return connections

    def cut_client_side(self) -> None:
        """Reset every connection towards the client; the server's sockets stay open, unread."""
        for connection in self._stop_all():
            self._orphans.append(connection.upstream)
            connection.client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            connection.client.close()

    def blackhole(self) -> None:
        """Every open connection stops carrying bytes either way, without a reset or a close: both
        ends' sockets stay open and unread, as when a NAT drops a connection silently. Connections
        made after it are carried as before."""
        for connection in self._stop_all():
            self._orphans += [connection.client, connection.upstream]

    def close(self) -> None:
        self._listener.close()
        for sock in self._orphans + [s for c in self._stop_all() for s in (c.client, c.upstream)]:
            sock.close()

"""A loopback TCP proxy whose client side can be cut while the server's side stays open: the
half-open connection a network blip (a NAT timeout, a Wi-Fi change) leaves the server with."""

from __future__ import annotations

import select
import socket
import struct
import threading


class HalfOpenProxy:
    def __init__(self, upstream_port: int) -> None:
        self._upstream = upstream_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._orphans: list[socket.socket] = []  # the server's side of cut connections, never read again
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self._upstream))
            with self._lock:
                self._pairs.append((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        try:
            while client.fileno() >= 0 and upstream.fileno() >= 0:
                ready, _, _ = select.select([client, upstream], [], [], 0.2)
                for source in ready:
                    data = source.recv(65536)
                    if not data:
                        return
                    (upstream if source is client else client).sendall(data)
        except (OSError, ValueError):
            return

    def cut_client_side(self) -> None:
        """Reset every connection towards the client; the server's sockets stay open, unread."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for client, upstream in pairs:
            self._orphans.append(upstream)
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()

    def close(self) -> None:
        self._listener.close()
        for sock in self._orphans + [s for pair in self._pairs for s in pair]:
            sock.close()

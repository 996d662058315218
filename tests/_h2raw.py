"""A bare HTTP/2 client, for what no gRPC client does: a stream whose flow-control window stays
shut, as a client that never reads its answers keeps it (its answers cannot be written at all)."""

from __future__ import annotations

import socket
import struct
import threading

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, SETTINGS, PING, WINDOW_UPDATE = 0, 1, 4, 6, 8
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
INITIAL_WINDOW_SIZE = 4


def _frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def _literal(name: str, value: str) -> bytes:
    """An HPACK header field, literal and not indexed, without Huffman coding (short names and values)."""
    assert len(name) < 127 and len(value) < 127
    return b"\x00" + bytes([len(name)]) + name.encode() + bytes([len(value)]) + value.encode()


class RawConnection:
    """One HTTP/2 connection to a gRPC server; each stream's window starts at ``stream_window``."""

    def __init__(self, host: str, port: int, *, stream_window: int) -> None:
        self._sock = socket.create_connection((host, port))
        self._next_stream = 1
        self._received: dict[int, bytearray] = {}  # the stream's HEADERS and DATA payloads, raw
        self._ended: set[int] = set()
        self._changed = threading.Condition()
        self._sock.sendall(PREFACE + _frame(SETTINGS, 0, 0, struct.pack(">HI", INITIAL_WINDOW_SIZE, stream_window)))
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def open_stream(self, path: str, message: bytes) -> int:
        """A call to ``path`` that sends ``message`` and keeps its side open."""
        stream, self._next_stream = self._next_stream, self._next_stream + 2
        block = b"".join(_literal(k, v) for k, v in [(":method", "POST"), (":scheme", "http"), (":path", path),
                                                     (":authority", "localhost"), ("content-type", "application/grpc"),
                                                     ("te", "trailers")])
        self._sock.sendall(_frame(HEADERS, END_HEADERS, stream, block)
                           + _frame(DATA, 0, stream, b"\0" + struct.pack(">I", len(message)) + message))
        return stream

    def open_window(self, stream: int, increment: int) -> None:
        self._sock.sendall(_frame(WINDOW_UPDATE, 0, stream, struct.pack(">I", increment)))

    def ended(self, stream: int, timeout: float) -> bytes | None:
        """What the stream received, once its trailers came (None if they did not within ``timeout``)."""
        with self._changed:
            self._changed.wait_for(lambda: stream in self._ended, timeout)
            return bytes(self._received.get(stream, b"")) if stream in self._ended else None

    def close(self) -> None:
        self._sock.close()

    def _read(self) -> None:
        try:
            while header := self._exactly(9):
                length, kind, flags = int.from_bytes(header[:3], "big"), header[3], header[4]
                stream = int.from_bytes(header[5:9], "big") & 0x7FFFFFFF
                payload = self._exactly(length)
                if kind == SETTINGS and not flags & ACK:
                    self._sock.sendall(_frame(SETTINGS, ACK, 0))
                elif kind == PING and not flags & ACK:
                    self._sock.sendall(_frame(PING, ACK, 0, payload))
                elif kind in (HEADERS, DATA):
                    with self._changed:
                        self._received.setdefault(stream, bytearray()).extend(payload)
                        if flags & END_STREAM:
                            self._ended.add(stream)
                        self._changed.notify_all()
        except OSError:
            return

    def _exactly(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self._sock.recv(n - len(data))
            if not chunk:
                raise OSError("connection closed")
            data += chunk
        return data

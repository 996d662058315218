"""Protobuf's wire format written by hand, for requests no message object would make (counts
past the contract's limits, keys of the wrong type, groups)."""

from __future__ import annotations


def varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    return bytes(out) + bytes([n])


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited field on the wire."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload

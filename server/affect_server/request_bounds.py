"""How many fields a request may carry, checked on its wire bytes before protobuf parses it.

Parsing makes an object of every field it meets, and a count is checked only after: 15 MiB of
empty ``Image`` messages (two bytes each) became 7.8 million objects, about 450 MB, before the
server refused the turn for its images. Here the bytes are walked first (each key read, each
value skipped, only the fields that are messages descended into) and a request is refused as
soon as it holds more than any valid request can: after reading at most that many fields,
whatever its size. The bounds are in one place, ``REPEATED``: a repeated field's limit is the
contract's; every other field counts once, and each message may carry ``SPARE_FIELDS`` more
(fields of a newer contract, a field sent twice).

Bytes that are not protobuf's wire format are left to the parser, which refuses them. A turn's
``turn_id`` read before the excess is kept (a slice of the bytes already walked), so that the
refusal can name the turn it refuses as every other refusal of a turn does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from affect_proto import affect_pb2 as pb
from affect_proto import rules

SPARE_FIELDS = 16


@dataclass(frozen=True)
class Repeated:
    """A repeated request field: its name as refusals give it, its limit, and the refusal (worded
    as the check made after parsing words it, where that check's words need no count)."""

    field: str
    limit: int
    refusal: Callable[[str, int], str]


# Every repeated field of a request message, by full name (a test checks that none is missing).
REPEATED = {
    pb.Turn.DESCRIPTOR.fields_by_name["images"].full_name: Repeated(
        "turn.images", rules.MAX_IMAGES_PER_TURN, lambda field, limit: f"{field}: {rules.too_many_images(limit + 1, limit)}"),
    pb.ConversationOptions.DESCRIPTOR.fields_by_name["event_speakers"].full_name: Repeated(
        "options.event_speakers", rules.MAX_EVENT_SPEAKERS,
        lambda field, limit: f"{field} names more than {limit} speakers; the limit is {limit}"),
}


# Turn.turn_id, which a refusal echoes: read by the walk where it meets it (a string, length-delimited).
_TURN_ID = pb.Turn.DESCRIPTOR.fields_by_name["turn_id"]


@dataclass(frozen=True)
class Excess:
    """Why a request is refused unread: the field named as a refusal names it (``turn.images``;
    empty for the request as a whole, which the call names: ``open`` or ``turn``), the message,
    and the turn's ``turn_id`` if the walk read it before the excess (empty if not, or if it is
    not UTF-8, which the parser would refuse)."""

    field: str
    message: str
    turn_id: str = ""


def excess(data: bytes, message: Descriptor) -> Excess | None:
    """Why the wire bytes ``data`` of a ``message`` hold more fields than any valid one can, or
    None (also for bytes that are not the wire format: the parser says why)."""
    walk = _Walk(data, fields_at_most(message), message.name)
    try:
        found = walk.message(0, len(data), message, "")
    except _Malformed:
        return None
    return None if found is None else replace(found, turn_id=walk.turn_id())


@cache
def fields_at_most(message: Descriptor) -> int:
    """The most fields a valid ``message`` holds, nested ones counted, with the spare ones."""
    total = SPARE_FIELDS
    for f in message.fields:
        inner = fields_at_most(f.message_type) if f.type == FieldDescriptor.TYPE_MESSAGE else 0
        total += (_repeated(f).limit if _is_repeated(f) else 1) * (1 + inner)
    return total


def _is_repeated(f: FieldDescriptor) -> bool:
    return bool(f.is_repeated)


def _repeated(f: FieldDescriptor) -> Repeated:
    try:
        return REPEATED[f.full_name]
    except KeyError:
        raise LookupError(f"request_bounds.REPEATED has no limit for the repeated field {f.full_name}") from None


class _Malformed(Exception):
    """The bytes are not protobuf's wire format."""


class _Walk:
    """One request's walk: the fields read so far, against the request's bound."""

    def __init__(self, data: bytes, at_most: int, root: str) -> None:
        self.data = memoryview(data)
        self.at_most = at_most
        self.root = root
        self.fields = 0
        self.turn_id_at: tuple[int, int] | None = None  # the last turn_id met (the parser keeps the last)

    def turn_id(self) -> str:
        if self.turn_id_at is None:
            return ""
        try:
            return str(self.data[slice(*self.turn_id_at)], "utf-8")
        except UnicodeDecodeError:
            return ""

    def message(self, start: int, end: int, message: Descriptor, path: str) -> Excess | None:
        counts: dict[int, int] = {}
        groups = 0  # the groups the walk is inside: their keys are not this message's fields
        pos = start
        while pos < end:
            key, pos = self._varint(pos, end)
            number, wire_type = key >> 3, key & 7
            self.fields += 1
            groups += (wire_type == 3) - (wire_type == 4)
            if groups < 0:
                raise _Malformed
            if self.fields > self.at_most:
                held = (f"the request holds more than {self.at_most} fields (nested ones counted), more than "
                        f"any valid {self.root} can")
                return Excess(path, f"{path}: {held}" if path else held)
            # Every repeated and message field of the contract is length-delimited: a key of another
            # wire type, or inside a group, is a field the parser keeps unknown, counted but not this one.
            f = message.fields_by_number.get(number) if wire_type == 2 and not groups else None
            if f is not None and _is_repeated(f):
                counts[number] = counts.get(number, 0) + 1
                if counts[number] > (bound := _repeated(f)).limit:
                    return Excess(bound.field, bound.refusal(bound.field, bound.limit))
            if wire_type == 0:
                _, pos = self._varint(pos, end)
            elif wire_type == 1:
                pos += 8
            elif wire_type == 5:
                pos += 4
            elif wire_type == 2:
                length, pos = self._varint(pos, end)
                inner_end = pos + length
                if inner_end > end:
                    raise _Malformed
                if f is _TURN_ID:  # one descriptor object: compared by identity on every field of every request
                    self.turn_id_at = (pos, inner_end)
                if f is not None and f.type == FieldDescriptor.TYPE_MESSAGE:
                    inner_path = f"{path}.{f.name}" if path else f.name
                    if (found := self.message(pos, inner_end, f.message_type, inner_path)) is not None:
                        return found
                pos = inner_end
            elif wire_type not in (3, 4):  # a group's start and end carry nothing of their own
                raise _Malformed
            if pos > end:
                raise _Malformed
        return None

    def _varint(self, pos: int, end: int) -> tuple[int, int]:
        value = shift = 0
        while pos < end and shift < 70:
            byte = self.data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value, pos
            shift += 7
        raise _Malformed

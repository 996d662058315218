"""The rules every turn of the affect contract meets, written once (plain Python: no protobuf).

The library (``affect.limits``, ``Conversation.prepare``), the server's wire conversion and the
client's pre-check (``affect_client``) all read them here; each raises its own error type with
the message and field these functions give. A server may be stricter (its settings), never
looser. Hand-written: ``python -m protos.generate`` leaves this file alone.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from os import PathLike

MAX_ID_CHARS = 128  # a speaker's name, a turn id, a conversation id
MAX_IMAGES_PER_TURN = 8
MAX_TEXT_CHARS = 10_000  # longer text is refused, never cut
MAX_EVENT_SPEAKERS = 16  # names in a conversation's event_speakers: as many speakers as its state keeps

EMPTY_TURN = "a turn needs at least one of text, audio or images"


def id_too_long(value: str, field: str) -> str | None:
    """Why ``value`` may not be an id or name for its length, or None when it may."""
    return f"{field} is longer than {MAX_ID_CHARS} characters" if len(value) > MAX_ID_CHARS else None


_NOT_IN_IDS = ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")  # control, format and line-separator characters


def id_problem(value: str, field: str) -> str | None:
    """Why ``value`` may not be an id or name, or None when it may: at most ``MAX_ID_CHARS``
    characters, none of them control, format or line-separator characters (a newline in an id
    would forge lines in a log)."""
    if problem := id_too_long(value, field):
        return problem
    for position, char in enumerate(value):
        if unicodedata.category(char) in _NOT_IN_IDS:
            return f"{field} has a control or format character (U+{ord(char):04X}) at position {position}"
    return None


def event_speakers_problem(names: object, field: str = "event_speakers") -> str | None:
    """Why ``names`` may not be a conversation's event speakers (the speakers whose events are
    raised), or None when they may: a list (not one name alone, which would be read letter by
    letter) of at most ``MAX_EVENT_SPEAKERS`` names, each a speaker's name as a turn gives it and
    not empty (turns without a speaker are one unnamed speaker, which is watched only with all)."""
    if isinstance(names, (str, bytes)) or not isinstance(names, Iterable):
        return f"{field} must be a list of speaker names (one name as [name])"
    listed = list(names)
    if len(listed) > MAX_EVENT_SPEAKERS:
        return f"{field} names {len(listed)} speakers; the limit is {MAX_EVENT_SPEAKERS}"
    for index, name in enumerate(listed):
        where = f"{field}[{index}]"
        if not isinstance(name, str):
            return f"{where} must be a string, got {type(name).__name__}"
        if problem := named_speaker_problem(name, where):
            return problem
    return None


def named_speaker_problem(value: str, field: str = "speaker") -> str | None:
    """Why ``value`` may not name one speaker, or None when it may: a speaker's name as a turn
    gives it (``id_problem``), and not empty: turns without a speaker are one unnamed speaker,
    who cannot be picked out alone (name your speakers)."""
    if not value:
        return f"{field} is empty: name the speaker (turns without a speaker cannot be picked out)"
    return id_problem(value, field)


def cleaned_text(text: str) -> str:
    """Text as it is read: characters that are neither printable nor white space removed, stripped."""
    return "".join(ch for ch in text if ch.isprintable() or ch.isspace()).strip()


def too_many_images(images: int) -> str | None:
    return f"a turn may carry at most {MAX_IMAGES_PER_TURN} images" if images > MAX_IMAGES_PER_TURN else None


def images_not_a_list(images: object) -> str | None:
    """A single picture given as ``images`` (a path, encoded bytes, an array) would be read as a
    list of its characters, bytes or rows."""
    single = isinstance(images, (str, bytes, bytearray, memoryview, PathLike)) or (
        hasattr(images, "ndim") and hasattr(images, "dtype"))
    return "images must be a list; pass a single image as image=" if single else None


def text_too_long(chars: int, field: str = "text", limit: int = MAX_TEXT_CHARS) -> str | None:
    """Text is measured as sent (characters, before any cleaning)."""
    return f"{field} has {chars:,} characters; the limit is {limit:,}" if chars > limit else None


# A call the server ends by refusing what it was sent (an Analyze request's turn or options, a
# conversation's opening) names the refused field, as a ``TurnError``'s ``field`` does
# (``turn.audio.data``, ``options.text_prior``; ``turn`` for a whole turn, e.g. refused as busy),
# in this trailing metadata key. A refusal of the call itself (a server draining, a deadline,
# gRPC's own message size limit) names none.
REFUSED_FIELD_TRAILER = "affect-field"


def is_turn_field(field: str) -> bool:
    """Whether a refusal naming ``field`` refused a turn (what ``TurnError`` reports in a
    conversation), rather than a conversation's or a call's options."""
    return field == "turn" or field.startswith("turn.")

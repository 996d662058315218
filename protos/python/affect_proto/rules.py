"""The rules every turn of the affect contract meets, written once (plain Python: no protobuf).

The library (``affect.limits``, ``Conversation.prepare``), the server's wire conversion and the
client's pre-check (``affect_client``) all read them here; each raises its own error type with
the message and field these functions give. A server may be stricter (its settings), never
looser. Hand-written: ``python -m protos.generate`` leaves this file alone.
"""

from __future__ import annotations

MAX_ID_CHARS = 128  # a speaker's name, a turn id, a conversation id
MAX_IMAGES_PER_TURN = 8
MAX_TEXT_CHARS = 10_000  # longer text is refused, never cut

EMPTY_TURN = "a turn needs at least one of text, audio or images"


def id_too_long(value: str, field: str) -> str | None:
    """Why ``value`` may not be an id or name, or None when it may."""
    return f"{field} is longer than {MAX_ID_CHARS} characters" if len(value) > MAX_ID_CHARS else None


def too_many_images(images: int) -> str | None:
    return f"a turn may carry at most {MAX_IMAGES_PER_TURN} images" if images > MAX_IMAGES_PER_TURN else None


def text_too_long(chars: int, field: str = "text", limit: int = MAX_TEXT_CHARS) -> str | None:
    """Text is measured as sent (characters, before any cleaning)."""
    return f"{field} has {chars:,} characters; the limit is {limit:,}" if chars > limit else None

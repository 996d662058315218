"""Checking text before it reaches the model."""

from __future__ import annotations

from affect._errors import InputTooLargeError, InvalidInputError
from affect.limits import MAX_TEXT_CHARS as DEFAULT_MAX_CHARS


def clean_text(text: object, *, max_chars: int = DEFAULT_MAX_CHARS, field: str = "text") -> str:
    """The text, stripped; raises a clear ``InvalidInputError`` for anything that is not usable.

    ``bytes`` are accepted when they are valid UTF-8. Control characters other than white
    space are removed. Text longer than ``max_chars`` is refused rather than silently cut: the
    caller decides what to send.
    """
    if isinstance(text, (bytes, bytearray, memoryview)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInputError(f"{field} is not valid UTF-8 (byte {exc.start})", field=field) from None
    if not isinstance(text, str):
        raise InvalidInputError(f"{field} must be a string, got {type(text).__name__}", field=field)
    if len(text) > max_chars:
        raise InputTooLargeError(f"{field} has {len(text):,} characters; the limit is {max_chars:,}", field=field)
    cleaned = "".join(ch for ch in text if ch.isprintable() or ch.isspace()).strip()
    if not cleaned:
        raise InvalidInputError(f"{field} is empty", field=field)
    return cleaned

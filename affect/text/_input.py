"""Checking text before it reaches the model."""

from __future__ import annotations

from affect._errors import InvalidInputError
from affect.limits import MAX_TEXT_CHARS as DEFAULT_MAX_CHARS, check_text_length
from affect_proto.rules import cleaned_text


class CleanText(str):
    """Text that has passed :func:`clean_text`, which returns it as it is when it meets it again.

    So text is cleaned once, where the turn enters (``Conversation.prepare``, or the CLI before
    it loads a model), while every public entry that takes text (``TextEncoder.analyze``) stays
    safe for direct callers. ``raw_chars`` is the length of the text as sent, which the
    character limit is about.
    """

    raw_chars: int

    def __new__(cls, value: str, raw_chars: int | None = None) -> "CleanText":
        self = super().__new__(cls, value)
        self.raw_chars = len(value) if raw_chars is None else raw_chars
        return self


def clean_text(text: object, *, max_chars: int = DEFAULT_MAX_CHARS, field: str = "text") -> CleanText:
    """The text, stripped; raises a clear ``InvalidInputError`` for anything that is not usable.

    ``bytes`` are accepted when they are valid UTF-8. Control characters other than white
    space are removed. Text longer than ``max_chars`` is refused rather than silently cut: the
    caller decides what to send.
    """
    if isinstance(text, CleanText):  # cleaned already: only the limit may differ
        check_text_length(text.raw_chars, field, max_chars)
        return text
    if isinstance(text, (bytes, bytearray, memoryview)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInputError(f"{field} is not valid UTF-8 (byte {exc.start})", field=field) from None
    if not isinstance(text, str):
        raise InvalidInputError(f"{field} must be a string, got {type(text).__name__}", field=field)
    check_text_length(len(text), field, max_chars)
    cleaned = cleaned_text(text)
    if not cleaned:
        raise InvalidInputError(f"{field} is empty", field=field)
    return CleanText(cleaned, len(text))

"""The rules every turn meets, in one place.

The library (``Conversation.prepare``, ``affect.text``) and the server (its wire conversion,
``affect_server.convert``, and its settings, ``affect_server.config``) read them from here.
Media budgets per clip or image (seconds, samples, pixels, file bytes) sit beside the code that
probes the media (``affect.speech._audio``, ``affect.face._input``); the server's per-turn
budgets are its settings, stricter by default.
"""

from __future__ import annotations

from affect._errors import InvalidInputError

MAX_ID_CHARS = 128  # a speaker's name, a turn id, a conversation id
MAX_IMAGES_PER_TURN = 8
MAX_TEXT_CHARS = 10_000  # longer text is refused, never cut

EMPTY_TURN = "a turn needs at least one of text, audio or images"


def check_not_empty(*, has_text: bool, has_audio: bool, images: int, field: str = "turn") -> None:
    """Refuse a turn that carries nothing to analyse."""
    if not (has_text or has_audio or images):
        raise InvalidInputError(EMPTY_TURN, field=field)


def check_image_count(images: int, field: str = "images") -> None:
    if images > MAX_IMAGES_PER_TURN:
        raise InvalidInputError(f"a turn may carry at most {MAX_IMAGES_PER_TURN} images", field=field)


def check_id_length(value: str, field: str) -> None:
    """Refuse an id or name longer than ``MAX_ID_CHARS``."""
    if len(value) > MAX_ID_CHARS:
        raise InvalidInputError(f"{field} is longer than {MAX_ID_CHARS} characters", field=field)

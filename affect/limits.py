"""The rules every turn meets, raised as the library's errors.

The rules themselves (limits and messages) are the contract's, written once in
``affect_proto.rules``, which the client's pre-check reads too. The library
(``Conversation.prepare``, ``affect.text``) and the server (its wire conversion,
``affect_server.convert``, and its settings, ``affect_server.config``) raise them from here.
Media budgets per clip or image (seconds, samples, pixels, file bytes) sit beside the code that
probes the media (``affect.speech._audio``, ``affect.face._input``); the server's per-turn
budgets are its settings, stricter by default.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING

from affect._errors import InputTooLargeError, InvalidInputError
from affect.results import Modality
from affect_proto.rules import (EMPTY_TEXT, EMPTY_TURN, as_listed, MAX_EVENT_SPEAKERS, MAX_ID_CHARS, MAX_IMAGES_PER_TURN,
                                MAX_TEXT_CHARS, event_speakers_problem, id_problem, images_not_a_list,
                                named_speaker_problem, no_model_for, no_model_loaded, only_empty_text, reads_as_no_text,
                                text_too_long, too_many_images)

if TYPE_CHECKING:
    from affect.conversation import Turn

__all__ = ["EMPTY_TEXT", "EMPTY_TURN", "MAX_EVENT_SPEAKERS", "MAX_ID_CHARS", "MAX_IMAGES_PER_TURN", "MAX_TEXT_CHARS",
           "check_event_speakers", "check_id", "check_image_count", "check_images_list", "check_loaded",
           "check_named_speaker", "check_not_empty", "check_text_length", "is_no_text", "unread_modalities"]


def is_no_text(text: object) -> bool:
    """Whether a turn's text (a string or UTF-8 bytes) is none to read (``affect_proto.rules.reads_as_no_text``:
    empty or white space, an empty transcript). Anything else, bytes that are not UTF-8 too, is
    not: the text's own checks refuse it as it is."""
    if isinstance(text, (bytes, bytearray, memoryview)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            return False
    return isinstance(text, str) and reads_as_no_text(text)


def unread_modalities(sent: Collection[Modality], text: object,
                      loaded: Collection[Modality] | None = None) -> dict[Modality, str]:
    """Which of the modalities a turn was given (``sent``, ``Turn.sent``) are not read, with why
    (what ``TurnResult.absent`` says): text that is none to read (``is_no_text``: an empty
    transcript) beside audio or images, ``EMPTY_TEXT``; and, where ``loaded`` names the modalities
    whose models are loaded, each one without its model, ``no_model_loaded`` ("no text model
    loaded"), as long as another is read. When none would be, those stay to be read, and
    ``check_loaded`` refuses the turn naming them."""
    unread = {Modality.TEXT: EMPTY_TEXT} if Modality.TEXT in sent and len(sent) > 1 and is_no_text(text) else {}
    unloaded = {m: no_model_loaded(m.value) for m in sent if loaded is not None and m not in loaded and m not in unread}
    if len(unread) + len(unloaded) < len(sent):  # another modality is read: the turn is read from it
        unread.update(unloaded)
    return unread


def check_loaded(carried: Mapping[Modality, str], loaded: Collection[Modality]) -> None:
    """Refuse a turn none of whose modalities can be read for want of their models (``carried``:
    those it is read from, each with its field, ``Turn.carried``; once another is read, a
    modality without its model is left unread instead, ``unread_modalities``), naming them all
    and the field of the first."""
    if unloaded := [m for m in carried if m not in loaded]:
        raise InvalidInputError(no_model_for(m.value for m in unloaded), field=carried[unloaded[0]])


def check_not_empty(turn: "Turn") -> None:
    """Refuse a turn with nothing to read: nothing sent (field ``turn``), or only text that is
    none to read (field ``text``; beside audio or images it is left unread, ``Turn.unread``)."""
    sent = turn.sent()
    if not sent:
        raise InvalidInputError(EMPTY_TURN, field="turn")
    if list(sent) == [Modality.TEXT] and is_no_text(turn.text):
        raise InvalidInputError(only_empty_text("text"), field="text")


def check_image_count(images: int, field: str = "images") -> None:
    if problem := too_many_images(images):
        raise InvalidInputError(problem, field=field)


def check_images_list(images: object, field: str = "images") -> None:
    """Refuse one picture given as the list of pictures (it would be read piece by piece)."""
    if problem := images_not_a_list(images):
        raise InvalidInputError(problem, field=field)


def check_id(value: object, field: str) -> None:
    """Refuse an id or name that is not a string, is longer than ``MAX_ID_CHARS`` or holds a
    control, format or line-separator character (``affect_proto.rules.id_problem``: a newline in
    a speaker's name would forge lines in a log that names it)."""
    if not isinstance(value, str):
        raise InvalidInputError(f"{field} must be a string", field=field)
    if problem := id_problem(value, field):
        raise InvalidInputError(problem, field=field)


def check_named_speaker(speaker: object, field: str = "speaker") -> str:
    """``speaker``, if it names one speaker (``check_id``'s rule, and not empty: turns without a
    speaker are one unnamed speaker, who cannot be picked out alone)."""
    if problem := named_speaker_problem(speaker, field):
        raise InvalidInputError(problem, field=field)
    assert isinstance(speaker, str)  # the rule has checked it
    return speaker


FORMER_SPEAKER = "\x00former-"  # begins with a control character: no turn's speaker can (check_id)


def former_speaker(count: int) -> str:
    """The name a reset speaker's earlier turns are given (``Conversation.reset_speaker``), so that
    they read as another person's: one that no turn can have, a new one for each reset."""
    return f"{FORMER_SPEAKER}{count}"


def is_former_speaker(speaker: str | None) -> bool:
    return speaker is not None and speaker.startswith(FORMER_SPEAKER)


def check_event_speakers(names: object, field: str = "event_speakers") -> tuple[str, ...]:
    """The speakers whose events a conversation raises, as a tuple (empty: everyone's); refuses
    one name given alone, more than ``MAX_EVENT_SPEAKERS``, and names a turn's speaker could not
    have or that are empty (``affect_proto.rules.event_speakers_problem``), naming ``field``."""
    listed = as_listed(names)  # an iterator is read once, here
    if problem := event_speakers_problem(listed, field):
        raise InvalidInputError(problem, field=field)
    assert isinstance(listed, tuple)  # the rule has checked it
    return listed


def check_text_length(chars: int, field: str = "text", limit: int = MAX_TEXT_CHARS) -> None:
    """Refuse text longer than ``limit`` characters as sent (it is never cut)."""
    if problem := text_too_long(chars, field, limit):
        raise InputTooLargeError(problem, field=field)

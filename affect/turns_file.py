"""Conversation files: the turns of one conversation, as ``affect analyze --conversation`` reads them.

A JSON list, or JSON Lines (one turn per line, ``.jsonl``). Each turn is a string (its text)
or an object with any of ``text``, ``speaker``, ``audio`` (a WAV/FLAC/OGG file), ``image`` (a
JPEG/PNG file) and ``images`` (a list of them). Media paths are relative to the conversation
file's folder. Between turns, ``{"reset_speaker": NAME}`` starts that speaker anew
(``Conversation.reset_speaker``: a human agent taking over from a bot under the same name, a new
caller put through); it names a speaker of an earlier turn. Every problem is refused with the
item and key it concerns (items are counted from 0, resets too), before any model is loaded,
in a message that quotes no speaker's name, no text and no media string (errors reach a terminal
and, in folder mode, a CSV): a name is given by its length, a media path by its file name
(``affect_proto.rules.shown_path``), an unknown key only when it reads as a field name or is one
of the names affect itself writes (``affect.results_files.OUTPUT_KEYS``: the schema's, not data).
A file of results that affect wrote, given where turns belong, is refused saying so.
"""

from __future__ import annotations

import difflib
import errno
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from affect._errors import InputTooLargeError, InvalidInputError
from affect.results_files import OUTPUT_KEYS, RESULT_MARKS, is_result_record
from affect_proto.rules import (file_path_problem, file_size, id_problem, named_speaker_problem, read_checked_file,
                                shown_path)

if TYPE_CHECKING:
    from affect.conversation import Conversation
    from affect.results import TurnResult

MAX_CONVERSATION_BYTES = 5_000_000
TURN_KEYS = ("text", "speaker", "audio", "image", "images")
RESET_KEY = "reset_speaker"  # an item {"reset_speaker": NAME} between turns


def command_line_file_size(path: Path, flag: str) -> int:
    """The size of the file at ``path``, given with ``flag`` (``--conversation``, ``--audio``); a
    folder is refused saying how to analyse every file in it, any other path that is no file as
    ``rules.file_path_problem`` says (a string no path could be, such as base64, never quoted),
    outside any handler, so no OSError quoting it rides along."""
    field = flag.lstrip("-")
    size, error = file_size(path)
    if error == errno.EISDIR and shown_path(path) is not None:
        raise InvalidInputError(f"{flag}: {path} is a directory; to analyse every file in it, run "
                                f"`affect analyze {path}`", field=field)
    if error:
        raise InvalidInputError(file_path_problem(path, flag, error), field=field)
    return size


def read_conversation(path: Path, *, takes: str = "") -> list[dict[str, Any]]:
    """The items of a conversation file: its turns, with media paths made absolute and checked
    to exist, and its speaker resets (``is_reset``) where they stand. ``takes``: what the caller
    takes, said after the refusal of a file that is no conversation file at all (not UTF-8, not
    JSON, not a list of turns: a file given in the wrong place)."""
    size = command_line_file_size(path, "--conversation")
    if size > MAX_CONVERSATION_BYTES:
        raise InputTooLargeError(f"{path} is {size:,} bytes; the limit is {MAX_CONVERSATION_BYTES:,}", field="conversation")
    try:
        data = _turn_list(path)
    except InvalidInputError as exc:
        if not takes:
            raise
        raise InvalidInputError(f"{exc}; {takes}", field=exc.field) from None
    items: list[dict[str, Any]] = []
    speakers: set[str] = set()  # of the turns so far, which a reset must name
    for i, item in enumerate(data):
        if isinstance(item, dict) and RESET_KEY in item:
            items.append(_reset(path, i, item, speakers))
        else:
            items.append(turn := _turn(path, i, item))
            if turn["speaker"] is not None:
                speakers.add(turn["speaker"])
    return items  # never resets alone: a reset names the speaker of a turn before it


def is_reset(item: dict[str, Any]) -> bool:
    """Whether an item of ``read_conversation`` is a speaker reset rather than a turn."""
    return RESET_KEY in item


def play(conversation: Conversation, items: Iterable[dict[str, Any]]) -> Iterator[TurnResult]:
    """The result of each turn of ``items`` (``read_conversation``'s) analysed in ``conversation``,
    in order, its speaker resets made where they stand."""
    from affect.conversation import Turn

    for item in items:
        if is_reset(item):
            conversation.reset_speaker(item[RESET_KEY])
        else:
            yield conversation.analyze(Turn(**item))


def _turn_list(path: Path) -> list[Any]:
    """The file's items as JSON values: UTF-8, then a JSON list or JSON Lines, not empty."""
    content, problem = read_checked_file(path, "--conversation")
    if problem:
        raise InvalidInputError(problem, field="conversation")
    try:
        raw = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"{path} is not valid UTF-8 (byte {exc.start})", field="conversation") from None
    data = _json_lines(path, raw) if path.suffix.lower() in (".jsonl", ".ndjson") else _json(path, raw)
    if not isinstance(data, list) or not data:
        raise InvalidInputError(f"{path} must hold a non-empty JSON list of turns", field="conversation")
    return data


def _json(path: Path, raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}", field="conversation") from None


def _json_lines(path: Path, raw: str) -> list[Any]:
    turns = []
    for number, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        try:
            turns.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"{path} line {number} is not valid JSON: {exc.msg}", field="conversation") from None
    return turns


def _turn(path: Path, i: int, item: Any) -> dict[str, Any]:
    where = f"turn {i} of {path}"
    if isinstance(item, str):
        item = {"text": item}
    if not isinstance(item, dict):
        raise InvalidInputError(f"{where} must be a string or an object", field=f"conversation[{i}]")
    unknown = sorted(set(item) - set(TURN_KEYS))
    if unknown and is_result_record(item):
        raise InvalidInputError(f"{where} is a result that affect wrote, not a turn (its keys include "
                                f"{_keys_shown([k for k in RESULT_MARKS if k in item])}): {path.name} holds the results "
                                f"of an earlier run (`affect analyze --out`, `--json`); a turn may carry "
                                f"{', '.join(TURN_KEYS)}", field=f"conversation[{i}]")
    if unknown:
        raise InvalidInputError(f"{where} has unknown keys {_keys_shown(unknown)}; a turn may carry {', '.join(TURN_KEYS)} "
                                f'(a speaker reset is {{"{RESET_KEY}": NAME}} alone)', field=f"conversation[{i}]")
    for key in ("text", "speaker"):
        if item.get(key) is not None and not isinstance(item[key], str):
            raise InvalidInputError(f'{where}: "{key}" must be a string', field=f"conversation[{i}].{key}")
    if item.get("speaker") is not None and (problem := id_problem(item["speaker"], '"speaker"')):
        raise InvalidInputError(f"{where}: {problem}", field=f"conversation[{i}].speaker")  # the library's rule (check_id)
    images = item.get("images") or []
    if not isinstance(images, list):
        raise InvalidInputError(f'{where}: "images" must be a list of file names', field=f"conversation[{i}].images")
    turn: dict[str, Any] = {"text": item.get("text"), "speaker": item.get("speaker")}
    if item.get("audio") is not None:
        turn["audio"] = _media(path, item["audio"], f"conversation[{i}].audio", where)
    all_images = ([item["image"]] if item.get("image") is not None else []) + images
    if all_images:
        turn["images"] = [_media(path, name, f"conversation[{i}].image", where) for name in all_images]
    if turn["text"] is None and "audio" not in turn and "images" not in turn:
        raise InvalidInputError(f'{where} needs a "text" string, an "audio" file or an "image" file',
                                field=f"conversation[{i}].text")
    return turn


# A key a turn may not carry is quoted in an error only when it reads as a misspelt field name:
# a short ASCII identifier close to a field's name or to a word a file's author would use for one.
# affect's own output names (``OUTPUT_KEYS``) are shown as they are: they are its schema, not data.
# Any other (a sentence, a person's name, a phone number: what a file holds as a key by mistake,
# e.g. turns keyed by speaker) is given by its length; errors reach a terminal and, in folder
# mode, a CSV.
_SHOWN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,23}")
_FIELD_LIKE = (*TURN_KEYS, RESET_KEY, "reset", "video", "photo", "picture", "voice", "sound", "transcript", "role",
               "timestamp", "turn", "message", "content")


def _key_shown(key: str) -> str:
    if key in OUTPUT_KEYS or (_SHOWN_KEY.fullmatch(key)
                              and difflib.get_close_matches(key.lower(), _FIELD_LIKE, n=1, cutoff=0.75)):
        return repr(key)
    return f"<a key of {len(key)} characters>"


def _keys_shown(keys: list[str]) -> str:
    """``keys`` as an error lists them: ``['video', <a key of 23 characters>]``."""
    return "[" + ", ".join(_key_shown(key) for key in keys) + "]"


def _reset(path: Path, i: int, item: dict[str, Any], speakers_before: set[str]) -> dict[str, Any]:
    """A speaker reset: alone in its object, naming a speaker of an earlier turn (a name no turn
    has yet would reset nobody: a misspelt one)."""
    where, field = f"item {i} of {path}", f"conversation[{i}].{RESET_KEY}"
    if len(item) > 1:
        raise InvalidInputError(f'{where}: "{RESET_KEY}" stands alone in its object (a reset is not a turn), '
                                f"found also {_keys_shown(sorted(set(item) - {RESET_KEY}))}", field=f"conversation[{i}]")
    name = item[RESET_KEY]
    if problem := named_speaker_problem(name, f'"{RESET_KEY}"'):
        raise InvalidInputError(f"{where}: {problem}", field=field)
    if name not in speakers_before:  # a speaker's name is personal: not quoted (folder mode writes errors to its CSV)
        raise InvalidInputError(f'{where}: "{RESET_KEY}" names a speaker of no turn before it (a name of '
                                f"{len(name)} characters)", field=field)
    return {RESET_KEY: name}


def _media(path: Path, name: Any, field: str, where: str) -> str:
    key = field.rsplit(".", 1)[-1]
    if not isinstance(name, str) or not name:
        raise InvalidInputError(f'{where}: "{key}" must be a file name', field=field)
    media = Path(name) if Path(name).is_absolute() else path.parent / name
    _, error = file_size(media)  # ENAMETOOLONG: base64 or a data: URI where a file name belongs
    if error:  # named as the rule says, never quoting a string that is no path
        raise InvalidInputError(f"{where}: " + file_path_problem(name, f'"{key}"', error), field=field)
    return str(media)

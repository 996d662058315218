"""Conversation files: the turns of one conversation, as ``affect analyze --conversation`` reads them.

A JSON list, or JSON Lines (one turn per line, ``.jsonl``). Each turn is a string (its text)
or an object with any of ``text``, ``speaker``, ``audio`` (a WAV/FLAC/OGG file), ``image`` (a
JPEG/PNG file) and ``images`` (a list of them). Media paths are relative to the conversation
file's folder. Every problem is refused with the turn and key it concerns, before any model
is loaded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from affect._errors import InputTooLargeError, InvalidInputError
from affect_proto.rules import id_problem

MAX_CONVERSATION_BYTES = 5_000_000
TURN_KEYS = ("text", "speaker", "audio", "image", "images")


def read_conversation(path: Path) -> list[dict[str, Any]]:
    """The turns of a conversation file, with media paths made absolute and checked to exist."""
    if path.is_dir():
        raise InvalidInputError(f"--conversation: {path} is a directory; to analyse every file in it, "
                                f"run `affect analyze {path}`", field="conversation")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InvalidInputError(f"cannot read {path}: {exc.strerror}", field="conversation") from None
    if size > MAX_CONVERSATION_BYTES:
        raise InputTooLargeError(f"{path} is {size:,} bytes; the limit is {MAX_CONVERSATION_BYTES:,}", field="conversation")
    try:
        raw = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"{path} is not valid UTF-8 (byte {exc.start})", field="conversation") from None
    data = _json_lines(path, raw) if path.suffix.lower() in (".jsonl", ".ndjson") else _json(path, raw)
    if not isinstance(data, list) or not data:
        raise InvalidInputError(f"{path} must hold a non-empty JSON list of turns", field="conversation")
    return [_turn(path, i, item) for i, item in enumerate(data)]


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
    if unknown:
        raise InvalidInputError(f"{where} has unknown keys {unknown}; a turn may carry {', '.join(TURN_KEYS)}",
                                field=f"conversation[{i}]")
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


def _media(path: Path, name: Any, field: str, where: str) -> str:
    key = field.rsplit(".", 1)[-1]
    if not isinstance(name, str) or not name:
        raise InvalidInputError(f'{where}: "{key}" must be a file name', field=field)
    media = Path(name) if Path(name).is_absolute() else path.parent / name
    if media.is_dir():
        raise InvalidInputError(f'{where}: "{key}" {media} is a directory, not a file', field=field)
    if not media.is_file():
        raise InvalidInputError(f'{where}: "{key}" file not found: {media}', field=field)
    return str(media)

"""What ``affect`` writes, told apart from what it reads.

``affect analyze FOLDER --out FOLDER/results.jsonl`` leaves its results in the folder it reads;
the next run must not read them as a conversation. A results file is known by its first record
(or, for CSV, its header), never by its name: one of a result (``TurnResult.to_dict()``, with a
folder run's ``file``), an error row of a folder run (``file`` and ``error``), or a frame of
``affect analyze --video --json``; or a CSV whose header is ``--out``'s columns. Only the first
``HEAD_BYTES`` are read, whatever the file's size. No such record is a turn (each has keys a
turn may not carry), so a conversation file is never taken for results.

``OUTPUT_KEYS`` are the names of the keys and columns affect writes: the schema's, never a user's
data, so an error may quote them (``affect.turns_file``).
"""

from __future__ import annotations

import json
from pathlib import Path

from affect.export import COLUMNS

HEAD_BYTES = 1 << 20
# The keys of a result's to_dict() and of a video frame's beyond the CSV columns, and the
# columns a folder run adds (tests/test_cli.py checks them against real results).
OUTPUT_KEYS = frozenset((*COLUMNS, "file", "error", "emotions", "sentiments", "shares", "fusion", "modalities",
                         "state", "time_s", "frame_index", "width", "height", "reason"))
FOLDER_COLUMNS = ("file", "error")  # what a folder run's CSV adds before COLUMNS
# The keys a refusal quotes to say why a record is a result, not a turn (affect.turns_file).
RESULT_MARKS = ("file", "turn_index", "present", "emotion", "error", "time_s", "frame_index")


def is_error_row(record: dict) -> bool:
    """A folder run's row for a file that could not be read: its file and why, nothing else."""
    return set(record) == set(FOLDER_COLUMNS)


def is_result_record(item: object) -> bool:
    """Whether one JSON value is a record that affect wrote rather than a turn."""
    if not isinstance(item, dict):
        return False
    return {"turn_index", "present"} <= item.keys() or {"time_s", "frame_index"} <= item.keys() or is_error_row(item)


def is_results_file(path: Path) -> bool:
    """Whether the file at ``path`` (a .json, .jsonl, .ndjson or .csv file) holds results that
    affect wrote, by its first record or CSV header; ``False`` for a file that cannot be read
    (its reader then says why)."""
    suffix = path.suffix.lower()
    try:
        with path.open("rb") as fh:
            if suffix == ".json":
                head = fh.read(HEAD_BYTES)
            else:  # a CSV header or a JSON line: the first line that is not blank
                head, read = b"", 0
                while not head.strip() and read < HEAD_BYTES and (line := fh.readline(HEAD_BYTES)):
                    head, read = line, read + len(line)
    except OSError:
        return False
    text = head.decode("utf-8", errors="replace")
    if suffix == ".csv":
        return text.rstrip("\r\n").split(",") in (list(COLUMNS), [*FOLDER_COLUMNS, *COLUMNS])
    text = text.lstrip()
    if suffix in (".jsonl", ".ndjson") or text.startswith("{"):  # a .json may hold --json's lines (a folder run's)
        first = text
    elif text.startswith("["):
        first = text[1:].lstrip()
    else:
        return False
    try:
        record, _ = json.JSONDecoder().raw_decode(first)
    except ValueError:
        return False
    return is_result_record(record)

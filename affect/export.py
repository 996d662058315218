"""Results as tables: flat rows for CSV and pandas, and JSON Lines with every field.

A row is built from a result's ``to_dict()``, so the library's results and the client's (whose
``to_dict()`` has the same keys) give the same columns. A turn without a reading has empty
emotion, valence and probability cells and says why in ``no_reading``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from affect._format import event_label
from affect.labels import EMOTION_NAMES, SENTIMENT_NAMES

# The columns of a row, in order (a file's rows add a leading "file" column).
COLUMNS: tuple[str, ...] = (
    "turn_index", "speaker", "emotion", "confidence", "sentiment", "valence", "arousal", "present", "no_reading",
    "absent", "events", "faces", "state_valence", "state_arousal", "valence_trend", "next_p_negative", "next_p_anger",
    *(f"p_{name}" for name in EMOTION_NAMES), *(f"p_sentiment_{name}" for name in SENTIMENT_NAMES),
)


def turn_row(data: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    """One flat row from a turn's ``to_dict()`` data; ``extra`` columns (e.g. ``file``) come first."""
    emotions = data.get("emotions") or {}
    sentiments = data.get("sentiments") or {}
    absent = data.get("absent") or {}
    state = data.get("state") or {}
    if not state.get("turns"):  # no turn of the conversation has been read yet: no state to report
        state = {}
    reading = data.get("emotion") is not None
    row: dict[str, Any] = {
        **extra,
        "turn_index": data.get("turn_index"),
        "speaker": data.get("speaker"),
        "emotion": data.get("emotion"),
        "confidence": data.get("confidence"),
        "sentiment": data.get("sentiment"),
        "valence": data.get("valence"),
        "arousal": data.get("arousal"),
        "present": "+".join(data.get("present") or ()),
        "no_reading": None if reading or "error" in data else ("; ".join(f"{m}: {why}" for m, why in absent.items()) or "nothing was sent"),
        "absent": "; ".join(f"{m}: {why}" for m, why in absent.items()),
        "events": ",".join(event_label(e["kind"], e.get("speaker"), data.get("speaker")) for e in data.get("events") or ()),
        "faces": len(data.get("faces") or ()),
        "state_valence": state.get("valence"),
        "state_arousal": state.get("arousal"),
        "valence_trend": state.get("valence_trend"),
        # the forecast of this row's speaker's next turn (the state forecasts every recent speaker's)
        **own_forecast(data),
    }
    row.update({f"p_{name}": emotions.get(name) for name in EMOTION_NAMES})
    row.update({f"p_sentiment_{name}": sentiments.get(name) for name in SENTIMENT_NAMES})
    return row


def own_forecast(data: Mapping[str, Any]) -> dict[str, Any]:
    """``next_p_negative`` and ``next_p_anger``: the forecast of the turn's own speaker's next
    turn in a turn's ``to_dict()`` data (``None`` each where the state has none for them)."""
    state = data.get("state") or {}
    speaker = data.get("speaker")
    own: Mapping[str, Any] = next((f for f in state.get("forecast") or () if f.get("speaker") == speaker), {})
    return {"next_p_negative": own.get("negative"), "next_p_anger": own.get("anger")}


def to_pandas(rows: Sequence[Mapping[str, Any]]) -> Any:
    """A pandas DataFrame with one row per turn (pandas is optional: ``pip install pandas``)."""
    try:
        import pandas as pd
    except ImportError:
        raise ImportError("to_pandas() needs pandas: pip install pandas") from None
    columns = [c for c in rows[0] if c not in COLUMNS] + list(COLUMNS) if rows else list(COLUMNS)
    return pd.DataFrame(list(rows), columns=columns)


def write_csv(rows: Iterable[Mapping[str, Any]], out: IO[str], *, extra_columns: Sequence[str] = ()) -> None:
    """Rows as CSV with a header; empty cells where there is no reading."""
    writer = csv.DictWriter(out, fieldnames=[*extra_columns, *COLUMNS], extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})


def write_jsonl(records: Iterable[Mapping[str, Any]], out: IO[str]) -> None:
    """One JSON object per line: every field of each result."""
    for record in records:
        out.write(json.dumps(record, ensure_ascii=False) + "\n")


def output_format(path: Path) -> str:
    """``csv`` or ``jsonl`` from a file name; anything else is refused by the caller."""
    suffix = path.suffix.lower()
    return {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}.get(suffix, "")

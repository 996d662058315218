"""Plain-text tables for the terminal (no dependency, stable for docs and tests)."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol


class _Event(Protocol):
    @property
    def kind(self) -> str: ...
    @property
    def speaker(self) -> str | None: ...


class TurnRow(Protocol):
    """What a row reads of a turn's result: the library's ``TurnResult`` and the client's both have it."""

    @property
    def turn_index(self) -> int: ...
    @property
    def speaker(self) -> str | None: ...
    @property
    def emotion(self) -> object: ...
    @property
    def confidence(self) -> float | None: ...
    @property
    def sentiment(self) -> object: ...
    @property
    def valence(self) -> float | None: ...
    @property
    def arousal(self) -> float | None: ...
    @property
    def present(self) -> Iterable[object]: ...
    @property
    def absent(self) -> Mapping[Any, str]: ...
    @property
    def events(self) -> Sequence[_Event]: ...


def table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(columns)]
    line = lambda cells: "  ".join(cell.ljust(w) for cell, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(columns), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def licence_lines(rows: Sequence[Mapping[str, Any]], width: int = 100) -> list[str]:
    """``affect models``' licences: one paragraph per licence (``rows`` of ``list_weights``), naming
    its models, a family's versions after its first id (``late-fusion@3, @4``), wrapped to ``width``."""
    by_licence: dict[str, list[str]] = {}
    for row in rows:
        by_licence.setdefault(row["licence"], []).append(row["id"])
    lines = ["licences (each model card says what they mean):"]
    for licence, ids in by_licence.items():
        named, last = [], ""
        for model_id in ids:
            stem, _, version = model_id.rpartition("@")
            named.append(f"@{version}" if stem == last else model_id)
            last = stem
        lines += textwrap.wrap(f"{licence}: {', '.join(named)}", width, initial_indent="  ", subsequent_indent="    ",
                               break_on_hyphens=False)
    return lines


def _short(text: str | None, width: int) -> str:
    if not text:
        return ""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def turn_table(results: Sequence[TurnRow], texts: Sequence[str | None] | None = None) -> str:
    """One row per turn: who, what was said (shortened), emotion, sentiment, valence, arousal.

    Takes the library's ``TurnResult`` or the client's (they have the same attributes). A turn
    without a reading says "no reading" and leaves the numbers empty: nothing was measured.
    """
    show_events = any(getattr(r, "events", ()) for r in results)
    columns = ["turn", "speaker", *(["text"] if texts else []), "emotion", "p", "sentiment", "valence", "arousal",
               "modalities", *(["events"] if show_events else [])]
    rows = []
    for i, r in enumerate(results):
        if r.emotion is None:
            reading = ["no reading", "", "", "", ""]
        else:
            reading = [_value(r.emotion), f"{r.confidence:.2f}", _value(r.sentiment), f"{r.valence:+.2f}", f"{r.arousal:+.2f}"]
        rows.append([
            str(r.turn_index),
            r.speaker or "",
            *([_short(texts[i], 44)] if texts else []),
            *reading,
            "+".join(_value(m) for m in r.present),
            *([", ".join(event_label(e.kind, e.speaker, r.speaker) for e in r.events)] if show_events else []),
        ])
    return table(columns, rows)


def event_label(kind: str, about: str | None, speaker: str | None) -> str:
    """An event as a row shows it: its kind, and whom it is about when that is not the row's
    speaker (a turn of the customer's can raise the agent's ``escalation_risk``)."""
    return kind if about == speaker else f"{kind}({about or 'unnamed'})"


def no_reading_line(result: TurnRow) -> str:
    """``no reading: speech: no speech detected; face: no face detected``."""
    reasons = "; ".join(f"{_value(m)}: {why}" for m, why in result.absent.items()) or "nothing was sent"
    return f"no reading: {reasons}"


def _value(x: object) -> str:
    return str(getattr(x, "value", x))

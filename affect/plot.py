"""A conversation at a glance: valence, arousal and the top emotion over its turns, events marked.

Draws from results' ``to_dict()`` data, so the library's results, the client's and the JSON
Lines that ``affect analyze --out x.jsonl`` writes all plot the same way. Needs matplotlib
(``pip install matplotlib``); it is imported only here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from affect._format import event_label
from affect.export import own_forecast
from affect.labels import EMOTION_NAMES

EMOTION_COLOURS: Mapping[str, str] = {
    "neutral": "#9e9e9e", "happiness": "#f2b701", "sadness": "#3b75af", "anger": "#d62728",
    "fear": "#8c56b5", "disgust": "#4f9a3a", "surprise": "#ef8636",
}
EVENT_LABELS: Mapping[str, str] = {
    "sustained_negative_shift": "mood turned negative", "rising_anger": "rising anger",
    "negative_recovered": "mood recovered",
}

# Event labels start at the foot of the valence panel and are lifted a row at a time, at most
# EVENT_LABEL_ROWS rows, until they clear the labels placed before them.
EVENT_LABEL_BOTTOM = -1.0
EVENT_LABEL_ROW = 0.14
EVENT_LABEL_ROWS = 6


def plot_conversation(records: Sequence[Mapping[str, Any]], out: Path, *, title: str | None = None,
                      texts: Sequence[str | None] | None = None) -> Path:
    """Write a PNG of the conversation whose turns' ``to_dict()`` data are ``records``."""
    fig = conversation_figure(records, title=title, texts=texts)
    out = Path(out)
    try:
        fig.savefig(out, dpi=120)
    finally:
        _pyplot().close(fig)
    return out


def conversation_figure(records: Sequence[Mapping[str, Any]], *, title: str | None = None,
                        texts: Sequence[str | None] | None = None) -> Any:
    """The matplotlib figure ``plot_conversation`` writes (the caller closes it)."""
    if not records:
        raise ValueError("nothing to plot: no turns")
    plt = _pyplot()

    x = list(range(len(records)))
    read = [r.get("emotion") is not None for r in records]
    nan = float("nan")
    valence = [r["valence"] if ok else nan for r, ok in zip(records, read)]
    arousal = [r["arousal"] if ok else nan for r, ok in zip(records, read)]
    smoothed = [(r.get("state") or {}).get("valence", nan) if (r.get("state") or {}).get("turns") else nan for r in records]
    next_anger = [nan if (p := own_forecast(r)["next_p_anger"]) is None else p for r in records]

    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(max(7.0, 0.9 * len(records) + 3), 6.2),
                                      gridspec_kw={"height_ratios": [3, 1.3]}, constrained_layout=True)
    top.axhline(0, color="#cccccc", linewidth=0.8)
    top.plot(x, valence, "o-", color="#1f5fa8", label="valence", linewidth=2)
    top.plot(x, arousal, "s-", color="#e07b00", label="arousal", linewidth=1.5, alpha=0.85)
    top.plot(x, smoothed, "--", color="#1f5fa8", label="valence, conversation (smoothed)", linewidth=1, alpha=0.6)
    if any(p == p for p in next_anger):  # a forecaster was loaded: the speaker's next turn, P(anger)
        top.plot(x, next_anger, "^:", color=EMOTION_COLOURS["anger"], label="next turn P(anger), this speaker",
                 linewidth=1.2, markersize=4, alpha=0.8)
    top.set_ylim(-1.15, 1.45)
    top.set_ylabel("valence / arousal  [-1, 1]")
    for i, (record, ok) in enumerate(zip(records, read)):
        if ok:
            emotion = record["emotion"]
            top.annotate(f"{emotion}\n{record['confidence']:.2f}", (i, 1.2), ha="center", va="center", fontsize=8,
                         color=EMOTION_COLOURS.get(emotion, "black"), fontweight="bold",
                         bbox={"facecolor": "white", "edgecolor": "none", "pad": 1.0})
        else:
            top.axvspan(i - 0.4, i + 0.4, color="#eeeeee", zorder=0)
            top.annotate("no\nreading", (i, 1.2), ha="center", va="center", fontsize=8, color="#777777")
    event_labels = []
    for i, record in enumerate(records):
        for event in record.get("events") or ():
            top.axvline(i, color="#b00020", linestyle=":", linewidth=1.2)
            label = EVENT_LABELS.get(event["kind"], event["kind"])
            event_labels.append(top.annotate(event_label(label, event.get("speaker"), record.get("speaker")),
                                             (i, EVENT_LABEL_BOTTOM), xytext=(4, 0), textcoords="offset points",
                                             fontsize=8, color="#b00020", rotation=0))
    top.legend(loc="lower left", fontsize=8, framealpha=0.9)
    top.set_title(title or "affect: the conversation turn by turn", fontsize=11)

    bottom_edge = [0.0] * len(records)
    for name in EMOTION_NAMES:
        heights = [(r.get("emotions") or {}).get(name, 0.0) for r in records]
        bottom.bar(x, heights, bottom=bottom_edge, color=EMOTION_COLOURS[name], width=0.8, label=name)
        bottom_edge = [b + h for b, h in zip(bottom_edge, heights)]
    bottom.set_ylim(0, 1)
    bottom.set_ylabel("emotions")
    bottom.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, frameon=False)
    bottom.set_xticks(x)
    bottom.set_xticklabels([_tick(i, r, texts[i] if texts else None) for i, r in enumerate(records)], fontsize=8)
    bottom.set_xlim(-0.6, len(records) - 0.4)

    _lift_overlapping(fig, event_labels)
    return fig


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("plotting needs matplotlib: pip install matplotlib") from None
    return plt


def _lift_overlapping(fig: Any, labels: Sequence[Any]) -> None:
    """Lift each event label a row at a time until it clears the ones placed before it: a label
    runs right of its turn's line, over the next turns, so events in neighbouring turns (or two
    in one turn) would otherwise print over each other. Measured on the laid-out figure."""
    if not labels:
        return
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    placed: list[Any] = []
    for label in labels:
        x, _ = label.xy
        for row in range(EVENT_LABEL_ROWS):
            label.xy = (x, EVENT_LABEL_BOTTOM + EVENT_LABEL_ROW * row)
            box = label.get_window_extent(renderer)
            if not any(box.overlaps(other) for other in placed):
                break
        placed.append(box)


def _tick(i: int, record: Mapping[str, Any], text: str | None) -> str:
    label = f"{record.get('turn_index', i)}"
    if record.get("speaker"):
        label += f"\n{record['speaker']}"
    if text:
        short = " ".join(text.split())
        label += "\n" + (short if len(short) <= 14 else short[:13] + "…")
    return label

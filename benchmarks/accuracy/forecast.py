"""Forecast: each speaker's next turn, negative and angry, on MELD test and EmoContext test.

    python -m benchmarks.accuracy forecast [--limit N]

The shipped text model reads every turn of every test dialogue in order, with its context, as
the library does in a live conversation (``TextEncoder.analyze_many``, one turn of many
dialogues per call); with text alone the fused answer is exactly that reading. After each turn,
the shipped forecaster (``affect.forecast.Forecaster``, as ``ConversationState`` calls it) gives
every speaker of the recent window a P(negative) and P(anger) for their next turn, and the two
baselines score the same pairs (``affect.forecast_baselines``): persistence and the state's
trend. AUROC against the gold label of that next turn. Intervals: 95% percentile bootstrap
over dialogues (pairs of one dialogue are not independent), 1000 resamples, the same resamples
for every score, so the differences' intervals are paired.

The headline keys are MELD test (multi-party TV dialogue, every turn labelled). EmoContext test
(user, bot, user: two forecasts per chat, of the user's last turn) is reported beside it with
``emocontext_`` keys; its "others" names a set mixing negative and non-negative emotions, so its
negative AUROC is over happy against sad or angry chats only.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import roc_auc_score

from affect.datasets import read_meld
from affect.datasets.text_corpora import read_text_corpus
from affect.forecast import Forecaster
from affect.forecast_baselines import persistence_scores, trend_scores
from affect.forecast_features import Reading, next_turn_pairs
from affect.labels import EMOTION_NAMES, Emotion, Sentiment
from affect.results import AffectEstimate
from affect.state import ConversationState, StateThresholds
from affect.text import TextEncoder
from affect.text.encoder import TextRequest
from affect.text.prior import DEFAULT_PRIOR
from benchmarks._report import Report

SCORERS = ("forecast", "persistence", "trend")
TARGETS = ("negative", "anger")


@dataclass(frozen=True)
class Dialogue:
    """Turns to read: (turn index, text, speaker), and each turn's gold (negative, anger), -1 unknown."""

    turns: tuple[tuple[int, str, str | None], ...]
    gold: tuple[tuple[int, int], ...]


def meld_dialogues(split: str, data_root=None) -> list[Dialogue]:
    out = []
    for d in read_meld(split, data_root):
        kept = [t for t in d if t.text]  # an empty utterance has no reading: a gap in the indices
        out.append(Dialogue(tuple((t.turn_index, t.text, t.speaker) for t in kept),
                            tuple((int(t.sentiment is Sentiment.NEGATIVE), int(t.emotion is Emotion.ANGER)) for t in kept)))
    return out


def emocontext_dialogues(data_root=None) -> list[Dialogue]:
    out = []
    for t in read_text_corpus("emocontext", "test", data_root):
        (t1, _), (t2, _) = t.context
        negative = 1 if t.single in (Emotion.SADNESS, Emotion.ANGER) else (0 if t.single is Emotion.HAPPINESS else -1)
        out.append(Dialogue(((0, t1, "user"), (1, t2, "bot"), (2, t.text, "user")),
                            ((-1, -1), (-1, -1), (negative, int(t.single is Emotion.ANGER)))))
    return out


def read_all(encoder: TextEncoder, dialogues: Sequence[Dialogue]) -> list[list[Reading]]:
    """Every turn read as a live conversation reads it: in order, with its own context."""
    contexts = [encoder.new_context() for _ in dialogues]
    readings: list[list[Reading]] = [[] for _ in dialogues]
    for position in range(max(len(d.turns) for d in dialogues)):
        batch = [(i, d.turns[position]) for i, d in enumerate(dialogues) if position < len(d.turns)]
        results = encoder.analyze_many([TextRequest(text, speaker, contexts[i]) for i, (_, text, speaker) in batch])
        for (i, (index, _, speaker)), r in zip(batch, results):
            readings[i].append(Reading.of(index, speaker, r.emotion_vector(), r.sentiment_vector()))
    return readings


@dataclass
class Scored:
    labels: np.ndarray  # [N, 2]
    scores: dict[str, np.ndarray]  # scorer -> [N, 2]
    dialogue: np.ndarray  # [N]


def score(forecaster: Forecaster, dialogues: Sequence[Dialogue], readings: Sequence[Sequence[Reading]]) -> Scored:
    labels, owner = [], []
    parts: dict[str, list[np.ndarray]] = {s: [] for s in SCORERS}
    for n, (d, rs) in enumerate(zip(dialogues, readings)):
        pairs = [p for p in next_turn_pairs(rs, forecaster.window) if max(d.gold[p.next]) >= 0]
        if not pairs:
            continue
        at: dict[int, dict] = {}
        for now in {p.now for p in pairs}:
            at[now] = {f.speaker: (f.negative, f.anger) for f in forecaster.forecast(rs[: now + 1])}
        parts["forecast"].append(np.array([at[p.now][p.target] for p in pairs], dtype=np.float32))
        parts["persistence"].append(persistence_scores(rs, pairs, forecaster.window))
        parts["trend"].append(trend_scores(rs, pairs))
        labels += [d.gold[p.next] for p in pairs]
        owner += [n] * len(pairs)
    return Scored(np.array(labels), {s: np.concatenate(v) for s, v in parts.items()}, np.array(owner))


def escalation_events(forecaster: Forecaster, dialogues: Sequence[Dialogue], readings: Sequence[Sequence[Reading]],
                      thresholds: StateThresholds | None = None) -> dict[str, float]:
    """What a console is told: each dialogue's readings through ``ConversationState`` (text alone,
    so the fused reading is the text's), and its ``escalation_risk`` events judged against the
    gold of the warned speaker's next turn.

    ``event_precision``: of the events whose speaker speaks again, the share whose next turn is
    angry; ``event_recall``: of the angry turns of a speaker heard before in the dialogue, the
    share warned about since that speaker's previous turn; ``events_on_angry_reading``: events
    raised when the speaker's latest reading already had anger on top; ``events_never_answered``:
    events about a speaker who does not speak again."""
    anger = EMOTION_NAMES.index("anger")
    events = judged = hits = on_angry = unanswered = angry = warned = with_event = 0
    for d, rs in zip(dialogues, readings):
        state = ConversationState(thresholds, forecaster=forecaster)
        raised: list[tuple[int, str | None]] = []  # (position in the dialogue, speaker)
        for position, r in enumerate(rs):
            estimate = AffectEstimate(**AffectEstimate.fields_from_probs(r.probs[:len(EMOTION_NAMES)],
                                                                          r.probs[len(EMOTION_NAMES):]))
            _, fired = state.update(estimate, r.speaker, r.turn_index)
            raised += [(position, e.speaker) for e in fired if e.kind == "escalation_risk"]
        with_event += bool(raised)
        speakers = [r.speaker for r in rs]
        for position, who in raised:
            events += 1
            own = [q for q in range(position + 1) if speakers[q] == who]
            on_angry += bool(own) and max(range(len(EMOTION_NAMES)), key=rs[own[-1]].probs.__getitem__) == anger
            later = next((q for q in range(position + 1, len(rs)) if speakers[q] == who), None)
            if later is None:
                unanswered += 1
            elif d.gold[later][1] >= 0:
                judged += 1
                hits += d.gold[later][1]
        for q, who in enumerate(speakers):
            before = [p for p in range(q) if speakers[p] == who]
            if d.gold[q][1] == 1 and before:
                angry += 1
                warned += any(s == who and before[-1] <= p < q for p, s in raised)
    n = max(1, len(dialogues))
    return {"event_precision": hits / max(1, judged), "event_recall": warned / max(1, angry),
            "events_per_dialogue": events / n, "dialogues_with_event": with_event / n,
            "events_on_angry_reading": on_angry / max(1, events), "events_never_answered": unanswered / max(1, events),
            "events": float(events), "angry_turns_after_a_turn": float(angry)}


def auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    known = labels >= 0
    y = labels[known]
    return float(roc_auc_score(y, scores[known])) if 0 < y.sum() < len(y) else float("nan")


def bootstrap(s: Scored, n: int = 1000, seed: int = 0) -> dict[str, tuple[float, float]]:
    """Percentile intervals over dialogues, for each AUROC and for the forecast's lead over each baseline."""
    rng = np.random.default_rng(seed)
    ids = np.unique(s.dialogue)
    rows = {i: np.flatnonzero(s.dialogue == i) for i in ids}
    stats: dict[str, list[float]] = {}
    for _ in range(n):
        idx = np.concatenate([rows[i] for i in rng.choice(ids, len(ids))])
        for j, target in enumerate(TARGETS):
            values = {name: auroc(s.labels[idx, j], s.scores[name][idx, j]) for name in SCORERS}
            for name, v in values.items():
                stats.setdefault(f"{name}_{target}_auroc", []).append(v)
            for base in SCORERS[1:]:
                stats.setdefault(f"forecast_minus_{base}_{target}_auroc", []).append(values["forecast"] - values[base])
    return {k: tuple(float(q) for q in np.nanquantile(v, [0.025, 0.975])) for k, v in stats.items()}  # type: ignore[misc]


def figures(s: Scored, prefix: str, metrics: dict[str, float], rows: list[list], name: str) -> None:
    ci = bootstrap(s)
    for j, target in enumerate(TARGETS):
        known = s.labels[:, j] >= 0
        for scorer in SCORERS:
            key = f"{scorer}_{target}_auroc"
            value = auroc(s.labels[:, j], s.scores[scorer][:, j])
            metrics[prefix + key] = value
            metrics[prefix + key + "_lo"], metrics[prefix + key + "_hi"] = ci[key]
        for base in SCORERS[1:]:
            key = f"forecast_minus_{base}_{target}_auroc"
            metrics[prefix + key] = metrics[f"{prefix}forecast_{target}_auroc"] - metrics[f"{prefix}{base}_{target}_auroc"]
            metrics[prefix + key + "_lo"], metrics[prefix + key + "_hi"] = ci[key]
        bar = all(ci[f"forecast_minus_{b}_{target}_auroc"][0] > 0 for b in SCORERS[1:])
        rows.append([name, target, int(known.sum()), float(s.labels[known, j].mean())]
                    + [f"{metrics[prefix + f'{sc}_{target}_auroc']:.3f} [{ci[f'{sc}_{target}_auroc'][0]:.3f}, "
                       f"{ci[f'{sc}_{target}_auroc'][1]:.3f}]" for sc in SCORERS]
                    + ["yes" if bar else "no"])


def run(args: argparse.Namespace) -> Report:
    encoder = TextEncoder()
    forecaster = Forecaster()
    metrics: dict[str, float] = {}
    rows: list[list] = []
    sets = {"MELD test": ("", meld_dialogues("test", args.data_root)),
            "EmoContext test": ("emocontext_", emocontext_dialogues(args.data_root))}
    data = {}
    event_rows: list[list] = []
    for name, (prefix, dialogues) in sets.items():
        if args.limit:
            dialogues = dialogues[: args.limit]
        readings = read_all(encoder, dialogues)
        scored = score(forecaster, dialogues, readings)
        figures(scored, prefix, metrics, rows, name)
        data[name] = f"{len(dialogues)} dialogues, {len(scored.labels)} forecast pairs"
        if name == "MELD test":  # EmoContext's chats end on the turn forecast: no event can be judged in them
            told = escalation_events(forecaster, dialogues, readings)
            metrics.update({f"escalation_{k}": v for k, v in told.items()})
            event_rows.append([name, f"{told['events']:.0f}", f"{told['event_precision']:.3f}", f"{told['event_recall']:.3f}",
                               f"{told['events_per_dialogue']:.2f}", f"{told['dialogues_with_event']:.2f}",
                               f"{told['events_on_angry_reading']:.2f}", f"{told['events_never_answered']:.2f}"])
    return Report(
        task="forecast",
        metrics=metrics,
        tables={"Next-turn forecast AUROC [95% bootstrap interval over dialogues]": (
            ["set", "next turn is", "pairs", "base rate", "forecast", "persistence", "trend", "interval of the lead excludes both"],
            rows),
                "The escalation_risk events a console is told (affect/state.py's default thresholds)": (
            ["set", "events", "next turn angry (precision)", "angry turns warned since the speaker's last (recall)",
             "events per dialogue", "dialogues with one", "raised on a turn read as anger", "speaker never speaks again"],
            event_rows)},
        models={"text": encoder.model_id, "forecast": forecaster.model_id, "text prior": f"{DEFAULT_PRIOR} (the library's default; the forecaster learnt from readings under "
                      f"'{forecaster.weights.value.meta['readings_prior']}')"},
        data=data,
        notes=[
            "A pair: after a turn, for a speaker with a reading among the last "
            f"{forecaster.window} turns who speaks again, that speaker's next turn (whenever it comes).",
            "persistence: the speaker's latest P(negative) / P(anger); trend: the state's per-speaker smoothed valence "
            "(negated) and smoothed anger carried one turn ahead along their recent slope (affect/state.py).",
            "Intervals: 95% percentile bootstrap over dialogues, 1000 resamples shared by all scores; "
            "`forecast_minus_*` keys give the paired interval of the forecast's lead.",
            "EmoContext: two forecasts per chat of the user's last turn (its label), one after the user's first turn "
            "and one after the bot's; negative is over happy vs sad/angry chats ('others' mixes both).",
        ],
    )

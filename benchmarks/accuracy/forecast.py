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
from affect.labels import Emotion, Sentiment
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
    for name, (prefix, dialogues) in sets.items():
        if args.limit:
            dialogues = dialogues[: args.limit]
        scored = score(forecaster, dialogues, read_all(encoder, dialogues))
        figures(scored, prefix, metrics, rows, name)
        data[name] = f"{len(dialogues)} dialogues, {len(scored.labels)} forecast pairs"
    return Report(
        task="forecast",
        metrics=metrics,
        tables={"Next-turn forecast AUROC [95% bootstrap interval over dialogues]": (
            ["set", "next turn is", "pairs", "base rate", "forecast", "persistence", "trend", "interval of the lead excludes both"],
            rows)},
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

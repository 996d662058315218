"""Text on everyday dialogue that no entry saw: DailyDialog test, every shipped entry, beside round 1.

Run by ``python -m benchmarks.accuracy text --everyday-dialogue --full-data DIR``, DIR being where
``recipes/text_multicorpus/build_dailydialog.sh`` put DailyDialog. No text entry trained on it and
nothing is chosen on it (the rule ``dailydialog_rule`` in ``recipes/text_multicorpus/config.json``):
it stands for the two-person small talk users bring, where about four turns in five carry no
emotion. Each entry reads every turn with the turns before it (its own context weight) and alone;
the default also under each prior preset (``Analyzer(text_prior=...)``).

Measures: weighted-F1 and macro-F1 over the seven emotions; micro-F1 over the six emotions, the
measure published DailyDialog results use (neutral left out of the counts: a turn counts where
the truth or the answer is an emotion); the share of turns read as neutral beside the true share,
and how many neutral turns were read as an emotion; answering neutral every time is the trivial
baseline beside them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import f1_score
from tqdm import tqdm

from affect.datasets import read_dailydialog
from affect.labels import EMOTION_NAMES, emotion_index
from affect.text import TextEncoder
from affect.text.prior import PRIOR_PRESETS, shift_for
from affect.text.weights import TextWeights
from benchmarks._report import Report, confusion_matrix_png

SEVEN = list(range(len(EMOTION_NAMES)))
NEUTRAL = emotion_index("neutral")
SIX = [i for i in SEVEN if i != NEUTRAL]


def measures(gold: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    return {
        "weighted_f1": float(f1_score(gold, pred, average="weighted", labels=SEVEN, zero_division=0)),
        "macro_f1": float(f1_score(gold, pred, average="macro", labels=SEVEN, zero_division=0)),
        "micro_f1_emotions": float(f1_score(gold, pred, average="micro", labels=SIX, zero_division=0)),
        "share_neutral": float((pred == NEUTRAL).mean()),
        "neutral_read_as_emotion": float(((gold == NEUTRAL) & (pred != NEUTRAL)).sum()),
    }


def _row(entry: str, reading: str, m: dict[str, float]) -> list:
    return [entry, reading, m["weighted_f1"], m["macro_f1"], m["micro_f1_emotions"], m["share_neutral"], int(m["neutral_read_as_emotion"])]


def run_everyday_dialogue(args: argparse.Namespace) -> Report:
    if args.full_data is None:
        raise SystemExit("text --everyday-dialogue needs --full-data DIR (where build_dailydialog.sh put dailydialog/)")
    torch.set_num_threads(2)
    dialogues = read_dailydialog("test", Path(args.full_data))
    if args.limit:
        dialogues = dialogues[: max(1, args.limit // 8)]
    pairs = [[(t.text, t.speaker) for t in d] for d in dialogues]
    gold = np.array([emotion_index(t.emotion) for d in dialogues for t in d])
    entries = list(TextWeights)
    metrics: dict[str, float] = {}
    rows, prior_rows, models = [], [], {}
    default_pred = None
    with tqdm(total=len(gold) * len(entries), desc="DailyDialog test", unit="turn", disable=args.no_progress) as bar:
        for weights in entries:
            encoder = TextEncoder(weights=weights)
            name = encoder.model_id
            models[weights.name] = name
            readings = encoder.read_dialogues(pairs, on_batch=bar.update)
            tag = "default" if weights is TextWeights.DEFAULT else weights.name.lower()
            for reading, weight in ((f"past turns (context weight {encoder.context_weight:g})", None), ("alone", 0.0)):
                pred = encoder.reported(readings, context_weight=weight)[0].argmax(-1).numpy()
                m = measures(gold, pred)
                rows.append(_row(name + (" (default)" if tag == "default" else ""), reading, m))
                suffix = "" if weight is None else "_alone"
                for k, v in m.items():
                    metrics[f"dailydialog_{tag}_{k}{suffix}"] = v
                if tag == "default" and weight is None:
                    default_pred = pred
            if tag == "default":
                for preset in PRIOR_PRESETS:
                    shift = shift_for(preset, encoder.train_meta.get("train_prior"))
                    m = measures(gold, encoder.reported(readings, prior_shift=shift)[0].argmax(-1).numpy())
                    prior_rows.append(_row(name, f"prior {preset}", m))
                    for k, v in m.items():
                        metrics[f"dailydialog_default_{k}_prior_{preset}"] = v
    always = measures(gold, np.full_like(gold, NEUTRAL))
    rows.append(_row("always neutral (trivial baseline)", "", always))
    metrics.update({f"dailydialog_always_neutral_{k}": v for k, v in always.items()})
    metrics["dailydialog_true_share_neutral"] = float((gold == NEUTRAL).mean())
    assert default_pred is not None
    plot = confusion_matrix_png(gold, default_pred, EMOTION_NAMES, args.out_dir / "text-dailydialog-confusion.png",
                                f"DailyDialog test (never trained on), {models[TextWeights.DEFAULT.name]} with past turns")
    header = ["entry", "reading", "weighted-F1 (7)", "macro-F1 (7)", "micro-F1, six emotions", "share read as neutral",
              "neutral turns read as an emotion"]
    support = np.bincount(gold, minlength=len(SEVEN))
    return Report(
        task="text-dailydialog",
        metrics=metrics,
        tables={
            "Every shipped entry, DailyDialog test": (header, rows),
            "The default under each prior preset (with past turns)": (header, prior_rows),
        },
        models=models,
        data={
            "DailyDialog test": f"{len(gold)} turns in {len(dialogues)} two-person dialogues; "
                                + ", ".join(f"{EMOTION_NAMES[i]} {int(support[i])}" for i in SEVEN),
            "source": "ijcnlp_dailydialog test split (Li et al., 2017; CC BY-NC-SA 4.0), built by recipes/text_multicorpus/build_dailydialog.sh",
        },
        notes=[
            "No entry trained on DailyDialog and nothing was chosen on it (recipes/text_multicorpus/config.json, dailydialog_rule): "
            "a reading of everyday dialogue none of the models saw, not a tuned figure.",
            "Speakers are A and B by turn parity; past turns: up to 8 earlier turns of the same dialogue.",
            "micro-F1, six emotions: sklearn micro-F1 over the labels anger..surprise (neutral in neither count), "
            "the measure of published DailyDialog emotion results.",
            *([f"--limit {args.limit}: a partial run, not the reported figures."] if args.limit else []),
        ],
        plots=[str(plot)],
    )

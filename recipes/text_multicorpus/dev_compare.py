"""Shipped text weights side by side on the dev splits of the in-domain bars (never test).

    python -m recipes.text_multicorpus.dev_compare MINILM_MULTICORPUS_V2 MINILM_MULTICORPUS_V3
    python -m recipes.text_multicorpus.dev_compare MINILM_MULTICORPUS_V5 MINILM_MULTICORPUS_V6 --mean

MELD dev (all 1,109 turns, with context and without): weighted-F1 over the seven emotions and
sentiment macro-F1; GoEmotions-Ekman dev (single-label comments): macro-F1. The same measures
``benchmarks.accuracy text`` reads on test, through the same library path (default prior), so a
new weights entry is chosen on these and test is read once afterwards. ``--mean`` also scores
the entries' reported log-probabilities averaged (their normalised geometric mean: an ensemble
the library does not ship; is it worth one?).
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.metrics import f1_score

from affect.datasets import read_goemotions_ekman, read_meld
from affect.labels import EMOTION_NAMES, SENTIMENTS, emotion_index
from affect.text import TextEncoder
from recipes.text_multicorpus.teacher_table import averaged_log_probs

log = logging.getLogger("recipes.text_multicorpus")
LABELS = list(range(len(EMOTION_NAMES)))
CONTEXTS = (("", None), ("_no_context", 0.0))  # None: the entry's own context weight


@dataclass(frozen=True)
class DevSplits:
    """The dev splits every entry is read on, read from disk once."""

    meld: list  # MELD dev dialogues
    goemotions: list  # GoEmotions-Ekman dev comments

    @staticmethod
    def read() -> DevSplits:
        return DevSplits(read_meld("dev"), read_goemotions_ekman("dev"))


@dataclass(frozen=True)
class DevReadings:
    """One entry's reported log-probabilities on the dev splits: MELD emotion and sentiment per context, GoEmotions emotion."""

    meld: dict[str, tuple[np.ndarray, np.ndarray]]
    goemotions: np.ndarray

    @staticmethod
    def mean(readings: list[DevReadings]) -> DevReadings:
        """The entries averaged as the teacher averages them (``averaged_log_probs``)."""
        def average(arrays: list[np.ndarray]) -> np.ndarray:
            return averaged_log_probs([torch.from_numpy(a) for a in arrays]).numpy()

        return DevReadings({k: tuple(average([r.meld[k][i] for r in readings]) for i in (0, 1)) for k in readings[0].meld},
                           average([r.goemotions for r in readings]))


def dev_readings(weights: str, dev: DevSplits) -> DevReadings:
    encoder = TextEncoder(weights=weights)
    readings = encoder.read_dialogues([[(t.text, t.speaker) for t in d] for d in dev.meld])
    meld = {}
    for name, weight in CONTEXTS:
        emo, sent = encoder.reported(readings, context_weight=weight)
        meld[name] = (emo.numpy(), sent.numpy())
    goemo = encoder.reported(encoder.read_dialogues([[(e.text, None)] for e in dev.goemotions]))[0].numpy()
    return DevReadings(meld, goemo)


def dev_figures(readings: DevReadings, dev: DevSplits) -> dict[str, float]:
    turns = [t for d in dev.meld for t in d]
    gold = np.array([emotion_index(t.emotion) for t in turns])
    gold_sent = np.array([SENTIMENTS.index(t.sentiment) for t in turns])
    out: dict[str, float] = {}
    for name, _ in CONTEXTS:
        emo, sent = readings.meld[name]
        out[f"meld_dev_weighted_f1{name}"] = float(f1_score(gold, emo.argmax(-1), average="weighted", labels=LABELS, zero_division=0))
        out[f"meld_dev_sentiment_macro_f1{name}"] = float(f1_score(gold_sent, sent.argmax(-1), average="macro"))
    go_gold = np.array([emotion_index(e.emotion) for e in dev.goemotions])
    out["goemotions_ekman_dev_macro_f1"] = float(f1_score(go_gold, readings.goemotions.argmax(-1), average="macro",
                                                          labels=LABELS, zero_division=0))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("weights", nargs="+", help="TextWeights member names")
    ap.add_argument("--mean", action="store_true", help="also score the entries' log-probabilities averaged")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    dev = DevSplits.read()
    readings = {w: dev_readings(w, dev) for w in args.weights}
    figures = {w: dev_figures(r, dev) for w, r in readings.items()}
    if args.mean:
        figures["mean of " + " + ".join(args.weights)] = dev_figures(DevReadings.mean(list(readings.values())), dev)
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

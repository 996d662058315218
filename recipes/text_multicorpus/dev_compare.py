"""Shipped text weights side by side on the dev splits of the in-domain bars (never test).

    python -m recipes.text_multicorpus.dev_compare MINILM_MULTICORPUS_V2 MINILM_MULTICORPUS_V3

MELD dev (all 1,109 turns, with context and without): weighted-F1 over the seven emotions and
sentiment macro-F1; GoEmotions-Ekman dev (single-label comments): macro-F1. The same measures
``benchmarks.accuracy text`` reads on test, through the same library path (default prior), so a
new weights entry is chosen on these and test is read once afterwards.
"""

from __future__ import annotations

import argparse
import json
import logging

import numpy as np
import torch
from sklearn.metrics import f1_score

from affect.datasets import read_goemotions_ekman, read_meld
from affect.labels import EMOTION_NAMES, SENTIMENTS, emotion_index
from affect.text import TextEncoder

log = logging.getLogger("recipes.text_multicorpus")


def dev_figures(weights: str) -> dict[str, float]:
    encoder = TextEncoder(weights=weights)
    meld = read_meld("dev")
    pairs = [[(t.text, t.speaker) for t in d] for d in meld]
    turns = [t for d in meld for t in d]
    gold = np.array([emotion_index(t.emotion) for t in turns])
    gold_sent = np.array([SENTIMENTS.index(t.sentiment) for t in turns])
    labels = list(range(len(EMOTION_NAMES)))
    out: dict[str, float] = {}
    readings = encoder.read_dialogues(pairs)
    for name, weight in (("", None), ("_no_context", 0.0)):  # None: the entry's own context weight
        emo, sent = encoder.reported(readings, context_weight=weight)
        pred = emo.argmax(-1).numpy()
        out[f"meld_dev_weighted_f1{name}"] = float(f1_score(gold, pred, average="weighted", labels=labels, zero_division=0))
        out[f"meld_dev_sentiment_macro_f1{name}"] = float(f1_score(gold_sent, sent.argmax(-1).numpy(), average="macro"))
    goemo = read_goemotions_ekman("dev")
    go_pred = encoder.reported(encoder.read_dialogues([[(e.text, None)] for e in goemo]))[0].argmax(-1).numpy()
    go_gold = np.array([emotion_index(e.emotion) for e in goemo])
    out["goemotions_ekman_dev_macro_f1"] = float(f1_score(go_gold, go_pred, average="macro", labels=labels, zero_division=0))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("weights", nargs="+", help="TextWeights member names")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    print(json.dumps({w: dev_figures(w) for w in args.weights}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Fit the text model's decision biases and temperatures on MELD dev, and store them in the weights.

    python -m recipes.text_meld.calibrate [--weights affect/models/text/minilm_meld_v1.safetensors]

Two small fits, both on dev only (test is never read):
- per-emotion logit biases that maximise dev weighted-F1 (coordinate search; the network is
  trained for likelihood, the benchmark scores F1, so the decision thresholds are tuned apart);
- one temperature per head that minimises dev negative log-likelihood of the biased logits
  (temperature scaling, Guo et al. 2017), so the reported confidences are calibrated.
Biases are kept small (|b| <= 1) and searched on a coarse grid to limit overfitting to dev.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import f1_score

from affect.datasets import read_meld
from affect.labels import SENTIMENTS, emotion_index
from affect.text._base import load_base
from affect.text._batching import predict_dialogues
from affect.text._weights_io import frozen_names, load_text_net, save_text_weights
from evaluation.calibration import expected_calibration_error
from recipes._calibration import fit_temperature

log = logging.getLogger("recipes.text_meld.calibrate")
GRID = np.round(np.arange(-1.0, 1.01, 0.1), 2)


def fit_biases(logits: np.ndarray, gold: np.ndarray, rounds: int = 3) -> np.ndarray:
    bias = np.zeros(logits.shape[1])

    def score(b: np.ndarray) -> float:
        return f1_score(gold, (logits + b).argmax(1), average="weighted", zero_division=0)

    best = score(bias)
    for _ in range(rounds):
        improved = False
        for k in range(1, logits.shape[1]):  # class 0 (neutral) is the reference
            for value in GRID:
                trial = bias.copy()
                trial[k] = value
                s = score(trial)
                if s > best + 1e-4:
                    best, bias, improved = s, trial, True
        if not improved:
            break
    return bias


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", type=Path, default=Path("affect/models/text/minilm_meld_v1.safetensors"))
    ap.add_argument("--data-root", type=Path, default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    tokenizer, base = load_base()
    net, meta = load_text_net(args.weights, base)
    max_tokens = meta.get("config", {}).get("max_tokens", 96)
    dev = read_meld("dev", args.data_root)
    pairs = [[(t.text, t.speaker) for t in d] for d in dev]
    gold = np.array([emotion_index(t.emotion) for d in dev for t in d])
    gold_sent = np.array([list(SENTIMENTS).index(t.sentiment) for d in dev for t in d])
    net.emotion_bias.zero_()
    net.emotion_temperature.fill_(1.0)
    net.sentiment_temperature.fill_(1.0)
    emo, sent = predict_dialogues(net, tokenizer, pairs, max_tokens=max_tokens)  # raw logits
    emo, sent = emo.numpy(), sent.numpy()

    bias = fit_biases(emo, gold)
    t_emo = fit_temperature(emo + bias, gold)
    t_sent = fit_temperature(sent, gold_sent)
    probs_before = torch.softmax(torch.tensor(emo), -1).numpy()
    probs_after = torch.softmax(torch.tensor((emo + bias) / t_emo), -1).numpy()
    report = {
        "emotion_bias": bias.round(3).tolist(),
        "emotion_temperature": round(t_emo, 4),
        "sentiment_temperature": round(t_sent, 4),
        "dev_weighted_f1_before": float(f1_score(gold, emo.argmax(1), average="weighted")),
        "dev_weighted_f1_after": float(f1_score(gold, (emo + bias).argmax(1), average="weighted")),
        "dev_ece_before": expected_calibration_error(probs_before, gold),
        "dev_ece_after": expected_calibration_error(probs_after, gold),
    }
    log.info("calibration on MELD dev: %s", json.dumps(report))
    net.emotion_bias.copy_(torch.tensor(bias, dtype=torch.float32))
    net.emotion_temperature.fill_(t_emo)
    net.sentiment_temperature.fill_(t_sent)
    meta["calibration"] = report
    save_text_weights(net, args.weights, meta, frozen=frozen_names(args.weights))
    log.info("wrote %s", args.weights)


if __name__ == "__main__":
    main()

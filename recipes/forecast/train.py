"""Train the next-turn forecaster on out-of-fold text readings, choose it on MELD dev, ship it.

    python -m recipes.forecast.oof                 # first: the readings (about 10 minutes)
    python -m recipes.forecast.train [--out affect/models/forecast/forecast_gru_v2.safetensors]

Pairs (``affect.forecast_features.next_turn_pairs``): after each turn of a dialogue, for each
speaker with a reading in the window who speaks again, the gold label of that speaker's next
turn: negative sentiment, anger. MELD train dialogues (and the EmoContext train sample, where
the config says so) teach; a second copy of each training dialogue with a random
``gap_augment`` share of its turns dropped teaches what a turn without a reading (a gap in the
indices) looks like. Every training set, window and hidden size of the config is trained with
early stopping on MELD dev; the choice rule is in ``config.json``. Dev figures of the chosen model sit beside the two baselines on the same pairs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score

from affect.forecast import ForecastNet, batch_inputs, save_forecast_net
from affect.forecast_baselines import persistence_scores, trend_scores
from affect.forecast_features import Reading, next_turn_pairs
from recipes.forecast.oof import DEFAULT_OUT

log = logging.getLogger("recipes.forecast")
HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DEFAULT_WEIGHTS = ROOT / "affect" / "models" / "forecast" / "forecast_gru_v2.safetensors"


@dataclass
class PairSet:
    """Every pair of a set of dialogues as network inputs, labels (-1 unknown) and baselines."""

    steps: torch.Tensor
    lengths: torch.Tensor
    target: torch.Tensor
    labels: np.ndarray  # [N, 2] negative, anger
    persistence: np.ndarray
    trend: np.ndarray
    dialogue: np.ndarray  # index of the dialogue each pair comes from (for bootstrap resampling)

    def __len__(self) -> int:
        return len(self.labels)


def readings_of(d: dict) -> list[Reading]:
    return [Reading(int(i), s, tuple(float(x) for x in p)) for (i, s, _, _), p in zip(d["turns"], d["probs"])]


def pair_set(dials: list[dict], window: int, drop: float = 0.0, seed: int = 0) -> PairSet:
    rng = np.random.default_rng(seed)
    windows, labels, pers, trend, owner = [], [], [], [], []
    for n, d in enumerate(dials):
        keep = [k for k in range(len(d["turns"])) if drop == 0 or rng.random() >= drop]
        every = readings_of(d)
        readings = [every[k] for k in keep]
        gold = [d["turns"][k][2:] for k in keep]
        pairs = [p for p in next_turn_pairs(readings, window) if max(gold[p.next]) >= 0]
        if not pairs:
            continue
        windows += [(readings[max(0, p.now - window + 1): p.now + 1], p.target) for p in pairs]
        labels += [gold[p.next] for p in pairs]
        pers.append(persistence_scores(readings, pairs, window))
        trend.append(trend_scores(readings, pairs))
        owner += [n] * len(pairs)
    steps, lengths, target = batch_inputs(windows)
    return PairSet(steps, lengths, target, np.array(labels, dtype=np.int64), np.concatenate(pers), np.concatenate(trend),
                   np.array(owner))


def concat(a: PairSet, b: PairSet) -> PairSet:
    width = max(a.steps.shape[1], b.steps.shape[1])
    pad = lambda s: F.pad(s, (0, 0, 0, width - s.shape[1]))  # noqa: E731
    return PairSet(torch.cat([pad(a.steps), pad(b.steps)]), torch.cat([a.lengths, b.lengths]), torch.cat([a.target, b.target]),
                   np.concatenate([a.labels, b.labels]), np.concatenate([a.persistence, b.persistence]),
                   np.concatenate([a.trend, b.trend]), np.concatenate([a.dialogue, b.dialogue + a.dialogue.max() + 1]))


def aurocs(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    out = []
    for j in range(2):
        known = labels[:, j] >= 0
        out.append(float(roc_auc_score(labels[known, j], scores[known, j])))
    return out[0], out[1]


@torch.inference_mode()
def predict(net: ForecastNet, data: PairSet, batch: int = 4096) -> np.ndarray:
    net.eval()
    out = [torch.sigmoid(net(data.steps[i:i + batch], data.lengths[i:i + batch], data.target[i:i + batch]))
           for i in range(0, len(data), batch)]
    return torch.cat(out).numpy()


def fit(train: PairSet, dev: PairSet, hidden: int, h: dict, seed: int) -> tuple[ForecastNet, dict]:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = ForecastNet(hidden=hidden)
    opt = torch.optim.AdamW(net.parameters(), lr=h["lr"], weight_decay=h["weight_decay"])
    labels = torch.from_numpy(train.labels).float()
    best: dict = {"score": -1.0}
    history, stale = [], 0
    for epoch in range(h["epochs"]):
        net.train()
        order = torch.from_numpy(rng.permutation(len(train)))
        total = 0.0
        for i in range(0, len(order), h["batch_size"]):
            idx = order[i:i + h["batch_size"]]
            logits = net(train.steps[idx], train.lengths[idx], train.target[idx])
            y = labels[idx]
            known = y >= 0
            loss = F.binary_cross_entropy_with_logits(logits[known], y[known])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        neg, ang = aurocs(dev.labels, predict(net, dev))
        score = (neg + ang) / 2
        history.append({"epoch": epoch, "loss": total / len(train), "dev_negative_auroc": neg, "dev_anger_auroc": ang})
        if score > best["score"]:
            best = {"score": score, "epoch": epoch, "negative": neg, "anger": ang,
                    "state": {k: v.clone() for k, v in net.state_dict().items()}}
            stale = 0
        else:
            stale += 1
            if stale >= h["patience"]:
                break
    net.load_state_dict(best["state"])
    net.eval()
    return net, {k: v for k, v in best.items() if k != "state"} | {"history": history}


def escalation_threshold(labels: np.ndarray, anger: np.ndarray, precision: float) -> dict:
    """The lowest forecast P(anger) at which at least ``precision`` of the warned next turns are angry."""
    y, p = labels[:, 1], anger
    for t in np.round(np.arange(0.05, 0.95, 0.01), 2):
        warned = p >= t
        if warned.sum() >= 20 and y[warned].mean() >= precision:
            return {"threshold": float(t), "precision": float(y[warned].mean()), "recall": float(y[warned].sum() / y.sum()),
                    "warned_share": float(warned.mean()), "base_rate": float(y.mean())}
    return {"threshold": None, "base_rate": float(y.mean())}


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=Path, default=HERE / "config.json")
    ap.add_argument("--readings", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--out", type=Path, default=DEFAULT_WEIGHTS)
    ap.add_argument("--summary", type=Path, default=HERE / "train-summary.json")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    cfg = json.loads(args.config.read_text())
    h, seed = cfg["forecast"], cfg["seed"]
    torch.set_num_threads(h["torch_threads"])
    dials = torch.load(args.readings, weights_only=False)["dialogues"]
    train_d = [d for d in dials if d["split"] == "train"]
    dev_d = [d for d in dials if d["split"] == "dev" and d["corpus"] == "meld"]
    emo_dev_d = [d for d in dials if d["split"] == "dev" and d["corpus"] == "emocontext"]

    runs, best = [], None
    for corpora, window in [(c, w) for c in h["train_corpora"] for w in h["windows"]]:
        chosen_d = [d for d in train_d if d["corpus"] in corpora]
        train = concat(pair_set(chosen_d, window), pair_set(chosen_d, window, h["gap_augment"], seed))
        dev = pair_set(dev_d, window)
        log.info("%s, window %d: %d training pairs, %d MELD dev pairs", "+".join(corpora), window, len(train), len(dev))
        for hidden in h["hiddens"]:
            t0 = time.time()
            net, info = fit(train, dev, hidden, h, seed)
            row = {"train_corpora": corpora, "window": window, "hidden": hidden, "best_epoch": info["epoch"],
                   "dev_negative_auroc": info["negative"],
                   "dev_anger_auroc": info["anger"], "dev_mean_auroc": info["score"], "seconds": round(time.time() - t0),
                   "params": sum(p.numel() for p in net.parameters())}
            runs.append(row)
            log.info("%s", row)
            if best is None or row["dev_mean_auroc"] > best[0]["dev_mean_auroc"] + 1e-9:  # ties: the earlier, smaller
                best = (row, net, dev)
    assert best is not None
    row, net, dev = best
    forecast = predict(net, dev)
    emo_dev = pair_set(emo_dev_d, row["window"])
    summary = {
        "chosen": row,
        "runs": runs,
        "meld_dev": {
            "pairs": len(dev),
            "forecast_auroc": aurocs(dev.labels, forecast),
            "persistence_auroc": aurocs(dev.labels, dev.persistence),
            "trend_auroc": aurocs(dev.labels, dev.trend),
            "base_rates": [float(dev.labels[dev.labels[:, j] >= 0, j].mean()) for j in range(2)],
        },
        "emocontext_dev": {
            "pairs": len(emo_dev),
            "forecast_anger_auroc": aurocs(emo_dev.labels, predict(net, emo_dev))[1],
            "persistence_anger_auroc": aurocs(emo_dev.labels, emo_dev.persistence)[1],
            "trend_anger_auroc": aurocs(emo_dev.labels, emo_dev.trend)[1],
        },
        "escalation": escalation_threshold(dev.labels, forecast[:, 1], 0.35),
    }
    meta = {"recipe": "recipes/forecast", "config": cfg, "chosen": row, "meld_dev": summary["meld_dev"],
            "escalation": summary["escalation"]}
    save_forecast_net(net, args.out, row["window"], meta)
    summary["weights"] = {"file": str(args.out.resolve().relative_to(ROOT) if args.out.resolve().is_relative_to(ROOT) else args.out), "sha256": file_sha256(args.out),
                          "num_params": row["params"], "bytes": args.out.stat().st_size}
    args.summary.write_text(json.dumps(summary, indent=2) + "\n")
    log.info("chosen %s; MELD dev %s; escalation %s; wrote %s", row, summary["meld_dev"], summary["escalation"], args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

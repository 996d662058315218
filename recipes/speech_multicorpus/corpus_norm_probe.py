"""Probe: standardise the encoder frames by the statistics of the corpus (the deployment) they come from, LOCO.

    python -m recipes.speech_multicorpus.corpus_norm_probe MODE [--prior-frames K] [--backbone B]

Per-speaker standardisation fails where a speaker keeps one emotion (speech model card, round 2);
statistics over a whole corpus pool many speakers and emotions, as a deployment's running
statistics over all its callers would. Training corpora are each standardised by their own
statistics (per channel copy) in every mode but ``none``. The corpus left out is standardised by:

``none``: nothing (the shipped recipe, same head and seed); ``oracle``: all of its clips of
that channel copy (unlabelled; what a deployment converges to); ``online``: the clips read so
far, in a seeded order, shrunk towards the pooled statistics of the training corpora with the
weight of K frames (what a deployment sees from its first call on); ``prior``: the pooled
training statistics alone (a deployment's very first turn). Figures and the decision: the speech
model card.
"""

from __future__ import annotations

import argparse
import json
import logging

import numpy as np
import torch

from affect.speech._backbone import backbone_spec
from recipes.speech_multicorpus import train as T
from recipes.speech_multicorpus.features import DEFAULT_CACHE

log = logging.getLogger("recipes.speech_multicorpus")


def moments(feats: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Sum, sum of squares and frame count, one item at a time (the every-layer cache is large)."""
    total, squares, n = torch.zeros(feats[0].shape[1], dtype=torch.float64), 0, 0
    for f in feats:
        x = f.double()
        total, squares, n = total + x.sum(0), squares + (x ** 2).sum(0), n + x.shape[0]
    return total, squares, n


def mean_std(total: torch.Tensor, squares: torch.Tensor, n: float) -> tuple[torch.Tensor, torch.Tensor]:
    mean = total / n
    return mean.float(), (squares / n - mean ** 2).clamp(min=1e-4).sqrt().float()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=("none", "oracle", "online", "prior"))
    ap.add_argument("--prior-frames", type=float, default=3000.0)
    ap.add_argument("--backbone", default="whisper-tiny.en-layers")
    ap.add_argument("--seed", type=int, default=0, help="order of the held-out clips (online)")
    ap.add_argument("--head", choices=("mix", "concat"), default="mix",
                    help="mix: each layer normalised, then a learnt mix (the v3 head); concat: the layers' outputs "
                         "side by side, normalised together")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(1)
    cfg = json.loads((T.HERE / "config.json").read_text())
    spec = backbone_spec(args.backbone)
    items = T.load_items(DEFAULT_CACHE, args.backbone, tuple(cfg["corpora"]), cfg["copies"])
    groups: dict[tuple[str, int], np.ndarray] = {}
    for key in sorted(set(zip(items.corpora, items.variants))):
        groups[key] = np.flatnonzero((items.corpora == key[0]) & (items.variants == key[1]))
    sums = {key: moments([items.feats[i] for i in idx]) for key, idx in groups.items()}
    raw = list(items.feats)
    if args.mode != "none":  # every corpus by its own statistics; the held-out one is redone per fold
        for key, idx in groups.items():
            mean, std = mean_std(*sums[key])
            for i in idx:
                items.feats[i] = ((raw[i].float() - mean) / std).half()
    results = {}
    for held in cfg["corpora"]:
        if args.mode in ("online", "prior"):
            rest = [sums[k] for k in sums if k[0] != held]
            prior_mean, prior_std = mean_std(sum(s[0] for s in rest), sum(s[1] for s in rest), sum(s[2] for s in rest))
            prior_sq = prior_std.double() ** 2 + prior_mean.double() ** 2
            k = float("inf") if args.mode == "prior" else args.prior_frames
            for key, idx in groups.items():
                if key[0] != held:
                    continue
                total, squares, n = torch.zeros_like(prior_sq), torch.zeros_like(prior_sq), 0
                for i in np.random.default_rng(args.seed).permutation(idx):
                    x = raw[i].double()
                    total, squares, n = total + x.sum(0), squares + (x ** 2).sum(0), n + x.shape[0]
                    if np.isinf(k):
                        mean, std = prior_mean, prior_std
                    else:
                        mean = (total + k * prior_mean.double()) / (n + k)
                        var = (squares + k * prior_sq) / (n + k) - mean ** 2
                        mean, std = mean.float(), var.clamp(min=1e-4).sqrt().float()
                    items.feats[i] = ((raw[i].float() - mean) / std).half()
        rest = items.corpora != held
        train = items.select(rest & (items.splits == "train"))
        val = items.select(rest & (items.splits == "validation") & (items.variants <= 1))
        layers = spec.layers if args.head == "mix" else 1
        net, _ = T.train_head(train, val, cfg, spec.feature_dim // layers, "layer", layers=layers,
                              tag=f"[{args.mode} {args.head} -{held}]")
        results[held] = T.held_out_scores(net, items.select(items.corpora == held))
        log.info("held out %s: %s", held, {k: round(v, 3) for k, v in results[held].items()})
    summary = {"mode": args.mode, "head": args.head, "prior_frames": args.prior_frames, "backbone": args.backbone,
               "mean_uar_clean": float(np.mean([r["uar_clean"] for r in results.values()])),
               "mean_uar_telephone": float(np.mean([r["uar_telephone"] for r in results.values()])),
               "held_out": results}
    print(json.dumps(summary))
    out = T.HERE / "checkpoints" / f"corpus-norm-{args.mode}-{args.head}-{args.backbone}-{args.prior_frames:g}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

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
from affect.speech.adaptation import DeploymentStatistics
from recipes.speech_multicorpus import train as T
from recipes.speech_multicorpus.features import DEFAULT_CACHE

log = logging.getLogger("recipes.speech_multicorpus")


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
    for corpus, variant in sorted(set(zip(items.corpora.tolist(), items.variants.tolist()))):
        groups[(corpus, variant)] = np.flatnonzero((items.corpora == corpus) & (items.variants == variant))
    sums = T.corpus_moments(items, np.ones(len(items), bool))  # over all clips: the probe may favour itself
    raw = list(items.feats)
    if args.mode != "none":  # every corpus by its own statistics; the held-out one is redone per fold
        for key, idx in groups.items():
            mean, std = T.mean_std([sums[key]])
            for i in idx:
                items.feats[i] = ((raw[i].float() - mean) / std).half()
    results = {}
    for held in cfg["corpora"]:
        if args.mode in ("online", "prior"):
            prior_mean, prior_std = T.mean_std([m for k, m in sums.items() if k[0] != held])
            for key, idx in groups.items():
                if key[0] != held:
                    continue
                heard = DeploymentStatistics(prior_mean, prior_std, prior_frames=args.prior_frames, memory_frames=float("inf"))
                for i in np.random.default_rng(args.seed).permutation(idx):
                    # the library's map moves frames onto the prior; standardising by the prior gives the head's input
                    (x,) = heard.observe_and_map([raw[i].float()]) if args.mode == "online" else (raw[i].float(),)
                    items.feats[i] = ((x - prior_mean) / prior_std).half()
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

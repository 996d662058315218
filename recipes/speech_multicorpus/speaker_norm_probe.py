"""Probe (not shipped): per-speaker standardisation of the encoder frames before the head, LOCO.

    python -m recipes.speech_multicorpus.speaker_norm_probe MODE [BACKBONE] [PRIOR_FRAMES]

MODE ``oracle``: each clip standardised by all clips of its speaker (and channel copy);
``online``: by the speaker's clips so far in a seeded order, shrunk towards the global
statistics with the weight of PRIOR_FRAMES frames; ``single``: by the clip alone, shrunk the
same way; ``none``: as cached. The global statistics are taken over all items (the held-out
corpus included), which can only favour the probe. Figures and the decision: the speech model
card ("Tried in round 2").
"""
import argparse
import json
import logging

import numpy as np
import torch

from recipes.speech_multicorpus import train as T
from recipes.speech_multicorpus.features import DEFAULT_CACHE, cache_path
from affect.speech._backbone import backbone_spec

MODES = ("none", "oracle", "online", "single")


def stats(feats):
    """Sum, sum of squares and frame count, one item at a time (the every-layer cache is large)."""
    total, squares, n = 0, 0, 0
    for f in feats:
        x = f.double()
        total, squares, n = total + x.sum(0), squares + (x ** 2).sum(0), n + x.shape[0]
    return total, squares, n


def normalise(feats, idx_groups, global_stats, shrink, online):
    """Each group's items standardised by the group's statistics (all of them, or, ``online``, those
    seen so far in a seeded order), shrunk towards ``global_stats`` with ``shrink`` pseudo-frames."""
    g_mu, g_var = global_stats
    out = list(feats)
    for idx in idx_groups:
        if not online:
            s, q, n = stats([feats[i] for i in idx])
            mu = (s + shrink * g_mu) / (n + shrink); var = (q + shrink * (g_var + g_mu ** 2)) / (n + shrink) - mu ** 2
            for i in idx:
                out[i] = ((feats[i].float() - mu.float()) / var.clamp(min=1e-4).sqrt().float()).half()
        else:
            order = np.random.default_rng(0).permutation(idx)
            s = torch.zeros_like(g_mu); q = torch.zeros_like(g_mu); n = 0
            for i in order:
                f = feats[i].float()
                s += f.sum(0).double(); q += (f.double() ** 2).sum(0); n += f.shape[0]
                mu = (s + shrink * g_mu) / (n + shrink); var = (q + shrink * (g_var + g_mu ** 2)) / (n + shrink) - mu ** 2
                out[i] = ((f - mu.float()) / var.clamp(min=1e-4).sqrt().float()).half()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m recipes.speech_multicorpus.speaker_norm_probe",
                                 description="Per-speaker standardisation before the head, leave one corpus out (a probe).")
    ap.add_argument("mode", choices=MODES)
    ap.add_argument("backbone", nargs="?", default="whisper-tiny.en")
    ap.add_argument("prior_frames", nargs="?", type=float, default=0.0, help="pseudo-frames of the global statistics")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(1)
    mode, backbone, shrink = args.mode, args.backbone, args.prior_frames
    cfg = json.loads((T.HERE / "config.json").read_text())

    items = T.load_items(DEFAULT_CACHE, backbone, tuple(cfg["corpora"]), cfg["copies"])
    speakers = []
    for c in cfg["corpora"]:
        d = torch.load(cache_path(DEFAULT_CACHE, backbone, c, cfg["copies"]))
        speakers += [d["speakers"][it["clip"]] for it in d["items"]]
    speakers = np.array([f"{c}:{s}" for c, s in zip(items.corpora, speakers)])

    if mode != "none":
        g_sum, g_sq, g_n = stats(items.feats)
        g_mu = g_sum / g_n
        keys: dict = {}
        for i in range(len(items)):
            keys.setdefault(i if mode == "single" else (speakers[i], items.variants[i]), []).append(i)
        items.feats = normalise(items.feats, list(keys.values()), (g_mu, g_sq / g_n - g_mu ** 2), shrink,
                                online=mode in ("online", "single"))

    spec = backbone_spec(backbone)
    res = {}
    for held in cfg["corpora"]:
        rest = items.corpora != held
        tr = items.select(rest & (items.splits == "train"))
        va = items.select(rest & (items.splits == "validation") & (items.variants <= 1))
        net, _ = T.train_head(tr, va, cfg, spec.feature_dim // spec.layers, "layer", layers=spec.layers,
                              tag=f"[{mode} -{held}]")
        res[held] = T.held_out_scores(net, items.select(items.corpora == held))
        logging.info("held out %s: %s", held, {k: round(v, 3) for k, v in res[held].items()})
    print(mode, backbone, shrink, "MEAN clean", np.mean([r["uar_clean"] for r in res.values()]),
          "tel", np.mean([r["uar_telephone"] for r in res.values()]),
          {h: (round(r["uar_clean"], 3), round(r["max_predicted_share_clean"], 2)) for h, r in res.items()})
    (T.HERE / "checkpoints").mkdir(exist_ok=True)
    (T.HERE / "checkpoints" / f"speaker-norm-{mode}-{backbone}-{shrink}.json").write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()

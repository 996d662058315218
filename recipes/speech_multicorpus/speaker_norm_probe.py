"""Probe (not shipped): per-speaker standardisation of the encoder frames before the head, LOCO.

    python -m recipes.speech_multicorpus.speaker_norm_probe MODE [BACKBONE] [PRIOR_FRAMES]

MODE ``oracle``: each clip standardised by all clips of its speaker (and channel copy);
``online``: by the speaker's clips so far in a seeded order, shrunk towards the global
statistics with the weight of PRIOR_FRAMES frames; ``single``: by the clip alone, shrunk the
same way; ``none``: as cached. The global statistics are taken over all items (the held-out
corpus included), which can only favour the probe. Figures and the decision: the speech model
card ("Tried in round 2").
"""
import json
import logging
import sys

import numpy as np
import torch

from recipes.speech_multicorpus import train as T
from recipes.speech_multicorpus.features import DEFAULT_CACHE, cache_path
from affect.speech._backbone import backbone_spec

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
torch.set_num_threads(1)
mode = sys.argv[1]          # none | oracle | online
backbone = sys.argv[2] if len(sys.argv) > 2 else "whisper-tiny.en"
shrink = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0   # pseudo-frames of the global stats
cfg = json.loads((T.HERE / "config.json").read_text())

def load(corpus):
    d = torch.load(cache_path(DEFAULT_CACHE, backbone, corpus, cfg["copies"]))
    spk = [d["speakers"][it["clip"]] for it in d["items"]]
    return d, spk

items = T.load_items(DEFAULT_CACHE, backbone, tuple(cfg["corpora"]), cfg["copies"])
speakers = []
for c in cfg["corpora"]:
    speakers += load(c)[1]
speakers = np.array([f"{c}:{s}" for c, s in zip(items.corpora, speakers)])

def stats(feats):
    """Sum, sum of squares and frame count, one item at a time (the every-layer cache is large)."""
    total, squares, n = 0, 0, 0
    for f in feats:
        x = f.double()
        total, squares, n = total + x.sum(0), squares + (x ** 2).sum(0), n + x.shape[0]
    return total, squares, n

g_sum, g_sq, g_n = stats(items.feats)
g_mu = g_sum / g_n; g_var = g_sq / g_n - g_mu ** 2

def normalise(feats, idx_groups, online_order=None):
    out = list(feats)
    for idx in idx_groups:
        if online_order is None:
            s, q, n = stats([feats[i] for i in idx])
            k = shrink
            mu = (s + k * g_mu) / (n + k); var = (q + k * (g_var + g_mu ** 2)) / (n + k) - mu ** 2
            for i in idx:
                out[i] = ((feats[i].float() - mu.float()) / var.clamp(min=1e-4).sqrt().float()).half()
        else:
            rng = np.random.default_rng(0)
            order = rng.permutation(idx)
            s = torch.zeros_like(g_mu); q = torch.zeros_like(g_mu); n = 0
            for i in order:
                f = feats[i].float()
                s += f.sum(0).double(); q += (f.double() ** 2).sum(0); n += f.shape[0]
                k = shrink
                mu = (s + k * g_mu) / (n + k); var = (q + k * (g_var + g_mu ** 2)) / (n + k) - mu ** 2
                out[i] = ((f - mu.float()) / var.clamp(min=1e-4).sqrt().float()).half()
    return out

def groups(mask):
    keys = {}
    for i in np.flatnonzero(mask):
        keys.setdefault(i if mode == "single" else (speakers[i], items.variants[i]), []).append(i)
    return list(keys.values())

if mode != "none":
    allmask = np.ones(len(items), bool)
    items.feats = normalise(items.feats, groups(allmask), online_order=(mode in ("online", "single")) or None)

spec = backbone_spec(backbone)
res = {}
for held in cfg["corpora"]:
    rest = items.corpora != held
    tr = items.select(rest & (items.splits == "train"))
    va = items.select(rest & (items.splits == "validation") & (items.variants <= 1))
    net, info = T.train_head(tr, va, cfg, spec.feature_dim // spec.layers, "layer", layers=spec.layers,
                             tag=f"[{mode} -{held}]")
    sc = T.held_out_scores(net, items.select(items.corpora == held))
    res[held] = sc
    logging.info("held out %s: %s", held, {k: round(v, 3) for k, v in sc.items()})
print(mode, backbone, shrink, "MEAN clean", np.mean([r["uar_clean"] for r in res.values()]),
      "tel", np.mean([r["uar_telephone"] for r in res.values()]),
      {h: (round(r["uar_clean"], 3), round(r["max_predicted_share_clean"], 2)) for h, r in res.items()})
(T.HERE / "checkpoints").mkdir(exist_ok=True)
json.dump(res, open(T.HERE / "checkpoints" / f"speaker-norm-{mode}-{backbone}-{shrink}.json", "w"), indent=1)

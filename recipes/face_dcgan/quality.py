"""Frechet distance between generated and held-back real faces, in our face network's feature space.

    python -m recipes.face_dcgan.quality [--workdir recipes/face_dcgan/checkpoints] [--per-class 400]

The Frechet inception distance (Heusel et al. 2017) with our own expression network in place of
Inception: faces are compared by the 256 pooled features that the shipped face network's first
member reads expressions from, so the figure says how *expression-like* the fakes are. Reported
per class (generated faces of that class against held-back real faces of that class) and overall,
beside the same distance between two halves of the held-back real faces (the floor that sampling
noise alone gives).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import torch

from affect.datasets import default_data_root
from affect.face.weights import FaceWeights
from affect.face._weights_io import load_face_weights
from affect.labels import EMOTION_NAMES
from recipes.face_dcgan.network import NUM_CLASSES, Generator
from recipes.face_fer.train import load_train, split

log = logging.getLogger("recipes.face_dcgan.quality")
HERE = Path(__file__).resolve().parent


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """``|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^1/2)`` of two feature sets ``[N, D]``."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(s_a)
    root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    cross = np.linalg.eigvalsh(root_a @ s_b @ root_a)  # same trace root as S_a S_b, and symmetric
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a) + np.trace(s_b) - 2 * np.sqrt(np.clip(cross, 0, None)).sum())


@torch.inference_mode()
def expression_features(faces01: torch.Tensor) -> np.ndarray:
    """Pooled features of the default face network's first member for faces ``[N, 1, 48, 48]`` in [0, 1]."""
    net = load_face_weights(FaceWeights.VGG_FER_V3.value.verified_path(), members=[0])  # one index: a plain network
    out = []
    for i in range(0, len(faces01), 256):
        x = net.normalise(faces01[i : i + 256])[:, :, 4:44, 4:44]
        out.append(net.features(x).mean(dim=(2, 3)).numpy())
    return np.concatenate(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=Path, default=HERE / "config.json")
    ap.add_argument("--full-data", type=Path, default=Path("/work/full-data"))
    ap.add_argument("--workdir", type=Path, default=HERE / "checkpoints")
    ap.add_argument("--per-class", type=int, default=400)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    cfg = json.loads(args.config.read_text())
    images, labels, _ = load_train(args.full_data, default_data_root(), cfg, None)
    _, held = split(labels, cfg["val_fraction"], cfg["face_fer_seed"])
    real = torch.from_numpy(images[held]).float().unsqueeze(1) / 255.0
    real_y = labels[held]
    gen = Generator(cfg["latent"], cfg["class_embedding"], cfg["gen_width"])
    gen.load_state_dict(torch.load(args.workdir / "last.pt", weights_only=False)["gen"])
    gen.eval()
    torch.manual_seed(cfg["seed"])
    y = torch.arange(NUM_CLASSES).repeat_interleave(args.per_class)
    with torch.inference_mode():
        fake = (gen(torch.randn(len(y), cfg["latent"]), y) + 1) / 2
    f_real, f_fake = expression_features(real), expression_features(fake)
    rng = np.random.default_rng(cfg["seed"])
    halves = rng.permutation(len(f_real))
    report = {"overall": frechet_distance(f_fake, f_real),
              "real_vs_real_halves": frechet_distance(f_real[halves[::2]], f_real[halves[1::2]]), "per_class": {}}
    for c, name in enumerate(EMOTION_NAMES):
        mine = real_y == c
        if mine.sum() > 10:
            report["per_class"][name] = frechet_distance(f_fake[y.numpy() == c], f_real[mine])
    (HERE / "quality.json").write_text(json.dumps(report, indent=2) + "\n")
    log.info("Frechet distance in face-network space: %s", json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

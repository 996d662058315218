"""Which generated faces are copies of faces the GAN trained on, and grids of those that are not.

    python -m recipes.face_dcgan.memorisation --full-data /work/full-data

A GAN trained on few faces of a class (391 for disgust) can reproduce some of them, and a
reproduced face is a real person's face: biometric data that must not be published. So before any
generated face leaves this machine, each one is compared with every face the GAN trained on (and
its mirror image) by Pearson correlation of the pixels (1 = the same picture up to brightness and
contrast). The threshold comes from faces the GAN never saw: the configured percentile
(``memorisation.percentile``) of the held-back real faces' highest correlation with a training
face. A generated face above it is closer to some training face than nearly every unseen real
photo is, and counts as a likely copy. FER-2013 holds the same photo more than once (7.8% of the
held-back faces are exact copies of a training face): held-back faces at or above
``memorisation.duplicate_correlation`` are such copies and are left out of the percentile, else
the threshold is 1 and screens nothing.

Writes ``memorisation.json`` (the threshold, per emotion the share of likely copies among the
grid candidates and among the augmentation faces in ``generated/faces.npz`` if present) and
``grids/<emotion>.png``: the first 64 candidates per emotion that are not likely copies (8x8,
fixed seed). Only screened faces are ever drawn; no grid is committed (generated faces derive
from FER-2013 and count as data, which stays on the machine, as the training faces do).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import cv2
import numpy as np
import torch

from affect.datasets import default_data_root
from affect.labels import EMOTION_NAMES
from recipes.face_dcgan.network import Generator
from recipes.face_dcgan.samples import tile, to_uint8
from recipes.face_fer.train import load_train, split

log = logging.getLogger("recipes.face_dcgan.memorisation")
HERE = Path(__file__).resolve().parent
GRID_FACES = 64


def standardise(faces: np.ndarray) -> np.ndarray:
    """``[N, 48, 48]`` -> ``[N, 2304]`` float32 rows of zero mean and unit norm (dot product = correlation)."""
    x = faces.reshape(len(faces), -1).astype(np.float32)
    x -= x.mean(1, keepdims=True)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-6)


class CopyScreen:
    """Highest pixel correlation of faces with the GAN's training faces and their mirror images."""

    def __init__(self, training_faces: np.ndarray) -> None:
        self._train = torch.from_numpy(standardise(np.concatenate([training_faces, training_faces[:, :, ::-1]])))

    def highest_correlation(self, faces: np.ndarray, chunk: int = 512) -> np.ndarray:
        x = torch.from_numpy(standardise(faces))
        return np.concatenate([(x[i : i + chunk] @ self._train.T).max(1).values.numpy() for i in range(0, len(x), chunk)])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=Path, default=HERE / "config.json")
    ap.add_argument("--full-data", type=Path, default=Path("/work/full-data"))
    ap.add_argument("--workdir", type=Path, default=HERE / "checkpoints")
    ap.add_argument("--out", type=Path, default=HERE)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    cfg = json.loads(args.config.read_text())
    rule = cfg["memorisation"]
    images, labels, _ = load_train(args.full_data, default_data_root(), cfg, None)
    seen, held = split(labels, cfg["val_fraction"], cfg["face_fer_seed"])
    screen = CopyScreen(images[seen])
    held_best = screen.highest_correlation(images[held])
    duplicates = held_best >= rule["duplicate_correlation"]
    threshold = float(np.percentile(held_best[~duplicates], rule["percentile"]))
    log.info("held-back real faces: %.1f%% duplicates of a training face; the others' highest correlation "
             "with a training face: median %.3f, p%s %.3f", 100 * duplicates.mean(),
             np.median(held_best[~duplicates]), rule["percentile"], threshold)

    gen = Generator(cfg["latent"], cfg["class_embedding"], cfg["gen_width"])
    gen.load_state_dict(torch.load(args.workdir / "last.pt", weights_only=False)["gen"])
    gen.eval()
    noise = torch.Generator().manual_seed(cfg["seed"] + 1)
    grids = args.out / "grids"
    grids.mkdir(parents=True, exist_ok=True)
    report: dict = {"threshold": threshold, "percentile": rule["percentile"],
                    "held_back_duplicate_share": float(duplicates.mean()),
                    "held_back_median": float(np.median(held_best[~duplicates])),
                    "grid_candidates": {}, "augmentation_faces": {}}
    with torch.inference_mode():
        for c, name in enumerate(EMOTION_NAMES):
            faces = to_uint8(gen(torch.randn(rule["candidates"], cfg["latent"], generator=noise),
                                 torch.full((rule["candidates"],), c)))
            best = screen.highest_correlation(faces)
            copies = best > threshold
            kept = faces[~copies][:GRID_FACES]
            report["grid_candidates"][name] = {"drawn": len(faces), "likely_copies": int(copies.sum()),
                                               "highest_correlation": float(best.max())}
            if len(kept) < GRID_FACES:
                log.warning("%s: only %d of %d candidates pass; grid not written", name, len(kept), len(faces))
                continue
            cv2.imwrite(str(grids / f"{name}.png"), tile(kept, 8))
    generated = HERE / "generated/faces.npz"
    if generated.is_file():
        data = np.load(generated)
        best = screen.highest_correlation(data["faces"])
        copies = best > threshold
        for c in np.unique(data["labels"]):
            mine = data["labels"] == c
            report["augmentation_faces"][EMOTION_NAMES[c]] = {
                "faces": int(mine.sum()), "likely_copies": int(copies[mine].sum()), "highest_correlation": float(best[mine].max())}
    (args.out / "memorisation.json").write_text(json.dumps(report, indent=2) + "\n")
    log.info("%s", json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

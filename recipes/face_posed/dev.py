"""Shipped face entries, or a candidate's weights file, read on the posed faces of ``faces.py``.

    python -m recipes.face_posed.dev [--entries VGG_FER_V3 VGG_DISTILLED_FER_V5] [--weights FILE ...]
        [--collections jaffe] [--cache /work/cache/face-posed]

Each face is read as the entry ships (its views, its temperature). Printed per collection: accuracy,
unweighted mean recall over the seven emotions (UAR), the most frequent answer's share and the recall
of each emotion. JAFFE is the recipe's choice set: no network is trained on it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from affect.face._weights_io import load_face_weights
from affect.face.encoder import FaceEncoder
from affect.labels import EMOTIONS
from recipes.face_posed.faces import DEFAULT_CACHE, load_posed


def scores(probs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    pred = probs.argmax(1)
    recalls = {EMOTIONS[k]: float((pred[labels == k] == k).mean()) for k in range(len(EMOTIONS)) if (labels == k).any()}
    shares = np.bincount(pred, minlength=len(EMOTIONS)) / len(pred)
    return {"accuracy": float((pred == labels).mean()), "uar": float(np.mean(list(recalls.values()))),
            "top_share": float(shares.max()), **{f"recall_{k}": v for k, v in recalls.items()}}


def file_encoder(path: Path) -> FaceEncoder:
    """A FaceEncoder reading a candidate's weights file (one view, temperature 1, as an exported student)."""
    encoder = FaceEncoder(weights="VGG_DISTILLED_FER_V5", flip_tta=False)
    encoder.net = load_face_weights(path)
    encoder.temperature = 1.0
    encoder.model_id = path.name
    return encoder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--entries", nargs="*", default=["VGG_FER_V3", "VGG_DISTILLED_FER_V4", "VGG_DISTILLED_FER_V5"])
    ap.add_argument("--weights", nargs="*", type=Path, default=[])
    ap.add_argument("--collections", nargs="*", default=["jaffe"])
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    args = ap.parse_args()
    encoders = [FaceEncoder(weights=name) for name in args.entries] + [file_encoder(p) for p in args.weights]
    for collection in args.collections:
        data = load_posed(args.cache, collection)
        print(f"## {collection}: {len(data['labels'])} faces, {len(set(data['subjects']))} subjects")
        for encoder in encoders:
            s = scores(encoder.predict_proba(data["faces"]), data["labels"])
            recalls = " ".join(f"{k[7:10]} {v:.2f}" for k, v in s.items() if k.startswith("recall_"))
            print(f"{encoder.model_id:40s} acc {s['accuracy']:.3f} UAR {s['uar']:.3f} top {s['top_share']:.2f} | {recalls}")


if __name__ == "__main__":
    main()

"""Join separately trained face networks into one ensemble file, if the held-back faces say so.

    python -m recipes.face_fer.ensemble --full-data /work/full-data \
        --members recipes/face_fer/checkpoints/stage2.safetensors recipes/face_fer/checkpoints/member_b.safetensors \
        --min-heldback 0.696 --out affect/models/face/vgg_fer_v3.safetensors

Scores each member and their mean on the faces the recipe held back (flip-averaged, original
FER-2013 labels), then the ensemble as it will ship (float16). The file is written only when
the shipped ensemble reaches ``--min-heldback``: the adoption rule is fixed before the last
member finishes, and only then is the test set read (by ``benchmarks.accuracy face``). Prints
one JSON line, with the same accuracies against the FER+ crowd majority as a diagnostic. No
test face is read here.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from affect.datasets import default_data_root
from affect.face._weights_io import face_weights_arch, load_face_weights, save_face_ensemble
from recipes.face_fer.train import HERE, load_train, predict, split


def crowd_majority(targets: np.ndarray, labels: np.ndarray, original_weight: float) -> tuple[np.ndarray, np.ndarray]:
    """The FER+ vote majority per face, recovered from the recipe's soft targets, and where it is unique."""
    votes = (targets - original_weight * np.eye(targets.shape[1])[labels]) / (1.0 - original_weight)
    unique = (votes == votes.max(1, keepdims=True)).sum(1) == 1
    return votes.argmax(1), unique


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full-data", type=Path, required=True)
    ap.add_argument("--data-root", type=Path, default=None)
    ap.add_argument("--config", type=Path, default=HERE / "config.json", help="names the data and the held-back split")
    ap.add_argument("--members", type=Path, nargs="+", required=True, help="single-network files exported by train.py")
    ap.add_argument("--min-heldback", type=float, required=True, help="write the ensemble only at this held-back accuracy or more")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    torch.set_num_threads(2)

    archs = [face_weights_arch(path) for path in args.members]
    if any(a != archs[0] for a in archs):
        raise SystemExit(f"members differ in architecture: {archs}")
    cfg = json.loads(args.config.read_text())
    images, labels, targets = load_train(args.full_data, args.data_root or default_data_root(), cfg, None)
    _, held_back = split(labels, cfg["val_fraction"], cfg.get("split_seed", cfg["seed"]))
    faces, labels = images[held_back], labels[held_back]
    crowd, has_crowd = crowd_majority(targets[held_back], labels, float(cfg["original_label_weight"]))

    members = [load_face_weights(path) for path in args.members]
    probs = [predict(net, faces) for net in members]

    def accuracy(p: np.ndarray) -> float:
        return round(float((p.argmax(1) == labels).mean()), 4)

    def crowd_accuracy(p: np.ndarray) -> float:
        return round(float((p.argmax(1)[has_crowd] == crowd[has_crowd]).mean()), 4)

    with tempfile.TemporaryDirectory() as tmp:  # score exactly what ships: the float16 file
        shipped_path = Path(tmp) / "ensemble.safetensors"
        save_face_ensemble(members, shipped_path, archs[0])
        shipped = load_face_weights(shipped_path)
        shipped_probs = predict(shipped, faces)
        mean_probs = np.mean(probs, axis=0)
        report = {
            "held_back_faces": int(len(labels)),
            "members": {str(p): accuracy(q) for p, q in zip(args.members, probs)},
            "ensemble_float32": accuracy(mean_probs),
            "ensemble_shipped_float16": accuracy(shipped_probs),
            "float16_max_prob_change": round(float(np.abs(shipped_probs - mean_probs).max()), 5),
            "against_crowd_majority": {  # a diagnostic only: the rule reads the original labels
                "faces": int(has_crowd.sum()),
                "agrees_with_original_label": round(float((crowd == labels)[has_crowd].mean()), 4),
                "members": {str(p): crowd_accuracy(q) for p, q in zip(args.members, probs)},
                "ensemble_float32": crowd_accuracy(mean_probs),
            },
            "min_heldback": args.min_heldback,
        }
        adopted = report["ensemble_shipped_float16"] >= args.min_heldback
        report["adopted"] = adopted
        if adopted:  # the very bytes scored above
            args.out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(shipped_path, args.out)
            report["written"] = str(args.out)
    print(json.dumps(report))
    return 0 if adopted else 1


if __name__ == "__main__":
    sys.exit(main())

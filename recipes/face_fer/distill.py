"""One cheap face network distilled from the pair, trained to read expressions rather than FER-2013's look.

    python -m recipes.face_fer.distill --config recipes/face_fer/config_distill_g.json \
        [--full-data /work/full-data] [--workdir recipes/face_fer/checkpoints/distill_g] \
        [--out recipes/face_fer/checkpoints/distill_g.safetensors] [--resume] [--teacher-only]
        [--export-last FILE]        # the last epoch's averaged network, from the workdir's last.pt
        [--limit N --epochs N]      # the last two for a smoke run

Targets mix three views of each train face (``target_mix``): its original FER-2013 label
(one-hot), its FER+ crowd-vote distribution, and the teacher's probabilities: the shipped
ensemble (``teacher``; ``teacher_flip`` adds the mirror view), computed once over the un-augmented train faces and
cached under ``--cache-dir`` (keyed by the weights file's hash). With ``"teacher_reads": "augmented"`` the
teacher's part is read instead, batch by batch, from the very crop the student is shown (one view; "consistent
teaching", Beyer et al., "Knowledge distillation: A good teacher is patient and consistent", CVPR 2022): a
student matched to the teacher on the clean faces alone learns its function only where those faces lie.
The augmentation is wider than ``train.py``'s, so that the pose, framing, light and sharpness of
FER-2013's web photos stop being cues: rotation, scale (zoom in and out), shear, shift and flip in one affine resample;
gamma, contrast, brightness and a lighting gradient; blur; down-and-up sampling; noise; an
occluding patch. Held-back faces (the same seeded 10% as every network of this recipe) are
read as the student will ship (``test_flip``), and the epoch with the best accuracy against
their original labels is exported. No test image and no CK+ face is read here.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from affect.face._network import CROP_SIZE, FaceExpressionNet
from affect.face._weights_io import load_face_entry, save_face_weights
from affect.face.weights import FaceWeights
from affect.labels import EMOTIONS
from recipes.face_fer.ensemble import crowd_majority
from recipes.face_fer.train import HERE, load_train, predict, random_erase, random_uniform, split, start_run

log = logging.getLogger("recipes.face_fer.distill")


def _chance(n: int, p: float, gen: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=gen) < p


def augment_wide(batch: torch.Tensor, aug: dict, gen: torch.Generator) -> torch.Tensor:
    """Gray faces ``(N, 1, 48, 48)`` in [0, 1] -> augmented, normalised crops ``(N, 1, 40, 40)``."""
    n = batch.shape[0]
    u = lambda lo, hi: random_uniform(n, lo, hi, gen)  # noqa: E731
    # Light first, on the whole face: gamma, then contrast/brightness around the face's mean,
    # then a linear gradient (light from one side).
    x = batch.clamp(1e-4, 1).pow(torch.exp(u(-math.log(aug["gamma"]), math.log(aug["gamma"]))).view(n, 1, 1, 1))
    mean = x.mean(dim=(2, 3), keepdim=True)
    x = (x - mean) * u(*aug["contrast"]).view(n, 1, 1, 1) + mean + u(-aug["brightness"], aug["brightness"]).view(n, 1, 1, 1)
    angle = u(0, 2 * math.pi)
    ramp_y, ramp_x = torch.meshgrid(torch.linspace(-1, 1, x.shape[2]), torch.linspace(-1, 1, x.shape[3]), indexing="ij")
    amp = u(0, aug["gradient"]) * _chance(n, aug["gradient_p"], gen)
    x = x + amp.view(n, 1, 1, 1) * (torch.cos(angle).view(n, 1, 1, 1) * ramp_x + torch.sin(angle).view(n, 1, 1, 1) * ramp_y)
    x = x.clamp(0, 1)
    # Pose and framing: one affine resample to 40x40. scale < 1 zooms in (a tighter crop than
    # FER-2013's), > 1 out; the range is log-uniform.
    scale = torch.exp(u(math.log(aug["scale"][0]), math.log(aug["scale"][1])))
    aspect = torch.exp(u(-aug["aspect"], aug["aspect"]))
    rot = u(-aug["rotate_degrees"], aug["rotate_degrees"]) * math.pi / 180
    shear = u(-aug["shear"], aug["shear"])
    flip = torch.where(_chance(n, 0.5, gen), -1.0, 1.0)
    sx, sy = scale * aspect * flip, scale / aspect
    cos, sin = torch.cos(rot), torch.sin(rot)
    # theta = R(rot) @ [[1, shear], [0, 1]] @ diag(sx, sy), plus a shift
    a11, a12 = cos * sx, (cos * shear - sin) * sy
    a21, a22 = sin * sx, (sin * shear + cos) * sy
    tx, ty = u(-aug["shift"], aug["shift"]), u(-aug["shift"], aug["shift"])
    theta = torch.stack([torch.stack([a11, a12, tx], 1), torch.stack([a21, a22, ty], 1)], 1)
    base = CROP_SIZE / batch.shape[2]  # the centre 40 of 48, as the network reads at test time
    theta[:, :, :2] *= base
    grid = F.affine_grid(theta, [n, 1, CROP_SIZE, CROP_SIZE], align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    # Sharpness: down-and-up sampling (a small face in a large picture), or a Gaussian blur.
    low = _chance(n, aug["lowres_p"], gen)
    if low.any():
        side = int(torch.randint(aug["lowres_side"][0], aug["lowres_side"][1] + 1, (1,), generator=gen))
        small = F.interpolate(x[low], size=(side, side), mode="area")
        x[low] = F.interpolate(small, size=(CROP_SIZE, CROP_SIZE), mode="bilinear", align_corners=False)
    blur = _chance(n, aug["blur_p"], gen) & ~low
    if blur.any():
        x[blur] = _gaussian_blur(x[blur], random_uniform(int(blur.sum()), *aug["blur_sigma"], gen))
    x = x + torch.randn(x.shape, generator=gen) * u(0, aug["noise"]).view(n, 1, 1, 1)
    x = x.clamp(0, 1)
    if aug.get("erase"):  # an occluding patch (a hand, a microphone, a shadow)
        x = random_erase(x, aug["erase"], gen)
    return FaceExpressionNet.normalise(x)


def _gaussian_blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Blur each face with its own sigma (one grouped convolution, 7x7 kernels)."""
    n = x.shape[0]
    r = torch.arange(-3, 4, dtype=torch.float32)
    k1 = torch.exp(-(r.view(1, -1) ** 2) / (2 * sigma.view(-1, 1) ** 2))
    k1 = k1 / k1.sum(1, keepdim=True)
    k2 = (k1.view(n, 7, 1) * k1.view(n, 1, 7)).unsqueeze(1)  # (n, 1, 7, 7)
    padded = F.pad(x.transpose(0, 1), (3, 3, 3, 3), mode="replicate")  # (1, n, H+6, W+6)
    return F.conv2d(padded, k2, groups=n).transpose(0, 1)


def teacher_probs(images: np.ndarray, weights_name: str, cache_dir: Path, flip: bool) -> np.ndarray:
    """The teacher's probabilities for every train face (``flip``: averaged with the mirror), computed once and cached."""
    weights = FaceWeights[weights_name]
    digest = hashlib.sha256(images.tobytes()).hexdigest()[:12]
    views = "flip" if flip else "one-view"
    path = cache_dir / f"teacher-{weights.value.id}-{weights.value.sha256[:12]}-{views}-faces-{digest}.npy"
    if path.is_file():
        log.info("teacher probabilities from %s", path)
        return np.load(path)
    net = load_face_entry(weights)
    log.info("teacher %s over %d train faces (once; cached at %s)", weights.value.id, len(images), path)
    probs = np.concatenate([predict(net, images[i : i + 1024], flip=flip) for i in
                            tqdm(range(0, len(images), 1024), desc="teacher", mininterval=30)]).astype(np.float32)
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.save(path, probs)
    return probs


class OnlineTeacher:
    """The teacher read on the student's own augmented crops, one view, without gradients."""

    def __init__(self, weights_name: str, use_bf16: bool) -> None:
        self.net = load_face_entry(FaceWeights[weights_name]).eval().to(memory_format=torch.channels_last)
        self.use_bf16 = use_bf16

    def __call__(self, crops: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.use_bf16):
            probs = self.net.crop_proba(crops)
        return probs.clone()  # an ordinary tensor: inference-mode tensors may not enter the student's loss graph


def teacher_reads(cfg: dict) -> str:
    reads = cfg.get("teacher_reads", "clean")
    if reads not in ("clean", "augmented"):
        raise ValueError(f'teacher_reads must be "clean" or "augmented", got {reads!r}')
    return reads


def fixed_targets(labels: np.ndarray, votes: np.ndarray, teacher: np.ndarray, mix: dict,
                  online: bool) -> tuple[np.ndarray, float]:
    """Each train face's target before any batch is drawn, and the teacher's share of it.

    A clean-reading teacher is in the targets already (rows sum to 1); an online one is added batch by
    batch (``target + share * teacher(crop)``), so the fixed part then sums to ``1 - share``.
    """
    onehot = np.eye(len(EMOTIONS), dtype=np.float32)[labels]
    fixed = mix["label"] * onehot + mix["votes"] * votes + (0.0 if online else mix["teacher"]) * teacher
    targets = (fixed / fixed.sum(1, keepdims=True)).astype(np.float32)
    share = mix["teacher"] / (mix["label"] + mix["votes"] + mix["teacher"])
    return (targets * (1.0 - share) if online else targets), share


def build_student(cfg: dict) -> tuple[FaceExpressionNet, dict]:
    arch = {"num_classes": len(EMOTIONS), **cfg["arch"]}
    net = FaceExpressionNet(**arch)
    init = cfg.get("init_from")
    if init:  # a shipped entry whose network has the student's architecture (e.g. network F alone)
        entry = FaceWeights[init]
        net.load_state_dict(load_face_entry(entry).state_dict())
        log.info("student initialised from %s", entry.value.id)
    return net, arch


def _one_cycle(opt: torch.optim.Optimizer, cfg: dict, steps_per_epoch: int) -> torch.optim.lr_scheduler.OneCycleLR:
    return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg["max_lr"], total_steps=cfg["epochs"] * steps_per_epoch,
                                               pct_start=cfg["pct_start"])


def _averaged(net: FaceExpressionNet, cfg: dict) -> torch.optim.swa_utils.AveragedModel:
    return torch.optim.swa_utils.AveragedModel(
        net, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(cfg["ema_decay"]), use_buffers=True)


def training_parts(cfg: dict, draws_per_epoch: int) -> tuple[FaceExpressionNet, dict, torch.optim.swa_utils.AveragedModel,
                                                              torch.optim.Optimizer, torch.optim.lr_scheduler.OneCycleLR,
                                                              torch.Generator, np.random.Generator]:
    """A run's student (channels last), its architecture, averaged copy, optimiser, one-cycle
    schedule over ``draws_per_epoch`` draws an epoch, and the two seeded generators (augmentation, order)."""
    net, arch = build_student(cfg)
    net = net.to(memory_format=torch.channels_last)
    log.info("parameters: %d", sum(p.numel() for p in net.parameters()))
    ema = _averaged(net, cfg)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg["max_lr"], weight_decay=cfg["weight_decay"])
    sched = _one_cycle(opt, cfg, math.ceil(draws_per_epoch / cfg["batch_size"]))
    return net, arch, ema, opt, sched, torch.Generator().manual_seed(cfg["seed"]), np.random.default_rng(cfg["seed"])


def augmented_batches(draws: np.ndarray, order_rng: np.random.Generator, x_all: torch.Tensor, cfg: dict,
                      gen: torch.Generator, desc: str) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch: the indices of ``draws`` in a new order, batch by batch, each with its faces as
    ``augment_wide`` crops (channels last)."""
    order = draws[order_rng.permutation(len(draws))]
    for i in tqdm(range(0, len(order), cfg["batch_size"]), desc=desc, mininterval=60):
        idx = torch.from_numpy(order[i : i + cfg["batch_size"]])
        yield idx, augment_wide(x_all[idx].float().div_(255), cfg["aug"], gen).contiguous(memory_format=torch.channels_last)


def soft_target_step(net: FaceExpressionNet, ema: torch.optim.swa_utils.AveragedModel, opt: torch.optim.Optimizer,
                     sched: torch.optim.lr_scheduler.LRScheduler, crops: torch.Tensor, target: torch.Tensor,
                     use_bf16: bool) -> float:
    """One optimiser step on soft targets (cross-entropy against ``target``'s distributions), the
    averaged network updated after it; the batch's mean loss."""
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16):
        logits = net.forward_crops(crops)
    loss = torch.sum(-target * F.log_softmax(logits.float(), dim=1), dim=1).mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    sched.step()
    ema.update_parameters(net)
    return float(loss.item())


def save_run_state(path: Path, net: FaceExpressionNet, ema: torch.optim.swa_utils.AveragedModel,
                   opt: torch.optim.Optimizer, sched: torch.optim.lr_scheduler.LRScheduler, gen: torch.Generator,
                   order_rng: np.random.Generator, epoch: int, history: list, **extra: object) -> None:
    """Everything ``--resume`` needs after ``epoch`` (0-based), with the run's own ``extra``."""
    torch.save({"net": net.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                "gen": gen.get_state(), "order_rng": order_rng.bit_generator.state, "epoch": epoch,
                "history": history, **extra}, path)


def restore_run_state(path: Path, net: FaceExpressionNet, ema: torch.optim.swa_utils.AveragedModel,
                      opt: torch.optim.Optimizer, sched: torch.optim.lr_scheduler.LRScheduler, gen: torch.Generator,
                      order_rng: np.random.Generator) -> dict:
    """``save_run_state``'s checkpoint read back into the run's objects; the checkpoint (its epoch, history, extras)."""
    ck = torch.load(path, weights_only=False)
    net.load_state_dict(ck["net"])
    ema.load_state_dict(ck["ema"])
    opt.load_state_dict(ck["opt"])
    sched.load_state_dict(ck["sched"])
    gen.set_state(ck["gen"])
    order_rng.bit_generator.state = ck["order_rng"]
    return ck


def export_last(cfg: dict, checkpoint: Path, out: Path) -> None:
    """The averaged (EMA) network of a run's last epoch as weights (the run itself exports its best epoch's)."""
    net, arch = build_student(cfg)
    ema = _averaged(net, cfg)
    ck = torch.load(checkpoint, weights_only=False)
    ema.load_state_dict(ck["ema"])
    save_face_weights(ema.module, out, arch, dtype=torch.float16)
    log.info("epoch %d's averaged network written to %s", ck["epoch"] + 1, out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cache-dir", type=Path, default=Path("/work/cache/face"))
    ap.add_argument("--teacher-only", action="store_true", help="compute and cache the teacher's probabilities, then stop")
    ap.add_argument("--export-last", type=Path, default=None,
                    help="write the averaged network of the workdir's last.pt there (float16), then stop")
    args, cfg, data_root = start_run(ap, config=HERE / "config_distill_g.json", workdir=HERE / "checkpoints/distill_g",
                                     out=HERE / "checkpoints/distill_g.safetensors")
    if args.export_last:
        export_last(cfg, args.workdir / "last.pt", args.export_last)
        return
    online = teacher_reads(cfg) == "augmented"  # a wrong value stops the run before the faces are read
    # original_label_weight 0: the soft targets are the crowd votes alone (one-hot where none)
    images, labels, votes = load_train(args.full_data, data_root, {**cfg, "original_label_weight": 0.0}, args.limit)
    teacher = teacher_probs(images, cfg["teacher"], args.cache_dir, bool(cfg["teacher_flip"]))
    if args.teacher_only:
        return
    targets, teacher_share = fixed_targets(labels, votes, teacher, cfg["target_mix"], online)
    tr, va = split(labels, cfg["val_fraction"], cfg["split_seed"])
    log.info("train %d, held back %d; teacher agrees with the original label on %.3f of the held-back faces",
             len(tr), len(va), float((teacher[va].argmax(1) == labels[va]).mean()))
    crowd, has_crowd = crowd_majority(votes[va], labels[va], 0.0)

    net, arch, ema, opt, sched, gen, order_rng = training_parts(cfg, len(tr))
    steps_per_epoch = math.ceil(len(tr) / cfg["batch_size"])
    start_epoch, best_acc, history = 0, -1.0, []
    args.workdir.mkdir(parents=True, exist_ok=True)
    ckpt_path = args.workdir / "last.pt"
    if args.resume and ckpt_path.is_file():
        ck = restore_run_state(ckpt_path, net, ema, opt, sched, gen, order_rng)
        if sched.total_steps != cfg["epochs"] * steps_per_epoch:  # the epoch budget changed: the new curve from here
            sched = _one_cycle(opt, cfg, steps_per_epoch)
            sched.last_epoch = (ck["epoch"] + 1) * steps_per_epoch - 1
            sched.step()
            log.info("schedule re-planned for %d epochs; lr now %.5f", cfg["epochs"], opt.param_groups[0]["lr"])
        start_epoch, best_acc, history = ck["epoch"] + 1, ck["best_acc"], ck["history"]
        log.info("resumed after epoch %d (best held-back acc %.4f)", start_epoch, best_acc)

    x_all = torch.from_numpy(images).unsqueeze(1)
    t_all = torch.from_numpy(targets)
    faces_va, labels_va = images[va], labels[va]
    use_bf16 = bool(cfg.get("bf16", False))
    flip_test = bool(cfg["test_flip"])
    online_teacher = OnlineTeacher(cfg["teacher"], use_bf16) if online else None
    if start_epoch == 0:  # where the student starts, read as it will ship
        p0 = predict(net, faces_va, flip_test)
        log.info("before training: held-back acc %.4f", float((p0.argmax(1) == labels_va).mean()))
    for epoch in range(start_epoch, cfg["epochs"]):
        net.train()
        t0 = time.time()
        total, seen = 0.0, 0
        for idx, x in augmented_batches(tr, order_rng, x_all, cfg, gen, f"epoch {epoch + 1}"):
            target = t_all[idx]
            if online_teacher is not None:
                target = target + teacher_share * online_teacher(x)
            total += soft_target_step(net, ema, opt, sched, x, target, use_bf16) * len(idx)
            seen += len(idx)
        probs = predict(ema.module, faces_va, flip_test)
        pred = probs.argmax(1)
        acc = float((pred == labels_va).mean())
        record = {"epoch": epoch + 1, "loss": total / seen, "heldback_acc": acc,
                  "heldback_acc_raw": float((predict(net, faces_va, flip_test).argmax(1) == labels_va).mean()),
                  "heldback_crowd_acc": float((pred[has_crowd] == crowd[has_crowd]).mean()),
                  "heldback_teacher_agreement": float((pred == teacher[va].argmax(1)).mean()),
                  "seconds": time.time() - t0}
        history.append(record)
        log.info("epoch %d loss %.4f held-back acc %.4f (without averaging %.4f; crowd majority %.4f) %.0fs",
                 epoch + 1, record["loss"], acc, record["heldback_acc_raw"], record["heldback_crowd_acc"], record["seconds"])
        if acc > best_acc:
            best_acc = acc
            log.info("new best, exporting to %s", args.out)
            save_face_weights(ema.module, args.out, arch, dtype=torch.float16)
        save_run_state(ckpt_path, net, ema, opt, sched, gen, order_rng, epoch, history, best_acc=best_acc)
        (args.workdir / "history.json").write_text(json.dumps(history, indent=1))
    log.info("done; best held-back acc %.4f; weights at %s", best_acc, args.out)


if __name__ == "__main__":
    main()

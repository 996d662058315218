"""Train the face expression CNN on the sharp FER+ Train PNGs, choose on a held-back part.

    python -m recipes.face_fer.train [--config recipes/face_fer/config.json]
        [--full-data /work/full-data] [--data-root ../shared/data]
        [--out recipes/face_fer/checkpoints/stage1.safetensors] [--resume]
        [--limit N --epochs N]      # the last two for a smoke run

Targets mix the original FER-2013 label (one-hot, weight ``original_label_weight``) with the
FER+ crowd-vote distribution over our 7 emotions. A checkpoint is written after every epoch
(``--workdir``, resumable with ``--resume``); the epoch with the best held-back accuracy is
exported as a single-network safetensors; `ensemble.py` joins such networks into the shipped
file. With ``"ema"`` in the config, an exponential moving average of the weights (and of the
BatchNorm statistics) is kept beside the trained network, and the averaged network is the one
scored, chosen and exported. No test image is read here.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import random
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from affect.datasets import default_data_root
from affect.face._network import CROP_SIZE, FACE_SIZE, FaceExpressionNet
from affect.face._weights_io import FaceModel, load_face_weights, save_face_weights
from affect.labels import EMOTIONS, emotion_index, map_label

log = logging.getLogger("recipes.face_fer")
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
FERPLUS_VOTE_COLUMNS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown", "NF")


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def read_votes(csv_path: Path) -> dict[str, np.ndarray]:
    """FER+ votes of each Training image, as counts over our 7 emotions (dropped labels ignored)."""
    votes: dict[str, np.ndarray] = {}
    with csv_path.open(newline="") as f:
        for row in csv.DictReader(f):
            if row["Usage"] != "Training" or not row["Image name"].strip():
                continue
            counts = np.zeros(len(EMOTIONS), dtype=np.float32)
            for col in FERPLUS_VOTE_COLUMNS:
                emotion = map_label("ferplus", col)
                if emotion is not None:
                    counts[emotion_index(emotion)] += float(row[col])
            votes[row["Image name"].strip()] = counts
    return votes


def load_train(full_data: Path, data_root: Path, cfg: dict, limit: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All training faces as one uint8 array ``(N, 48, 48)``, their original labels and soft targets."""
    votes = read_votes(full_data / cfg["ferplus_votes"])
    with (data_root / cfg["fer2013_labels"]).open(newline="") as f:
        rows = [(r["ferplus_train_png"], r["fer2013_label"]) for r in csv.DictReader(f)]
    if limit:
        rows = rows[:limit]
    images = np.zeros((len(rows), FACE_SIZE, FACE_SIZE), dtype=np.uint8)
    labels = np.zeros(len(rows), dtype=np.int64)
    targets = np.zeros((len(rows), len(EMOTIONS)), dtype=np.float32)
    w = float(cfg["original_label_weight"])
    keep = np.ones(len(rows), dtype=bool)
    for i, (name, label) in enumerate(tqdm(rows, desc="loading faces", mininterval=5)):
        img = cv2.imread(str(full_data / cfg["train_pngs"] / name), cv2.IMREAD_GRAYSCALE)
        emotion = map_label("fer2013", label)
        if img is None or emotion is None:
            keep[i] = False
            continue
        if img.shape != (FACE_SIZE, FACE_SIZE):
            img = cv2.resize(img, (FACE_SIZE, FACE_SIZE), interpolation=cv2.INTER_AREA)
        images[i] = img
        labels[i] = emotion_index(emotion)
        onehot = np.eye(len(EMOTIONS), dtype=np.float32)[labels[i]]
        v = votes.get(name)
        soft = v / v.sum() if v is not None and v.sum() > 0 else onehot
        targets[i] = w * onehot + (1.0 - w) * soft
    log.info("loaded %d faces (%d skipped)", keep.sum(), (~keep).sum())
    return images[keep], labels[keep], targets[keep]


def add_extra_faces(images: np.ndarray, labels: np.ndarray, targets: np.ndarray, train: np.ndarray,
                    path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Faces from elsewhere (``faces`` uint8 ``(N, 48, 48)``, ``labels``: an ``.npz``, such as
    ``recipes/face_dcgan``'s generated faces) joined to the training part only, one-hot targets;
    the held-back part stays as it is, so runs with and without are chosen on the same faces."""
    if not path.is_file():
        raise SystemExit(f"{path} is missing: the configuration adds generated faces to the training part; "
                         "make them with `python -m recipes.face_dcgan.augment generate` (needs the trained GAN, "
                         "recipes/face_dcgan/README.md), or drop `extra_faces` from the configuration")
    extra = np.load(path)
    faces, extra_labels = extra["faces"].astype(np.uint8), extra["labels"].astype(np.int64)
    start = len(images)
    log.info("extra training faces from %s: %d, per class %s", path, len(faces),
             np.bincount(extra_labels, minlength=len(EMOTIONS)).tolist())
    return (np.concatenate([images, faces]), np.concatenate([labels, extra_labels]),
            np.concatenate([targets, np.eye(len(EMOTIONS), dtype=np.float32)[extra_labels]]),
            np.concatenate([train, np.arange(start, start + len(faces))]))


def split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified train / held-back indices, fixed by ``seed``."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_val = int(round(len(idx) * fraction))
        val.extend(idx[:n_val])
        train.extend(idx[n_val:])
    return np.sort(np.array(train)), np.sort(np.array(val))


def random_uniform(n: int, lo: float, hi: float, gen: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen)


def augment(batch: torch.Tensor, aug: dict, gen: torch.Generator) -> torch.Tensor:
    """Random crop/shift/rotation/flip (one affine resample to 40x40) and brightness/contrast.

    ``batch`` is ``(N, 1, 48, 48)`` in [0, 1]; the result is normalised like the network expects.
    """
    n = batch.shape[0]

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return random_uniform(n, lo, hi, gen)

    scale = uniform(*aug["crop_fraction"])
    angle = uniform(-aug["rotate_degrees"], aug["rotate_degrees"]) * math.pi / 180
    tx, ty = uniform(-aug["shift"], aug["shift"]), uniform(-aug["shift"], aug["shift"])
    flip = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0) if aug["flip"] else torch.ones(n)
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    theta = torch.stack([torch.stack([cos * flip, -sin, tx], 1), torch.stack([sin * flip, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, [n, 1, CROP_SIZE, CROP_SIZE], align_corners=False)
    out = F.grid_sample(batch, grid, mode="bilinear", padding_mode="border", align_corners=False)
    contrast = uniform(*aug["contrast"]).view(n, 1, 1, 1)
    brightness = uniform(-aug["brightness"], aug["brightness"]).view(n, 1, 1, 1)
    mean = out.mean(dim=(2, 3), keepdim=True)
    out = ((out - mean) * contrast + mean + brightness).clamp(0, 1)
    if aug.get("erase"):
        out = random_erase(out, aug["erase"], gen)
    return FaceExpressionNet.normalise(out)


def random_erase(batch: torch.Tensor, erase: dict, gen: torch.Generator) -> torch.Tensor:
    """Blank one random rectangle (uniform noise) in a share ``p`` of the faces.

    Forces the network to read the whole face rather than one part of it (a hand over the
    mouth, a shadow over the eyes). ``area`` is the rectangle's share of the crop, ``ratio`` its
    aspect range.
    """
    n, _, h, w = batch.shape
    area = random_uniform(n, *erase["area"], gen) * h * w
    log_ratio = random_uniform(n, math.log(erase["ratio"][0]), math.log(erase["ratio"][1]), gen)
    eh = torch.sqrt(area * torch.exp(log_ratio)).clamp(1, h)
    ew = torch.sqrt(area / torch.exp(log_ratio)).clamp(1, w)
    top = torch.rand(n, generator=gen) * (h - eh)
    left = torch.rand(n, generator=gen) * (w - ew)
    rows = torch.arange(h).view(1, h, 1)
    cols = torch.arange(w).view(1, 1, w)
    inside = (
        (rows >= top.view(n, 1, 1)) & (rows < (top + eh).view(n, 1, 1))
        & (cols >= left.view(n, 1, 1)) & (cols < (left + ew).view(n, 1, 1))
    )
    inside &= (torch.rand(n, generator=gen) < erase["p"]).view(n, 1, 1)
    noise = torch.rand(batch.shape, generator=gen)
    return torch.where(inside.unsqueeze(1), noise, batch)


@torch.no_grad()
def predict(net: FaceModel, images: np.ndarray, flip: bool = True, batch_size: int = 256) -> np.ndarray:
    net.eval()
    out = []
    for i in range(0, len(images), batch_size):
        x = torch.from_numpy(images[i : i + batch_size]).float().div_(255).unsqueeze(1)
        out.append(net.predict_proba(x, flip=flip).numpy())
    return np.concatenate(out)


def start_run(ap: argparse.ArgumentParser, *, config: Path, workdir: Path, out: Path) -> tuple[argparse.Namespace, dict, Path]:
    """What every training command of this recipe begins with: the shared flags (on top of ``ap``'s
    own), logging, the config (``--epochs`` overriding it), the seed and the thread count.
    Returns the flags, the config and the data root."""
    ap.add_argument("--config", type=Path, default=config)
    ap.add_argument("--full-data", type=Path, default=ROOT.parent / "full-data")
    ap.add_argument("--data-root", type=Path, default=None)
    ap.add_argument("--workdir", type=Path, default=workdir)
    ap.add_argument("--out", type=Path, default=out)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--epochs", type=int, default=None)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    cfg = json.loads(args.config.read_text())
    if args.epochs:
        cfg["epochs"] = args.epochs
    set_seed(cfg["seed"])
    torch.set_num_threads(cfg["torch_threads"])
    return args, cfg, args.data_root or default_data_root()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--extend", type=int, default=0,
                    help="after the one-cycle run: N more epochs from last.pt, cosine from config extend_lr to 0")
    args, cfg, data_root = start_run(ap, config=HERE / "config.json", workdir=HERE / "checkpoints",
                                     out=HERE / "checkpoints/stage1.safetensors")
    images, labels, targets = load_train(args.full_data, data_root, cfg, args.limit)
    # The held-back part is fixed by its own seed, so runs with other seeds (ensemble members)
    # are chosen and compared on the same faces, none of which any member trained on.
    tr, va = split(labels, cfg["val_fraction"], cfg.get("split_seed", cfg["seed"]))
    if cfg.get("extra_faces"):
        images, labels, targets, tr = add_extra_faces(images, labels, targets, tr, ROOT / cfg["extra_faces"])
    log.info("train %d, held back %d", len(tr), len(va))

    arch = {"num_classes": len(EMOTIONS), "width": cfg["width"], "dropout": cfg["dropout"]}
    # Read once here, so a mistyped setting fails before training rather than after an epoch.
    export_dtype = {"float32": torch.float32, "float16": torch.float16}[cfg.get("export_dtype", "float32")]
    use_bf16 = bool(cfg.get("bf16", False))
    net = FaceExpressionNet(**arch)
    if cfg.get("init_from"):
        # A second stage: start from the weights an earlier stage exported (same architecture).
        net.load_state_dict(load_face_weights(ROOT / cfg["init_from"]).state_dict())
        log.info("initialised from %s", cfg["init_from"])
    net = net.to(memory_format=torch.channels_last)  # ~15% faster convolutions on this CPU
    log.info("parameters: %d", sum(p.numel() for p in net.parameters()))
    # A moving average of the weights smooths over the noise of single FER-2013 labels late in a
    # long schedule; BatchNorm statistics are averaged with them (use_buffers) so it runs as is.
    ema = None
    if cfg.get("ema"):
        ema = torch.optim.swa_utils.AveragedModel(
            net, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(cfg["ema"]["decay"]), use_buffers=True
        )
    opt = torch.optim.AdamW(net.parameters(), lr=cfg["max_lr"], weight_decay=cfg["weight_decay"])
    steps_per_epoch = math.ceil(len(tr) / cfg["batch_size"])
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg["max_lr"], total_steps=cfg["epochs"] * steps_per_epoch, pct_start=cfg["pct_start"]
    )
    gen = torch.Generator().manual_seed(cfg["seed"])
    order_rng = np.random.default_rng(cfg["seed"])
    start_epoch, best_acc, history = 0, -1.0, []
    args.workdir.mkdir(parents=True, exist_ok=True)
    ckpt_path = args.workdir / "last.pt"
    if args.resume and ckpt_path.is_file():
        ck = torch.load(ckpt_path, weights_only=False)
        net.load_state_dict(ck["net"])
        if ema is not None and ck.get("ema") is not None:  # else the average starts from here
            ema.load_state_dict(ck["ema"])
        opt.load_state_dict(ck["opt"])
        sched.load_state_dict(ck["sched"])
        done_steps = (ck["epoch"] + 1) * steps_per_epoch
        if sched.total_steps != cfg["epochs"] * steps_per_epoch:
            # The epoch budget changed since the checkpoint: continue on the new one-cycle curve.
            sched = torch.optim.lr_scheduler.OneCycleLR(
                opt, max_lr=cfg["max_lr"], total_steps=cfg["epochs"] * steps_per_epoch, pct_start=cfg["pct_start"]
            )
            sched.last_epoch = done_steps - 1
            sched.step()
            log.info("schedule re-planned for %d epochs; lr now %.5f", cfg["epochs"], opt.param_groups[0]["lr"])
        gen.set_state(ck["gen"])
        order_rng.bit_generator.state = ck["order_rng"]
        start_epoch, best_acc, history = ck["epoch"] + 1, ck["best_acc"], ck["history"]
        log.info("resumed after epoch %d (best held-back acc %.4f)", ck["epoch"] + 1, best_acc)

    end_epoch = cfg["epochs"]
    if args.extend:
        # A warm restart after the finished one-cycle run: a short cosine decay from extend_lr.
        end_epoch = max(start_epoch, cfg["epochs"]) + args.extend
        for group in opt.param_groups:
            group["lr"] = cfg["extend_lr"]
            group["betas"] = (0.9, 0.999)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=(end_epoch - start_epoch) * steps_per_epoch)
        log.info("extending by %d epochs from lr %.5f", end_epoch - start_epoch, cfg["extend_lr"])
    x_all = torch.from_numpy(images).unsqueeze(1)  # uint8, converted per batch
    faces_va, labels_va, targets_va = images[va], labels[va], targets[va]  # scored after every epoch
    t_all = torch.from_numpy(targets)
    for epoch in range(start_epoch, end_epoch):
        net.train()
        t0 = time.time()
        order = tr[order_rng.permutation(len(tr))]
        total, seen = 0.0, 0
        bar = tqdm(range(0, len(order), cfg["batch_size"]), desc=f"epoch {epoch + 1}", mininterval=30)
        for i in bar:
            idx = torch.from_numpy(order[i : i + cfg["batch_size"]])
            x = augment(x_all[idx].float().div_(255), cfg["aug"], gen).contiguous(memory_format=torch.channels_last)
            # bfloat16 autocast: about 1.8x faster convolutions on this CPU (AVX-512 BF16);
            # the loss, the optimiser state and the held-back evaluation stay float32.
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16):
                logits = net.forward_crops(x)
            loss = torch.sum(-t_all[idx] * F.log_softmax(logits.float(), dim=1), dim=1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if ema is not None:
                ema.update_parameters(net)
            total += loss.item() * len(idx)
            seen += len(idx)
        record = {"epoch": epoch + 1, "loss": total / seen}
        if ema is not None:
            # The trained network's own score is logged for comparison; the average is chosen.
            record["heldback_acc_raw"] = float((predict(net, faces_va).argmax(1) == labels_va).mean())
        chosen_net = net if ema is None else ema.module
        probs = predict(chosen_net, faces_va)
        acc = float((probs.argmax(1) == labels_va).mean())
        soft_acc = float((probs.argmax(1) == targets_va.argmax(1)).mean())
        record |= {"heldback_acc": acc, "heldback_soft_acc": soft_acc, "seconds": time.time() - t0}
        history.append(record)
        log.info("epoch %d loss %.4f held-back acc %.4f%s (soft-target argmax %.4f) %.0fs", epoch + 1, total / seen, acc,
                 f" (without averaging {record['heldback_acc_raw']:.4f})" if ema is not None else "", soft_acc, time.time() - t0)
        if acc > best_acc:
            best_acc = acc
            torch.save({"net": chosen_net.state_dict(), "epoch": epoch + 1, "acc": acc}, args.workdir / "best.pt")
            log.info("new best, exporting to %s", args.out)
            save_face_weights(chosen_net, args.out, arch, dtype=export_dtype)
        torch.save(
            {"net": net.state_dict(), "ema": None if ema is None else ema.state_dict(),
             "opt": opt.state_dict(), "sched": sched.state_dict(), "gen": gen.get_state(),
             "order_rng": order_rng.bit_generator.state, "epoch": epoch, "best_acc": best_acc, "history": history},
            ckpt_path,
        )
        (args.workdir / "history.json").write_text(json.dumps(history, indent=1))
    log.info("done; best held-back acc %.4f; weights at %s", best_acc, args.out)


if __name__ == "__main__":
    main()

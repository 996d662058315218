"""Train the speech emotion head on RAVDESS actors 1-20, choose on actors 21-22.

    python -m recipes.speech_ravdess.train [--config recipes/speech_ravdess/config.json]
        [--full-data /work/full-data] [--cache /tmp/affect-speech-cache]
        [--out affect/models/speech/whisper_tiny_ravdess_v1.safetensors] [--resume] [--epochs N]

Stage 1 caches the frozen Whisper tiny.en encoder outputs of every clip and of its augmented
copies (``features.py``; outside the tree, resumable per actor). Stage 2 trains the small head
on them with random crops and frame masking, evaluates the validation actors' clean and
telephone-band copies after every epoch, keeps the best epoch (checkpoint in ``checkpoints/``,
resumable with ``--resume``), fits a softmax temperature on the validation clips and writes the
shipped weights. The test actors (23-24) are never read here.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from affect.labels import EMOTIONS
from affect.speech._backbone import BACKBONE_NAME, WhisperBackbone
from affect.speech._network import SpeechEmotionHead, pad_frames
from affect.speech._vad import VoiceActivity
from affect.speech._weights_io import parameter_count, save_speech_weights
from evaluation.recall import uar
from recipes.speech_ravdess.features import build_cache, load_cache

log = logging.getLogger("recipes.speech_ravdess")
HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DEFAULT_OUT = ROOT / "affect" / "models" / "speech" / "whisper_tiny_ravdess_v1.safetensors"


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def jitter(x: torch.Tensor, rng: np.random.Generator, crop_min: float, frame_mask: float) -> torch.Tensor:
    """A random contiguous crop and one zeroed block of frames: cheap time-domain augmentation."""
    n = x.shape[0]
    keep = max(4, int(round(n * rng.uniform(crop_min, 1.0))))
    if keep < n:
        start = int(rng.integers(0, n - keep + 1))
        x = x[start : start + keep]
    x = x.float().clone()
    width = int(rng.integers(0, max(1, int(frame_mask * x.shape[0])) + 1))
    if width:
        start = int(rng.integers(0, x.shape[0] - width + 1))
        x[start : start + width] = 0.0
    return x


@torch.inference_mode()
def predict(net: SpeechEmotionHead, feats: list[torch.Tensor], batch: int = 128) -> torch.Tensor:
    net.eval()
    out = []
    for i in range(0, len(feats), batch):
        frames, mask = pad_frames(feats[i : i + batch])
        out.append(net(frames, mask))
    return torch.cat(out)


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Softmax temperature that minimises validation NLL (grid search: robust and enough)."""
    grid = np.exp(np.linspace(np.log(0.3), np.log(5.0), 60))
    losses = [F.cross_entropy(logits / t, labels).item() for t in grid]
    return float(grid[int(np.argmin(losses))])


def class_weights(labels: np.ndarray) -> torch.Tensor:
    counts = np.bincount(labels, minlength=len(EMOTIONS)).astype(np.float64)
    weights = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / (counts > 0).sum(), 0.0)
    return torch.tensor(weights, dtype=torch.float32)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=Path, default=HERE / "config.json")
    ap.add_argument("--full-data", type=Path, default=Path("/work/full-data"))
    ap.add_argument("--cache", type=Path, default=Path("/tmp/affect-speech-cache"))
    ap.add_argument("--workdir", type=Path, default=HERE / "checkpoints")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--epochs", type=int, default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    cfg = json.loads(args.config.read_text())
    set_seed(cfg["seed"])
    torch.set_num_threads(cfg["torch_threads"])
    train_actors, val_actors = tuple(cfg["train_actors"]), tuple(cfg["validation_actors"])
    assert not set(train_actors + val_actors) & {23, 24}, "the test actors must never be trained or chosen on"

    build_cache(args.full_data, args.cache, val_actors + train_actors, cfg["copies"], cfg["augment"], cfg["seed"],
                WhisperBackbone(threads=cfg["torch_threads"]), VoiceActivity())
    torch.set_num_threads(cfg["torch_threads"])
    train_x, train_y, _ = load_cache(args.cache, train_actors, cfg["copies"])
    val_x, val_y, val_v = load_cache(args.cache, val_actors, cfg["copies"], keep_variants=(0, 1))
    log.info("train %d items (%d clips x %d copies), validation %d", len(train_x), len(train_x) // cfg["copies"],
             cfg["copies"], len(val_x))

    net = SpeechEmotionHead(hidden=cfg["hidden"], dropout=cfg["dropout"])
    epochs = args.epochs or cfg["epochs"]
    steps_per_epoch = -(-len(train_x) // cfg["batch_size"])
    opt = torch.optim.AdamW(net.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg["lr"], total_steps=epochs * steps_per_epoch, pct_start=0.1)
    weights = class_weights(train_y)
    rng = np.random.default_rng(cfg["seed"])
    start_epoch, best, history = 0, {"score": -1.0}, []
    ckpt = args.workdir / "last.pt"
    if args.resume and ckpt.is_file():
        state = torch.load(ckpt, weights_only=False)
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        rng = state["rng"]
        start_epoch, best, history = state["epoch"] + 1, state["best"], state["history"]
        log.info("resumed after epoch %d (best validation %.3f)", state["epoch"], best["score"])

    labels_t = torch.from_numpy(train_y)
    for epoch in range(start_epoch, epochs):
        net.train()
        t0, total = time.time(), 0.0
        order = rng.permutation(len(train_x))
        for i in range(0, len(order), cfg["batch_size"]):
            idx = order[i : i + cfg["batch_size"]]
            frames, mask = pad_frames([jitter(train_x[j], rng, cfg["crop_min"], cfg["frame_mask"]) for j in idx])
            loss = F.cross_entropy(net(frames, mask), labels_t[idx], weight=weights, label_smoothing=cfg["label_smoothing"])
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        pred = predict(net, val_x).argmax(-1).numpy()
        clean, phone = uar(val_y[val_v == 0], pred[val_v == 0]), uar(val_y[val_v == 1], pred[val_v == 1])
        score = (clean + phone) / 2
        history.append({"epoch": epoch, "loss": total / len(order), "val_uar_clean": clean, "val_uar_telephone": phone})
        log.info("epoch %d loss %.4f val UAR clean %.3f telephone %.3f (%.0fs)", epoch, total / len(order), clean, phone,
                 time.time() - t0)
        if score > best["score"]:
            best = {"score": score, "epoch": epoch, "val_uar_clean": clean, "val_uar_telephone": phone,
                    "state": {k: v.clone() for k, v in net.state_dict().items()}}
        args.workdir.mkdir(parents=True, exist_ok=True)
        torch.save({"net": net.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(), "rng": rng,
                    "epoch": epoch, "best": best, "history": history}, ckpt.with_suffix(".tmp"))
        ckpt.with_suffix(".tmp").rename(ckpt)

    net.load_state_dict(best["state"])
    logits = predict(net, val_x)
    temperature = fit_temperature(logits, torch.from_numpy(val_y))
    meta = {
        "recipe": "recipes/speech_ravdess", "config": cfg, "backbone": BACKBONE_NAME,
        "best_epoch": best["epoch"], "val_uar_clean": best["val_uar_clean"], "val_uar_telephone": best["val_uar_telephone"],
        "temperature": temperature, "num_params": parameter_count(net),
    }
    save_speech_weights(net, args.out, meta)
    summary = {k: v for k, v in meta.items() if k != "config"} | {"history": history}
    (args.workdir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    log.info("best epoch %d: validation UAR clean %.3f, telephone %.3f; temperature %.2f; wrote %s (%d params)",
             best["epoch"], best["val_uar_clean"], best["val_uar_telephone"], temperature, args.out, meta["num_params"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Train the class-conditional DCGAN on the FER+ Train faces (minus the face recipe's held-back part).

    python -m recipes.face_dcgan.train [--full-data /work/full-data] [--workdir recipes/face_dcgan/checkpoints]
        [--resume] [--epochs N] [--limit N]

Hinge loss, Adam (0.5, 0.999) as in DCGAN. Classes are drawn with probability proportional to
``count ** class_sampling_power`` (0.5: disgust, 436 faces, is seen far more often than its share
but not as often as happiness, 6,500 faces, which would make the generator memorise it). A
checkpoint is written after every epoch (resumable), with a fixed-noise sample grid per epoch
in the log folder so progress can be seen; ``samples.py`` writes the final grids and
``quality.py`` the Frechet distance.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from affect.datasets import default_data_root
from recipes.face_dcgan.network import NUM_CLASSES, Discriminator, Generator
from recipes.face_fer.train import load_train, set_seed, split

log = logging.getLogger("recipes.face_dcgan")
HERE = Path(__file__).resolve().parent


def training_faces(full_data: Path, data_root: Path, cfg: dict, limit: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train faces, their labels, held-back indices): the face recipe's split, so its held-back
    faces stay unseen by the GAN and by the network the GAN's faces later train."""
    images, labels, _ = load_train(full_data, data_root, cfg, limit)
    train_idx, held_idx = split(labels, cfg["val_fraction"], cfg["face_fer_seed"])
    return images[train_idx], labels[train_idx], held_idx


def class_draws(labels: np.ndarray, power: float) -> np.ndarray:
    """Per-face draw probability: class mass proportional to ``count ** power``, uniform within a class."""
    counts = np.bincount(labels, minlength=NUM_CLASSES).astype(float)
    mass = np.where(counts > 0, counts**power, 0.0)
    mass /= mass.sum()
    return mass[labels] / counts[labels]


def to_tanh(batch: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(batch).float().unsqueeze(1) / 127.5 - 1.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=Path, default=HERE / "config.json")
    ap.add_argument("--full-data", type=Path, default=Path("/work/full-data"))
    ap.add_argument("--data-root", type=Path, default=None)
    ap.add_argument("--workdir", type=Path, default=HERE / "checkpoints")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--limit", type=int, default=None, help="smoke runs: read only the first N faces")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    cfg = json.loads(args.config.read_text())
    epochs = args.epochs or cfg["epochs"]
    torch.set_num_threads(cfg["torch_threads"])
    set_seed(cfg["seed"])
    faces, labels, _ = training_faces(args.full_data, args.data_root or default_data_root(), cfg, args.limit)
    log.info("GAN training faces: %d, per class %s", len(faces), np.bincount(labels, minlength=NUM_CLASSES).tolist())
    gen = Generator(cfg["latent"], cfg["class_embedding"], cfg["gen_width"])
    disc = Discriminator(cfg["disc_width"])
    opt_g = torch.optim.Adam(gen.parameters(), lr=cfg["lr_gen"], betas=tuple(cfg["betas"]))
    opt_d = torch.optim.Adam(disc.parameters(), lr=cfg["lr_disc"], betas=tuple(cfg["betas"]))
    rng = np.random.default_rng(cfg["seed"])
    fixed_z = torch.randn(NUM_CLASSES * 8, cfg["latent"], generator=torch.Generator().manual_seed(cfg["seed"]))
    fixed_y = torch.arange(NUM_CLASSES).repeat_interleave(8)
    ckpt, start, history = args.workdir / "last.pt", 0, []
    if args.resume and ckpt.is_file():
        state = torch.load(ckpt, weights_only=False)
        gen.load_state_dict(state["gen"])
        disc.load_state_dict(state["disc"])
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        rng, start, history = state["rng"], state["epoch"] + 1, state["history"]
        torch.set_rng_state(state["torch_rng"])
        log.info("resumed after epoch %d", state["epoch"])
    probs = class_draws(labels, cfg["class_sampling_power"])
    bs = cfg["batch_size"]
    steps = len(faces) // bs
    for epoch in range(start, epochs):
        gen.train()
        disc.train()
        t0, d_sum, g_sum = time.time(), 0.0, 0.0
        for step in range(steps):
            idx = rng.choice(len(faces), size=bs, p=probs)
            real, y = to_tanh(faces[idx]), torch.from_numpy(labels[idx])
            if rng.random() < 0.5:
                real = torch.flip(real, dims=[3])
            z = torch.randn(bs, cfg["latent"])
            fake = gen(z, y)
            d_loss = F.relu(1 - disc(real, y)).mean() + F.relu(1 + disc(fake.detach(), y)).mean()
            opt_d.zero_grad()
            d_loss.backward()
            opt_d.step()
            g_loss = -disc(fake, y).mean()
            opt_g.zero_grad()
            g_loss.backward()
            opt_g.step()
            d_sum, g_sum = d_sum + d_loss.item(), g_sum + g_loss.item()
            if step % 100 == 0:
                log.info("epoch %d step %d/%d d %.3f g %.3f", epoch, step, steps, d_loss.item(), g_loss.item())
        history.append({"epoch": epoch, "d_loss": d_sum / steps, "g_loss": g_sum / steps, "seconds": time.time() - t0})
        log.info("epoch %d done: d %.3f g %.3f (%.0fs)", epoch, d_sum / steps, g_sum / steps, time.time() - t0)
        args.workdir.mkdir(parents=True, exist_ok=True)
        gen.eval()
        with torch.no_grad():
            torch.save(gen(fixed_z, fixed_y), args.workdir / f"progress-epoch{epoch:02d}.pt")
        torch.save({"gen": gen.state_dict(), "disc": disc.state_dict(), "opt_g": opt_g.state_dict(),
                    "opt_d": opt_d.state_dict(), "rng": rng, "torch_rng": torch.get_rng_state(), "epoch": epoch,
                    "history": history, "config": cfg}, ckpt.with_suffix(".tmp"))
        ckpt.with_suffix(".tmp").rename(ckpt)
    (args.workdir / "history.json").write_text(json.dumps(history, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

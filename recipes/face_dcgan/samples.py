"""Sample grids of the trained generator: one PNG per emotion (8x8 faces), and the training progress.

    python -m recipes.face_dcgan.samples [--workdir recipes/face_dcgan/checkpoints] [--out recipes/face_dcgan/samples]

``progress.png``: the same fixed noise after every epoch (a row of each emotion per epoch is
too tall; one face per emotion per epoch, epochs down, emotions across).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import torch

from affect.labels import EMOTION_NAMES
from recipes.face_dcgan.network import Generator

HERE = Path(__file__).resolve().parent


def to_uint8(faces: torch.Tensor) -> np.ndarray:
    """``[N, 1, 48, 48]`` in [-1, 1] -> ``[N, 48, 48]`` uint8."""
    return ((faces.squeeze(1).clamp(-1, 1) + 1) * 127.5).round().byte().numpy()


def tile(faces: np.ndarray, columns: int, gap: int = 2) -> np.ndarray:
    rows = -(-len(faces) // columns)
    side = faces.shape[1]
    out = np.full((rows * (side + gap) - gap, columns * (side + gap) - gap), 255, dtype=np.uint8)
    for i, face in enumerate(faces):
        r, c = divmod(i, columns)
        out[r * (side + gap) : r * (side + gap) + side, c * (side + gap) : c * (side + gap) + side] = face
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=Path, default=HERE / "config.json")
    ap.add_argument("--workdir", type=Path, default=HERE / "checkpoints")
    ap.add_argument("--out", type=Path, default=HERE / "samples")
    args = ap.parse_args(argv)
    cfg = json.loads(args.config.read_text())
    state = torch.load(args.workdir / "last.pt", weights_only=False)
    gen = Generator(cfg["latent"], cfg["class_embedding"], cfg["gen_width"])
    gen.load_state_dict(state["gen"])
    gen.eval()
    args.out.mkdir(parents=True, exist_ok=True)
    noise = torch.Generator().manual_seed(cfg["seed"] + 1)
    with torch.inference_mode():
        for c, name in enumerate(EMOTION_NAMES):
            faces = gen(torch.randn(64, cfg["latent"], generator=noise), torch.full((64,), c))
            cv2.imwrite(str(args.out / f"{name}.png"), tile(to_uint8(faces), 8))
    epochs = sorted(args.workdir.glob("progress-epoch*.pt"))
    if epochs:  # fixed noise: 8 faces per emotion; the first face of each emotion per epoch
        rows = [to_uint8(torch.load(p))[::8] for p in epochs]
        cv2.imwrite(str(args.out / "progress.png"), tile(np.concatenate(rows), len(EMOTION_NAMES)))
    print(f"wrote {len(EMOTION_NAMES)} grids (epoch {state['epoch'] + 1}) and progress over {len(epochs)} epochs to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

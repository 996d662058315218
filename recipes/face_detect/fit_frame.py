"""Fit how FER-2013 frames a face relative to BlazeFace's box and keypoints (``FER_FRAME`` in affect/face/_detect.py).

    python -m recipes.face_detect.fit_frame --full-data /work/full-data [--faces 300]

FER+ Train faces (sharp FER-2013 train faces; never test faces) are placed in synthetic scenes
(``evaluation/face_scenes.py``) where the square each was scaled to is known. For every face
BlazeFace finds, it prints the medians of: the square's side over the detector's box width,
and how far the square's centre lies below the eyes along the face's axis (eyes to mouth), in
box widths. Those two numbers are ``FER_FRAME``. The 2026-12-02 run: 260 of 300 faces found,
side 1.248 box widths (IQR 1.126-1.365), centre 0.130 box widths below the eyes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from affect.face._blazeface import BlazeFace, pyramid
from evaluation.face_scenes import face_scenes, iou


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full-data", type=Path, required=True)
    ap.add_argument("--faces", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    files = sorted((args.full_data / "ferplus/data/FER2013Train").glob("*.png"))
    pick = np.random.default_rng(args.seed).permutation(len(files))[: args.faces]
    faces = [cv2.imread(str(files[j]), cv2.IMREAD_GRAYSCALE) for j in pick]
    detector = BlazeFace("short", min_score=0.6)
    side_per_width, below_eyes = [], []
    for scene in face_scenes(faces, seed=11):
        found = detector.detect(scene.image, pyramid(*scene.image.shape, 48, face_fraction=0.25))
        for placed in scene.faces:
            if not found:
                continue
            f = max(found, key=lambda f: iou(placed.box, (f.x0, f.y0, f.x1, f.y1)))
            if iou(placed.box, (f.x0, f.y0, f.x1, f.y1)) < 0.3:
                continue
            eyes, mouth = (f.keypoints[0] + f.keypoints[1]) / 2, f.keypoints[3]
            up = (eyes - mouth) / np.linalg.norm(eyes - mouth)
            width = f.x1 - f.x0
            side_per_width.append(placed.side / width)
            below_eyes.append(-float((np.array([placed.cx, placed.cy]) - eyes) @ up) / width)
    print(f"{len(side_per_width)} of {len(faces)} faces found")
    q = np.percentile(side_per_width, [25, 50, 75])
    print(f"side_per_box_width: {q[1]:.3f} (IQR {q[0]:.3f}-{q[2]:.3f})")
    print(f"centre_below_eyes_per_box_width: {np.median(below_eyes):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

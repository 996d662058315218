"""Fit the face encoder's softmax temperature on the faces the face recipe held back.

    python -m recipes.face_fer.calibrate --full-data /work/full-data

Prints the temperature that minimises the negative log-likelihood of the held-back faces'
original FER-2013 labels, with the expected calibration error before and after. Put it into
``affect/face/weights.py`` as the weights' ``temperature`` (like ``sha256`` and ``metrics``);
the encoder then reports ``p ** (1 / T)``, renormalised. Test faces are never read here.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from affect.datasets import default_data_root
from evaluation.calibration import expected_calibration_error
from recipes._calibration import fit_temperature
from recipes.fusion.predictions import face_predictions


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full-data", type=Path, required=True)
    ap.add_argument("--data-root", type=Path, default=None)
    ap.add_argument("--weights", default=None, help="a FaceWeights name (default: the default weights)")
    args = ap.parse_args(argv)
    val = face_predictions("val", args.data_root or default_data_root(), args.full_data, weights=args.weights)
    t = fit_temperature(np.log(np.clip(val.raw, 1e-12, 1.0)), val.labels)
    calibrated = np.power(val.raw, 1 / t)
    calibrated /= calibrated.sum(1, keepdims=True)
    print(json.dumps({"temperature": round(t, 4), "held_back_faces": len(val.labels),
                      "ece_before": round(expected_calibration_error(val.raw, val.labels), 4),
                      "ece_after": round(expected_calibration_error(calibrated, val.labels), 4)}))


if __name__ == "__main__":
    main()

"""The square FER-2013 would have cut around a face, from BlazeFace's box and six keypoints.

The expression network learnt faces as FER-2013 framed them, so a detected face is read from
the square that framing would give. Box width alone predicts that square's side only to about
17% (log standard deviation; the box is always square, and how much forehead and chin it holds
varies with pose and expression); the keypoints say more: how far apart the eyes and ears are,
how far the mouth is below the eyes, where the nose sits. ``FerFraming`` is a linear model of
the keypoint geometry (every length in box widths, positions along and across the face's
eyes-to-mouth axis) for the log of the side and for the centre's offset from the eyes. Its
numbers are fitted by ``recipes/face_detect/fit_frame.py`` on FER+ train faces placed in
synthetic scenes (never on test faces); features are clipped to the range seen in the fit, so
an odd detection cannot push the square far from the usual framing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FEATURES = ("constant", "log_eye_distance", "log_eyes_to_mouth", "log_ear_distance",
            "nose_along", "nose_across", "box_centre_along")
MEDIAN_SIDE_PER_BOX_WIDTH = 1.25  # the fit's median, for callers that know only the box


@dataclass(frozen=True)
class FaceGeometry:
    """A detected face's frame of reference: eye midpoint, unit axes and box width, and ``features``."""

    eyes: np.ndarray
    up: np.ndarray  # from the mouth towards the eyes
    across: np.ndarray  # ``up`` turned by 90 degrees
    box_width: float
    features: np.ndarray  # ``FEATURES``, in box widths


def face_geometry(box: tuple[float, float, float, float], keypoints: np.ndarray) -> FaceGeometry:
    """The geometry of a BlazeFace face: ``box`` (x0, y0, x1, y1) and ``keypoints`` (6, 2) in its order."""
    k = np.asarray(keypoints, np.float64)
    x0, y0, x1, y1 = box
    width = max(float(x1 - x0), 1e-6)
    eyes = (k[0] + k[1]) / 2
    axis = eyes - k[3]
    eyes_to_mouth = max(float(np.hypot(*axis)), 1e-6)
    up = axis / eyes_to_mouth
    across = np.array([-up[1], up[0]])
    nose = k[2] - eyes
    box_centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2]) - eyes

    def log_ratio(length: float) -> float:
        return float(np.log(max(length, 1e-6) / width))

    features = np.array([
        1.0,
        log_ratio(float(np.hypot(*(k[1] - k[0])))),
        log_ratio(eyes_to_mouth),
        log_ratio(float(np.hypot(*(k[5] - k[4])))),
        float(nose @ up) / width,
        float(nose @ across) / width,
        float(box_centre @ up) / width,
    ])
    return FaceGeometry(eyes, up, across, width, features)


@dataclass(frozen=True)
class FerFraming:
    """Linear coefficients over ``FEATURES`` for the log of side / box width and for the centre's
    offset from the eyes along ``up`` and ``across`` (box widths). ``low`` / ``high`` clip the
    features and ``bounds`` the three predictions (each a (min, max) seen in the fit), so that a
    detection unlike any in the fit still gets a square of the usual shape."""

    log_side: tuple[float, ...]
    along: tuple[float, ...]
    across: tuple[float, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]
    bounds: tuple[tuple[float, float], tuple[float, float], tuple[float, float]]  # log_side, along, across

    def crop(self, box: tuple[float, float, float, float], keypoints: np.ndarray) -> tuple[float, float, float]:
        """The FER-2013 square of a face as (centre x, centre y, side) in image pixels."""
        g = face_geometry(box, keypoints)
        f = np.clip(g.features, self.low, self.high)
        log_side, along, across = (float(np.clip(f @ np.asarray(c), lo, hi))
                                   for c, (lo, hi) in zip((self.log_side, self.along, self.across), self.bounds))
        centre = g.eyes + (along * g.up + across * g.across) * g.box_width
        return float(centre[0]), float(centre[1]), float(np.exp(log_side)) * g.box_width


# Fitted by recipes/face_detect/fit_frame.py (2026-12-03; its output is pasted here).
FER_FRAMING = FerFraming(
    log_side=(-0.6241, -2.0702, 0.2403, 2.8106, 1.1412, 0.2078, 0.8475),
    along=(-0.7706, -0.4042, -0.2642, 0.5217, -0.4902, 0.005, -0.0943),
    across=(0.0083, -0.0237, 0.0156, 0.0576, 0.0224, -1.2146, 0.0131),
    low=(1.0, -1.338, -0.946, -0.45, -0.356, -0.153, -0.337),
    high=(1.0, -0.631, -0.576, 0.097, -0.097, 0.131, -0.09),
    bounds=((-0.252, 0.663), (-0.361, 0.091), (-0.327, 0.289)),
)

"""Posed faces from two collections other than FER-2013, found and framed as the library frames a photo.

    python -m recipes.face_posed.faces [--full-data /work/full-data] [--cache /work/cache/face-posed]

Reads the Taiwanese facial expression database (``build_tfeid.sh``: 29 performers, trained on) and JAFFE
(``build_jaffe.sh``: 10 women, read to choose, never trained on), runs the library's default detector
(BlazeFace) over each picture and cuts the face the classifier reads (``affect.face._detect.crop_face``:
eyes level, FER-2013's framing, 48x48 gray), so that the faces are framed as a user's photo would be,
not as their collection cropped them. One file per collection: ``<name>.npz`` with ``faces`` (N, 48, 48)
uint8, ``labels`` (index in ``affect.labels.EMOTIONS``), ``subjects`` and ``files``; pictures in which
no face is found are counted in the log and left out.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from affect.face._detect import crop_face, make_detector
from affect.labels import EMOTIONS

log = logging.getLogger("recipes.face_posed.faces")

DEFAULT_CACHE = Path("/work/cache/face-posed")

# The 5th character of a Taiwanese database file name (its Readme): the posed expression.
TFEID_EXPRESSIONS = {"a": "neutral", "b": "happiness", "c": "sadness", "d": "anger", "e": "disgust", "f": "fear",
                     "g": "surprise"}
# JAFFE's two letters after the subject's: the posed expression.
JAFFE_EXPRESSIONS = {"NE": "neutral", "HA": "happiness", "SA": "sadness", "AN": "anger", "DI": "disgust", "FE": "fear",
                     "SU": "surprise"}


@dataclass(frozen=True)
class PosedPicture:
    path: Path
    subject: str
    emotion: str


def tfeid_pictures(root: Path) -> list[PosedPicture]:
    """Front views only (the 4th character 1; the snapshot holds no other), neutral files named without a letter included."""
    pictures = []
    for path in sorted((root / "tfeid" / "faces_256x256").glob("*.jpg")):
        name = path.stem
        letter = name[4] if len(name) > 4 and name[4].isalpha() else "a"  # e.g. 1201002: a neutral face
        if name[3] != "1":
            continue
        pictures.append(PosedPicture(path, "tfeid-" + name[:2], TFEID_EXPRESSIONS[letter]))
    return pictures


def jaffe_pictures(root: Path) -> list[PosedPicture]:
    pictures = []
    for path in sorted((root / "jaffe").glob("*.tiff")):
        subject, expression = path.name.split(".")[:2]
        pictures.append(PosedPicture(path, "jaffe-" + subject, JAFFE_EXPRESSIONS[expression[:2]]))
    return pictures


COLLECTIONS = {"tfeid": tfeid_pictures, "jaffe": jaffe_pictures}


def frame_faces(pictures: list[PosedPicture]) -> tuple[dict[str, np.ndarray], int]:
    """The largest face of each picture, framed by the library; the number of pictures with none."""
    detector = make_detector("blazeface")
    faces, labels, subjects, files, missed = [], [], [], [], 0
    for picture in pictures:
        gray = cv2.imread(str(picture.path), cv2.IMREAD_GRAYSCALE)
        if gray is None:
            raise ValueError(f"unreadable picture: {picture.path.name}")
        found = detector.detect(gray)
        if not found:
            missed += 1
            continue
        face = max(found, key=lambda d: d.w * d.h)
        faces.append(crop_face(gray, face))
        labels.append(EMOTIONS.index(picture.emotion))
        subjects.append(picture.subject)
        files.append(picture.path.name)
    arrays = {"faces": np.stack(faces).astype(np.uint8), "labels": np.array(labels, dtype=np.int64),
              "subjects": np.array(subjects), "files": np.array(files)}
    return arrays, missed


def load_posed(cache: Path, name: str) -> dict[str, np.ndarray]:
    with np.load(cache / f"{name}.npz") as data:
        return {key: data[key] for key in data.files}


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--full-data", type=Path, default=Path("/work/full-data"))
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    args = ap.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    for name, read in COLLECTIONS.items():
        pictures = read(args.full_data)
        arrays, missed = frame_faces(pictures)
        np.savez_compressed(args.cache / f"{name}.npz", **arrays)
        counts = np.bincount(arrays["labels"], minlength=len(EMOTIONS))
        log.info("%s: %d faces of %d pictures (%d without a face found), %d subjects; per emotion %s", name,
                 len(arrays["labels"]), len(pictures), missed, len(set(arrays["subjects"])),
                 dict(zip([e.value for e in EMOTIONS], counts.tolist())))


if __name__ == "__main__":
    main()

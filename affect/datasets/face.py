"""The face data sets the face models are measured on: FER-2013 test, FER+ Test and CK+48, as
48x48 gray faces with their labels (indices into ``affect.labels.EMOTIONS``).

Read by the benchmarks (``benchmarks.accuracy.face``, ``benchmarks.detection``) and the recipes
(``recipes.fusion``); the library never needs the data to run.
"""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np

from affect.datasets._common import DatasetNotFoundError, require_file
from affect.labels import emotion_index, map_label

FERPLUS_COLUMNS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown", "NF")


def read_fer2013_test(root: Path, duplicates: Path | None, limit: int | None) -> tuple[np.ndarray, np.ndarray, int]:
    """Faces and labels of ``root/<emotion>/*.jpg``, minus the listed duplicates; also how many were dropped."""
    skip = set()
    if duplicates is not None:
        skip = {line.strip().split("/", 1)[1]
                for line in require_file(duplicates, "FER-2013 test duplicates list").read_text().splitlines() if line.strip()}
    if not root.is_dir():
        raise DatasetNotFoundError(f"FER-2013 test faces not found at {root}")
    faces, labels, dropped = [], [], 0
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        emotion = map_label("fer2013", folder.name)
        if emotion is None:
            continue
        for path in sorted(folder.glob("*.jpg")):
            if f"{folder.name}/{path.name}" in skip:
                dropped += 1
                continue
            faces.append(_read48(path))
            labels.append(emotion_index(emotion))
    if not faces:
        raise DatasetNotFoundError(f"no FER-2013 test faces (<emotion>/*.jpg) in {root}")
    faces_arr, labels_arr = np.stack(faces), np.array(labels)
    if limit:
        pick = np.random.default_rng(0).permutation(len(labels_arr))[:limit]  # all classes, not the first folder
        faces_arr, labels_arr = faces_arr[pick], labels_arr[pick]
    return faces_arr, labels_arr, dropped


def read_ferplus_test(full_data: Path, limit: int | None) -> tuple[np.ndarray, np.ndarray, int]:
    """FER+ Test PNGs with their majority label; contempt/unknown/not-a-face and tied votes are dropped."""
    folder, table = full_data / "ferplus/data/FER2013Test", full_data / "ferplus/fer2013new.csv"
    if not table.is_file():
        raise DatasetNotFoundError(f"FER+ labels not found at {table}")
    faces, labels, dropped = [], [], 0
    with table.open(newline="") as f:
        for row in csv.DictReader(f):
            name = row["Image name"].strip()
            if row["Usage"] != "PrivateTest" or not name or not (folder / name).is_file():
                continue
            votes = np.array([float(row[c]) for c in FERPLUS_COLUMNS])
            top = np.flatnonzero(votes == votes.max())
            emotion = map_label("ferplus", FERPLUS_COLUMNS[top[0]]) if len(top) == 1 else None
            if emotion is None:
                dropped += 1
                continue
            faces.append(_read48(folder / name))
            labels.append(emotion_index(emotion))
            if limit and len(labels) >= limit:
                break
    if not faces:
        raise DatasetNotFoundError(f"no FER+ test faces of {table} in {folder}")
    return np.stack(faces), np.array(labels), dropped


def _read48(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise RuntimeError(f"cannot read {path}")
    return img if img.shape == (48, 48) else cv2.resize(img, (48, 48), interpolation=cv2.INTER_AREA)


# CK+48's folders -> our emotions; contempt is not one of the seven and is left out (as FER+'s is).
CKPLUS_FOLDERS = {"anger": "anger", "disgust": "disgust", "fear": "fear", "happy": "happiness",
                  "sadness": "sadness", "surprise": "surprise", "contempt": None}


def read_ckplus(root: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """CK+48 faces (48x48 gray, the last frames of each posed sequence), their labels and subject ids."""
    if not root.is_dir():
        raise DatasetNotFoundError(f"CK+48 not found at {root}")
    faces, labels, subjects = [], [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if folder.name not in CKPLUS_FOLDERS:
            raise KeyError(f"CK+48: unknown folder {folder.name!r}; known: {sorted(CKPLUS_FOLDERS)}")
        emotion = CKPLUS_FOLDERS[folder.name]
        if emotion is None:
            continue
        for path in sorted(folder.glob("*.png")):
            faces.append(_read48(path))
            labels.append(emotion_index(emotion))
            subjects.append(path.name.split("_")[0])
    if not faces:
        raise DatasetNotFoundError(f"no CK+48 faces (<emotion>/*.png) in {root}")
    return np.stack(faces), np.array(labels), subjects

"""Each shipped encoder's probabilities on its own validation and test splits, cached.

The fusion head is trained on what the encoders say about data they did not learn from (their
validation splits) and measured on their test splits. Every array here is the encoder's output
as the library reports it (``calibrated``) and before its calibration (``raw``), so calibration
can be measured too. Nothing of the data itself is cached: only probability vectors and labels.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from affect.datasets import default_data_root, read_meld
from affect.datasets.speech import SPEAKER_SPLITS
from affect.labels import emotion_index

log = logging.getLogger("recipes.fusion")
CACHE = Path(__file__).resolve().parent / "cache"
SPEECH_VAL_ACTORS = tuple(int(actor) for actor in SPEAKER_SPLITS["ravdess"]["validation"])  # 21, 22
# The speech corpora other than RAVDESS (German, Urdu, Italian), by the speech recipe's speaker
# splits: "val-other-voices" and "test-other-voices" hold their validation and test speakers, so
# that fusion learns and is read beyond RAVDESS's actors.
OTHER_VOICES = ("emodb", "urdu", "emovo")
OTHER_VOICE_SPLITS = {"val-other-voices": "validation", "test-other-voices": "test"}


@dataclass(frozen=True)
class Predictions:
    """One encoder on one split: probabilities ``[N, 7]`` before and after calibration, labels ``[N]``."""

    raw: np.ndarray
    calibrated: np.ndarray
    labels: np.ndarray
    model: str

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, raw=self.raw, calibrated=self.calibrated, labels=self.labels, model=np.array(self.model))

    @classmethod
    def load(cls, path: Path) -> "Predictions":
        d = np.load(path)
        return cls(d["raw"], d["calibrated"], d["labels"], str(d["model"]))


def a_class_at_a_time(labels: np.ndarray, limit: int) -> np.ndarray:
    """Indices of ``limit`` items taken a class at a time (each class's first item in label order,
    then each one's second, ...). A limited run's items of the three modalities then share their
    emotions, which the label-matched combinations need: the first clips of a sorted corpus are
    all of one emotion, and 5 faces and 5 clips had none in common."""
    rank = np.empty(len(labels), int)
    for c in np.unique(labels):
        rank[labels == c] = np.arange((labels == c).sum())
    return np.lexsort((labels, rank))[:limit]


def _normalise(p: np.ndarray) -> np.ndarray:
    return p / p.sum(1, keepdims=True)


def text_predictions(split: str, data_root: Path, limit: int | None = None) -> Predictions:
    """MELD ``dev`` (validation) or ``test``, every turn with its past turns as context."""
    from affect.text import TextEncoder
    from affect.text._batching import dialogue_batch
    from affect.text._network import mix_context
    from affect.text.encoder import Readings

    encoder = TextEncoder()
    dialogues = read_meld(split, data_root)
    if limit:
        dialogues = dialogues[: max(1, limit // 9)]
    pairs = [[(t.text, t.speaker) for t in d] for d in dialogues]
    with torch.inference_mode():
        current, context, mask, relation = dialogue_batch(encoder.net, encoder.tokenizer, pairs, max_tokens=encoder.max_tokens)
        with_context = encoder.net.classify(current, context, mask, relation)
        alone = encoder.net.classify(current, context, torch.zeros_like(mask), relation)
        raw = mix_context(with_context[0], alone[0], encoder.context_weight).exp()  # before calibration
        readings = Readings(encoder.net.calibrated(*with_context), encoder.net.calibrated(*alone))
        calibrated = encoder.reported(readings)[0].exp()  # what the library reports (prior and context weight)
    labels = np.array([emotion_index(t.emotion) for d in dialogues for t in d])
    return Predictions(raw.numpy(), calibrated.numpy(), labels, encoder.model_id)


def face_predictions(split: str, data_root: Path, full_data: Path | None, limit: int | None = None,
                     weights: str | None = None) -> Predictions:
    """FER+ Train faces held back by the face recipe (``val``), or FER-2013 test minus duplicates
    (``test``; the 420-face slice when ``full_data`` is not given)."""
    from affect.face import FaceEncoder

    encoder = FaceEncoder(weights=weights)
    if split == "val":
        if full_data is None:
            raise SystemExit("the face validation split needs --full-data")
        from recipes.face_fer.train import HERE as FACE_RECIPE
        from recipes.face_fer.train import load_train, split as split_indices

        cfg = json.loads((FACE_RECIPE / "config.json").read_text())
        images, labels, _ = load_train(full_data, data_root, cfg, None)
        _, held_back = split_indices(labels, cfg["val_fraction"], cfg["seed"])
        faces, labels = images[held_back], labels[held_back]
    else:
        from affect.datasets.face import read_fer2013_test

        if full_data is not None:
            root, duplicates = full_data / "fer2013" / "archive" / "test", data_root / "face" / "fer2013-test-duplicates.txt"
        else:
            root, duplicates = data_root / "face" / "fer2013-test-slice", None
        faces, labels, _ = read_fer2013_test(root, duplicates, None)
    if limit:
        shuffled = np.random.default_rng(0).permutation(len(labels))
        pick = shuffled[a_class_at_a_time(labels[shuffled], limit)]
        faces, labels = faces[pick], labels[pick]
    calibrated = encoder.predict_proba(faces)
    t = encoder.temperature
    raw = _normalise(np.power(np.clip(calibrated, 1e-12, 1.0), t))  # undo p ** (1 / t)
    return Predictions(raw, calibrated, labels, encoder.model_id)


def speech_predictions(split: str, data_root: Path, full_data: Path | None, limit: int | None = None) -> Predictions:
    """RAVDESS actors 21-22 (``val``, from ``full_data``) or 23-24 (``test``, the shared slice), or
    the validation or test speakers of ``OTHER_VOICES`` (``OTHER_VOICE_SPLITS``, from ``full_data``)."""
    from affect.datasets.ravdess import full_clips, read_test_slice
    from affect.datasets.speech import read_speech_corpus
    from affect.speech import SpeechEncoder

    encoder = SpeechEncoder()
    if (split == "val" or split in OTHER_VOICE_SPLITS) and full_data is None:
        raise SystemExit(f"the speech {split} split needs --full-data")
    if split == "val":
        clips = full_clips(full_data, SPEECH_VAL_ACTORS)
    elif split in OTHER_VOICE_SPLITS:
        clips = [c for corpus in OTHER_VOICES for c in read_speech_corpus(corpus, full_data, OTHER_VOICE_SPLITS[split])]
    else:
        clips = read_test_slice(data_root)
    if limit:
        clips = [clips[i] for i in a_class_at_a_time(np.array([emotion_index(c.emotion) for c in clips]), limit)]
    probs, labels = [], []
    for clip in tqdm(clips, desc=f"speech {split}", mininterval=10, leave=False):
        answer = encoder.analyze_file(clip.path)
        if answer.result is None:
            continue  # no speech found: nothing to fuse
        probs.append(answer.result.emotion_vector())
        labels.append(emotion_index(clip.emotion))
    calibrated = np.array(probs)
    raw = _normalise(np.power(np.clip(calibrated, 1e-12, 1.0), encoder.temperature))
    return Predictions(raw, calibrated, np.array(labels), encoder.model_id)


def cached(modality: str, split: str, data_root: Path | None, full_data: Path | None, *, refresh: bool = False,
           limit: int | None = None) -> Predictions:
    """The predictions, from the cache when it holds them for the same model. A limited run's few
    items (a smoke run) are computed each time and never cached."""
    data_root = data_root or default_data_root()
    path = CACHE / f"{modality}-{split}{'-full' if full_data else ''}.npz"
    make = {"text": lambda: text_predictions("dev" if split == "val" else "test", data_root, limit),
            "face": lambda: face_predictions(split, data_root, full_data, limit),
            "speech": lambda: speech_predictions(split, data_root, full_data, limit)}[modality]
    fingerprint = default_fingerprint(modality)
    if path.is_file() and not refresh and not limit:
        predictions = Predictions.load(path)
        if predictions.model == fingerprint:
            return predictions
    log.info("computing %s predictions on %s", modality, split)
    predictions = make()
    predictions = Predictions(predictions.raw, predictions.calibrated, predictions.labels, fingerprint)
    if not limit:
        predictions.save(path)
    return predictions


def default_fingerprint(modality: str) -> str:
    """``name@version#sha`` of the modality's default weights (and, for text, the default prior):
    a cache entry is valid for those only."""
    from affect.registry import list_weights

    (row,) = [r for r in list_weights() if r["modality"] == modality and r["default"]]
    fingerprint = f"{row['id']}#{row['sha256'][:12]}"
    if modality == "text":  # the text readings also follow the default expected prior
        from affect.text.prior import DEFAULT_PRIOR

        fingerprint += f"+prior={DEFAULT_PRIOR}"
    return fingerprint

"""Does a runtime give the PyTorch answers? Probabilities of both on the same inputs, compared.

Each check runs the encoder's own batch path twice on the same inputs, once on PyTorch and once
on the runtime, and reports the largest absolute difference of any probability, how often the
top label agrees, and, on test items with gold labels, each runtime's accuracy (so int8 is
judged by what it does to accuracy, not only by how far its numbers move).

Inputs: with a data root, MELD test turns in their dialogues (text), FER-2013 test-slice faces
(face), RAVDESS test-slice clips (speech), from the shared data
(``affect.datasets.default_data_root``); without one, the inputs the library makes itself
(``affect.onnx._builtin_inputs``: no gold labels, so no accuracy).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from affect.labels import EMOTION_NAMES, emotion_index, map_label
from affect.onnx._runtime import use_runtime
from affect.results import Modality


@dataclass(frozen=True)
class Parity:
    """One encoder on one runtime against PyTorch, on the same ``items``."""

    encoder: str  # text, face or speech
    model: str
    runtime: str
    test_set: str  # what the items are: "MELD test", ..., or "built-in ..." (BUILT_IN)
    items: int
    max_abs_diff: float  # largest |p_runtime - p_torch| over every probability of every item
    top_label_agreement: float  # share of items whose top emotion is the same
    accuracy_torch: float | None  # top emotion against the gold label (None: built-in inputs have none)
    accuracy_runtime: float | None

    @property
    def built_in(self) -> bool:
        """Checked on the library's own inputs, not on research test items."""
        return self.test_set.startswith(BUILT_IN)

    @property
    def accuracy_drop_points(self) -> float | None:
        if self.accuracy_torch is None or self.accuracy_runtime is None:
            return None
        return 100.0 * (self.accuracy_torch - self.accuracy_runtime)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"accuracy_drop_points": self.accuracy_drop_points}


# What a probe gives: the call that reads the items (probabilities, one row an item) and their gold labels (None: none).
_Probe = tuple[Callable[[], np.ndarray], np.ndarray | None]
FER_TEST_SLICE = Path("face") / "fer2013-test-slice"
BUILT_IN = "built-in"


def check_parity_data(encoder: str, data_root: Path) -> None:
    """Raise ``DatasetNotFoundError`` unless the test items of ``encoder``'s parity check
    ("text", "face" or "speech") are in ``data_root``: an export checks this before it writes."""
    from affect.datasets import DatasetNotFoundError
    from affect.datasets.ravdess import read_test_slice
    from affect.datasets.text import meld_file

    if encoder == "text":
        meld_file("test", data_root)  # there: it is read when the check runs
    elif encoder == "face":
        folder = data_root / FER_TEST_SLICE
        if not any(folder.glob("*/*.jpg")):
            raise DatasetNotFoundError(f"the FER-2013 test slice (face/*.jpg) not found in {folder} "
                                       "(pass --data-root or set $AFFECT_DATA_ROOT)")
    elif encoder == "speech":
        read_test_slice(data_root)


def check_parity(encoder: Any, runtime: str, data_root: Path | None, *, limit: int | None = None) -> Parity:
    """``encoder`` on PyTorch and on ``runtime``, on up to ``limit`` test items of ``data_root``
    (``None``: on the library's built-in inputs); the encoder is left on ``runtime``."""
    modality = encoder.modality
    if modality == Modality.TEXT:
        name, test_set, probe, gold = "text", "MELD test", *(
            _text_probe(encoder, data_root, limit) if data_root else _builtin_text_probe(encoder, limit))
        test_set = test_set if data_root else f"{BUILT_IN} sentences with past turns"
    elif modality == Modality.FACE:
        name, test_set, probe, gold = "face", "FER-2013 test slice", *(
            _face_probe(encoder, data_root, limit) if data_root else _builtin_face_probe(encoder, limit))
        test_set = test_set if data_root else f"{BUILT_IN} synthetic faces"
    elif modality == Modality.SPEECH:
        name, test_set, probe, gold = "speech", "RAVDESS test slice", *(
            _speech_probe(encoder, data_root, limit) if data_root else _builtin_speech_probe(encoder, limit))
        test_set = test_set if data_root else f"{BUILT_IN} synthetic speech clips"
    else:
        raise ValueError(f"no parity check for {encoder!r}")
    use_runtime(encoder, "torch")
    reference = probe()
    use_runtime(encoder, runtime)
    candidate = probe()
    top_ref, top_new = reference[:, :7].argmax(1), candidate[:, :7].argmax(1)  # the emotion columns
    return Parity(
        encoder=name, model=encoder.model_id, runtime=runtime, test_set=test_set, items=len(reference),
        max_abs_diff=float(np.abs(candidate - reference).max()),
        top_label_agreement=float((top_ref == top_new).mean()),
        accuracy_torch=None if gold is None else float((top_ref == gold).mean()),
        accuracy_runtime=None if gold is None else float((top_new == gold).mean()),
    )


def _dialogue_probe(encoder: Any, pairs: list[list[tuple[str, str | None]]]) -> Callable[[], np.ndarray]:
    def probe() -> np.ndarray:
        emo, sent = encoder.reported(encoder.read_dialogues(pairs))
        return torch.cat([emo.exp(), sent.exp()], 1).numpy()

    return probe


def _builtin_text_probe(encoder: Any, limit: int | None) -> _Probe:
    """The built-in conversations, whole, until ``limit`` turns are reached (as MELD's dialogues are)."""
    from affect.onnx._builtin_inputs import dialogues

    chosen, count = [], 0
    for dialogue in dialogues():
        if limit and count >= limit:
            break
        chosen.append(dialogue)
        count += len(dialogue)
    return _dialogue_probe(encoder, chosen), None


def _builtin_face_probe(encoder: Any, limit: int | None) -> _Probe:
    from affect.onnx._builtin_inputs import synthetic_faces

    faces = synthetic_faces()[:limit]
    return (lambda: encoder.predict_proba(faces)), None


def _builtin_speech_probe(encoder: Any, limit: int | None) -> _Probe:
    """The synthetic clips, each read whole as one segment: the graphs are checked, not the voice
    activity detector (which is no graph of the export, and may hear no speech in a synthetic voice)."""
    from dataclasses import replace

    from affect.onnx._builtin_inputs import SAMPLE_RATE, synthetic_speech

    prepared = [encoder.prepare(clip, SAMPLE_RATE) for clip in synthetic_speech()[:limit]]
    whole = [replace(p, spans=((0, len(p.audio.samples)),)) for p in prepared]

    def probe() -> np.ndarray:
        answers = encoder.analyze_prepared(whole)
        return np.array([[a.result.emotions[name] for name in EMOTION_NAMES] for a in answers])

    return probe, None


def _text_probe(encoder: Any, data_root: Path, limit: int | None) -> _Probe:
    """Emotion (7) and sentiment (3) probabilities of MELD test turns, each read after the turns
    before it in its dialogue, as the library reports them (calibrated, with the label prior and
    the entry's ``context_weight``: ``TextEncoder.read_dialogues`` and ``reported``)."""
    from affect.datasets import read_meld

    dialogues, count = [], 0
    for dialogue in read_meld("test", data_root):
        if limit and count >= limit:
            break
        dialogues.append(dialogue)
        count += len(dialogue)
    pairs: list[list[tuple[str, str | None]]] = [[(t.text, t.speaker) for t in d] for d in dialogues]
    gold = np.array([emotion_index(t.emotion) for d in dialogues for t in d])
    return _dialogue_probe(encoder, pairs), gold


def _face_probe(encoder: Any, data_root: Path, limit: int | None) -> _Probe:
    import cv2

    faces: list[np.ndarray] = []
    gold = []
    for folder in sorted(p for p in (data_root / FER_TEST_SLICE).iterdir() if p.is_dir()):
        emotion = map_label("fer2013", folder.name)
        if emotion is None:
            continue
        for path in sorted(folder.glob("*.jpg")):
            face = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            if face is None:
                raise ValueError(f"{path} is not a readable image")
            faces.append(face)
            gold.append(emotion_index(emotion))
    faces_arr, gold_arr = np.stack(faces), np.array(gold)
    if limit:
        pick = np.random.default_rng(0).permutation(len(gold_arr))[:limit]  # every class, not the first folder
        faces_arr, gold_arr = faces_arr[pick], gold_arr[pick]
    return (lambda: encoder.predict_proba(faces_arr)), gold_arr


def _speech_probe(encoder: Any, data_root: Path, limit: int | None) -> _Probe:
    from affect.datasets.ravdess import read_test_slice

    clips = read_test_slice(data_root)[:limit] if limit else read_test_slice(data_root)
    prepared = encoder.find_speech([encoder.prepare(c.path.read_bytes()) for c in clips])  # the VAD once
    kept = [i for i, p in enumerate(prepared) if p.spans]
    gold = np.array([emotion_index(clips[i].emotion) for i in kept])

    def probe() -> np.ndarray:
        answers = encoder.analyze_prepared([prepared[i] for i in kept])
        return np.array([[a.result.emotions[name] for name in EMOTION_NAMES] for a in answers])

    return probe, gold

"""The emotional-speech corpora (RAVDESS, EmoDB, URDU, EMOVO) read into one shape, with speaker splits.

Each corpus is read from the folder ``../shared/data/build_datasets.sh`` fills (``--full-data``).
Splits are by speaker, never by clip, so that a validation or test figure is always about
voices the model has not heard: RAVDESS keeps its documented actor split (1-20 train, 21-22
validation, 23-24 test); EmoDB, URDU and EMOVO, which name no split, get one here, fixed and
written down (``SPEAKER_SPLITS``). EMOVO is built by ``recipes/speech_multicorpus/build_emovo.sh``.
TESS (``recipes/speech_multicorpus/build_tess.sh``) is never trained on: all of it is "test".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from affect.datasets._common import DatasetNotFoundError
from affect.datasets.ravdess import AUDIO_SUFFIXES, FULL_SPEECH, parse_name
from affect.labels import Emotion, map_label

Split = Literal["train", "validation", "test"]
SPEECH_CORPORA: tuple[str, ...] = ("ravdess", "emodb", "urdu", "emovo")
# Corpora no speech model trains on: read whole as voices none of them heard (every speaker is "test").
UNHEARD_SPEECH_CORPORA: tuple[str, ...] = ("tess",)
RAVDESS_FOLDER = FULL_SPEECH
EMODB_FOLDER = Path("emodb") / "wav"
URDU_FOLDER = Path("urdu")
EMOVO_FOLDER = Path("emovo")

# Speakers of each split. EmoDB: 10 speakers (5 female: 08 09 13 14 16); one of each sex held
# out for validation and one of each for test. URDU: 38 speakers of very unequal clip counts
# (SM5 alone has 80 clips); validation and test take a mix of small and mid-sized speakers,
# about 15% of the clips each, never the two largest. EMOVO: 6 actors of 98 clips each (3 female
# f1-f3, 3 male m1-m3); one female for validation, one male for test.
SPEAKER_SPLITS: dict[str, dict[str, tuple[str, ...]]] = {
    "ravdess": {
        "validation": ("21", "22"),
        "test": ("23", "24"),
    },
    "emodb": {
        "validation": ("10", "14"),
        "test": ("03", "08"),
    },
    "urdu": {
        "validation": ("SM1", "SF6", "SF4", "SM19", "SF2"),
        "test": ("SM7", "SF1", "SM20", "SF8"),
    },
    "emovo": {
        "validation": ("f3",),
        "test": ("m3",),
    },
    "tess": {
        "validation": (),
        "test": ("OAF", "YAF"),
    },
}


@dataclass(frozen=True)
class SpeechClip:
    """One labelled clip of an emotional-speech corpus."""

    corpus: str
    path: Path
    speaker: str
    emotion: Emotion
    label: str  # the corpus's own label, e.g. RAVDESS "calm" or EmoDB "L" (boredom)

    @property
    def split(self) -> Split:
        splits = SPEAKER_SPLITS[self.corpus]
        if self.speaker in splits["test"]:
            return "test"
        if self.speaker in splits["validation"]:
            return "validation"
        return "train"


def _ravdess(folder: Path) -> list[SpeechClip]:
    clips = []
    for path in sorted(folder.glob("Actor_*/*")):
        if path.suffix.lower() not in AUDIO_SUFFIXES:
            continue
        try:
            clip = parse_name(path)  # the one RAVDESS file-name reader (affect.datasets.ravdess)
        except ValueError:  # not an audio-only speech file
            continue
        clips.append(SpeechClip("ravdess", path, f"{clip.actor:02d}", clip.emotion, clip.label))
    return clips


def _emodb(folder: Path) -> list[SpeechClip]:
    clips = []
    for path in sorted(folder.glob("*.wav")):
        stem = path.stem  # SSTTTEv: speaker, text, emotion letter, version
        if len(stem) < 7:
            continue
        emotion = map_label("emodb", stem[5])
        if emotion is not None:
            clips.append(SpeechClip("emodb", path, stem[:2], emotion, stem[5]))
    return clips


def _urdu(folder: Path) -> list[SpeechClip]:
    clips = []
    for label_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        for path in sorted(label_dir.glob("*.wav")):
            emotion = map_label("urdu", label_dir.name)
            if emotion is not None:
                clips.append(SpeechClip("urdu", path, path.stem.split("_")[0], emotion, label_dir.name))
    return clips


def _emovo(folder: Path) -> list[SpeechClip]:
    clips = []
    for path in sorted(folder.glob("*/*.wav")):
        prefix, actor, *_ = path.stem.split("-")  # <emotion>-<actor>-<sentence>
        emotion = map_label("emovo", prefix)
        if emotion is not None:
            clips.append(SpeechClip("emovo", path, actor, emotion, prefix))
    return clips


def _tess(folder: Path) -> list[SpeechClip]:
    clips = []
    for path in sorted(folder.glob("*/*.wav")):
        speaker, _, label = path.parent.name.partition("_")  # <SPEAKER>_<emotion>/ (one file is named OA_, not OAF_)
        emotion = map_label("tess", label.lower())
        if emotion is not None:
            clips.append(SpeechClip("tess", path, speaker, emotion, label.lower()))
    return clips


_SHARED_BUILDER = "../shared/data/build_datasets.sh"
# corpus -> (folder under --full-data, reader, what builds that folder)
_READERS = {"ravdess": (RAVDESS_FOLDER, _ravdess, _SHARED_BUILDER), "emodb": (EMODB_FOLDER, _emodb, _SHARED_BUILDER),
            "urdu": (URDU_FOLDER, _urdu, _SHARED_BUILDER),
            "emovo": (EMOVO_FOLDER, _emovo, "recipes/speech_multicorpus/build_emovo.sh"),
            "tess": (Path("tess"), _tess, "recipes/speech_multicorpus/build_tess.sh")}


def read_speech_corpus(corpus: str, full_data: Path, split: Split | None = None) -> list[SpeechClip]:
    """Every clip of ``corpus`` under ``full_data`` (or of one speaker split), sorted by path."""
    try:
        sub, reader, builder = _READERS[corpus]
    except KeyError:
        raise ValueError(f"unknown speech corpus {corpus!r}; known: {', '.join(_READERS)}") from None
    folder = Path(full_data) / sub
    if not folder.is_dir():
        raise DatasetNotFoundError(f"{corpus} not found at {folder} (build it with {builder})")
    clips = reader(folder)
    if not clips:
        raise DatasetNotFoundError(f"no {corpus} clips in {folder}")
    return [c for c in clips if split is None or c.split == split]

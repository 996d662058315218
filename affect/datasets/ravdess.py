"""RAVDESS speech clips and their labels, from the file names (``MM-VV-EE-II-SS-RR-AA``).

Used by the recipes, the benchmarks, the tests and the multi-corpus reader (``affect.datasets.speech``);
the library never needs the data to run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from affect.datasets import DatasetNotFoundError
from affect.labels import RAVDESS_EMOTION_CODES, Emotion, map_label

TRAIN_ACTORS = tuple(range(1, 21))
VALIDATION_ACTORS = (21, 22)
TEST_ACTORS = (23, 24)
TEST_SLICE = Path("speech") / "ravdess-test-slice"
FULL_SPEECH = Path("ravdess") / "speech-emotion-recognition-ravdess-data" / "audio_speech_actors_01-24"
AUDIO_SUFFIXES = (".wav", ".flac")


@dataclass(frozen=True)
class RavdessClip:
    path: Path
    actor: int
    emotion: Emotion
    label: str  # RAVDESS's own label (e.g. "calm")
    intensity: int
    statement: int

    @property
    def female(self) -> bool:
        return self.actor % 2 == 0


def parse_name(path: Path) -> RavdessClip:
    """The clip's labels from its file name; ``ValueError`` for a name that is not RAVDESS speech."""
    parts = path.stem.split("-")
    if len(parts) != 7 or parts[0] != "03" or parts[1] != "01":
        raise ValueError(f"not a RAVDESS audio-only speech file name: {path.name}")
    label = RAVDESS_EMOTION_CODES[parts[2]]
    emotion = map_label("ravdess", label)
    if emotion is None:  # pragma: no cover - every RAVDESS label has a counterpart
        raise ValueError(f"RAVDESS label {label!r} has no emotion")
    return RavdessClip(path=path, actor=int(parts[6]), emotion=emotion, label=label,
                       intensity=int(parts[3]), statement=int(parts[4]))


def read_clips(folder: Path, actors: tuple[int, ...] | None = None) -> list[RavdessClip]:
    """Every speech clip under ``folder`` (``Actor_NN/*.wav|flac``), optionally of some actors, sorted."""
    if not folder.is_dir():
        raise DatasetNotFoundError(f"RAVDESS speech not found at {folder}")
    clips = [parse_name(p) for p in sorted(folder.glob("Actor_*/*")) if p.suffix.lower() in AUDIO_SUFFIXES]
    if actors is not None:
        clips = [c for c in clips if c.actor in actors]
    if not clips:
        raise DatasetNotFoundError(f"no RAVDESS speech clips{'' if actors is None else f' of actors {actors}'} in {folder}")
    return clips


def read_test_slice(data_root: Path) -> list[RavdessClip]:
    """The 120 test clips (actors 23-24, 16 kHz FLAC) of the shared data folder."""
    return read_clips(data_root / TEST_SLICE, TEST_ACTORS)


def full_clips(full_data: Path, actors: tuple[int, ...]) -> list[RavdessClip]:
    """Clips of ``actors`` from the full 48 kHz RAVDESS that ``build_datasets.sh`` unpacks."""
    return read_clips(full_data / FULL_SPEECH, actors)

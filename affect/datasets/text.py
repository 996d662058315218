"""MELD, GoEmotions (Ekman mapping), dair-ai emotion and DailyDialog, read into one shape."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from affect.datasets._common import default_data_root, require_file
from affect.labels import EMOTION_SENTIMENT, Emotion, Sentiment, map_label


@dataclass(frozen=True)
class DialogueTurn:
    """One utterance of a dialogue, with its gold labels."""

    dialogue_id: str
    turn_index: int
    speaker: str | None
    text: str
    emotion: Emotion
    sentiment: Sentiment | None


@dataclass(frozen=True)
class TextExample:
    """A stand-alone text (no dialogue) with its gold labels."""

    text: str
    emotion: Emotion
    sentiment: Sentiment | None


def meld_file(split: str, data_root: Path | None = None) -> Path:
    """The file of MELD ``train``/``dev``/``test``, unread; ``DatasetNotFoundError`` when it is not there."""
    root = Path(data_root) if data_root else default_data_root()
    return require_file(root / "text" / "meld" / f"{split}_sent_emo.csv", f"MELD {split}")


def read_meld(split: str, data_root: Path | None = None) -> list[list[DialogueTurn]]:
    """MELD ``train``/``dev``/``test`` as a list of dialogues, each a list of turns in order."""
    path = meld_file(split, data_root)
    dialogues: dict[str, list[DialogueTurn]] = {}
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            emotion = map_label("meld", row["Emotion"])
            assert emotion is not None  # every MELD label maps
            turn = DialogueTurn(
                dialogue_id=row["Dialogue_ID"],
                turn_index=int(row["Utterance_ID"]),
                speaker=row["Speaker"] or None,
                text=row["Utterance"].strip(),
                emotion=emotion,
                sentiment=Sentiment(row["Sentiment"]),
            )
            dialogues.setdefault(turn.dialogue_id, []).append(turn)
    return [sorted(turns, key=lambda t: t.turn_index) for turns in dialogues.values()]


def read_goemotions_ekman(split: str, data_root: Path | None = None) -> list[TextExample]:
    """GoEmotions ``train``/``dev``/``test``, Ekman labels, single-label comments only.

    Multi-label comments are skipped (see ``affect.labels.LOSSY_CHOICES``).
    """
    root = Path(data_root) if data_root else default_data_root()
    folder = root / "text" / "goemotions-ekman"
    names = require_file(folder / "labels.txt", "GoEmotions labels").read_text(encoding="utf-8").split()
    path = require_file(folder / f"{split}.tsv", f"GoEmotions {split}")
    examples: list[TextExample] = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            text, ids, _ = line.rstrip("\n").split("\t")
            if "," in ids:
                continue
            emotion = map_label("goemotions-ekman", names[int(ids)])
            assert emotion is not None
            examples.append(TextExample(text=text.strip(), emotion=emotion, sentiment=EMOTION_SENTIMENT[emotion]))
    return examples


def read_dair_emotion(split: str, data_root: Path | None = None) -> list[TextExample]:
    """dair-ai emotion ``train``/``val``/``test`` (no neutral or disgust class)."""
    root = Path(data_root) if data_root else default_data_root()
    path = require_file(root / "text" / "dair-emotion" / f"{split}.txt", f"dair-ai emotion {split}")
    examples: list[TextExample] = []
    with path.open(encoding="utf-8") as fh:
        next(fh)  # header
        for line in fh:
            text, _, label = line.rstrip("\n").rpartition(";")
            emotion = map_label("dair-emotion", label)
            if emotion is None:
                continue
            examples.append(TextExample(text=text, emotion=emotion, sentiment=EMOTION_SENTIMENT[emotion]))
    return examples


def read_dailydialog(split: str, full_data: Path) -> list[list[DialogueTurn]]:
    """DailyDialog ``validation``/``test`` (built into ``full_data`` by ``recipes/text_multicorpus/build_dailydialog.sh``).

    Two people take turns in every dialogue, so the speakers are named ``A`` and ``B`` by turn
    parity. The text is the release's, whose tokens are spaced apart ("Oh , umm , no thanks ."):
    the text models' tokenisers split punctuation off anyway, so it is only stripped, and the
    release's typographic apostrophe is read as ``'``. Sentiment follows from the emotion (surprise
    has none).
    """
    folder = Path(full_data) / "dailydialog" / split
    texts = require_file(folder / f"dialogues_{split}.txt", f"DailyDialog {split}").read_text(encoding="utf-8").splitlines()
    labels = require_file(folder / f"dialogues_emotion_{split}.txt", f"DailyDialog {split} emotions").read_text(encoding="utf-8").splitlines()
    if len(texts) != len(labels):
        raise ValueError(f"DailyDialog {split}: {len(texts)} dialogues but {len(labels)} emotion lines")
    dialogues: list[list[DialogueTurn]] = []
    for number, (line, codes) in enumerate(zip(texts, labels)):
        utterances = [u.strip().replace("\u2019", "'") for u in line.split("__eou__")]
        utterances = utterances[:-1] if utterances and not utterances[-1] else utterances
        mapped = [map_label("dailydialog", code) for code in codes.split()]
        emotions = [e for e in mapped if e is not None]
        if len(utterances) != len(mapped) or len(emotions) != len(mapped):
            raise ValueError(f"DailyDialog {split} dialogue {number}: {len(utterances)} utterances, labels {codes!r}")
        dialogues.append([
            DialogueTurn(dialogue_id=f"{split}-{number}", turn_index=i, speaker="AB"[i % 2], text=text,
                         emotion=emotion, sentiment=EMOTION_SENTIMENT[emotion])
            for i, (text, emotion) in enumerate(zip(utterances, emotions))
        ])
    return dialogues

"""Every text-emotion corpus in ``../shared/data/text`` read into one shape: ``LabelledTurn``.

A turn's gold label is a *set* of our emotions (``allowed``): one emotion for a single-label
line, several for a multi-label line, and a documented set for labels that name a set
(EmoContext's ``others``; see ``affect.labels.PARTIAL_LABELS``). Dialogue corpora (MELD,
EmoContext) carry the turns before each turn as ``context``, most recent last.

Splits: the official ones where a corpus has them. EmoContext and SemEval-2018 here have no test
split, so their official dev split is the test split and dev is cut from train by hash; XED,
ISEAR and the Hashtag corpus have none at all and are cut 80/10/10 by hash (``hash_split``).
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

from affect.datasets._common import default_data_root, require_file
from affect.labels import DATASET_LABELS, EMOTION_SENTIMENT, PARTIAL_LABELS, Emotion, Sentiment

Split = Literal["train", "dev", "test"]
TEXT_CORPORA: tuple[str, ...] = (
    "meld", "goemotions-ekman", "dair-emotion", "emocontext", "xed", "isear", "semeval2018-ec", "hashtag",
)
DIALOGUE_CORPORA: tuple[str, ...] = ("meld", "emocontext")


@dataclass(frozen=True)
class LabelledTurn:
    """One text with its gold emotion set, optional sentiment, and the turns before it."""

    corpus: str
    split: Split
    text: str
    allowed: frozenset[Emotion]
    sentiment: Sentiment | None = None
    speaker: str | None = None
    context: tuple[tuple[str, str | None], ...] = ()  # (text, speaker) of earlier turns, oldest first
    dialogue_id: str | None = None

    @property
    def single(self) -> Emotion | None:
        """The emotion when the label names exactly one, else ``None``."""
        return next(iter(self.allowed)) if len(self.allowed) == 1 else None


def hash_split(key: str, dev: int = 10, test: int = 10) -> Split:
    """A stable split from an MD5 of ``key``: ``test`` % test, ``dev`` % dev, the rest train."""
    bucket = int(hashlib.md5(key.encode("utf-8")).hexdigest()[:8], 16) % 100
    if bucket < test:
        return "test"
    if bucket < test + dev:
        return "dev"
    return "train"


def _emotions(corpus: str, labels: list[str]) -> frozenset[Emotion]:
    """The union of what each label names: one emotion, a documented set, or nothing (dropped)."""
    table, partial = DATASET_LABELS[corpus], PARTIAL_LABELS.get(corpus, {})
    out: set[Emotion] = set()
    for label in labels:
        if label in partial:
            out |= partial[label]
            continue
        if label not in table:
            raise KeyError(f"{corpus}: unknown label {label!r}; known: {sorted(table)}")
        if (emotion := table[label]) is not None:
            out.add(emotion)
    return frozenset(out)


def _implied_sentiment(allowed: frozenset[Emotion]) -> Sentiment | None:
    """The sentiment every member of the set implies, when they agree."""
    found = {EMOTION_SENTIMENT[e] for e in allowed}
    return found.pop() if len(found) == 1 else None


def _turn(corpus: str, split: Split, text: str, allowed: frozenset[Emotion], **kw: object) -> LabelledTurn | None:
    text = text.strip()
    if not text or not allowed:
        return None
    kw.setdefault("sentiment", _implied_sentiment(allowed))
    return LabelledTurn(corpus=corpus, split=split, text=text, allowed=allowed, **kw)  # type: ignore[arg-type]  # the callers' fields


def _meld(root: Path) -> list[LabelledTurn]:
    out: list[LabelledTurn] = []
    splits: tuple[tuple[Split, str], ...] = (("train", "train"), ("dev", "dev"), ("test", "test"))
    for split, name in splits:
        path = require_file(root / "meld" / f"{name}_sent_emo.csv", f"MELD {name}")
        dialogues: dict[str, list[dict[str, str]]] = {}
        with path.open(encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                dialogues.setdefault(row["Dialogue_ID"], []).append(row)
        for did, rows in dialogues.items():
            rows.sort(key=lambda r: int(r["Utterance_ID"]))
            history: list[tuple[str, str | None]] = []
            for row in rows:
                speaker = row["Speaker"] or None
                turn = _turn("meld", split, row["Utterance"], _emotions("meld", [row["Emotion"]]),
                             sentiment=Sentiment(row["Sentiment"]), speaker=speaker, context=tuple(history),
                             dialogue_id=f"{split}-{did}")
                if turn is not None:
                    out.append(turn)
                history.append((row["Utterance"].strip(), speaker))
    return out


def _goemotions(root: Path) -> list[LabelledTurn]:
    folder = root / "goemotions-ekman"
    names = require_file(folder / "labels.txt", "GoEmotions labels").read_text(encoding="utf-8").split()
    out: list[LabelledTurn] = []
    for split in ("train", "dev", "test"):
        with require_file(folder / f"{split}.tsv", f"GoEmotions {split}").open(encoding="utf-8") as fh:
            for line in fh:
                text, ids, _ = line.rstrip("\n").split("\t")
                turn = _turn("goemotions-ekman", split, text, _emotions("goemotions-ekman", [names[int(i)] for i in ids.split(",")]))
                if turn is not None:
                    out.append(turn)
    return out


def _dair(root: Path) -> list[LabelledTurn]:
    out: list[LabelledTurn] = []
    splits: tuple[tuple[Split, str], ...] = (("train", "train"), ("dev", "val"), ("test", "test"))
    for split, name in splits:
        with require_file(root / "dair-emotion" / f"{name}.txt", f"dair-ai {name}").open(encoding="utf-8") as fh:
            next(fh)
            for line in fh:
                text, _, label = line.rstrip("\n").rpartition(";")
                turn = _turn("dair-emotion", split, text, _emotions("dair-emotion", [label]))
                if turn is not None:
                    out.append(turn)
    return out


def _emocontext(root: Path) -> list[LabelledTurn]:
    out: list[LabelledTurn] = []
    for name in ("train", "dev"):
        with require_file(root / "emocontext" / f"{name}.txt", f"EmoContext {name}").open(encoding="utf-8") as fh:
            next(fh)
            for line in fh:
                parts = line.rstrip("\n").split("\t")
                if len(parts) != 5:
                    continue
                cid, t1, t2, t3, label = parts
                split: Split = "test" if name == "dev" else ("dev" if hash_split(f"emocontext-{cid}", 10, 0) == "dev" else "train")
                turn = _turn("emocontext", split, t3, _emotions("emocontext", [label]), speaker="user",
                             context=((t1.strip(), "user"), (t2.strip(), "bot")), dialogue_id=f"{name}-{cid}")
                if turn is not None:
                    out.append(turn)
    return out


def _xed(root: Path) -> list[LabelledTurn]:
    out: list[LabelledTurn] = []
    folder = root / "xed-en"
    with require_file(folder / "en-annotated.tsv", "XED annotated").open(encoding="utf-8") as fh:
        for line in fh:
            text, _, ids = line.rstrip("\n").rpartition("\t")
            turn = _turn("xed", hash_split(f"xed-{text}"), text, _emotions("xed", [i.strip() for i in ids.split(",")]))
            if turn is not None:
                out.append(turn)
    with require_file(folder / "neu_en.txt", "XED neutral").open(encoding="utf-8") as fh:
        for line in fh:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 2 or not parts[0].strip():
                continue
            text = parts[1]
            turn = _turn("xed", hash_split(f"xed-{text}"), text, _emotions("xed", [parts[0].strip()]))
            if turn is not None:
                out.append(turn)
    return out


def _isear(root: Path) -> list[LabelledTurn]:
    out: list[LabelledTurn] = []
    path = require_file(root / "isear" / "isear.csv", "ISEAR")
    with path.open(encoding="utf-8", errors="replace", newline="") as fh:
        for row in csv.DictReader(fh, delimiter="|"):
            text = (row.get("SIT") or "").replace("á", " ").strip()
            label = (row.get("Field1") or "").strip()
            if not text or not label:
                continue
            turn = _turn("isear", hash_split(f"isear-{text}"), text, _emotions("isear", [label]))
            if turn is not None:
                out.append(turn)
    return out


def _semeval(root: Path) -> list[LabelledTurn]:
    out: list[LabelledTurn] = []
    folder = root / "semeval2018-ec"
    for name in ("train", "dev"):
        with require_file(folder / f"2018-E-c-En-{name}.txt", f"SemEval-2018 E-c {name}").open(encoding="utf-8") as fh:
            header = next(fh).rstrip("\n").split("\t")
            for line in fh:
                parts = line.rstrip("\n").split("\t")
                labels = [h for h, v in zip(header[2:], parts[2:]) if v.strip() == "1"] or ["none"]
                split: Split = "test" if name == "dev" else ("dev" if hash_split(f"semeval-{parts[0]}", 10, 0) == "dev" else "train")
                turn = _turn("semeval2018-ec", split, parts[1], _emotions("semeval2018-ec", labels))
                if turn is not None:
                    out.append(turn)
    return out


def _hashtag(root: Path) -> list[LabelledTurn]:
    out: list[LabelledTurn] = []
    path = require_file(root / "hashtag-emotion" / "tweets_clean.txt", "Hashtag Emotion Corpus")
    with path.open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            head, sep, label = line.rstrip("\n").rpartition("::")
            if not sep:
                continue
            _, _, text = head.partition("\t")
            turn = _turn("hashtag", hash_split(f"hashtag-{text.strip()}"), text, _emotions("hashtag", [label.strip()]))
            if turn is not None:
                out.append(turn)
    return out


_READERS: dict[str, Callable[[Path], list[LabelledTurn]]] = {
    "meld": _meld, "goemotions-ekman": _goemotions, "dair-emotion": _dair, "emocontext": _emocontext,
    "xed": _xed, "isear": _isear, "semeval2018-ec": _semeval, "hashtag": _hashtag,
}


def read_text_corpus(corpus: str, split: Split | None = None, data_root: Path | None = None) -> list[LabelledTurn]:
    """Every labelled turn of ``corpus`` (or of one split), in file order."""
    try:
        reader = _READERS[corpus]
    except KeyError:
        raise ValueError(f"unknown text corpus {corpus!r}; known: {', '.join(TEXT_CORPORA)}") from None
    root = (Path(data_root) if data_root else default_data_root()) / "text"
    turns = reader(root)
    return [t for t in turns if split is None or t.split == split]


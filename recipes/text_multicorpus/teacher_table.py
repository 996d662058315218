"""The teacher's readings of training turns, looked up by turn (written by ``teacher.py``, read by ``finetune.py``)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import torch

from affect.datasets.text_corpora import LabelledTurn


def turn_key(turn: LabelledTurn) -> str:
    """A turn's identity for the teacher's table: its corpus, text, speaker and real past turns."""
    raw = json.dumps([turn.corpus, turn.text, turn.speaker, list(turn.context)], ensure_ascii=False)
    return hashlib.blake2b(raw.encode("utf-8"), digest_size=12).hexdigest()


def averaged_log_probs(readings: Sequence[torch.Tensor]) -> torch.Tensor:
    """Several entries' log-probabilities of the same turns, averaged and renormalised (their normalised
    geometric mean): what "the entries averaged" means for the teacher and for ``dev_compare --mean``."""
    return torch.log_softmax(torch.stack(list(readings)).mean(0), -1)


class TeacherTable:
    """Looks up the teacher's log-probabilities of training turns (a turn it never read is marked not found)."""

    def __init__(self, path: Path) -> None:
        table = torch.load(path, weights_only=False)
        self.weights = table["weights"]
        self.rows = {k: i for i, k in enumerate(table["keys"])}
        self.emotion, self.sentiment = table["emotion"], table["sentiment"]

    def lookup(self, turns: list[LabelledTurn]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(found mask, emotion log-probs, sentiment log-probs) of ``turns``, zeros where not found."""
        idx = [self.rows.get(turn_key(t), -1) for t in turns]
        found = torch.tensor([i >= 0 for i in idx])
        safe = torch.tensor([max(i, 0) for i in idx])
        return found, self.emotion[safe], self.sentiment[safe]

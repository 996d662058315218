"""Teacher readings for distillation: shipped text entries' reported probabilities on the training turns.

    python -m recipes.text_multicorpus.teacher MINILM_MULTICORPUS_V5 MINILM_MULTICORPUS_V6 \
        --out /work/cache/text-teacher/v5-v6.pt

Two of our entries read the same turns differently (v5: round 1's MiniLM under heads trained on all
eight corpora, half its reading without the past turns; v6: MiniLM fine-tuned end to end on them),
and their average reads every dev split better than either (``dev_compare --mean``), but running
both costs twice the CPU a turn. ``finetune.py`` with a ``teacher`` teaches one network to read as
the average does. Each entry is read as the library reports it (its calibration, default prior and
context weight); the entries' log-probabilities are averaged and renormalised (their normalised
geometric mean). A turn is read with the past turns it really has (a MELD dialogue's earlier turns,
an EmoContext chat's two), never with a training batch's pseudo-context, so one reading serves
every epoch. Only the turns the configured epochs draw are read (``finetune.epoch_units``).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import torch
from tqdm import tqdm

from affect.datasets.text_corpora import LabelledTurn, read_text_corpus
from affect.text import TextEncoder
from recipes.text_multicorpus.finetune import HERE, epoch_units, finetune_config
from recipes.text_multicorpus.teacher_table import averaged_log_probs, turn_key

log = logging.getLogger("recipes.text_multicorpus")


def drawn_turns(train: dict[str, list[LabelledTurn]], cfg: dict) -> tuple[list[list[LabelledTurn]], list[LabelledTurn]]:
    """The configured epochs' labelled turns, once each: MELD's dialogues whole, every other turn alone."""
    dialogues: dict[str, list[LabelledTurn]] = {}
    singles: dict[str, LabelledTurn] = {}
    for epoch in range(cfg["epochs"]):
        for unit in epoch_units(train, cfg, epoch):
            if unit.labelled[0] is not None and unit.labelled[0].corpus == "meld":
                # a MELD unit: every turn labelled; keyed by all its turns (dialogues that open alike, "Hey!", differ later)
                dialogues.setdefault(tuple(turn_key(t) for t in unit.labelled), list(unit.labelled))
                continue
            for turn in unit.labelled:
                if turn is not None:
                    singles.setdefault(turn_key(turn), turn)
    return list(dialogues.values()), list(singles.values())


def entry_readings(weights: str, dialogues: list[list[LabelledTurn]], singles: list[LabelledTurn],
                   chunk: int = 2048) -> tuple[torch.Tensor, torch.Tensor]:
    """One entry's reported emotion and sentiment log-probabilities: MELD turns first (dialogue order), then ``singles``."""
    encoder = TextEncoder(weights=weights)
    emo, sent = [], []
    meld = [[(t.text, t.speaker) for t in d] for d in dialogues]
    alone = [[*t.context, (t.text, t.speaker)] for t in singles]
    for batch, last_only in ((meld, False), (alone, True)):
        for start in tqdm(range(0, len(batch), chunk), desc=f"{weights} {'turns' if last_only else 'MELD dialogues'}",
                          mininterval=30):
            part = batch[start:start + chunk]
            readings = encoder.read_dialogues(part)
            if last_only:  # each dialogue here is one turn after its real past turns
                readings = readings.last_turns([len(d) for d in part])
            e, s = encoder.reported(readings)
            emo.append(e)
            sent.append(s)
    return torch.cat(emo), torch.cat(sent)


def build(weights: list[str], cfg: dict, data_root: Path | None) -> dict:
    train = {c: read_text_corpus(c, "train", data_root) for c in cfg["corpora"]}
    dialogues, singles = drawn_turns(train, cfg)
    turns = [t for d in dialogues for t in d] + singles
    log.info("teacher: %d MELD dialogues (%d turns) and %d other turns", len(dialogues), len(turns) - len(singles), len(singles))
    readings = [entry_readings(w, dialogues, singles) for w in weights]
    emotion = averaged_log_probs([r[0] for r in readings])
    sentiment = averaged_log_probs([r[1] for r in readings])
    return {"weights": weights, "keys": [turn_key(t) for t in turns], "emotion": emotion.float(), "sentiment": sentiment.float()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("weights", nargs="+", help="TextWeights member names, averaged")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--config", type=Path, default=HERE / "config.json")
    ap.add_argument("--variant", default=None, help="the finetune variant whose epochs are drawn")
    ap.add_argument("--data-root", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    try:
        cfg = finetune_config(json.loads(args.config.read_text()), args.variant)
    except ValueError as exc:
        ap.error(f"--variant: {exc}")
    table = build(args.weights, cfg, args.data_root)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(table, args.out)
    log.info("wrote %s: %d turns", args.out, len(table["keys"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

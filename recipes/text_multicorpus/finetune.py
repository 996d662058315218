"""Fine-tune MiniLM end to end on all eight corpora, with its context attention and heads.

    python -m recipes.text_multicorpus.finetune train [--resume]     # checkpoints in --workdir
    python -m recipes.text_multicorpus.finetune final --out affect/models/text/minilm_multicorpus_v6.safetensors

``adapt.py`` and ``heads.py`` keep most of round 1's encoder frozen, so what MELD and GoEmotions
taught it is all the lower layers know. Here the packaged all-MiniLM-L6-v2 learns afresh (its
word embeddings and lowest layer frozen, as round 1) from every corpus at once, the way round 1
learnt from MELD: each batch holds whole units, a unit being a MELD dialogue, an EmoContext chat
(its two earlier turns unlabelled), or single sentences of one corpus. A share
(``pseudo_context``) of the single sentences are packed into pseudo-dialogues of 2 to
``window + 1`` unrelated sentences of their own corpus with random speakers, so that having
past turns does not tell the context attention which corpus a turn comes from (see
``heads.PseudoContext``). Labels naming a set are partial targets (``heads.set_loss``); each
epoch draws its own sample of every corpus (``per_epoch``), which sets the corpus mix.

The evaluation point kept is the one with the best ``select`` score on dev (written in the
config before the run): MELD dev weighted-F1, GoEmotions-Ekman dev macro-F1 (single-label) and
the mean dev macro-F1 over the eight corpora. Test splits are never read here.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import f1_score
from tqdm import tqdm

from affect.datasets.text_corpora import LabelledTurn, read_text_corpus
from affect.labels import EMOTIONS, SENTIMENTS, corpus_emotions
from affect.text._batching import dialogue_inputs, tokenize
from affect.text._network import TextAffectNet
from affect.text._weights_io import load_text_net, save_text_weights
from affect.text.weights import TextWeights
from recipes.text_meld.train import build_net as build_meld_net
from recipes.text_multicorpus.heads import fit_temperature, set_loss
from recipes.text_multicorpus.teacher_table import TeacherTable

log = logging.getLogger("recipes.text_multicorpus")
HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DEFAULT_WORKDIR = Path("/work/cache/text-finetune")


@dataclass(frozen=True)
class Unit:
    """Turns read in order; ``labelled[i]`` is the gold turn of text ``i`` (None: context only)."""

    texts: tuple[str, ...]
    speakers: tuple[str | None, ...]
    labelled: tuple[LabelledTurn | None, ...]


def context_unit(turn: LabelledTurn, window: int) -> Unit:
    """A turn with its own earlier turns (unlabelled) before it."""
    past = turn.context[-window:]
    return Unit(tuple(t for t, _ in past) + (turn.text,), tuple(s for _, s in past) + (turn.speaker,),
                (None,) * len(past) + (turn,))


def dialogue_units(turns: Sequence[LabelledTurn]) -> list[Unit]:
    """MELD's turns grouped into their dialogues, every turn labelled."""
    by_dialogue: dict[str, list[LabelledTurn]] = {}
    for t in turns:
        by_dialogue.setdefault(t.dialogue_id or t.text, []).append(t)
    return [Unit(tuple(t.text for t in d), tuple(t.speaker for t in d), tuple(d)) for d in by_dialogue.values()]


def pseudo_dialogues(turns: list[LabelledTurn], share: float, window: int, rng: random.Random) -> list[Unit]:
    """Single sentences; a ``share`` of them packed into pseudo-dialogues with random speakers."""
    rng.shuffle(turns)
    cut = round(share * len(turns))
    units = [Unit((t.text,), (None,), (t,)) for t in turns[cut:]]
    rest = turns[:cut]
    while rest:
        k = rng.randint(2, window + 1)
        group, rest = rest[:k], rest[k:]
        units.append(Unit(tuple(t.text for t in group), tuple(rng.choice("AB") for _ in group), tuple(group)))
    return units


def corpus_units(turns: list[LabelledTurn], corpus: str, cfg: dict, rng: random.Random | None) -> list[Unit]:
    """Training units (``rng`` given: pseudo-dialogues) or evaluation units (each turn with its own past)."""
    window = cfg["context_window"]
    if corpus == "meld":
        return dialogue_units(turns)
    if any(t.context for t in turns):
        return [context_unit(t, window) for t in turns]
    if rng is None:
        return [Unit((t.text,), (None,), (t,)) for t in turns]
    return pseudo_dialogues(list(turns), cfg["pseudo_context"], window, rng)


def epoch_units(train: dict[str, list[LabelledTurn]], cfg: dict, epoch: int) -> list[Unit]:
    """This epoch's draw of every corpus, shuffled; the same for a resumed epoch.

    ``per_epoch``: turns drawn of each corpus (MELD: whole dialogues), null for all of it;
    ``meld_repeats``: how many times MELD's drawn dialogues enter the epoch (a MELD-weighted stage)."""
    rng = random.Random(f"{cfg['seed']}-epoch-{epoch}")
    units: list[Unit] = []
    for corpus, turns in train.items():
        n = cfg["per_epoch"].get(corpus, cfg["per_epoch"]["default"])
        if corpus == "meld":
            dialogues = dialogue_units(turns)
            drawn_dialogues = dialogues if n is None or n >= len(dialogues) else rng.sample(dialogues, n)
            units += drawn_dialogues * cfg.get("meld_repeats", 1)
            continue
        drawn = list(turns) if n is None or n >= len(turns) else rng.sample(turns, n)
        units += corpus_units(drawn, corpus, cfg, rng)
    rng.shuffle(units)
    return units


def batches_of(units: list[Unit], turns_per_batch: int) -> list[list[Unit]]:
    batches, current, size = [], [], 0
    for unit in units:
        if current and size + len(unit.texts) > turns_per_batch:
            batches.append(current)
            current, size = [], 0
        current.append(unit)
        size += len(unit.texts)
    return batches + ([current] if current else [])


def run_units(net: TextAffectNet, tokenizer, units: Sequence[Unit], max_tokens: int,
              drop: float = 0.0, gen: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Emotion and sentiment logits of every text of ``units``, flattened in order."""
    texts = [t for u in units for t in u.texts]
    flat = net.embed(**tokenize(tokenizer, texts, max_tokens))
    current, context, mask, relation = dialogue_inputs(
        list(torch.split(flat, [len(u.texts) for u in units])), [list(u.speakers) for u in units], net.window)
    if drop > 0:
        mask = mask & (torch.rand(mask.shape[0], 1, generator=gen) >= drop)
    return net.classify(current, context, mask, relation)


def labelled_rows(units: Sequence[Unit]) -> tuple[list[int], list[LabelledTurn]]:
    """The rows of the labelled texts among all texts of ``units`` (flattened in order), and their turns."""
    flat = [t for u in units for t in u.labelled]
    rows = [i for i, t in enumerate(flat) if t is not None]
    return rows, [flat[i] for i in rows]


@dataclass(frozen=True)
class Targets:
    """What a batch is taught: its labelled rows, their allowed-set masks, sentiment index or -100, and their turns."""

    rows: torch.Tensor
    allowed: torch.Tensor
    sentiment: torch.Tensor
    turns: list[LabelledTurn]


def targets(units: Sequence[Unit]) -> Targets:
    rows, turns = labelled_rows(units)
    allowed = [[e in t.allowed for e in EMOTIONS] for t in turns]
    sentiment = [SENTIMENTS.index(t.sentiment) if t.sentiment is not None else -100 for t in turns]
    return Targets(torch.tensor(rows), torch.tensor(allowed), torch.tensor(sentiment), turns)


def batch_loss(net: TextAffectNet, tokenizer, units: list[Unit], cfg: dict, gen: torch.Generator,
               teacher: TeacherTable | None = None) -> torch.Tensor:
    """The labels' loss; with a ``teacher``, mixed with the distance to its readings (``distill_loss``)."""
    emo, sent = run_units(net, tokenizer, units, cfg["max_tokens"], cfg["context_dropout"], gen)
    taught = targets(units)
    emo, sent = emo[taught.rows], sent[taught.rows]
    loss = set_loss(emo, taught.allowed, cfg["label_smoothing"])
    known = taught.sentiment >= 0
    if known.any():
        loss = loss + cfg["sentiment_loss_weight"] * F.cross_entropy(
            sent[known], taught.sentiment[known], label_smoothing=cfg["label_smoothing"])
    if teacher is None:
        return loss
    share = float(cfg["teacher"]["weight"])
    return (1 - share) * loss + share * distill_loss(emo, sent, taught.turns, teacher, cfg)


def distill_loss(emo: torch.Tensor, sent: torch.Tensor, turns: list[LabelledTurn], teacher: TeacherTable,
                 cfg: dict) -> torch.Tensor:
    """KL(teacher || student) on emotion, and on sentiment for every turn (the teacher reads sentiment
    on corpora that label none), over the turns the teacher read."""
    found, t_emo, t_sent = teacher.lookup(turns)
    if not found.any():
        return emo.sum() * 0.0
    emo_kl = F.kl_div(torch.log_softmax(emo[found], -1), t_emo[found], log_target=True, reduction="batchmean")
    sent_kl = F.kl_div(torch.log_softmax(sent[found], -1), t_sent[found], log_target=True, reduction="batchmean")
    return emo_kl + cfg["sentiment_loss_weight"] * sent_kl


@torch.inference_mode()
def predict_units(net: TextAffectNet, tokenizer, units: Sequence[Unit], cfg: dict,
                  use_context: bool = True) -> tuple[torch.Tensor, torch.Tensor, list[LabelledTurn]]:
    """Raw logits of the labelled turns of ``units`` (with their past turns unless ``use_context`` is off)."""
    was_training = net.training
    net.eval()
    emo, sent, gold = [], [], []
    for batch in batches_of(list(units), 64):
        if not use_context:
            batch = [Unit((t.text,), (t.speaker,), (t,)) for u in batch for t in u.labelled if t is not None]
        e, s = run_units(net, tokenizer, batch, cfg["max_tokens"])
        rows, turns = labelled_rows(batch)
        emo.append(e[rows])
        sent.append(s[rows])
        gold += turns
    net.train(was_training)
    return torch.cat(emo), torch.cat(sent), gold


def corpus_macro_f1(corpus: str, emo: torch.Tensor, gold: Sequence[LabelledTurn]) -> float:
    """Macro-F1 over the corpus's emotions on its single-label turns (strict argmax over seven)."""
    keep = [i for i, t in enumerate(gold) if t.single is not None]
    pred = emo[keep].argmax(-1).numpy()
    truth = np.array([EMOTIONS.index(gold[i].single) for i in keep])
    names = [EMOTIONS.index(e) for e in corpus_emotions(corpus)]
    return float(f1_score(truth, pred, labels=names, average="macro", zero_division=0))


def dev_units(cfg: dict, data_root: Path | None) -> dict[str, list[Unit]]:
    """MELD dev whole, GoEmotions dev's single-label comments whole, ``dev_per_corpus`` of each other
    (a smoke run caps MELD's dialogues and GoEmotions' comments too)."""
    out = {}
    cap = cfg["dev_per_corpus"]
    for corpus in cfg["corpora"]:
        turns = read_text_corpus(corpus, "dev", data_root)
        if corpus == "goemotions-ekman":
            turns = [t for t in turns if t.single is not None]
        whole = corpus in ("meld", "goemotions-ekman") and not cfg.get("smoke")
        if corpus != "meld" and not whole and len(turns) > cap:
            turns = random.Random(f"{cfg['seed']}-dev-{corpus}").sample(turns, cap)
        out[corpus] = corpus_units(turns, corpus, cfg, None)
        if corpus == "meld" and not whole:
            out[corpus] = out[corpus][: max(1, cap // 10)]
    return out


def evaluate(net: TextAffectNet, tokenizer, dev: dict[str, list[Unit]], cfg: dict) -> dict[str, float]:
    out: dict[str, float] = {}
    for corpus, units in dev.items():
        emo, sent, gold = predict_units(net, tokenizer, units, cfg)
        out[f"{corpus}_macro_f1"] = corpus_macro_f1(corpus, emo, gold)
        if corpus == "meld":
            truth = [EMOTIONS.index(t.single) for t in gold]
            out["meld_weighted_f1"] = float(f1_score(truth, emo.argmax(-1).numpy(), average="weighted",
                                                     labels=range(len(EMOTIONS)), zero_division=0))
            out["meld_sentiment_macro_f1"] = float(f1_score([SENTIMENTS.index(t.sentiment) for t in gold],
                                                            sent.argmax(-1).numpy(), average="macro", zero_division=0))
    out["mean_macro_f1"] = float(np.mean([out[f"{c}_macro_f1"] for c in dev]))
    out["select"] = float(np.mean([out[k] for k in cfg["select"]]))
    return out


def build_net(cfg: dict) -> tuple[object, TextAffectNet]:
    """The packaged MiniLM with round 1's freezing (word embeddings, pooler, lowest ``frozen_layers``) and new heads;
    with ``"base": "mpnet"``, all-mpnet-base-v2 with its lower layers cached (``mpnet_top``)."""
    if cfg.get("base") == "mpnet":
        from recipes.text_multicorpus.mpnet_top import build_net as build_mpnet_net

        return build_mpnet_net(cfg)
    return build_meld_net(cfg | {"base_encoder": None})


def start_from_shipped(net: TextAffectNet, name: str) -> None:
    """Put a shipped entry's network (``TextWeights[name]``) into ``net``, calibration back to neutral:
    a run that starts where that entry ended, its temperatures and bias refitted by ``final``."""
    shipped, _ = load_text_net(TextWeights.resolve(name).value.verified_path(), net.encoder)  # loads into net.encoder too
    load_learnt(net, shipped.state_dict(), name)


def load_learnt(net: TextAffectNet, state: dict[str, torch.Tensor], name: str) -> None:
    """Put every learnt tensor of ``state`` (a shipped entry's or a run's network) into ``net``, leaving the
    calibration buffers as they are; ``name`` says whose ``state`` it is if it does not fit the recipe's network."""
    learnt = {k: v for k, v in state.items() if k not in TextAffectNet.CALIBRATION_BUFFERS}
    missing, unexpected = net.load_state_dict(learnt, strict=False)
    if sorted(missing) != sorted(TextAffectNet.CALIBRATION_BUFFERS) or unexpected:
        raise ValueError(f"{name} does not fit the recipe's network: missing {missing[:3]}, unexpected {unexpected[:3]}")


def train(cfg: dict, workdir: Path, data_root: Path | None, resume: bool) -> None:
    torch.manual_seed(cfg["seed"])
    torch.set_num_threads(cfg["torch_threads"])
    train_turns = {c: read_text_corpus(c, "train", data_root) for c in cfg["corpora"]}
    dev = dev_units(cfg, data_root)
    tokenizer, net = build_net(cfg)
    if cfg.get("init_from") and cfg.get("init_weights"):
        raise ValueError("init_from and init_weights both name a start; give one")
    if cfg.get("init_from"):
        net.load_state_dict(torch.load(cfg["init_from"], weights_only=False)["net"])
        log.info("started from %s", cfg["init_from"])
    if cfg.get("init_weights"):
        start_from_shipped(net, cfg["init_weights"])
        log.info("started from the shipped %s", cfg["init_weights"])
    first_batches = batches_of(epoch_units(train_turns, cfg, 0), cfg["turns_per_batch"])  # also sizes the schedule
    steps_per_epoch = len(first_batches)
    total = steps_per_epoch * cfg["epochs"]
    warmup = max(1, int(cfg["warmup_fraction"] * total))
    enc = [p for n, p in net.named_parameters() if n.startswith("encoder.") and p.requires_grad]
    head = [p for n, p in net.named_parameters() if not n.startswith("encoder.")]
    opt = torch.optim.AdamW([{"params": enc, "lr": cfg["encoder_lr"]}, {"params": head, "lr": cfg["head_lr"]}],
                            weight_decay=cfg["weight_decay"])
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, (total - s) / max(1, total - warmup)))
    gen = torch.Generator().manual_seed(cfg["seed"])
    teacher = TeacherTable(Path(cfg["teacher"]["path"])) if cfg.get("teacher") else None
    if teacher is not None:
        if list(teacher.weights) != list(cfg["teacher"]["entries"]):
            raise ValueError(f"the teacher table read {teacher.weights}, the config names {cfg['teacher']['entries']}")
        log.info("distilling from %s (weight %.2f)", " + ".join(teacher.weights), cfg["teacher"]["weight"])
    state = {"epoch": 0, "batch": 0, "best": -1.0, "history": []}
    last = workdir / "last.pt"
    workdir.mkdir(parents=True, exist_ok=True)
    if resume and last.is_file():
        ckpt = torch.load(last, weights_only=False)
        net.load_state_dict(ckpt["net"])
        opt.load_state_dict(ckpt["opt"])
        sched.load_state_dict(ckpt["sched"])
        gen.set_state(ckpt["gen"])
        state = ckpt["state"]
        log.info("resumed at epoch %d, batch %d (best select %.4f)", state["epoch"] + 1, state["batch"], state["best"])
    log.info("%d steps per epoch, %d epochs", steps_per_epoch, cfg["epochs"])
    if (cfg.get("init_from") or cfg.get("init_weights")) and not state["history"]:
        # A later stage competes with its starting point: if no point of it does better on dev, the start is kept.
        metrics = evaluate(net, tokenizer, dev, cfg) | {"epoch": 0.0, "time": time.time()}
        state["history"].append(metrics)
        state["best"] = metrics["select"]
        torch.save({"net": net.state_dict(), "metrics": metrics}, workdir / "best.pt")
        log.info("dev at the start %s", json.dumps({k: round(v, 4) for k, v in metrics.items() if k != "time"}))
    net.train()
    for epoch in range(state["epoch"], cfg["epochs"]):
        batches = first_batches if epoch == 0 else batches_of(epoch_units(train_turns, cfg, epoch), cfg["turns_per_batch"])
        eval_at = {math.ceil(len(batches) * (i + 1) / cfg["evals_per_epoch"]) for i in range(cfg["evals_per_epoch"])}
        bar = tqdm(range(state["batch"], len(batches)), desc=f"epoch {epoch + 1}/{cfg['epochs']}", mininterval=30)
        running = None
        for b in bar:
            loss = batch_loss(net, tokenizer, batches[b], cfg, gen, teacher)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            sched.step()
            running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
            bar.set_postfix(loss=f"{running:.3f}", refresh=False)
            if b + 1 in eval_at:
                metrics = evaluate(net, tokenizer, dev, cfg) | {"epoch": epoch + (b + 1) / len(batches), "time": time.time()}
                state["history"].append(metrics)
                log.info("dev %s", json.dumps({k: round(v, 4) for k, v in metrics.items() if k != "time"}))
                if metrics["select"] > state["best"]:
                    state["best"] = metrics["select"]
                    torch.save({"net": net.state_dict(), "metrics": metrics}, workdir / "best.pt")
                    log.info("new best dev select %.4f", state["best"])
                state["batch"] = b + 1
                if state["batch"] == len(batches):
                    state["epoch"], state["batch"] = epoch + 1, 0
                torch.save({"net": net.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                            "gen": gen.get_state(), "state": state}, last)
        state["epoch"], state["batch"] = epoch + 1, 0


def final(cfg: dict, workdir: Path, data_root: Path | None, out: Path) -> dict:
    """The kept checkpoint, temperatures fitted on dev, the training mix's prior, written as shipped weights."""
    torch.set_num_threads(cfg["torch_threads"])
    tokenizer, net = build_net(cfg)
    best = torch.load(workdir / "best.pt", weights_only=False)
    net.load_state_dict(best["net"])
    net.eval()
    dev = dev_units(cfg, data_root)
    units = [u for us in dev.values() for u in us]
    emo, sent, gold = predict_units(net, tokenizer, units, cfg)
    allowed = torch.tensor([[e in t.allowed for e in EMOTIONS] for t in gold])
    t_emo = fit_temperature(emo, lambda z: set_loss(z, allowed, 0.0))
    known = torch.tensor([t.sentiment is not None for t in gold])
    sent_gold = torch.tensor([SENTIMENTS.index(t.sentiment) for t in gold if t.sentiment is not None])
    t_sent = fit_temperature(sent[known], lambda z: F.cross_entropy(z, sent_gold))
    # The label prior the head learnt: its mean calibrated probability over one epoch's training mix.
    train_turns = {c: read_text_corpus(c, "train", data_root) for c in cfg["corpora"]}
    mix = random.Random(cfg["seed"]).sample(epoch_units(train_turns, cfg, 0), cfg["prior_units"])
    prior_logits, _, _ = predict_units(net, tokenizer, mix, cfg)
    prior = torch.softmax(prior_logits / t_emo, -1).mean(0).tolist()
    net.emotion_temperature.fill_(t_emo)
    net.sentiment_temperature.fill_(t_sent)
    meta = {"recipe": "recipes/text_multicorpus/finetune.py", "config": cfg,
            "dev_metrics": {k: v for k, v in best["metrics"].items() if k != "time"},
            "emotion_temperature": t_emo, "sentiment_temperature": t_sent, "train_prior": prior}
    save_text_weights(net, out, meta)
    summary = {k: v for k, v in meta.items() if k != "config"}
    (workdir / f"final-summary-{out.stem}.json").write_text(json.dumps(summary, indent=2) + "\n")
    log.info("final: dev %s, temperatures %.2f/%.2f, prior %s; wrote %s (%.1f MB)", summary["dev_metrics"], t_emo, t_sent,
             " ".join(f"{p:.2f}" for p in prior), out, out.stat().st_size / 1e6)
    return summary


def held_out_figures(cfg: dict, workdir: Path, held: str, data_root: Path | None) -> dict:
    """The kept checkpoint of a fold on the held-out corpus's test sample (the one ``heads.py loco`` scores,
    so the figures sit beside its table): macro-F1 over that corpus's emotions, with and without the past turns."""
    from recipes.text_multicorpus.embed import sample_turns

    torch.set_num_threads(cfg["torch_threads"])
    tokenizer, net = build_net(cfg)
    net.load_state_dict(torch.load(workdir / "best.pt", weights_only=False)["net"])
    turns = [t for t in sample_turns(cfg["loco_sample"], held, data_root) if t.split == "test"]
    units = [context_unit(t, cfg["context_window"]) for t in turns]  # each turn with its own past, as in the LOCO table
    out = {"held_out": held, "n": len(turns)}
    for name, use_context in (("", True), ("_no_context", False)):
        emo, _, gold = predict_units(net, tokenizer, units, cfg, use_context=use_context)
        out[f"macro_f1{name}"] = corpus_macro_f1(held, emo, gold)
    (workdir / f"held-out-{held}.json").write_text(json.dumps(out, indent=2) + "\n")
    log.info("held out %s: %s", held, out)
    return out


def finetune_config(full: dict, variant: str | None = None) -> dict:
    """The recipe's settings from the parsed config.json: ``finetune`` with the corpora, and a variant's
    settings over it (``finetune_variants[variant]``)."""
    cfg = full["finetune"] | {"corpora": full["corpora"]}
    if variant is None:
        return cfg
    variants = full.get("finetune_variants", {})
    if variant not in variants:
        raise ValueError(f"unknown {variant!r}; known: {', '.join(variants)}")
    return cfg | variants[variant] | {"variant": variant}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=("train", "final"))
    ap.add_argument("--config", type=Path, default=HERE / "config.json")
    ap.add_argument("--data-root", type=Path, default=None)
    ap.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    ap.add_argument("--out", type=Path, default=ROOT / "affect" / "models" / "text" / "minilm_multicorpus_v6.safetensors")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--variant", default=None, metavar="NAME",
                    help="train/final: the config's finetune_variants[NAME] over finetune (e.g. meld_stage, a second stage)")
    ap.add_argument("--init-from", type=Path, default=None, metavar="CKPT",
                    help="train: start from this checkpoint (another run's best.pt) instead of the packaged MiniLM")
    ap.add_argument("--hold-out", metavar="CORPUS", default=None,
                    help="train: a leave-one-corpus-out fold (chosen on the others' mean dev macro-F1), then scored on CORPUS's test sample")
    ap.add_argument("--teacher-table", type=Path, default=None, metavar="PT",
                    help="train, a variant with a teacher: teacher.py's output (default: WORKDIR/teacher.pt)")
    ap.add_argument("--smoke", type=int, default=None, metavar="N",
                    help="a smoke run: one epoch of N turns per corpus (MELD: N dialogues), small dev samples")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    full = json.loads(args.config.read_text())
    try:
        cfg = finetune_config(full, args.variant)
    except ValueError as exc:
        ap.error(f"--variant: {exc}")
    if args.init_from:
        cfg["init_from"] = str(args.init_from)
    if cfg.get("teacher"):
        cfg["teacher"] = cfg["teacher"] | {"path": str(args.teacher_table or args.workdir / "teacher.pt")}
    if args.smoke:
        cfg |= {"epochs": 1, "per_epoch": {"default": args.smoke}, "dev_per_corpus": args.smoke, "smoke": True,
                "prior_units": min(cfg["prior_units"], args.smoke)}
    if args.hold_out:
        if args.hold_out not in cfg["corpora"]:
            ap.error(f"--hold-out: unknown corpus {args.hold_out!r}; known: {', '.join(cfg['corpora'])}")
        cfg |= {"corpora": [c for c in cfg["corpora"] if c != args.hold_out], "select": ["mean_macro_f1"],
                "loco_sample": full["compare"]}
    if args.mode == "train":
        train(cfg, args.workdir, args.data_root, args.resume)
        if args.hold_out:
            held_out_figures(cfg, args.workdir, args.hold_out, args.data_root)
    else:
        final(cfg, args.workdir, args.data_root, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

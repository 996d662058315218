"""Adapt the top transformer layers of round 1's MiniLM to all eight corpora, then embed with them.

    python -m recipes.text_multicorpus.adapt lower   # cache the frozen lower layers' token states
    python -m recipes.text_multicorpus.adapt train   # train the top layers (resumes from its checkpoint)
    python -m recipes.text_multicorpus.adapt embed   # sentence embeddings of the new encoder, as embed.py writes them

Round 1's encoder was fine-tuned on MELD (and GoEmotions) alone; the heads recipe keeps it
frozen. Here only its top ``adapt.top_layers`` layers learn (with the mean pooling and two
throwaway linear heads: emotion through the set loss of ``heads.py``, sentiment where known),
on turns drawn with every corpus equally likely, current turn only. The lower layers never
change, so their token states are computed once (``lower``) and cached under
``/work/cache/text/adapt-lower<k>/``; a training step then costs the top layers only. The epoch
kept is the one with the best mean dev macro-F1 over the eight corpora (as ``heads.py`` chooses).

``embed`` runs the kept top layers over the cached states of every text the heads recipe uses
and writes ``/work/cache/text/<adapt.encoder>/<corpus>.pt``, so ``heads.py loco|final
--encoder <adapt.encoder>`` train the context attention and heads over the adapted encoder.
The adapted encoder saw the train splits of all eight corpora, so its leave-one-corpus-out
figures are not held out for the encoder (only for the heads).
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import f1_score

from affect.datasets.text_corpora import LabelledTurn
from affect.labels import EMOTIONS, SENTIMENTS, corpus_emotions
from affect.text._network import mean_pool
from recipes.text_multicorpus.embed import DEFAULT_CACHE, cache_file, load_encoder, sample_turns, texts_of
from recipes.text_multicorpus.heads import set_loss

log = logging.getLogger("recipes.text_multicorpus")
HERE = Path(__file__).resolve().parent


def lower_dir(cache: Path, top: int) -> Path:
    return cache / f"adapt-lower{6 - top}"


def adapt_turns(cfg: dict, corpus: str) -> list[LabelledTurn]:
    """Train turns of the adaptation (its own caps), plus the heads recipe's dev sample."""
    a = cfg["adapt"]
    caps = dict(cfg["compare"]) | {"train_per_corpus": a["train_per_corpus"],
                                   "train_per_corpus_override": a.get("train_per_corpus_override", {})}
    turns = [t for t in sample_turns(caps, corpus) if t.split == "train"]
    return turns + [t for t in sample_turns(cfg["compare"], corpus) if t.split == "dev"]


def corpus_texts(cfg: dict, corpus: str) -> list[str]:
    """Every text whose lower states are cached: the heads recipe's texts and the adaptation's."""
    seen = dict.fromkeys(texts_of(sample_turns(cfg["compare"], corpus), cfg["compare"]["context_window"]))
    seen |= dict.fromkeys(t.text for t in adapt_turns(cfg, corpus))
    return list(seen)


@torch.inference_mode()
def run_lower(cfg: dict, cache: Path) -> None:
    """Token states after the frozen lower layers, float16, one file per corpus (resumable)."""
    top = cfg["adapt"]["top_layers"]
    tokenizer, encoder = load_encoder("round1")
    encoder.eval()
    encoder.encoder.layer = encoder.encoder.layer[: len(encoder.encoder.layer) - top]
    max_tokens = cfg["compare"]["max_tokens"]
    for corpus in cfg["corpora"]:
        path = lower_dir(cache, top) / f"{corpus}.pt"
        if path.is_file():
            continue
        texts = corpus_texts(cfg, corpus)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        states: list[torch.Tensor | None] = [None] * len(texts)
        t0 = time.time()
        for i in range(0, len(order), 64):
            idx = order[i : i + 64]
            enc = tokenizer([texts[j] for j in idx], padding=True, truncation=True, max_length=max_tokens, return_tensors="pt")
            hidden = encoder(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
            for row, j in enumerate(idx):
                states[j] = hidden[row, : int(enc["attention_mask"][row].sum())].half().clone()
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"texts": texts, "states": states}, path.with_suffix(".tmp"))
        path.with_suffix(".tmp").rename(path)
        log.info("lower %s: %d texts in %.0f s", corpus, len(texts), time.time() - t0)


class Top(torch.nn.Module):
    """The adapted top layers, mean pooling and the throwaway linear heads."""

    def __init__(self, layers: torch.nn.ModuleList, config, dim: int) -> None:
        super().__init__()
        self.layers = layers
        self.config = config
        self.emotion = torch.nn.Linear(dim, len(EMOTIONS))
        self.sentiment = torch.nn.Linear(dim, len(SENTIMENTS))

    def pooled(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        from transformers.masking_utils import create_bidirectional_mask

        attn = create_bidirectional_mask(config=self.config, inputs_embeds=hidden, attention_mask=mask)
        for layer in self.layers:
            hidden = layer(hidden, attn)
        return mean_pool(hidden, mask)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        pooled = self.pooled(hidden, mask)
        return pooled, self.emotion(pooled), self.sentiment(pooled)


def pad(states: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    longest = max(s.shape[0] for s in states)
    hidden = torch.zeros(len(states), longest, states[0].shape[1])
    mask = torch.zeros(len(states), longest, dtype=torch.long)
    for i, s in enumerate(states):
        hidden[i, : s.shape[0]] = s.float()
        mask[i, : s.shape[0]] = 1
    return hidden, mask


def load_lower(cfg: dict, cache: Path) -> dict[str, dict[str, torch.Tensor]]:
    out = {}
    for corpus in cfg["corpora"]:
        data = torch.load(lower_dir(cache, cfg["adapt"]["top_layers"]) / f"{corpus}.pt")
        out[corpus] = dict(zip(data["texts"], data["states"]))
    return out


def new_top(cfg: dict) -> Top:
    _, encoder = load_encoder("round1")
    k = cfg["adapt"]["top_layers"]
    layers = copy.deepcopy(encoder.encoder.layer[len(encoder.encoder.layer) - k :])
    return Top(layers, encoder.config, encoder.config.hidden_size)


@torch.inference_mode()
def dev_scores(top: Top, turns: list[LabelledTurn], states: dict[str, dict[str, torch.Tensor]]) -> dict[str, float]:
    """Per corpus: macro-F1 over its emotions on its single-label dev turns (no context); MELD weighted-F1 too."""
    top.eval()
    out: dict[str, float] = {}
    by_corpus: dict[str, list[LabelledTurn]] = {}
    for t in turns:
        if t.single is not None:
            by_corpus.setdefault(t.corpus, []).append(t)
    for corpus, part in by_corpus.items():
        part = sorted(part, key=lambda t: states[corpus][t.text].shape[0])
        preds = []
        for i in range(0, len(part), 128):
            hidden, mask = pad([states[corpus][t.text] for t in part[i : i + 128]])
            preds.append(top(hidden, mask)[1].argmax(-1))
        pred = torch.cat(preds).numpy()
        gold = np.array([EMOTIONS.index(t.single) for t in part])
        names = [EMOTIONS.index(e) for e in corpus_emotions(corpus)]
        out[corpus] = float(f1_score(gold, pred, labels=names, average="macro", zero_division=0))
        if corpus == "meld":
            out["meld_weighted"] = float(f1_score(gold, pred, labels=names, average="weighted", zero_division=0))
    out["mean"] = float(np.mean([out[c] for c in by_corpus]))
    return out


def run_train(cfg: dict, cache: Path, workdir: Path) -> dict:
    """Train the top layers; a checkpoint after every epoch, so an interrupted run resumes."""
    a = cfg["adapt"]
    seed = cfg["seed"]
    torch.manual_seed(seed)
    states = load_lower(cfg, cache)
    turns = {c: adapt_turns(cfg, c) for c in cfg["corpora"]}
    train = {c: [t for t in ts if t.split == "train"] for c, ts in turns.items()}
    dev = [t for ts in turns.values() for t in ts if t.split == "dev"]
    corpora = list(cfg["corpora"])
    top = new_top(cfg)
    groups = [{"params": list(top.layers.parameters()), "lr": a["encoder_lr"]},
              {"params": list(top.emotion.parameters()) + list(top.sentiment.parameters()), "lr": a["head_lr"]}]
    opt = torch.optim.AdamW(groups, weight_decay=a["weight_decay"])
    total = a["epochs"] * a["steps_per_epoch"]
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[a["encoder_lr"], a["head_lr"]], total_steps=total, pct_start=0.1)
    ckpt = workdir / f"adapt-{a['encoder']}.pt"
    state = {"epoch": 0, "history": [], "best": None}
    rng = random.Random(seed)
    if ckpt.is_file():
        saved = torch.load(ckpt, weights_only=False)
        top.load_state_dict(saved["top"])
        opt.load_state_dict(saved["opt"])
        sched.load_state_dict(saved["sched"])
        rng.setstate(saved["rng"])
        torch.set_rng_state(saved["torch_rng"])
        state = saved["state"]
        log.info("resumed at epoch %d", state["epoch"])
    while state["epoch"] < a["epochs"]:
        top.train()
        t0, running = time.time(), 0.0
        for step in range(a["steps_per_epoch"]):
            batch = [rng.choice(train[rng.choice(corpora)]) for _ in range(a["batch_size"])]
            hidden, mask = pad([states[t.corpus][t.text] for t in batch])
            _, emo, sent = top(hidden, mask)
            allowed = torch.zeros(len(batch), len(EMOTIONS), dtype=torch.bool)
            for i, t in enumerate(batch):
                for e in t.allowed:
                    allowed[i, EMOTIONS.index(e)] = True
            loss = set_loss(emo, allowed, a["label_smoothing"])
            gold_sent = torch.tensor([SENTIMENTS.index(t.sentiment) if t.sentiment is not None else -1 for t in batch])
            if (gold_sent >= 0).any():
                loss = loss + a["sentiment_loss_weight"] * F.cross_entropy(sent[gold_sent >= 0], gold_sent[gold_sent >= 0])
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(top.parameters(), 1.0)
            opt.step()
            sched.step()
            running += loss.item()
            if step % 100 == 0:
                log.info("epoch %d step %d loss %.3f (%.2f s/step)", state["epoch"], step, running / (step + 1),
                         (time.time() - t0) / (step + 1))
        scores = dev_scores(top, dev, states)
        state["history"].append({"epoch": state["epoch"], "loss": running / a["steps_per_epoch"], "dev": scores,
                                 "seconds": time.time() - t0})
        log.info("epoch %d: loss %.3f dev mean %.3f meld %.3f (weighted %.3f) goemotions %.3f", state["epoch"],
                 running / a["steps_per_epoch"], scores["mean"], scores["meld"], scores["meld_weighted"],
                 scores["goemotions-ekman"])
        if state["best"] is None or scores["mean"] > state["best"]["dev"]["mean"]:
            state["best"] = {"epoch": state["epoch"], "dev": scores}
            workdir.mkdir(parents=True, exist_ok=True)
            torch.save({k: v for k, v in top.layers.state_dict().items()}, workdir / f"adapt-{a['encoder']}-best-layers.pt")
        state["epoch"] += 1
        torch.save({"top": top.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(), "rng": rng.getstate(),
                    "torch_rng": torch.get_rng_state(), "state": state}, ckpt.with_suffix(".tmp"))
        ckpt.with_suffix(".tmp").rename(ckpt)
    (workdir / f"adapt-{a['encoder']}-summary.json").write_text(json.dumps(state, indent=2) + "\n")
    log.info("kept epoch %d: dev %s", state["best"]["epoch"], state["best"]["dev"])
    return state


def adapted_layers(cfg: dict, workdir: Path) -> dict[str, torch.Tensor]:
    """The kept top layers, named as in the encoder (``encoder.layer.<i>.*``): from this machine's
    ``train`` run, or, without one, as text-minilm-multicorpus@3 ships them (float16)."""
    k = cfg["adapt"]["top_layers"]
    path = workdir / f"adapt-{cfg['adapt']['encoder']}-best-layers.pt"
    if not path.is_file():
        from affect.text._weights_io import read_text_weights
        from affect.text.weights import TextWeights

        tensors, _ = read_text_weights(TextWeights.MINILM_MULTICORPUS_V3.value.verified_path())
        tops = tuple(f"encoder.encoder.layer.{i}." for i in range(6 - k, 6))  # the net's encoder is a BertModel
        log.info("no %s: the adapted layers of text-minilm-multicorpus@3 are used", path.name)
        return {n[len("encoder."):]: t.float() for n, t in tensors.items() if n.startswith(tops)}
    saved = torch.load(path)
    out = {}
    for name, tensor in saved.items():
        i, rest = name.split(".", 1)
        out[f"encoder.layer.{6 - k + int(i)}.{rest}"] = tensor
    return out


@torch.inference_mode()
def run_embed(cfg: dict, cache: Path, workdir: Path) -> None:
    """Sentence embeddings of every heads-recipe text through the adapted top layers."""
    top = new_top(cfg)
    saved = torch.load(workdir / f"adapt-{cfg['adapt']['encoder']}-best-layers.pt")
    top.layers.load_state_dict(saved)
    top.eval()
    for corpus in cfg["corpora"]:
        path = cache_file(cache, cfg["adapt"]["encoder"], corpus)
        if path.is_file():
            continue
        data = torch.load(lower_dir(cache, cfg["adapt"]["top_layers"]) / f"{corpus}.pt")
        states = dict(zip(data["texts"], data["states"]))
        texts = texts_of(sample_turns(cfg["compare"], corpus), cfg["compare"]["context_window"])
        order = sorted(range(len(texts)), key=lambda i: states[texts[i]].shape[0])
        vectors = np.zeros((len(texts), top.emotion.in_features), dtype=np.float16)
        for i in range(0, len(order), 128):
            idx = order[i : i + 128]
            hidden, mask = pad([states[texts[j]] for j in idx])
            vectors[idx] = top.pooled(hidden, mask).numpy().astype(np.float16)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"texts": texts, "vectors": torch.from_numpy(vectors)}, path.with_suffix(".tmp"))
        path.with_suffix(".tmp").rename(path)
        log.info("embedded %s: %d texts", corpus, len(texts))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=("lower", "train", "embed", "all"))
    ap.add_argument("--config", type=Path, default=HERE / "config.json")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--workdir", type=Path, default=HERE / "checkpoints")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    cfg = json.loads(args.config.read_text())
    torch.set_num_threads(cfg["compare"]["torch_threads"])
    if args.mode in ("lower", "all"):
        run_lower(cfg, args.cache)
    if args.mode in ("train", "all"):
        run_train(cfg, args.cache, args.workdir)
    if args.mode in ("embed", "all"):
        run_embed(cfg, args.cache, args.workdir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

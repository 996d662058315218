"""Context attention and heads over cached sentence embeddings: leave-one-corpus-out, and the final head.

    python -m recipes.text_multicorpus.heads loco  [--encoder minilm|round1] [--balance corpus|corpus_class]
    python -m recipes.text_multicorpus.heads final [--out affect/models/text/...safetensors]

Training draws turns with every corpus equally likely (``balance``: and, for ``corpus_class``,
every class equally likely within a corpus), so that GoEmotions' 43,000 comments do not drown
ISEAR's 4,000. A gold label is a *set* of emotions (``affect.datasets.text_corpora``); the loss
is the negative log of the probability the model puts on the whole set, so a multi-label line
or EmoContext's "others" teaches only what it knows. Sentiment is learnt where a corpus gives it
or its emotions imply it. The earlier turns of a dialogue (MELD, EmoContext) feed the context
attention, which is dropped at random (``context_dropout``) so a turn without context reads well.

``loco``: for each corpus in turn, the head learns from the train samples of the others, its
epoch chosen on their dev samples, and is scored on the test sample of the corpus left out:
macro-F1 over the emotions that corpus names (strict argmax over all seven; EmoContext also over
its four classes with "others", and the shared task's micro-F1 over happy, sad and angry), with
and without context for the dialogue corpora, beside the round-1 model on the same turns.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import f1_score

from affect.datasets.text_corpora import DIALOGUE_CORPORA, LabelledTurn
from affect.labels import EMOTIONS, PARTIAL_LABELS, SENTIMENTS, corpus_emotions
from affect.text._network import TextAffectNet, mix_context, speaker_relation
from evaluation.emocontext import OTHERS, macro_f1_with_others, micro_f1_emotions
from recipes._variants import with_variant
from recipes.text_multicorpus.embed import DEFAULT_CACHE, cache_file, sample_turns

log = logging.getLogger("recipes.text_multicorpus")
HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


@dataclass
class Batchable:
    """Turns as tensors: current and context embeddings, gold sets, sentiment, corpus, split."""

    current: torch.Tensor  # [N, D]
    context: torch.Tensor  # [N, W, D]
    mask: torch.Tensor  # [N, W]
    relation: torch.Tensor  # [N, W]
    allowed: torch.Tensor  # [N, 7] bool
    sentiment: torch.Tensor  # [N] long, -1 unknown
    corpus: np.ndarray
    split: np.ndarray

    def select(self, keep: np.ndarray) -> "Batchable":
        idx = torch.from_numpy(np.flatnonzero(keep))
        return Batchable(self.current[idx], self.context[idx], self.mask[idx], self.relation[idx], self.allowed[idx],
                         self.sentiment[idx], self.corpus[idx.numpy()], self.split[idx.numpy()])

    def __len__(self) -> int:
        return self.current.shape[0]


def to_tensors(turns: list[LabelledTurn], vectors: dict[str, torch.Tensor], window: int) -> Batchable:
    dim = next(iter(vectors.values())).shape[0]
    n = len(turns)
    current = torch.zeros(n, dim)
    context = torch.zeros(n, window, dim)
    mask = torch.zeros(n, window, dtype=torch.bool)
    relation = torch.full((n, window), 2, dtype=torch.long)
    allowed = torch.zeros(n, len(EMOTIONS), dtype=torch.bool)
    sentiment = torch.full((n,), -1, dtype=torch.long)
    for i, t in enumerate(turns):
        current[i] = vectors[t.text].float()
        for k, (text, speaker) in enumerate(reversed(t.context[-window:])):  # most recent first
            context[i, k] = vectors[text].float()
            mask[i, k] = True
            relation[i, k] = speaker_relation(t.speaker, speaker)
        for e in t.allowed:
            allowed[i, EMOTIONS.index(e)] = True
        if t.sentiment is not None:
            sentiment[i] = SENTIMENTS.index(t.sentiment)
    return Batchable(current, context, mask, relation, allowed, sentiment,
                     np.array([t.corpus for t in turns]), np.array([t.split for t in turns]))


def load_corpora(cfg: dict, encoder: str, cache: Path, corpora: list[str]) -> tuple[Batchable, list[LabelledTurn]]:
    parts, all_turns = [], []
    for corpus in corpora:
        data = torch.load(cache_file(cache, encoder, corpus))
        vectors = dict(zip(data["texts"], data["vectors"]))
        turns = sample_turns(cfg["compare"], corpus)
        parts.append(to_tensors(turns, vectors, cfg["compare"]["context_window"]))
        all_turns += turns
    return Batchable(
        torch.cat([p.current for p in parts]), torch.cat([p.context for p in parts]), torch.cat([p.mask for p in parts]),
        torch.cat([p.relation for p in parts]), torch.cat([p.allowed for p in parts]),
        torch.cat([p.sentiment for p in parts]), np.concatenate([p.corpus for p in parts]),
        np.concatenate([p.split for p in parts]),
    ), all_turns


def set_loss(logits: torch.Tensor, allowed: torch.Tensor, smoothing: float) -> torch.Tensor:
    """-log P(answer in the gold set), with a little mass spread over all classes."""
    log_p = F.log_softmax(logits, dim=-1)
    in_set = torch.logsumexp(log_p.masked_fill(~allowed, float("-inf")), dim=-1)
    return (-(1 - smoothing) * in_set - smoothing * log_p.mean(-1)).mean()


def sampling_weights(data: Batchable, balance: str, corpus_weight: dict[str, float] | None = None) -> np.ndarray:
    """Probability of drawing each turn: corpora equal (times ``corpus_weight``, default 1 each)."""
    corpus_weight = corpus_weight or {}
    weights = np.zeros(len(data))
    corpora = np.unique(data.corpus)
    first = data.allowed.float().argmax(-1).numpy()  # class cell of a set label: its first member
    single = data.allowed.sum(-1).numpy() == 1
    for corpus in corpora:
        in_corpus = data.corpus == corpus
        if balance == "corpus":
            weights[in_corpus] = 1.0 / (len(corpora) * in_corpus.sum())
        elif balance == "corpus_class":
            cells = [(in_corpus & single & (first == c)) for c in range(len(EMOTIONS))] + [in_corpus & ~single]
            cells = [c for c in cells if c.any()]
            for cell in cells:
                weights[cell] = 1.0 / (len(corpora) * len(cells) * cell.sum())
        else:
            raise ValueError(f"unknown balance {balance!r}")
        weights[in_corpus] *= corpus_weight.get(str(corpus), 1.0)
    return weights / weights.sum()


def new_head(dim: int, cfg: dict) -> TextAffectNet:
    return TextAffectNet(torch.nn.Identity(), dim=dim, window=cfg["compare"]["context_window"], dropout=cfg["heads"]["dropout"])


def forward(net: TextAffectNet, data: Batchable, idx: torch.Tensor | slice, use_context: bool = True,
            drop: float = 0.0, gen: torch.Generator | None = None,
            pseudo: "PseudoContext | None" = None) -> tuple[torch.Tensor, torch.Tensor]:
    context, mask, relation = data.context[idx], data.mask[idx], data.relation[idx]
    if pseudo is not None:
        context, mask, relation = pseudo.fill(idx, context, mask, relation, gen)
    if not use_context:
        mask = torch.zeros_like(mask)
    elif drop > 0:
        keep = torch.rand(mask.shape[0], 1, generator=gen) >= drop
        mask = mask & keep
    return net.classify(data.current[idx], context, mask, relation)


class PseudoContext:
    """Unrelated earlier turns for training turns that have none (corpora of single sentences).

    Without them, only the dialogue corpora ever show the context attention a past turn, so
    "there is context" itself tells the head which corpus a turn comes from, and it learns that
    corpus's label frequencies as the meaning of context: on a dialogue corpus it never saw, the
    past turns then pull answers towards the other dialogue corpus's labels (held-out MELD lost 10
    points of macro-F1 with context). Giving a share ``p`` of the other turns 1 to ``window``
    random turns of their own corpus, with random speaker relations, takes that cue away: the
    head must learn from what the past turns say, and that unrelated turns say nothing.
    ``shuffle`` is the share of dialogue turns whose real past turns are swapped for such
    unrelated ones (the same number of turns, the same speaker relations).
    """

    def __init__(self, data: Batchable, p: float, shuffle: float = 0.0) -> None:
        self.data, self.p, self.shuffle = data, p, shuffle
        self.pools = {str(c): torch.from_numpy(np.flatnonzero(data.corpus == c)) for c in np.unique(data.corpus)}
        self.corpus_of = data.corpus
        self.dialogue = torch.from_numpy(np.isin(data.corpus, DIALOGUE_CORPORA))

    def fill(self, idx: torch.Tensor, context: torch.Tensor, mask: torch.Tensor, relation: torch.Tensor,
             gen: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        dialogue = self.dialogue[idx]
        draw = torch.rand(len(idx), generator=gen)
        chosen = (~dialogue & (draw < self.p)) | (dialogue & mask.any(1) & (draw < self.shuffle))
        if not chosen.any():
            return context, mask, relation
        context, mask, relation = context.clone(), mask.clone(), relation.clone()
        window = mask.shape[1]
        for row in torch.nonzero(chosen).flatten().tolist():
            pool = self.pools[str(self.corpus_of[int(idx[row])])]
            if dialogue[row]:  # keep how many turns and who spoke them; swap what they said
                k = int(mask[row].sum())
            else:
                k = int(torch.randint(1, window + 1, (1,), generator=gen))
                mask[row, :k] = True
                relation[row, :k] = torch.randint(0, 2, (k,), generator=gen)  # other or same speaker, as in a dialogue
            picks = pool[torch.randint(0, len(pool), (k,), generator=gen)]
            context[row, :k] = self.data.current[picks]
        return context, mask, relation


@torch.inference_mode()
def predict(net: TextAffectNet, data: Batchable, use_context: bool = True, batch: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    net.eval()
    em, se = [], []
    for i in range(0, len(data), batch):
        e, s = forward(net, data, slice(i, i + batch), use_context)
        em.append(e)
        se.append(s)
    return torch.cat(em), torch.cat(se)


def corpus_scores(corpus: str, emotion_logits: torch.Tensor, data: Batchable) -> dict[str, float]:
    """Macro-F1 over the corpus's emotions on its single-label turns (strict argmax over 7)."""
    pred = emotion_logits.argmax(-1).numpy()
    single = data.allowed.sum(-1).numpy() == 1
    gold = data.allowed.float().argmax(-1).numpy()
    names = [EMOTIONS.index(e) for e in corpus_emotions(corpus)]
    out = {"n": int(single.sum())}
    out["macro_f1"] = float(f1_score(gold[single], pred[single], labels=names, average="macro", zero_division=0))
    out["weighted_f1"] = float(f1_score(gold[single], pred[single], labels=names, average="weighted", zero_division=0))
    if corpus in PARTIAL_LABELS:  # EmoContext: four classes, "others" = anything but happy, sad, angry
        gold4 = np.where(single, gold, OTHERS)
        out["macro_f1_with_others"] = macro_f1_with_others(gold4, pred, names)
        out["micro_f1_emotions"] = micro_f1_emotions(gold4, pred, names)
        out["n"] = len(gold4)
    return out


def train(train_data: Batchable, dev: Batchable, cfg: dict, tag: str) -> tuple[TextAffectNet, dict]:
    h = cfg["heads"]
    seed = cfg["seed"]
    torch.manual_seed(seed)
    random.seed(seed)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    net = new_head(train_data.current.shape[1], cfg)
    opt = torch.optim.AdamW(net.parameters(), lr=h["lr"], weight_decay=h["weight_decay"])
    steps = h["steps_per_epoch"]
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=h["lr"], total_steps=h["epochs"] * steps, pct_start=0.1)
    probs = sampling_weights(train_data, h["balance"], h.get("corpus_weight"))
    pseudo = (PseudoContext(train_data, h.get("pseudo_context", 0.0), h.get("shuffle_context", 0.0))
              if h.get("pseudo_context") or h.get("shuffle_context") else None)
    best: dict = {"score": -1.0}
    history = []
    for epoch in range(h["epochs"]):
        net.train()
        t0, total = time.time(), 0.0
        for _ in range(steps):
            idx = torch.from_numpy(rng.choice(len(train_data), size=h["batch_size"], p=probs))
            emo, sent = forward(net, train_data, idx, drop=h["context_dropout"], gen=gen, pseudo=pseudo)
            loss = set_loss(emo, train_data.allowed[idx], h["label_smoothing"])
            known = train_data.sentiment[idx] >= 0
            if known.any():
                loss = loss + h["sentiment_loss_weight"] * F.cross_entropy(sent[known], train_data.sentiment[idx][known])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
        score, parts = dev_score(net, dev)
        history.append({"epoch": epoch, "loss": total / steps, "dev": score})
        if score > best["score"]:
            best = {"score": score, "epoch": epoch, "parts": parts, "state": {k: v.clone() for k, v in net.state_dict().items()}}
    log.info("%s best epoch %d dev mean macro-F1 %.3f (%.0f s/epoch)", tag, best["epoch"], best["score"], time.time() - t0)
    net.load_state_dict(best["state"])
    net.eval()
    return net, {"best_epoch": best["epoch"], "dev": best["score"], "dev_parts": best["parts"], "history": history}


def dev_score(net: TextAffectNet, dev: Batchable) -> tuple[float, dict[str, float]]:
    emo, _ = predict(net, dev)
    parts = {}
    for corpus in np.unique(dev.corpus):
        keep = dev.corpus == corpus
        parts[str(corpus)] = corpus_scores(str(corpus), emo[torch.from_numpy(keep)], dev.select(keep))["macro_f1"]
    return float(np.mean(list(parts.values()))), parts


@functools.lru_cache(maxsize=1)
def round1_head() -> TextAffectNet:
    """The shipped round-1 model's context attention and heads (its encoder's outputs are cached)."""
    from affect.text._weights_io import read_text_weights
    from affect.text.weights import TextWeights

    tensors, header = read_text_weights(TextWeights.MINILM_MELD_V1.value.verified_path())
    net = TextAffectNet(torch.nn.Identity(), dim=int(header["dim"]), window=int(header["window"]))
    net.load_state_dict({k: v for k, v in tensors.items() if not k.startswith("encoder.")}, strict=True)
    return net.eval()


@torch.inference_mode()
def round1_logits(data: Batchable, use_context: bool = True) -> torch.Tensor:
    """The round-1 model's calibrated emotion logits for turns embedded by its own encoder."""
    net = round1_head()
    emo, sent = predict(net, data, use_context)
    return net.calibrated(emo, sent)[0]


def fold_path(workdir: Path, encoder: str, balance: str, held: str, variant: str | None = None) -> Path:
    return workdir / f"loco-{encoder}-{balance}{'-' + variant if variant else ''}" / f"{held}.json"


def standardised_by_corpus(data: Batchable, held: str) -> Batchable:
    """Probe (``standardise: corpus``): every corpus's embeddings (current and past turns)
    standardised by the mean and spread of its own current turns: the training corpora's train
    turns, and the held-out corpus's test turns (unlabelled; what a deployment's running
    statistics converge to). Asks whether text, like speech, generalises better when each source
    is read against what is usual there."""
    current, context = data.current.clone(), data.context.clone()
    for corpus in np.unique(data.corpus):
        rows = data.corpus == corpus
        basis = rows & (data.split == ("test" if corpus == held else "train"))
        mean, std = data.current[basis].mean(0), data.current[basis].std(0).clamp(min=1e-6)
        idx = torch.from_numpy(np.flatnonzero(rows))
        current[idx] = (current[idx] - mean) / std
        context[idx] = torch.where(data.mask[idx].unsqueeze(-1), (context[idx] - mean) / std, context[idx])
    return Batchable(current, context, data.mask, data.relation, data.allowed, data.sentiment, data.corpus, data.split)


def loco_fold(cfg: dict, data: Batchable, r1data: Batchable, workdir: Path, encoder: str, balance: str,
              held: str, variant: str | None = None) -> dict:
    """One held-out corpus: train on the others, score on its test sample (cached as JSON).
    ``data`` are the turns embedded by ``encoder``, ``r1data`` the same turns by round 1's encoder."""
    out_path = fold_path(workdir, encoder, balance, held, variant)
    cfg = with_variant(cfg, variant)
    cfg["heads"]["balance"] = balance
    if cfg["heads"].get("standardise") == "corpus":
        data = standardised_by_corpus(data, held)
    rest = data.corpus != held
    net, info = train(data.select(rest & (data.split == "train")), data.select(rest & (data.split == "dev")), cfg,
                      f"[{encoder} {balance}{' ' + variant if variant else ''} -{held}]")
    test_keep = (data.corpus == held) & (data.split == "test")
    test = data.select(test_keep)
    row = {"best_epoch": info["best_epoch"], "dev": info["dev"]}
    with_context, sent_context = predict(net, test)
    row |= corpus_scores(held, with_context, test)
    r1test = r1data.select(test_keep)
    row |= {f"round1_{k}": v for k, v in corpus_scores(held, round1_logits(r1test), r1test).items()}
    if held in DIALOGUE_CORPORA:
        without, sent_alone = predict(net, test, False)
        row |= {f"no_context_{k}": v for k, v in corpus_scores(held, without, test).items()}
        known = test.sentiment >= 0
        for weight in cfg["heads"].get("context_weights", []):  # the library's mix of the two readings
            mixed = mix_context(with_context, without, weight)
            row |= {f"context_weight_{weight}_{k}": v for k, v in corpus_scores(held, mixed, test).items()}
            if known.any():  # MELD: sentiment too
                sent = mix_context(sent_context, sent_alone, weight).argmax(-1)
                row[f"context_weight_{weight}_sentiment_macro_f1"] = float(
                    f1_score(test.sentiment[known].numpy(), sent[known].numpy(), average="macro", zero_division=0))
        row |= {f"round1_no_context_{k}": v for k, v in
                corpus_scores(held, round1_logits(r1test, False), r1test).items()}
    log.info("held out %s: macro-F1 %.3f (round-1 %.3f)", held, row["macro_f1"], row["round1_macro_f1"])
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(row, indent=2) + "\n")
    return row


def run_loco(cfg: dict, cache: Path, workdir: Path, encoder: str, balance: str, only: list[str] | None = None,
             variant: str | None = None) -> dict:
    """Leave-one-corpus-out for one encoder and balance; each fold is cached, so folds can run in
    separate processes (``--held``) and the summary reuses them."""
    result: dict = {"encoder": encoder, "balance": balance, "variant": variant or "base", "corpora": {}}
    loaded: tuple[Batchable, Batchable] | None = None  # read once, and only if a fold must be computed
    for held in cfg["corpora"]:
        if only and held not in only:
            continue
        done = fold_path(workdir, encoder, balance, held, variant)
        if done.is_file():
            result["corpora"][held] = json.loads(done.read_text())
            continue
        if loaded is None:
            data, _ = load_corpora(cfg, encoder, cache, cfg["corpora"])
            loaded = (data, data if encoder == "round1" else load_corpora(cfg, "round1", cache, cfg["corpora"])[0])
        result["corpora"][held] = loco_fold(cfg, *loaded, workdir, encoder, balance, held, variant)
    if only:
        return result
    result["mean_macro_f1"] = float(np.mean([r["macro_f1"] for r in result["corpora"].values()]))
    result["round1_mean_macro_f1"] = float(np.mean([r["round1_macro_f1"] for r in result["corpora"].values()]))
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / f"loco-{encoder}-{balance}{'-' + variant if variant else ''}.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def fit_temperature(logits: torch.Tensor, loss_fn) -> float:
    grid = np.exp(np.linspace(np.log(0.3), np.log(5.0), 60))
    return float(grid[int(np.argmin([loss_fn(logits / t).item() for t in grid]))])


def training_prior(net: TextAffectNet, data: Batchable, probs: np.ndarray, temperature: float, draws: int = 20000,
                   seed: int = 0) -> list[float]:
    """The label prior the head learnt: its mean calibrated probability over the training mix
    (turns drawn with the training sampling weights). What ``affect.text.prior`` divides out."""
    rng = np.random.default_rng(seed)
    idx = torch.from_numpy(rng.choice(len(data), size=draws, p=probs))
    sample = Batchable(data.current[idx], data.context[idx], data.mask[idx], data.relation[idx], data.allowed[idx],
                       data.sentiment[idx], data.corpus[idx.numpy()], data.split[idx.numpy()])
    emo, _ = predict(net, sample)
    return torch.softmax(emo / temperature, -1).mean(0).tolist()


def run_final(cfg: dict, cache: Path, workdir: Path, out: Path) -> dict:
    """The shipped text model: the chosen encoder with a head trained on every corpus."""
    from affect.text._base import load_base
    from affect.text._weights_io import frozen_names, load_text_net, save_text_weights
    from affect.text.weights import TextWeights

    encoder = cfg["final"]["encoder"]
    adapted = encoder == cfg.get("adapt", {}).get("encoder")  # round 1's encoder with its top layers adapted (adapt.py)
    if encoder != "round1" and not adapted:
        raise SystemExit("only round 1's encoder, as it is or adapted by adapt.py, can be shipped by this recipe")
    cfg = with_variant(cfg, cfg["final"].get("variant"))
    cfg["heads"]["balance"] = cfg["final"]["balance"]
    cfg["heads"]["corpus_weight"] = cfg["final"].get("corpus_weight", {})
    data, _ = load_corpora(cfg, encoder, cache, cfg["corpora"])
    train_data, dev = data.select(data.split == "train"), data.select(data.split == "dev")
    head, info = train(train_data, dev, cfg, "[final]")
    emo, sent = predict(head, dev)
    t_emo = fit_temperature(emo, lambda z: set_loss(z, dev.allowed, 0.0))
    known = dev.sentiment >= 0
    t_sent = fit_temperature(sent[known], lambda z: F.cross_entropy(z, dev.sentiment[known]))
    head.emotion_temperature.fill_(t_emo)
    head.sentiment_temperature.fill_(t_sent)
    prior = training_prior(head, train_data, sampling_weights(train_data, cfg["heads"]["balance"], cfg["heads"]["corpus_weight"]),
                           t_emo, seed=cfg["seed"])

    r1_path = TextWeights.MINILM_MELD_V1.value.verified_path()
    _, base = load_base(None)
    r1, _ = load_text_net(r1_path, base)
    changed: tuple[str, ...] = ()
    if adapted:
        from recipes.text_multicorpus.adapt import adapted_layers

        layers = adapted_layers(cfg, workdir)
        missing, unexpected = r1.encoder.load_state_dict(layers, strict=False)
        assert not unexpected and len(missing) == len(r1.encoder.state_dict()) - len(layers), unexpected
        changed = tuple(sorted({"encoder." + ".".join(k.split(".")[:3]) + "." for k in layers}))
    net = TextAffectNet(r1.encoder, dim=head.emotion_head.in_features, window=head.window)
    missing, unexpected = net.load_state_dict({k: v for k, v in head.state_dict().items()}, strict=False)
    assert not unexpected and all(k.startswith("encoder.") for k in missing), (missing, unexpected)
    meta = {
        "recipe": "recipes/text_multicorpus", "config": cfg,
        "encoder": ("text-minilm-meld@1's fine-tuned MiniLM, its top layers adapted to the eight corpora "
                    f"({', '.join(c.rstrip('.') for c in changed)} stored here)") if adapted
                   else "text-minilm-meld@1's fine-tuned MiniLM, frozen",
        "best_epoch": info["best_epoch"], "dev_mean_macro_f1": info["dev"], "dev_parts": info["dev_parts"],
        "emotion_temperature": t_emo, "sentiment_temperature": t_sent, "train_prior": prior,
    }
    save_text_weights(net, out, meta, frozen=frozen_names(r1_path), encoder_from=r1_path.name, encoder_changed=changed)
    summary = {k: v for k, v in meta.items() if k != "config"} | {"history": info["history"]}
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / f"final-summary-{out.stem}.json").write_text(json.dumps(summary, indent=2) + "\n")
    log.info("final: epoch %d, dev mean macro-F1 %.3f, temperatures %.2f/%.2f, prior %s; wrote %s", info["best_epoch"],
             info["dev"], t_emo, t_sent, " ".join(f"{p:.2f}" for p in prior), out)
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=("loco", "final"))
    ap.add_argument("--out", type=Path, default=ROOT / "affect" / "models" / "text" / "minilm_multicorpus_v2.safetensors")
    ap.add_argument("--config", type=Path, default=HERE / "config.json")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--workdir", type=Path, default=HERE / "checkpoints")
    ap.add_argument("--encoder", action="append")
    ap.add_argument("--balance", action="append")
    ap.add_argument("--held", action="append", help="loco: only these held-out corpora (folds run in parallel processes)")
    ap.add_argument("--variant", action="append", help="loco: named config variants to compare (default: none)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    cfg = json.loads(args.config.read_text())
    torch.set_num_threads(cfg["compare"]["torch_threads"])
    if args.mode == "final":
        run_final(cfg, args.cache, args.workdir, args.out)
        return 0
    for encoder in args.encoder or ["minilm"]:
        for balance in args.balance or [cfg["heads"]["balance"]]:
            for variant in args.variant or [None]:
                res = run_loco(cfg, args.cache, args.workdir, encoder, balance, args.held, variant)
                if args.held:
                    continue
                log.info("LOCO %s %s %s: mean macro-F1 %.3f (round-1 %.3f)", encoder, balance, variant or "base",
                         res["mean_macro_f1"], res["round1_mean_macro_f1"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

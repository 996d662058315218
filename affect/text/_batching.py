"""Turning dialogues into network inputs: shared by the library, the recipe and the benchmark."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import torch

from affect.text._network import TextAffectNet, context_tensors

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

DialogueTexts = Sequence[tuple[str, str | None]]  # (text, speaker) per turn, in order


def tokenize(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], max_tokens: int) -> dict[str, torch.Tensor]:
    batch = tokenizer(list(texts), padding=True, truncation=True, max_length=max_tokens, return_tensors="pt")
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}


@torch.inference_mode()
def embed_texts(
    net: TextAffectNet,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    *,
    max_tokens: int,
    batch_size: int = 64,
    on_batch: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """Turn embeddings ``[N, D]``; texts are batched by length so padding stays small.

    A text longer than the network reads at once (``max_tokens`` word pieces with its markers) is
    read in windows (``text_windows``: at most ``MAX_WINDOWS``), and its embedding is their mean
    weighted by their word pieces: the mean pooling the network does, over the text as far as
    windows allow. (It was cut to its first window: what a long message said after that was
    never read.) A text within one window is read exactly as before."""
    pieces = tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]
    markers = _markers(tokenizer)
    windows = [text_windows(tokenizer, ids, max_tokens, markers) for ids in pieces]
    order = sorted(range(len(texts)), key=lambda i: len(pieces[i]))
    out = torch.empty(len(texts), net.emotion_head.in_features)
    for group in _groups(order, [len(w) for w in windows], batch_size):
        batch = [window for i in group for window in windows[i]]
        padded = tokenizer.pad({"input_ids": batch}, return_tensors="pt")
        embedded = net.embed(input_ids=padded["input_ids"], attention_mask=padded["attention_mask"])
        weights = padded["attention_mask"].sum(1, keepdim=True).to(embedded.dtype)
        start = 0
        for i in group:
            n = len(windows[i])
            part, w = embedded[start:start + n], weights[start:start + n]
            out[i] = part[0] if n == 1 else (part * w).sum(0) / w.sum()
            start += n
        if on_batch:
            on_batch(len(group))
    return out


# Windows read of one text at most: a text up to about 1,700 characters is read whole; of a longer
# one, the first and last two windows (a message's opening and its close). Measured on one core
# (ONNX, this machine, 2026-12-07): the 10,000 characters a turn may have took 552 ms read whole
# (24 windows), 101 ms in four, against 8 ms for a short turn and 234 ms for a 20 s clip (the
# heavy lane's threshold).
MAX_WINDOWS = 4


def text_windows(tokenizer: PreTrainedTokenizerBase, ids: list[int], max_tokens: int,
                 markers: tuple[int, list[int]] | None = None) -> list[list[int]]:
    """A text's word pieces in windows of at most ``max_tokens`` with the tokenizer's markers
    (``_markers``; given by a caller that windows many texts): one at least, ``MAX_WINDOWS`` at most."""
    first, last = markers or _markers(tokenizer)
    size = max_tokens - 1 - len(last)
    windows = [[first, *ids[i:i + size], *last] for i in range(0, max(len(ids), 1), size)]
    if len(windows) > MAX_WINDOWS:
        windows = windows[:MAX_WINDOWS // 2] + windows[-(MAX_WINDOWS - MAX_WINDOWS // 2):]
    return windows


def _markers(tokenizer: PreTrainedTokenizerBase) -> tuple[int, list[int]]:
    """The ids the tokenizer puts before and after a text ([CLS] and [SEP]; <s> and </s>), read
    from an empty text."""
    first, *last = tokenizer("")["input_ids"]
    return first, last


def _groups(order: list[int], windows: list[int], batch_size: int) -> list[list[int]]:
    """Texts in ``order``, grouped so that a group's windows fill at most ``batch_size`` rows (a
    text of more windows than that is a group of its own)."""
    groups: list[list[int]] = []
    rows = 0
    for i in order:
        if groups and rows + windows[i] <= batch_size:
            groups[-1].append(i)
            rows += windows[i]
        else:
            groups.append([i])
            rows = windows[i]
    return groups


def dialogue_inputs(
    embeddings: Sequence[torch.Tensor], speakers: Sequence[Sequence[str | None]], window: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Flattened (current, context, mask, relation) for a list of dialogues' turn embeddings."""
    parts = [context_tensors(e, list(s), window) for e, s in zip(embeddings, speakers)]
    current = torch.cat(list(embeddings))
    return current, torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts]), torch.cat([p[2] for p in parts])


@torch.inference_mode()
def dialogue_batch(
    net: TextAffectNet,
    tokenizer: PreTrainedTokenizerBase,
    dialogues: Sequence[DialogueTexts],
    *,
    max_tokens: int = 128,
    batch_size: int = 64,
    on_batch: Callable[[int], None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The network's inputs (current, context, mask, relation) for every turn, dialogues flattened in order."""
    texts = [text for dialogue in dialogues for text, _ in dialogue]
    flat = embed_texts(net, tokenizer, texts, max_tokens=max_tokens, batch_size=batch_size, on_batch=on_batch)
    embeddings = list(torch.split(flat, [len(d) for d in dialogues]))
    speakers = [[speaker for _, speaker in d] for d in dialogues]
    return dialogue_inputs(embeddings, speakers, net.window)


@torch.inference_mode()
def predict_dialogues(
    net: TextAffectNet,
    tokenizer: PreTrainedTokenizerBase,
    dialogues: Sequence[DialogueTexts],
    *,
    use_context: bool = True,
    max_tokens: int = 128,
    batch_size: int = 64,
    on_batch: Callable[[int], None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Emotion ``[N, 7]`` and sentiment ``[N, 3]`` logits of the network for every turn, dialogues
    flattened in order (raw: what the library reports is ``TextEncoder.read_dialogues``)."""
    current, context, mask, relation = dialogue_batch(net, tokenizer, dialogues, max_tokens=max_tokens,
                                                      batch_size=batch_size, on_batch=on_batch)
    if not use_context:
        mask = torch.zeros_like(mask)
    return net.classify(current, context, mask, relation)

"""Turning dialogues into network inputs: shared by the library, the recipe and the benchmark."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from affect.text._network import TextAffectNet, context_tensors

DialogueTexts = Sequence[tuple[str, str | None]]  # (text, speaker) per turn, in order


def tokenize(tokenizer, texts: Sequence[str], max_tokens: int) -> dict[str, torch.Tensor]:
    batch = tokenizer(list(texts), padding=True, truncation=True, max_length=max_tokens, return_tensors="pt")
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}


@torch.inference_mode()
def embed_texts(
    net: TextAffectNet,
    tokenizer,
    texts: Sequence[str],
    *,
    max_tokens: int,
    batch_size: int = 64,
    on_batch: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """Turn embeddings ``[N, D]``; texts are batched by length so padding stays small."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = torch.empty(len(texts), net.emotion_head.in_features)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        out[idx] = net.embed(**tokenize(tokenizer, [texts[i] for i in idx], max_tokens))
        if on_batch:
            on_batch(len(idx))
    return out


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
    tokenizer,
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
    tokenizer,
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

"""The text network: a MiniLM turn encoder and a causal attention over the turns before it.

Each turn is encoded once, on its own. Context comes from the embeddings of up to
``window`` earlier turns of the same conversation, each tagged with how far back it is and
whether its speaker is the current speaker. A service therefore keeps a few vectors per
conversation and encodes only the new turn: the cost of a turn does not grow with the
conversation. Only past turns are ever seen, since in a live chat the future is unknown.
"""

from __future__ import annotations

import torch
from torch import nn

from affect.labels import EMOTIONS, SENTIMENTS

SPEAKER_OTHER, SPEAKER_SAME, SPEAKER_UNKNOWN = 0, 1, 2


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of the token vectors that are not padding (the pooling MiniLM was trained with)."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)


class CausalContext(nn.Module):
    """Attention from the current turn to earlier turns, with a learned 'no context' slot."""

    def __init__(self, dim: int, window: int, heads: int = 4, dropout: float = 0.1) -> None:
        super().__init__()
        self.window = window
        self.distance = nn.Embedding(window + 1, dim)  # 1..window turns back; 0 unused
        self.speaker = nn.Embedding(3, dim)  # other, same, unknown
        self.null = nn.Parameter(torch.zeros(1, 1, dim))
        self.attention = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm = nn.LayerNorm(dim)

    def forward(
        self,
        current: torch.Tensor,  # [B, D]
        context: torch.Tensor,  # [B, K, D], most recent first
        context_mask: torch.Tensor,  # [B, K] bool, True where a context turn exists
        speaker_relation: torch.Tensor,  # [B, K] long
    ) -> torch.Tensor:
        batch, k, _ = context.shape
        distance = torch.arange(1, k + 1, device=context.device).expand(batch, k)
        keys = context + self.distance(distance) + self.speaker(speaker_relation)
        keys = torch.cat([self.null.expand(batch, 1, -1), keys], dim=1)
        valid = torch.cat([torch.ones(batch, 1, dtype=torch.bool, device=context.device), context_mask], dim=1)
        attended, _ = self.attention(current.unsqueeze(1), keys, keys, key_padding_mask=~valid, need_weights=False)
        return self.norm(attended.squeeze(1))


class TextAffectNet(nn.Module):
    """Turn encoder + context + emotion and sentiment heads."""

    emotion_bias: torch.Tensor  # buffers (register_buffer), declared for the type checker
    emotion_temperature: torch.Tensor
    sentiment_temperature: torch.Tensor

    def __init__(self, encoder: nn.Module, *, dim: int = 384, window: int = 8, dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = encoder
        self.window = window
        self.context = CausalContext(dim, window, dropout=dropout)
        self.mix = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * dim, dim), nn.GELU(), nn.Dropout(dropout))
        self.emotion_head = nn.Linear(dim, len(EMOTIONS))
        self.sentiment_head = nn.Linear(dim, len(SENTIMENTS))
        # Fitted on the validation split after training (recipes/text_meld/calibrate.py):
        # decision biases for the emotion logits and one temperature per head.
        self.register_buffer("emotion_bias", torch.zeros(len(EMOTIONS)))
        self.register_buffer("emotion_temperature", torch.ones(1))
        self.register_buffer("sentiment_temperature", torch.ones(1))

    CALIBRATION_BUFFERS = ("emotion_bias", "emotion_temperature", "sentiment_temperature")

    def calibrated(self, emotion_logits: torch.Tensor, sentiment_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits whose softmax gives the calibrated probabilities the library reports."""
        return (emotion_logits + self.emotion_bias) / self.emotion_temperature, sentiment_logits / self.sentiment_temperature

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return mean_pool(hidden, attention_mask)

    def classify(
        self,
        current: torch.Tensor,
        context: torch.Tensor,
        context_mask: torch.Tensor,
        speaker_relation: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Emotion and sentiment logits for each current turn given its context embeddings."""
        ctx = self.context(current, context, context_mask, speaker_relation)
        features = self.mix(torch.cat([current, ctx], dim=-1))
        return self.emotion_head(features), self.sentiment_head(features)


def mix_context(with_context: torch.Tensor, without_context: torch.Tensor, weight: float) -> torch.Tensor:
    """Log of ``weight`` x the probabilities read with the past turns + (1 - ``weight``) x those read
    without them (both given as logits: calibrated, as the library reports them, or raw, as the
    recipe scores its held-out folds).

    How far a head's context attention carries to conversations unlike its training dialogue is
    measured, not assumed: held out, the v2 head read MELD at macro-F1 0.246 with its past turns
    and 0.347 without (the context had learnt the other dialogue corpus's habits). Mixing the two
    readings bounds what the past turns can do to a turn that speaks clearly for itself; the
    weight of each weights entry is chosen on held-out dialogue (``context_weight`` in its meta).
    """
    if weight >= 1.0:
        return torch.log_softmax(with_context, -1)
    if weight <= 0.0:
        return torch.log_softmax(without_context, -1)
    mixed = weight * torch.softmax(with_context, -1) + (1.0 - weight) * torch.softmax(without_context, -1)
    return torch.log(mixed.clamp(min=1e-12))


def context_tensors(
    embeddings: torch.Tensor, speakers: list[str | None], window: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Context for every turn of one dialogue from the embeddings of its turns, in order.

    Returns ``context [T, window, D]`` (most recent first), ``mask [T, window]`` and
    ``speaker_relation [T, window]``.
    """
    turns = embeddings.shape[0]
    back = torch.arange(1, window + 1)
    earlier = torch.arange(turns).unsqueeze(1) - back.unsqueeze(0)  # [T, window]
    mask = earlier >= 0
    context = embeddings[earlier.clamp(min=0)] * mask.unsqueeze(-1).to(embeddings.dtype)
    relation = torch.full((turns, window), SPEAKER_UNKNOWN, dtype=torch.long)
    for t in range(turns):
        for k in range(min(window, t)):
            relation[t, k] = speaker_relation(speakers[t], speakers[t - k - 1])
    return context, mask, relation


def speaker_relation(current: str | None, earlier: str | None) -> int:
    if current is None or earlier is None:
        return SPEAKER_UNKNOWN
    return SPEAKER_SAME if current == earlier else SPEAKER_OTHER

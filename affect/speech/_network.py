"""The trained part of the speech model: a small head over frozen Whisper encoder frames.

Frames are projected, weighted by a learned attention over time (speech that carries emotion
counts more than a filler), and summarised by their attentive mean and standard deviation,
which capture level and variability of the voice; a two-layer classifier reads the summary.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from affect.labels import EMOTIONS


class AttentiveStatsPool(nn.Module):
    """Attention-weighted mean and standard deviation over valid frames."""

    def __init__(self, dim: int, attention_dim: int = 128) -> None:
        super().__init__()
        self.score = nn.Sequential(nn.Linear(dim, attention_dim), nn.Tanh(), nn.Linear(attention_dim, 1))

    def forward(self, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        logits = self.score(frames).squeeze(-1).masked_fill(~mask, float("-inf"))
        weights = torch.softmax(logits, dim=1).unsqueeze(-1)
        mean = (weights * frames).sum(1)
        var = (weights * (frames - mean.unsqueeze(1)) ** 2).sum(1)
        return torch.cat([mean, var.clamp(min=1e-6).sqrt()], dim=-1)


FEATURE_NORMS = ("layer", "utterance")


def utterance_normalise(frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Each feature standardised over the utterance's valid frames (zero mean, unit variance).

    Removes what is constant over an utterance (the channel, the room, much of the speaker's
    timbre) and keeps how the voice moves; padding frames stay zero.
    """
    weights = mask.unsqueeze(-1).to(frames.dtype)
    count = weights.sum(1, keepdim=True).clamp(min=1.0)
    mean = (frames * weights).sum(1, keepdim=True) / count
    var = (((frames - mean) * weights) ** 2).sum(1, keepdim=True) / count
    return (frames - mean) / var.clamp(min=1e-5).sqrt() * weights


class LayerMix(nn.Module):
    """``[B, T, layers * dim]`` (each frame: every encoder layer's output) -> ``[B, T, dim]``:
    each layer normalised on its own, then a learned softmax-weighted sum (SUPERB's recipe)."""

    def __init__(self, layers: int, dim: int) -> None:
        super().__init__()
        self.layers, self.dim = layers, dim
        self.weights = nn.Parameter(torch.zeros(layers))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        b, t, _ = frames.shape
        states = nn.functional.layer_norm(frames.view(b, t, self.layers, self.dim), (self.dim,))
        return (states * torch.softmax(self.weights, 0).view(1, 1, -1, 1)).sum(2)


class FrameStandardiser(nn.Module):
    """Each feature of a frame standardised by fixed statistics: those of the recordings the head
    was trained on, pooled (buffers, saved with the head). A head trained on corpus-standardised
    frames reads raw frames through it; ``affect.speech.adaptation`` maps a deployment's frames
    onto these statistics first.

    With ``channels``, ``mean`` and ``std`` are the wideband recordings' and a second pair holds the
    narrowband (telephone) recordings'; a narrowband clip is moved from its pair onto the first
    before this standardisation (``affect.speech.adaptation.ChannelReader``)."""

    mean: torch.Tensor  # buffers (register_buffer), declared for the type checker
    std: torch.Tensor
    narrowband_mean: torch.Tensor
    narrowband_std: torch.Tensor

    def __init__(self, dim: int, *, channels: bool = False) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))
        self.channels = channels
        if channels:
            self.register_buffer("narrowband_mean", torch.zeros(dim))
            self.register_buffer("narrowband_std", torch.ones(dim))

    def statistics(self, channel: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The training statistics a clip of ``channel`` is read against (one pair without ``channels``)."""
        if self.channels and channel == "narrowband":
            return self.narrowband_mean, self.narrowband_std
        return self.mean, self.std

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return (frames - self.mean) / self.std


class SpeechEmotionHead(nn.Module):
    """``[B, T, layers * in_dim]`` encoder frames + ``[B, T]`` validity mask -> ``[B, 7]`` emotion logits.

    ``feature_norm`` is ``"layer"`` (each frame normalised on its own) or ``"utterance"`` (each
    feature standardised over the utterance first, see :func:`utterance_normalise`). With
    ``layers`` > 1 each frame holds that many encoder layers' outputs, mixed by :class:`LayerMix`.
    With ``standardise``, frames first pass a :class:`FrameStandardiser` (``channel_statistics``:
    one that holds wideband and narrowband statistics).
    """

    def __init__(self, in_dim: int = 384, hidden: int = 256, dropout: float = 0.3, feature_norm: str = "layer",
                 layers: int = 1, standardise: bool = False, channel_statistics: bool = False) -> None:
        super().__init__()
        if feature_norm not in FEATURE_NORMS:
            raise ValueError(f"feature_norm must be one of {FEATURE_NORMS}, got {feature_norm!r}")
        self.in_dim, self.hidden, self.feature_norm, self.layers = in_dim, hidden, feature_norm, layers
        if channel_statistics and not standardise:
            raise ValueError("channel_statistics needs standardise")
        self.standardise = FrameStandardiser(in_dim * layers, channels=channel_statistics) if standardise else None
        self.mix = LayerMix(layers, in_dim) if layers > 1 else None
        self.norm = nn.LayerNorm(in_dim)
        self.project = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Dropout(dropout))
        self.pool = AttentiveStatsPool(hidden)
        self.classify = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(2 * hidden, hidden), nn.GELU(), nn.Dropout(dropout),
            nn.Linear(hidden, len(EMOTIONS)),
        )

    def summarise(self, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The pooled ``[B, 2 * hidden]`` summary the classifier reads (training mixes these)."""
        if self.standardise is not None:
            frames = self.standardise(frames)
        if self.mix is not None:
            frames = self.mix(frames)
        if self.feature_norm == "utterance":
            frames = utterance_normalise(frames, mask)
        return self.pool(self.project(self.norm(frames)), mask)

    def forward(self, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.classify(self.summarise(frames, mask))


class SpeechHeadEnsemble(nn.Module):
    """Several heads trained alike from different seeds over the same encoder frames; answers the
    log of their mean probabilities (so a softmax of its output is that mean).

    Heads are cheap beside the encoder they share. speech@6 is three seeds of its recipe averaged
    (their mistakes on held-out corpora differ; v3's seeds made the same ones and gained nothing:
    the speech model card). Exposes the members' common shape so callers need not know it is an ensemble.
    """

    def __init__(self, members: list[SpeechEmotionHead]) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one head")
        first = members[0]
        def shape(m: SpeechEmotionHead) -> tuple:
            return (m.in_dim, m.layers, m.hidden, m.feature_norm, m.standardise is not None,
                    m.standardise is not None and m.standardise.channels)

        if any(shape(m) != shape(first) for m in members):
            raise ValueError("every head of an ensemble must read the same frames with the same shape")
        self.members = nn.ModuleList(members)
        self.in_dim, self.hidden, self.feature_norm, self.layers = first.in_dim, first.hidden, first.feature_norm, first.layers

    @property
    def standardise(self) -> FrameStandardiser | None:
        """The first member's (every member is trained on, and holds, the same statistics)."""
        return self.members[0].standardise  # type: ignore[return-value]  # a ModuleList's items are typed Module

    def forward(self, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        logp = torch.stack([torch.log_softmax(m(frames, mask), dim=-1) for m in self.members])
        return torch.logsumexp(logp, dim=0) - math.log(len(self.members))


FRAME_STRIDE = 2  # the head reads 40 ms frames: mean of two 20 ms encoder outputs


def downsample(frames: torch.Tensor, stride: int = FRAME_STRIDE) -> torch.Tensor:
    """``[T, D]`` -> ``[ceil(T / stride), D]`` by averaging neighbours (the last frame repeated to fill)."""
    if stride == 1:
        return frames.float()
    extra = -frames.shape[0] % stride
    if extra:
        frames = torch.cat([frames, frames[-1:].expand(extra, -1)])
    return frames.float().reshape(-1, stride, frames.shape[1]).mean(1)


def pad_frames(items: list[torch.Tensor], stride: int = FRAME_STRIDE) -> tuple[torch.Tensor, torch.Tensor]:
    """Downsample variable-length ``[T_i, D]`` frames and stack them into ``[B, T, D]`` with a ``[B, T]`` mask."""
    items = [downsample(x, stride) for x in items]
    longest = max(int(x.shape[0]) for x in items)
    frames = torch.zeros(len(items), longest, items[0].shape[1])
    mask = torch.zeros(len(items), longest, dtype=torch.bool)
    for i, x in enumerate(items):
        frames[i, : x.shape[0]] = x.float()
        mask[i, : x.shape[0]] = True
    return frames, mask

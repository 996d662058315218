"""Adapting the speech head to a deployment's recordings: running statistics of the encoder frames.

Emotion in the voice is read against what is usual where the voice comes from: the microphones,
the line, the room and the population of callers. A head trained on corpus-standardised frames
(each training corpus standardised by its own statistics; speech model card, "corpus
statistics") sees each corpus on one footing; at a deployment, the same is done with the
statistics of the speech this encoder has heard so far, over all its callers, mapped onto the
training statistics the head holds. Until enough speech has been heard, the estimate is shrunk
towards those training statistics with the weight of ``prior_frames`` frames (50 a second), and
only the last ``memory_frames`` frames count (older speech fades), so a long-running server
follows changes in its traffic.

Why over all callers and not per caller: per-speaker statistics erase the emotion of a speaker
who keeps one emotion for the whole call (measured: speech model card, round 2).

Channels: weights with channel statistics (speech@5) hold one pair of training statistics for
wideband and one for narrowband (telephone) recordings; :class:`ChannelReader` tells each clip's
channel (``affect.speech._channel``), moves a narrowband clip from its pair onto the head's, and,
adapting, keeps one running estimate per channel (a line and a microphone are two populations).

What is kept: per feature, a running sum and sum of squares over the frames heard (two vectors);
no audio, no per-turn record. Early on, with few callers, those vectors describe those callers'
voices: they stay in memory and are never written anywhere by the library.
"""

from __future__ import annotations

from collections.abc import Sequence
from threading import Lock

import torch

from affect.speech._channel import CHANNELS, Channel
from affect.speech._network import FrameStandardiser

DEFAULT_PRIOR_FRAMES = 3000.0  # one minute of speech (the weight measured leave-one-corpus-out)
DEFAULT_MEMORY_FRAMES = 180_000.0  # an hour of speech


def shrunk_statistics(mean: torch.Tensor, std: torch.Tensor, prior_mean: torch.Tensor, prior_std: torch.Tensor,
                      weight: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation of a mixture: ``weight`` of the frames heard (``mean``, ``std``)
    and the rest of the prior's. A deployment that has heard ``n`` frames against a prior of ``k``
    weighs what it heard ``n / (n + k)``; the recipe trains at random weights."""
    mixed = weight * mean + (1 - weight) * prior_mean
    second = weight * (std**2 + mean**2) + (1 - weight) * (prior_std**2 + prior_mean**2)
    return mixed, (second - mixed**2).clamp(min=1e-8).sqrt()


def move_statistics(frames: list[torch.Tensor], source: tuple[torch.Tensor, torch.Tensor],
                    target: tuple[torch.Tensor, torch.Tensor]) -> list[torch.Tensor]:
    """Frames moved from ``source`` (mean, std) onto ``target``: standardised by the target's
    statistics afterwards, they read as if standardised by the source's."""
    (s_mean, s_std), (t_mean, t_std) = source, target
    scale = (t_std.double() / s_std.double()).float()
    shift = (t_mean.double() - s_mean.double() * t_std.double() / s_std.double()).float()
    return [f.float() * scale + shift for f in frames]


class DeploymentStatistics:
    """Running per-feature mean and variance of the frames heard, and the map onto the head's statistics.

    >>> stats = DeploymentStatistics(head_mean, head_std)
    >>> frames = stats.observe_and_map(frames)  # a list of [T, D] tensors, the batch's segments
    """

    def __init__(self, mean: torch.Tensor, std: torch.Tensor, *, prior_frames: float = DEFAULT_PRIOR_FRAMES,
                 memory_frames: float = DEFAULT_MEMORY_FRAMES) -> None:
        if not prior_frames > 0 or not memory_frames > 0:
            raise ValueError("prior_frames and memory_frames must be positive")
        self.prior_mean = mean.detach().double().clone()
        self.prior_std = std.detach().double().clone()
        self.prior_frames, self.memory_frames = float(prior_frames), float(memory_frames)
        self._sum = torch.zeros_like(self.prior_mean)
        self._squares = torch.zeros_like(self.prior_mean)
        self._frames = 0.0
        self._lock = Lock()

    @property
    def frames_heard(self) -> float:
        """Frames that count now (at most ``memory_frames``)."""
        return self._frames

    def observe(self, frames: list[torch.Tensor]) -> None:
        """Add the frames of one batch (all segments) to the running statistics."""
        if not frames:
            return
        total, squares, count = torch.zeros_like(self._sum), torch.zeros_like(self._sum), 0
        for f in frames:  # one segment (at most 12 s) at a time; float32 within it, float64 across the traffic
            x = f.float()
            total += x.sum(0).double()
            squares += (x * x).sum(0).double()
            count += x.shape[0]
        with self._lock:
            self._sum += total
            self._squares += squares
            self._frames += count
            if self._frames > self.memory_frames:  # forget the oldest speech, proportionally
                keep = self.memory_frames / self._frames
                self._sum *= keep
                self._squares *= keep
                self._frames = self.memory_frames

    def mean_std(self) -> tuple[torch.Tensor, torch.Tensor]:
        """This deployment's estimate: the frames heard, shrunk towards the head's statistics."""
        with self._lock:
            total, squares, n = self._sum.clone(), self._squares.clone(), self._frames
        if n == 0:
            return self.prior_mean, self.prior_std
        heard_mean = total / n
        heard_std = (squares / n - heard_mean**2).clamp(min=0).sqrt()
        return shrunk_statistics(heard_mean, heard_std, self.prior_mean, self.prior_std, n / (n + self.prior_frames))

    def map(self, frames: list[torch.Tensor]) -> list[torch.Tensor]:
        """Frames moved from this deployment's statistics onto the head's: the head's own
        standardisation then sees them as standardised by this deployment."""
        return move_statistics(frames, self.mean_std(), (self.prior_mean, self.prior_std))

    def observe_and_map(self, frames: list[torch.Tensor]) -> list[torch.Tensor]:
        """:meth:`observe` then :meth:`map` (each frame counts in the statistics it is read with)."""
        self.observe(frames)
        return self.map(frames)


class ChannelReader:
    """Maps each clip's frames onto the statistics the head standardises by: the head's training
    statistics for the clip's channel, or, with ``adapt``, this deployment's running estimate for
    that channel. The library's encoder and the recipe's evaluation both read through it.

    >>> reader = ChannelReader(head.standardise, adapt=False)
    >>> frames = reader.map(frames, ["wideband", "narrowband"])
    """

    def __init__(self, standardiser: FrameStandardiser, *, adapt: bool = False, **adapt_options: float) -> None:
        self.standardiser = standardiser
        self.head_statistics = {ch: standardiser.statistics(ch) for ch in CHANNELS}
        self.adaptation: dict[Channel, DeploymentStatistics] | None = None
        if adapt:  # weights without channel statistics keep one estimate over all the traffic (speech@4)
            if standardiser.channels:
                self.adaptation = {ch: DeploymentStatistics(mean, std, **adapt_options)
                                   for ch, (mean, std) in self.head_statistics.items()}
            else:
                shared = DeploymentStatistics(standardiser.mean, standardiser.std, **adapt_options)
                self.adaptation = {ch: shared for ch in CHANNELS}

    @property
    def frames_heard(self) -> float:
        """Frames in this deployment's estimates (0 when not adapting)."""
        if self.adaptation is None:
            return 0.0
        return sum(stats.frames_heard for stats in {id(s): s for s in self.adaptation.values()}.values())

    def map(self, frames: Sequence[torch.Tensor], channels: Sequence[Channel]) -> list[torch.Tensor]:
        """``frames[i]`` (``[T, D]``) of a clip heard through ``channels[i]``; adapting, every frame
        also counts in its channel's running statistics."""
        if len(frames) != len(channels):
            raise ValueError("one channel per clip")
        out = list(frames)  # a clip read against the head's own statistics passes unchanged
        for channel in CHANNELS:
            idx = [i for i, c in enumerate(channels) if c == channel]
            if not idx:
                continue
            group = [out[i] for i in idx]
            if self.adaptation is not None:
                group = self.adaptation[channel].observe_and_map(group)
            if self.standardiser.channels and channel != "wideband":
                group = move_statistics(group, self.head_statistics[channel], self.head_statistics["wideband"])
            for i, g in zip(idx, group):
                out[i] = g
        return out

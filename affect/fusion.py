"""Late fusion: one answer per turn from whichever modalities came.

With one modality present the answer is exactly that modality's calibrated reading, so a
missing modality never changes anything. With two or three, a small trained head combines
them as a weighted product of experts: for each subset of modalities it has learned one
exponent per modality (how much to trust it beside the others) and one bias per emotion
(undoing the class priors each encoder learned from its own data set)::

    fused emotion logits = sum over present m of  a[S, m] * log p_m  +  b[S]

With a = 1 and b = -sum of log(class prior of each encoder's data) this is the Bayes rule for
modalities that are independent given the emotion; training starts there and moves away only
as far as the validation combinations warrant.

Each modality's share in the answer is its exponent over the sum of the present exponents;
sentiment is the share-weighted average of the modalities' sentiment, and valence and arousal
come from the fused emotions through the circumplex mapping, as for every encoder.
The head is trained by ``recipes/fusion``; see ``affect/models/fusion/MODEL_CARD.md``.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import torch
from torch import nn

from affect._weights import Weights, WeightsEnum
from affect.labels import EMOTIONS
from affect.results import MODALITIES, AffectEstimate, Modality, ModalityResult

# Subsets of two or more modalities, in a fixed order (modalities in MODALITIES order).
MULTI_SUBSETS: tuple[tuple[Modality, ...], ...] = tuple(
    s for r in range(2, len(MODALITIES) + 1) for s in itertools.combinations(MODALITIES, r))


def subset_name(subset: tuple[Modality, ...]) -> str:
    return "+".join(m.value for m in subset)


class LateFusionHead(nn.Module):
    """Per-subset exponents and biases over the present modalities' log-probabilities."""

    def __init__(self) -> None:
        super().__init__()
        self.exponents = nn.Parameter(torch.ones(len(MULTI_SUBSETS), len(MODALITIES)))
        self.bias = nn.Parameter(torch.zeros(len(MULTI_SUBSETS), len(EMOTIONS)))

    def forward(self, log_probs: torch.Tensor, subset_index: torch.Tensor) -> torch.Tensor:
        """``log_probs [B, 3, 7]`` (absent modalities ignored), ``subset_index [B]`` -> logits ``[B, 7]``."""
        mask = torch.tensor([[m in s for m in MODALITIES] for s in MULTI_SUBSETS], dtype=log_probs.dtype)[subset_index]
        weights = self.exponents.clamp(min=0.0)[subset_index] * mask
        return (weights.unsqueeze(-1) * log_probs).sum(1) + self.bias[subset_index]

    def bayes_init(self, log_priors: torch.Tensor) -> None:
        """Start from the Bayes rule: ``log_priors [3, 7]`` is each encoder's training class prior."""
        with torch.no_grad():
            self.exponents.fill_(1.0)
            for i, subset in enumerate(MULTI_SUBSETS):
                b = -sum((log_priors[MODALITIES.index(m)] for m in subset), torch.zeros_like(log_priors[0]))
                self.bias[i] = b - b.mean()

    def shares(self, subset_index: int) -> list[float]:
        subset = MULTI_SUBSETS[subset_index]
        a = self.exponents.detach().clamp(min=0.0)[subset_index]
        present = [a[i].item() if m in subset else 0.0 for i, m in enumerate(MODALITIES)]
        total = sum(present) or 1.0
        return [v / total for v in present]


# What every version of the head shares; each entry adds its version and test figures.
_LATE_FUSION_META = {
    "name": "late-fusion",
    "modality": "fusion",
    "categories": [e.value for e in EMOTIONS],
    "num_params": len(MULTI_SUBSETS) * (len(MODALITIES) + len(EMOTIONS)),
    "recipe": "recipes/fusion",
    "trained_on": "label-matched combinations of the encoders' validation outputs: FER+ Train held-back faces, "
                  "RAVDESS actors 21-22, MELD dev",
    "licence": "research use only (FER-2013 research use only, RAVDESS CC BY-NC-SA 4.0, MELD GPL-3.0)",
    "card": "affect/models/fusion/MODEL_CARD.md",
}


class FusionWeights(WeightsEnum):
    LATE_FUSION_V3 = Weights(
        file="fusion/late_fusion_v3.safetensors",
        sha256="501fb5557e9ad827921213e2859d43f617883ca464972038996e9df2b251d4d0",
        meta={
            **_LATE_FUSION_META,
            "version": "3",  # refitted for face-vgg-fer@3
            # label-matched test combinations, `python -m benchmarks.accuracy fusion --full-data ...`
            "metrics": {
                "fusion_accuracy_face": 0.654,
                "fusion_accuracy_speech": 0.667,
                "fusion_accuracy_text": 0.443,
                "fusion_accuracy_face+speech": 0.826,
                "fusion_accuracy_face+text": 0.75,
                "fusion_accuracy_speech+text": 0.719,
                "fusion_accuracy_face+speech+text": 0.859,
                "ece_before_face": 0.023,
                "ece_after_face": 0.012,
                "ece_before_speech": 0.112,
                "ece_after_speech": 0.097,
                "ece_before_text": 0.042,
                "ece_after_text": 0.023,
            },
        },
    )
    LATE_FUSION_V4 = Weights(
        file="fusion/late_fusion_v4.safetensors",
        sha256="40ca7d33c26c6268f3683a3c9fc2cfd60ba4754fcd42a3ea681950a872097c8f",
        meta={
            **_LATE_FUSION_META,
            "version": "4",  # refitted for text-minilm-multicorpus@2 and speech-whisper-tiny-multicorpus@2
            # label-matched test combinations, `python -m benchmarks.accuracy fusion --full-data ...`
            "metrics": {
                "fusion_accuracy_face": 0.654,
                "fusion_accuracy_speech": 0.658,
                "fusion_accuracy_text": 0.421,
                "fusion_accuracy_face+speech": 0.838,
                "fusion_accuracy_face+text": 0.744,
                "fusion_accuracy_speech+text": 0.713,
                "fusion_accuracy_face+speech+text": 0.886,
                "ece_before_face": 0.023,
                "ece_after_face": 0.012,
                "ece_before_speech": 0.185,
                "ece_after_speech": 0.123,
                "ece_before_text": 0.035,
                "ece_after_text": 0.07,
            },
        },
    )
    LATE_FUSION_V5 = Weights(
        file="fusion/late_fusion_v5.safetensors",
        sha256="fdcc179a88485868aabdf93655ff9ff94e1d3fe4bc0abb33150e83231f37a200",
        meta={
            **_LATE_FUSION_META,
            "version": "5",  # refitted for speech-whisper-tiny-layers-multicorpus@3
            # label-matched test combinations, `python -m benchmarks.accuracy fusion --full-data ...`
            "metrics": {
                "fusion_accuracy_face": 0.654,
                "fusion_accuracy_speech": 0.66,
                "fusion_accuracy_text": 0.421,
                "fusion_accuracy_face+speech": 0.861,
                "fusion_accuracy_face+text": 0.743,
                "fusion_accuracy_speech+text": 0.757,
                "fusion_accuracy_face+speech+text": 0.882,
                "ece_before_face": 0.023,
                "ece_after_face": 0.012,
                "ece_before_speech": 0.16,
                "ece_after_speech": 0.163,
                "ece_before_text": 0.035,
                "ece_after_text": 0.07,
            },
        },
    )
    LATE_FUSION_V6 = Weights(
        file="fusion/late_fusion_v6.safetensors",
        sha256="b7f2fa04c4aa8543431e7696991b9419ae32aa0bbd29f7be17a887c598d00700",
        meta={
            **_LATE_FUSION_META,
            "version": "6",  # refitted for speech-whisper-tiny-layers-multicorpus@4
            # label-matched test combinations, `python -m benchmarks.accuracy fusion --full-data ...`
            "metrics": {
                "fusion_accuracy_face": 0.654,
                "fusion_accuracy_speech": 0.758,
                "fusion_accuracy_text": 0.421,
                "fusion_accuracy_face+speech": 0.886,
                "fusion_accuracy_face+text": 0.742,
                "fusion_accuracy_speech+text": 0.794,
                "fusion_accuracy_face+speech+text": 0.906,
                "ece_before_face": 0.023,
                "ece_after_face": 0.012,
                "ece_before_speech": 0.144,
                "ece_after_speech": 0.127,
                "ece_before_text": 0.035,
                "ece_after_text": 0.07,
            },
        },
    )
    LATE_FUSION_V7 = Weights(
        file="fusion/late_fusion_v7.safetensors",
        sha256="50862d187b58712241fc0ecb3485472f43347d57b68da266ee0f16c3c2f884ac",
        meta={
            **_LATE_FUSION_META,
            "version": "7",  # refitted for text-minilm-multicorpus@5 (its context weight 0.5)
            # label-matched test combinations, `python -m benchmarks.accuracy fusion --full-data ...`
            "metrics": {
                "fusion_accuracy_face": 0.654,
                "fusion_accuracy_speech": 0.758,
                "fusion_accuracy_text": 0.433,
                "fusion_accuracy_face+speech": 0.886,
                "fusion_accuracy_face+text": 0.75,
                "fusion_accuracy_speech+text": 0.791,
                "fusion_accuracy_face+speech+text": 0.904,
                "ece_before_face": 0.023,
                "ece_after_face": 0.012,
                "ece_before_speech": 0.144,
                "ece_after_speech": 0.127,
                "ece_before_text": 0.029,
                "ece_after_text": 0.029,
            },
        },
    )
    LATE_FUSION_V8 = Weights(
        file="fusion/late_fusion_v8.safetensors",
        sha256="54aa8858d84b05ff30f30968311c96469559a7f4790d9cd35f37cd94c8fbb884",
        meta={
            **_LATE_FUSION_META,
            "version": "8",  # refitted for speech-whisper-tiny-layers-multicorpus@5 (statistics per channel)
            # label-matched test combinations, `python -m benchmarks.accuracy fusion --full-data ...`
            "metrics": {
                "fusion_accuracy_face": 0.654,
                "fusion_accuracy_speech": 0.78,
                "fusion_accuracy_text": 0.433,
                "fusion_accuracy_face+speech": 0.883,
                "fusion_accuracy_face+text": 0.75,
                "fusion_accuracy_speech+text": 0.793,
                "fusion_accuracy_face+speech+text": 0.9,
                "ece_before_face": 0.023,
                "ece_after_face": 0.012,
                "ece_before_speech": 0.128,
                "ece_after_speech": 0.15,
                "ece_before_text": 0.029,
                "ece_after_text": 0.029,
            },
        },
    )
    LATE_FUSION_V9 = Weights(
        file="fusion/late_fusion_v9.safetensors",
        sha256="3f2ed34b345a3cf3c8731a4ceddcfee551c7f606592ad9329485ef8b28b8d89f",
        meta={
            **_LATE_FUSION_META,
            "version": "9",  # refitted for speech-whisper-tiny-layers-multicorpus@6 (three heads with label sets; L2 0.001)
            # label-matched test combinations, `python -m benchmarks.accuracy fusion --full-data ...`
            "metrics": {
                "fusion_accuracy_face": 0.654,
                "fusion_accuracy_speech": 0.762,
                "fusion_accuracy_text": 0.433,
                "fusion_accuracy_face+speech": 0.875,
                "fusion_accuracy_face+text": 0.749,
                "fusion_accuracy_speech+text": 0.792,
                "fusion_accuracy_face+speech+text": 0.894,
                "ece_before_face": 0.023,
                "ece_after_face": 0.012,
                "ece_before_speech": 0.1,
                "ece_after_speech": 0.13,
                "ece_before_text": 0.029,
                "ece_after_text": 0.029,
            },
        },
    )
    LATE_FUSION_V10 = Weights(
        file="fusion/late_fusion_v10.safetensors",
        sha256="527648028f891c9aa83f70c3ef752fce889a8a5965bf293660196481b32851df",
        meta={
            **_LATE_FUSION_META,
            "version": "10",  # refitted for speech-whisper-tiny-layers-multicorpus@7 (a fifth of the loss on the full softmax; L2 0.001)
            # label-matched test combinations, `python -m benchmarks.accuracy fusion --full-data ...`
            "metrics": {
                "fusion_accuracy_face": 0.654,
                "fusion_accuracy_speech": 0.772,
                "fusion_accuracy_text": 0.433,
                "fusion_accuracy_face+speech": 0.877,
                "fusion_accuracy_face+text": 0.749,
                "fusion_accuracy_speech+text": 0.792,
                "fusion_accuracy_face+speech+text": 0.894,
                "ece_before_face": 0.023,
                "ece_after_face": 0.012,
                "ece_before_speech": 0.148,
                "ece_after_speech": 0.146,
                "ece_before_text": 0.029,
                "ece_after_text": 0.029,
            },
        },
    )
    LATE_FUSION_V11 = Weights(
        file="fusion/late_fusion_v11.safetensors",
        sha256="58ebe2a8cae91025975fcdff90eddd0a3d887150635e4c15dfb647ce2348ac39",
        meta={
            **_LATE_FUSION_META,
            "version": "11",  # refitted for speech-whisper-tiny-layers-multicorpus@8 (the first three encoder layers; L2 0.003)
            # label-matched test combinations, `python -m benchmarks.accuracy fusion --full-data ...`
            "metrics": {
                "fusion_accuracy_face": 0.654,
                "fusion_accuracy_speech": 0.747,
                "fusion_accuracy_text": 0.433,
                "fusion_accuracy_face+speech": 0.887,
                "fusion_accuracy_face+text": 0.75,
                "fusion_accuracy_speech+text": 0.801,
                "fusion_accuracy_face+speech+text": 0.9,
                "ece_before_face": 0.023,
                "ece_after_face": 0.012,
                "ece_before_speech": 0.117,
                "ece_after_speech": 0.103,
                "ece_before_text": 0.029,
                "ece_after_text": 0.029,
            },
        },
    )
    LATE_FUSION_V12 = Weights(
        file="fusion/late_fusion_v12.safetensors",
        sha256="fa75a59f2fa33da27e9ab7c2e216378ea6b3dfec8e6730113ddf90d16a382dbe",
        meta={
            **_LATE_FUSION_META,
            "version": "12",  # refitted for speech-whisper-tiny-layers-multicorpus@9 (the first two encoder layers, five heads; L2 0.003)
            # label-matched test combinations, `python -m benchmarks.accuracy fusion --full-data ...`
            "metrics": {
                "fusion_accuracy_face": 0.654,
                "fusion_accuracy_speech": 0.737,
                "fusion_accuracy_text": 0.433,
                "fusion_accuracy_face+speech": 0.875,
                "fusion_accuracy_face+text": 0.75,
                "fusion_accuracy_speech+text": 0.776,
                "fusion_accuracy_face+speech+text": 0.896,
                "ece_before_face": 0.023,
                "ece_after_face": 0.012,
                "ece_before_speech": 0.12,
                "ece_after_speech": 0.117,
                "ece_before_text": 0.029,
                "ece_after_text": 0.029,
            },
        },
    )
    LATE_FUSION_V13 = Weights(
        file="fusion/late_fusion_v13.safetensors",
        sha256="279fbdf13a55d218fe5a31970ebfac2a353f744bcb210fd7ce122beb38d8079b",
        meta={
            **_LATE_FUSION_META,
            "version": "13",  # refitted for speech-whisper-tiny-layers-multicorpus@10 (a fourth corpus, EMOVO; L2 0.003)
            # label-matched test combinations, `python -m benchmarks.accuracy fusion --full-data ...`
            "metrics": {
                "fusion_accuracy_face": 0.654,
                "fusion_accuracy_speech": 0.741,
                "fusion_accuracy_text": 0.433,
                "fusion_accuracy_face+speech": 0.875,
                "fusion_accuracy_face+text": 0.75,
                "fusion_accuracy_speech+text": 0.78,
                "fusion_accuracy_face+speech+text": 0.893,
                "ece_before_face": 0.023,
                "ece_after_face": 0.012,
                "ece_before_speech": 0.144,
                "ece_after_speech": 0.156,
                "ece_before_text": 0.029,
                "ece_after_text": 0.029,
            },
        },
    )
    LATE_FUSION_V14 = Weights(
        file="fusion/late_fusion_v14.safetensors",
        sha256="fcf9f93497dd82ebfa2099775fc0bd970b691b908f3af8df77e71170316e41a9",
        meta={
            **_LATE_FUSION_META,
            "version": "14",  # refitted for speech-whisper-tiny-layers-multicorpus@11 (the speaker adversary; L2 0.003)
            # label-matched test combinations, `python -m benchmarks.accuracy fusion --full-data ...`
            "metrics": {
                "fusion_accuracy_face": 0.654,
                "fusion_accuracy_speech": 0.675,
                "fusion_accuracy_text": 0.433,
                "fusion_accuracy_face+speech": 0.863,
                "fusion_accuracy_face+text": 0.75,
                "fusion_accuracy_speech+text": 0.756,
                "fusion_accuracy_face+speech+text": 0.879,
                "ece_before_face": 0.023,
                "ece_after_face": 0.012,
                "ece_before_speech": 0.138,
                "ece_after_speech": 0.076,
                "ece_before_text": 0.029,
                "ece_after_text": 0.029,
            },
        },
    )
    DEFAULT = LATE_FUSION_V14


@lru_cache(maxsize=4)
def load_head(weights: FusionWeights = FusionWeights.DEFAULT) -> LateFusionHead:
    from safetensors.torch import load_file

    head = LateFusionHead()
    head.load_state_dict(load_file(str(weights.value.verified_path())))
    head.eval()
    return head


@dataclass(frozen=True)
class Fused:
    """What ``fuse`` gives: the fused estimate, each modality's share of it, and the fusion's id."""

    estimate: AffectEstimate
    shares: dict[Modality, float]
    fusion: str  # the weights id of the fusion head (late-fusion@N)


def fuse(results: Mapping[Modality, ModalityResult], head: LateFusionHead | None = None) -> Fused:
    """The fused estimate of a turn's readings, each modality's share, and the fusion's id.

    Only readings are fused: a turn in which no modality gave one has no fused answer (the
    caller reports it as such, ``TurnResult.fused is None``), never a made-up neutral."""
    if not results:
        raise ValueError("nothing to fuse: no modality gave a result")
    fusion_id = FusionWeights.DEFAULT.value.id
    if len(results) == 1:
        (modality, only), = results.items()
        fields = {k: getattr(only, k) for k in ("emotions", "sentiments", "valence", "arousal", "confidence")}
        return Fused(AffectEstimate(**fields), {modality: 1.0}, fusion_id)
    head = head or load_head()
    subset = tuple(m for m in MODALITIES if m in results)
    index = MULTI_SUBSETS.index(subset)
    log_probs = torch.zeros(1, len(MODALITIES), len(EMOTIONS))
    for i, m in enumerate(MODALITIES):
        if m in results:
            log_probs[0, i] = torch.tensor(results[m].emotion_vector()).clamp(min=1e-8).log()
    with torch.no_grad():
        emotions = torch.softmax(head(log_probs, torch.tensor([index])), -1)[0].tolist()
    share_list = head.shares(index)
    shares = {m: share_list[i] for i, m in enumerate(MODALITIES) if m in results}
    sentiment = [sum(shares[m] * r.sentiment_vector()[k] for m, r in results.items()) for k in range(3)]
    return Fused(AffectEstimate(**AffectEstimate.fields_from_probs(emotions, sentiment)), shares, fusion_id)

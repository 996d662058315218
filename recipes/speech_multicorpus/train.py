"""Train the speech emotion head on several corpora at once; leave-one-corpus-out comparisons.

    python -m recipes.speech_multicorpus.train loco  [--backbone whisper-base] [--feature-norm layer]
    python -m recipes.speech_multicorpus.train final [--out affect/models/speech/...safetensors] [--resume]

Reads the cached encoder outputs of ``features.py``. Training draws clips balanced over corpora
and, within a corpus, over its classes (so that RAVDESS's 1,440 clips do not drown URDU's 400,
and no class is learnt as "the common one"), with random crops and frame masking on top of the
cached degradations.

``loco``: for each corpus in turn, a head is trained on the *train* speakers of the other two,
its epoch chosen on *their* validation speakers, and it is scored on every clean clip of the
corpus left out (which it never heard): UAR over the labels that corpus has and the share of
the most frequent prediction. Results go to ``loco-<backbone>-<norm>.json`` in the work folder,
so ``benchmarks.accuracy speech --cross-corpus`` can reuse them.

``final``: the head trained on the train speakers of all corpora, its epoch chosen on the
validation speakers of all (clean and telephone copies), a temperature fitted there; the test
speakers (RAVDESS actors 23-24, EmoDB 03 and 08, URDU's test speakers) are never read.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from affect.labels import EMOTIONS
from affect.speech._backbone import backbone_spec, stopped_after
from affect.speech._network import SpeechEmotionHead, SpeechHeadEnsemble, pad_frames
from affect.speech._weights_io import SpeechHead, parameter_count, save_speech_weights
from affect.speech._channel import NARROWBAND_SHARE
from affect.speech.adaptation import ChannelReader, shrunk_statistics
from evaluation.answer_shares import answer_counts, max_predicted_share, speaker_max_shares
from evaluation.calibration import expected_calibration_error
from evaluation.recall import uar
from recipes._variants import with_variant
from recipes.speech_multicorpus.features import DEFAULT_CACHE, cache_path, variant_and_tag
from recipes.speech_ravdess.train import fit_temperature, jitter, predict  # one copy of the shared pieces

log = logging.getLogger("recipes.speech_multicorpus")
HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DEFAULT_OUT = ROOT / "affect" / "models" / "speech" / "whisper_tiny_layers_multicorpus_v12.safetensors"


@dataclass
class Items:
    """Cached encoder outputs with, per item, its label, corpus, speaker split, variant and channel."""

    feats: list[torch.Tensor]
    labels: np.ndarray
    corpora: np.ndarray
    splits: np.ndarray
    variants: np.ndarray
    clips: np.ndarray  # index of the clip within its corpus
    channels: np.ndarray  # "wideband" or "narrowband", told from the copy's audio as the library tells it
    speakers: np.ndarray  # "<corpus>:<speaker>"

    def with_feats(self, feats: list[torch.Tensor]) -> "Items":
        """The same items with other frames (standardised, adapted)."""
        return Items(feats, self.labels, self.corpora, self.splits, self.variants, self.clips, self.channels,
                     self.speakers)

    def select(self, keep: np.ndarray) -> "Items":
        idx = np.flatnonzero(keep)
        return Items([self.feats[i] for i in idx], self.labels[idx], self.corpora[idx], self.splits[idx],
                     self.variants[idx], self.clips[idx], self.channels[idx], self.speakers[idx])

    def __len__(self) -> int:
        return len(self.feats)


def load_items(cache: Path, backbone: str, corpora: tuple[str, ...], copies: int, tag: str = "") -> Items:
    feats, labels, corpus_ids, splits, variants, clips, channels, speakers = [], [], [], [], [], [], [], []
    for corpus in corpora:
        data = torch.load(cache_path(cache, backbone, corpus, copies, tag))
        for f, item in zip(data["feats"], data["items"]):
            c = item["clip"]
            feats.append(f)
            labels.append(data["labels"][c])
            corpus_ids.append(corpus)
            splits.append(data["splits"][c])
            variants.append(item["variant"])
            clips.append(c)
            speakers.append(f"{corpus}:{data['speakers'][c]}")
            share = item.get("upper_band_share")  # caches from before channels: the telephone copy is narrowband
            narrow = item["variant"] == 1 if share is None else share < NARROWBAND_SHARE
            channels.append("narrowband" if narrow else "wideband")
    items = Items(feats, np.array(labels), np.array(corpus_ids), np.array(splits), np.array(variants), np.array(clips),
                  np.array(channels), np.array(speakers))
    for corpus in corpora:
        shares = [f"copy {v}: {np.mean(items.channels[(items.corpora == corpus) & (items.variants == v)] == 'narrowband'):.2f}"
                  for v in range(copies)]
        log.info("%s: share read as narrowband by %s", corpus, ", ".join(shares))
    return items


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


BALANCES = ("corpus_class", "corpus_class_channel")


def sampling_weights(items: Items, balance: str) -> np.ndarray:
    """Per-item draw probabilities: corpora equal, and classes equal within each corpus. With
    ``corpus_class_channel`` each class's draws are also half wideband, half narrowband (where it has
    both), so that within a corpus the channel says nothing of the label: URDU's sad talk-show clips
    are band-limited far more often than its other classes, and a head drawing them as they come
    learns the band limit as sadness (the model card's round 14)."""
    if balance not in BALANCES:
        raise ValueError(f"unknown balance {balance!r}; one of {BALANCES}")
    weights = np.zeros(len(items))
    corpora = np.unique(items.corpora)
    for corpus in corpora:
        in_corpus = items.corpora == corpus
        classes = np.unique(items.labels[in_corpus])
        for c in classes:
            cell = in_corpus & (items.labels == c)
            parts = [cell & (items.channels == ch) for ch in ("wideband", "narrowband")] if balance == "corpus_class_channel" else [cell]
            parts = [part for part in parts if part.any()]
            for part in parts:
                weights[part] = 1.0 / (len(corpora) * len(classes) * len(parts) * part.sum())
    return weights / weights.sum()


def validation_score(net: SpeechHead, val: Items, answer_among: torch.Tensor | None = None) -> tuple[float, dict[str, float]]:
    """Mean over corpora and over clean/telephone copies of the validation UAR; with
    ``answer_among`` (``label_set_mask(val)``), each clip answers among its corpus's labels (as a
    head trained on label sets learnt them)."""
    logits = predict(net, val.feats)
    if answer_among is not None:
        logits = logits.masked_fill(~answer_among, float("-inf"))
    pred = logits.argmax(-1).numpy()
    parts = {}
    for corpus in np.unique(val.corpora):
        for variant, name in ((0, "clean"), (1, "telephone")):
            keep = (val.corpora == corpus) & (val.variants == variant)
            if keep.any():
                parts[f"{corpus}_{name}"] = uar(val.labels[keep], pred[keep])
    return float(np.mean(list(parts.values()))), parts


def corpus_label_sets(items: Items) -> dict[str, torch.Tensor]:
    """Each corpus's labels, as a mask over the seven emotions (URDU has four, EmoDB no surprise)."""
    out = {}
    for corpus in np.unique(items.corpora):
        present = torch.zeros(len(EMOTIONS), dtype=torch.bool)
        present[np.unique(items.labels[items.corpora == corpus])] = True
        out[str(corpus)] = present
    return out


def confounded_labels(items: Items, threshold: float) -> list[tuple[str, int]]:
    """``(corpus, label)`` pairs whose recordings differ from the rest of their corpus: the share of
    the label's clean train clips that the library's channel rule calls narrowband is more than
    ``threshold`` away from the median of that share over the corpus's labels (the median, so that
    one odd label does not make the others look odd). A head taught such a label learns the
    recording as the emotion (URDU's sad talk-show clips are band-limited far more often than its
    other classes), so the recipe leaves it out (``confounded_labels`` in the config). Reads only the
    training clips' audio and labels, never a held-out score."""
    out = []
    narrow = items.channels == "narrowband"
    for corpus in np.unique(items.corpora):
        clean = (items.corpora == corpus) & (items.variants == 0) & (items.splits == "train")
        labels = np.unique(items.labels[clean])
        shares = {int(label): float(narrow[clean & (items.labels == label)].mean()) for label in labels}
        middle = float(np.median(list(shares.values())))
        log.info("%s: clean train clips read as narrowband, by label: %s (median %.2f)", corpus,
                 ", ".join(f"{EMOTIONS[label].value} {share:.2f}" for label, share in shares.items()), middle)
        out += [(str(corpus), label) for label, share in shares.items() if abs(share - middle) > threshold]
    return out


def without_confounded(train: Items, cfg: dict) -> Items:
    """``train`` without the clips of its ``confounded_labels`` (none unless the config sets a threshold)."""
    if cfg.get("confounded_labels") is None:
        return train
    pairs = confounded_labels(train, float(cfg["confounded_labels"]))
    drop = np.zeros(len(train.labels), dtype=bool)
    for corpus, label in pairs:
        drop |= (train.corpora == corpus) & (train.labels == label)
    log.info("left out as confounded with the recording: %s (%d clips, every copy)",
             ", ".join(f"{c} {EMOTIONS[l].value}" for c, l in pairs) or "none", int(drop.sum()))
    return train.select(~drop)


def label_set_mask(items: Items) -> torch.Tensor:
    """``[N, 7]``: for each item, the labels its corpus has (``corpus_label_sets`` of these items)."""
    sets = corpus_label_sets(items)
    return torch.stack([sets[str(c)] for c in items.corpora])


def label_set_loss(logits: torch.Tensor, labels: torch.Tensor, present: torch.Tensor, smoothing: float) -> torch.Tensor:
    """Cross-entropy over the labels the clip's corpus has (``present``, [B, 7]), smoothed over those.

    A corpus that never labels a class says nothing about it: with the full softmax, every URDU
    clip also teaches "not fear, not disgust, not surprise", which the head can learn as what
    URDU's recordings sound like; here such classes get no gradient from that corpus.
    """
    log_probs = torch.log_softmax(logits.masked_fill(~present, float("-inf")), -1).masked_fill(~present, 0.0)
    target = F.one_hot(labels, logits.shape[1]).float() * (1 - smoothing) + present.float() * smoothing / present.sum(1, keepdim=True)
    return -(target * log_probs).sum(1).mean()


def train_head(train: Items, val: Items, cfg: dict, in_dim: int, feature_norm: str, *, layers: int = 1,
               ckpt: Path | None = None, resume: bool = False, tag: str = "",
               shrink: "PartlyAdapted | None" = None,
               voice: "SpeakerShift | None" = None,
               speaker_groups: np.ndarray | None = None) -> tuple[SpeechEmotionHead, dict]:
    """Train on ``train``, keep the epoch with the best validation score; resumable from ``ckpt``.
    ``in_dim`` is one encoder layer's width; frames hold ``layers`` of them. ``shrink``: each
    training clip is read as at a random stage of a deployment's adaptation (corpus statistics).
    ``voice``: each training clip then moved as if spoken by another voice."""
    set_seed(cfg["seed"])
    head_cfg = cfg["head"]
    net = SpeechEmotionHead(in_dim=in_dim, hidden=head_cfg["hidden"], dropout=head_cfg["dropout"], feature_norm=feature_norm,
                            layers=layers, standardise=cfg.get("standardise") == "corpus",
                            channel_statistics=statistics_by(cfg) == "channel")
    epochs, bs = cfg["epochs"], cfg["batch_size"]
    per_epoch = cfg.get("samples_per_epoch") or len(train)
    steps = -(-per_epoch // bs)
    adversaries = {"corpus": GroupAdversary(2 * head_cfg["hidden"], train.corpora, cfg.get("adversary_weight", 0.0))}
    if speaker_groups is None:  # train_members reads them once for all its members
        speaker_groups = speaker_adversary_groups(train, cfg)
    if speaker_groups is not None:  # built only when asked: its weights' draws would move every later random draw
        adversaries["speaker"] = GroupAdversary(2 * head_cfg["hidden"], speaker_groups, cfg["speaker_adversary_weight"], ramp=True)
        log.info("%s speaker adversary: %d speakers, %d of %d clips", tag, len(adversaries["speaker"].names),
                 int((speaker_groups != "").sum()), len(train))
    adversary, speaker_adversary = adversaries["corpus"], adversaries.get("speaker")
    params = list(net.parameters()) + [p for a in adversaries.values() if a.active for p in a.parameters()]
    opt = torch.optim.AdamW(params, lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg["lr"], total_steps=epochs * steps, pct_start=0.1)
    probs = sampling_weights(train, cfg["balance"])
    rng = np.random.default_rng(cfg["seed"])
    start, best, history, swa = 0, {"score": -1.0}, [], None
    swa_from = cfg.get("average_from_epoch")
    if resume and ckpt is not None and ckpt.is_file():
        state = torch.load(ckpt, weights_only=False)
        net.load_state_dict(state["net"])
        for name, state_dict in state.get("adversaries", {}).items():
            adversaries[name].load_state_dict(state_dict)
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        rng, start, best, history = state["rng"], state["epoch"] + 1, state["best"], state["history"]
        swa = state.get("swa")
        log.info("%s resumed after epoch %d", tag, state["epoch"])
    labels = torch.from_numpy(train.labels)
    # The share of the loss read over each clip's corpus's label set (1: all of it; the rest is the
    # full softmax, which also teaches "not this" for the labels the corpus lacks).
    set_share = float(cfg.get("corpus_label_sets", 0.0))
    if set_share and (cfg.get("pooled_mixup") or cfg.get("adversary_weight")):
        raise ValueError("corpus_label_sets is not combined with pooled_mixup or the corpus adversary")
    present_of = label_set_mask(train) if set_share else None
    # Computed once: the validation clips' label sets, when the epoch is chosen over them.
    answer_among = label_set_mask(val) if set_share and cfg.get("validate_over_label_sets") else None
    for epoch in range(start, epochs):
        net.train()
        t0, total, speakers_right, speakers_read = time.time(), 0.0, 0, 0
        order = rng.choice(len(train), size=per_epoch, replace=True, p=probs)
        for i in range(0, len(order), bs):
            idx = order[i : i + bs]
            clips = [train.feats[j] if shrink is None else shrink(train, j, rng) for j in idx]
            if voice is not None:
                clips = [voice(x, rng) for x in clips]
            frames, mask = pad_frames([jitter(x, rng, cfg["crop_min"], cfg["frame_mask"]) for x in clips])
            pooled = net.summarise(frames, mask)
            target = F.one_hot(labels[idx], len(EMOTIONS)).float()
            mix = cfg.get("pooled_mixup", 0.0)
            if mix:  # mixup of pooled summaries: decision boundaries between, not around, training voices
                lam = torch.from_numpy(rng.beta(mix, mix, size=(len(idx), 1))).float()
                perm = torch.from_numpy(rng.permutation(len(idx)))
                pooled, target = lam * pooled + (1 - lam) * pooled[perm], lam * target + (1 - lam) * target[perm]
            logits = net.classify(pooled)
            if present_of is None:
                loss = F.cross_entropy(logits, target, label_smoothing=cfg["label_smoothing"])
            else:
                loss = set_share * label_set_loss(logits, labels[idx], present_of[idx], cfg["label_smoothing"])
                if set_share < 1:
                    loss = loss + (1 - set_share) * F.cross_entropy(logits, target, label_smoothing=cfg["label_smoothing"])
            if adversary.active:
                loss = loss + adversary.loss(pooled, train.corpora[idx])[0]
            if speaker_adversary is not None and speaker_adversary.active:
                progress = (epoch * steps + i // bs) / (epochs * steps)
                guessed, right, read = speaker_adversary.loss(pooled, speaker_groups[idx], progress)
                loss, speakers_right, speakers_read = loss + guessed, speakers_right + right, speakers_read + read
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        score, parts = validation_score(net, val, answer_among)
        if speakers_read:  # how well the adversary still tells the training speakers apart (chance: 1 / speakers)
            parts = parts | {"speakers_guessed": speakers_right / speakers_read}
        history.append({"epoch": epoch, "loss": total / len(order), "val": score} | parts)
        log.info("%s epoch %d loss %.4f validation %.3f %s (%.0fs)", tag, epoch, total / len(order), score,
                 " ".join(f"{k} {v:.3f}" for k, v in parts.items()), time.time() - t0)
        if score > best["score"]:
            best = {"score": score, "epoch": epoch, "parts": parts,
                    "state": {k: v.clone() for k, v in net.state_dict().items()}}
        if swa_from is not None and epoch >= swa_from:
            swa = _running_average(swa, net.state_dict())
        if ckpt is not None:
            ckpt.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"net": net.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(), "rng": rng,
                        "adversaries": {name: a.state_dict() for name, a in adversaries.items() if a.active},
                        "epoch": epoch, "best": best, "history": history, "swa": swa}, ckpt.with_suffix(".tmp"))
            ckpt.with_suffix(".tmp").rename(ckpt)
    if swa is not None:  # the averaged weights replace the best epoch (the head has no batch statistics to refresh)
        net.load_state_dict(swa["state"])
        score, parts = validation_score(net, val)
        log.info("%s weights averaged over epochs %d-%d: validation %.3f", tag, swa_from, epochs - 1, score)
        best = {"score": score, "epoch": f"average of {swa_from}-{epochs - 1}", "parts": parts, "state": swa["state"]}
    if cfg.get("keep_last_epoch"):  # no choice on the training corpora's validation speakers: the schedule's end
        score, parts = validation_score(net, val, answer_among)
        best = {"score": score, "epoch": epochs - 1, "parts": parts, "state": net.state_dict()}
    net.load_state_dict(best["state"])
    net.eval()
    return net, {"best_epoch": best["epoch"], "validation": best["score"], "validation_parts": best["parts"],
                 "history": history}


def train_members(train: Items, val: Items, cfg: dict, in_dim: int, feature_norm: str, *, layers: int = 1,
                  ckpt: Path | None = None, resume: bool = False, tag: str = "",
                  shrink: "PartlyAdapted | None" = None,
                  voice: "SpeakerShift | None" = None) -> tuple[SpeechHead, dict]:
    """``cfg["ensemble"]`` heads (default 1), each trained by :func:`train_head` with seed
    ``cfg["seed"] + i``; more than one are returned as a :class:`SpeechHeadEnsemble`."""
    n = int(cfg.get("ensemble", 1))
    nets, infos = [], []
    speaker_groups = speaker_adversary_groups(train, cfg)
    for i in range(n):
        member_cfg = cfg | {"seed": cfg["seed"] + i}
        member_ckpt = ckpt if ckpt is None or n == 1 else ckpt.with_name(f"{ckpt.stem}-m{i}{ckpt.suffix}")
        net, info = train_head(train, val, member_cfg, in_dim, feature_norm, layers=layers, ckpt=member_ckpt,
                               resume=resume, tag=f"{tag}[{i + 1}/{n}]" if n > 1 else tag, shrink=shrink,
                               voice=voice, speaker_groups=speaker_groups)
        nets.append(net)
        infos.append(info)
    if n == 1:
        return nets[0], infos[0]
    ensemble = SpeechHeadEnsemble(nets).eval()
    score, parts = validation_score(ensemble, val)
    log.info("%s ensemble of %d: validation %.3f (members %s)", tag, n, score,
             " ".join(f"{i['validation']:.3f}" for i in infos))
    return ensemble, {"best_epoch": [i["best_epoch"] for i in infos], "validation": score, "validation_parts": parts,
                      "members_validation": [i["validation"] for i in infos], "history": [i["history"] for i in infos]}


def _running_average(swa: dict | None, state: dict[str, torch.Tensor]) -> dict:
    """Stochastic weight averaging (Izmailov et al. 2018): the mean of the weights at each epoch's end."""
    if swa is None:
        return {"n": 1, "state": {k: v.detach().clone().float() for k, v in state.items()}}
    n = swa["n"] + 1
    return {"n": n, "state": {k: swa["state"][k] + (v.float() - swa["state"][k]) / n for k, v in state.items()}}


class _ReverseGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # noqa: ANN001 - autograd's signature
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        return -grad


class GroupAdversary(torch.nn.Module):
    """Guesses each clip's group (its corpus, or its speaker) from the pooled summary through a
    reversed gradient (domain-adversarial training, Ganin et al. 2016): the head is pushed towards
    summaries that do not tell the groups apart. Clips whose group is ``""`` are not read.
    ``weight`` 0 turns it off; with ``ramp`` the weight grows as Ganin's schedule,
    2 / (1 + exp(-10 p)) - 1 over the run's progress p, so the head first learns the task.
    Recipe only; not shipped."""

    def __init__(self, dim: int, groups: np.ndarray, weight: float, *, ramp: bool = False) -> None:
        super().__init__()
        self.names = sorted(set(groups.tolist()) - {""})
        self.index = {name: i for i, name in enumerate(self.names)}
        self.weight, self.ramp = float(weight), ramp
        self.active = self.weight > 0 and len(self.names) > 1
        self.guess = torch.nn.Sequential(torch.nn.Linear(dim, 128), torch.nn.GELU(), torch.nn.Linear(128, len(self.names)))

    def loss(self, pooled: torch.Tensor, groups: np.ndarray, progress: float = 1.0) -> tuple[torch.Tensor, int, int]:
        """The weighted loss, and how many of the read clips it guessed right, of how many."""
        read = np.flatnonzero(groups != "")
        if not len(read):
            return pooled.new_zeros(()), 0, 0
        target = torch.tensor([self.index[g] for g in groups[read]])
        logits = self.guess(_ReverseGradient.apply(pooled[torch.from_numpy(read)]))
        weight = self.weight * (2.0 / (1.0 + np.exp(-10.0 * progress)) - 1.0 if self.ramp else 1.0)
        right = int((logits.argmax(-1) == target).sum())
        return weight * F.cross_entropy(logits, target), right, len(read)


def adversary_speakers(items: Items, max_label_shift: float) -> np.ndarray:
    """Per item, its speaker when that speaker's labels are spread as their corpus's (total variation
    distance at most ``max_label_shift``), else ``""``. A speaker adversary must not read a speaker
    whose voice tells the label: URDU's talk-show speakers each keep one label (distance 0.75), so
    hiding who speaks would hide what they feel; every RAVDESS, EmoDB and EMOVO actor acts every
    emotion (0.00-0.17)."""
    out = np.full(len(items), "", dtype=object)
    for corpus in np.unique(items.corpora):
        in_corpus = items.corpora == corpus
        classes = np.unique(items.labels[in_corpus])
        corpus_share = np.array([np.mean(items.labels[in_corpus] == c) for c in classes])
        for speaker in np.unique(items.speakers[in_corpus]):
            own = in_corpus & (items.speakers == speaker)
            share = np.array([np.mean(items.labels[own] == c) for c in classes])
            if 0.5 * np.abs(share - corpus_share).sum() <= max_label_shift:
                out[own] = speaker
    return out.astype(str)


def speaker_adversary_groups(train: Items, cfg: dict) -> np.ndarray | None:
    """The speaker adversary's group of each training item, by the config's label-shift bound; None
    when the config asks for no speaker adversary."""
    if not cfg.get("speaker_adversary_weight"):
        return None
    return adversary_speakers(train, cfg.get("speaker_adversary_max_label_shift", 0.25))


def layer_weights(net: SpeechHead) -> list[float] | None:
    """How much the head reads each encoder layer (first: the input to the first layer), or None for one
    layer; an ensemble's are its members' mean."""
    heads = list(net.members) if isinstance(net, SpeechHeadEnsemble) else [net]
    if heads[0].mix is None:
        return None
    weights = torch.stack([torch.softmax(h.mix.weights.detach(), 0) for h in heads]).mean(0)
    return [round(float(w), 3) for w in weights]


def held_out_scores(net: SpeechHead, items: Items) -> dict:
    """UAR, most frequent prediction's share and clips per predicted emotion (``answers_*``, in
    ``EMOTIONS`` order) on clean and telephone copies of ``items``."""
    pred = predict(net, items.feats).argmax(-1).numpy()
    out: dict = {}
    for variant, name in ((0, "clean"), (1, "telephone")):
        keep = items.variants == variant
        answers = answer_counts(pred[keep], len(EMOTIONS))
        out[f"uar_{name}"] = uar(items.labels[keep], pred[keep])
        out[f"max_predicted_share_{name}"] = float(max(answers) / max(1, keep.sum()))
        out[f"max_true_share_{name}"] = max_predicted_share(items.labels[keep])
        out[f"clips_{name}"] = int(keep.sum())
        out[f"answers_{name}"] = answers
        out[f"speaker_max_share_{name}"] = speaker_max_shares(pred[keep], items.speakers[keep])
    return out


def kept_outputs(spec, cfg: dict) -> int:
    """How many of the encoder's outputs the head reads: the config's ``encoder_outputs`` (the input
    to the first block, then each block's output), all of them by default."""
    kept = int(cfg.get("encoder_outputs", spec.layers))
    if not 1 <= kept <= spec.layers:
        raise ValueError(f"encoder_outputs {kept} outside 1..{spec.layers}")
    return kept


def head_shape(spec, cfg: dict) -> tuple[int, int]:
    """``(in_dim, layers)`` of the head: every kept output mixed by learnt weights (``mix_layers``,
    the default), or the kept outputs side by side read as one frame (``kept_outputs``)."""
    kept = kept_outputs(spec, cfg)
    layers = kept if cfg["head"].get("mix_layers", True) else 1
    return spec.feature_dim // spec.layers * kept // layers, layers


def first_outputs(items: Items, spec, cfg: dict) -> Items:
    """The items with each frame cut to the encoder's ``kept_outputs``: what an encoder stopped
    after that many blocks gives, at that share of the blocks' CPU."""
    kept = kept_outputs(spec, cfg)
    if kept == spec.layers:
        return items
    width = spec.feature_dim // spec.layers * kept
    return items.with_feats([f[:, :width] for f in items.feats])


Moments = tuple[torch.Tensor, torch.Tensor, int]
StatisticsKey = tuple[str, object]  # (corpus, copy) or (corpus, channel)


def statistics_by(cfg: dict) -> str:
    """``"copy"``: one set of statistics per corpus and cached copy, read at deployment against one
    pooled set (speech@4); ``"channel"``: per corpus and channel (wideband, narrowband), read against
    the pooled set of the clip's channel (speech@5)."""
    by = cfg.get("statistics_by", "copy")
    if by not in ("copy", "channel"):
        raise ValueError(f"statistics_by must be copy or channel, got {by!r}")
    return by


def statistics_key(items: Items, i: int, by: str) -> StatisticsKey:
    return (str(items.corpora[i]), int(items.variants[i]) if by == "copy" else str(items.channels[i]))


def corpus_moments(items: Items, keep: np.ndarray, by: str) -> dict[StatisticsKey, Moments]:
    """Per corpus and copy (or channel): sum, sum of squares and count of the frames of the items in ``keep``."""
    out: dict[StatisticsKey, Moments] = {}
    for i in np.flatnonzero(keep):
        key = statistics_key(items, i, by)
        x = items.feats[i].double()
        total, squares, n = out.get(key, (0, 0, 0))
        out[key] = (total + x.sum(0), squares + (x**2).sum(0), n + x.shape[0])
    return out


def mean_std(moments: list[Moments]) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation of the frames behind ``moments``, pooled."""
    n = sum(m[2] for m in moments)
    mean = sum(m[0] for m in moments) / n
    var = sum(m[1] for m in moments) / n - mean**2
    return mean.float(), var.clamp(min=1e-8).sqrt().float()


Statistics = dict[StatisticsKey, tuple[torch.Tensor, torch.Tensor]]
Priors = dict[str, tuple[torch.Tensor, torch.Tensor]]  # channel -> the pooled statistics a deployment starts from


def corpus_statistics(moments: dict[StatisticsKey, Moments]) -> Statistics:
    """Mean and standard deviation per corpus and copy (or channel)."""
    return {key: mean_std([m]) for key, m in moments.items()}


def pooled_priors(moments: dict[StatisticsKey, Moments], by: str, leave_out: str | None = None) -> Priors:
    """The statistics the head reads raw frames against, per channel: pooled over every corpus but
    ``leave_out`` (and, by channel, over that channel's frames only; by copy, one set for both)."""
    kept = {key: m for key, m in moments.items() if key[0] != leave_out}
    if by == "copy":
        pooled = mean_std(list(kept.values()))
        return {"wideband": pooled, "narrowband": pooled}
    return {ch: mean_std([m for key, m in kept.items() if key[1] == ch]) for ch in ("wideband", "narrowband")}


def standardised_by_corpus(items: Items, stats: Statistics, by: str) -> Items:
    """A copy of ``items`` with every frame standardised by its corpus's (and copy's or channel's) statistics."""
    feats = []
    for i, f in enumerate(items.feats):
        mean, std = stats[statistics_key(items, i, by)]
        feats.append(((f.float() - mean) / std).half())
    return items.with_feats(feats)


class PartlyAdapted:
    """A corpus-standardised clip re-read as a deployment would read it part way through adapting:
    standardised by its corpus's statistics shrunk towards the prior of its channel with a random
    weight (uniform in [0, 1]; 0 is the first turn, which the default path reads, 1 is
    converged). The head then learns every stage, not only the converged one.

    ``mismatch`` (a probability, config key ``mismatched_statistics``): the statistics a clip is
    shrunk towards are then moved part way (uniform weight) from its channel's prior to another
    training corpus's statistics of the same channel, so that the head also hears clips read
    against statistics that are not theirs at all, as a corpus it never heard is on the default
    path. Only corpora in ``corpora`` (the ones trained on) are drawn."""

    def __init__(self, stats: Statistics, priors: Priors, by: str, *, mismatch: float = 0.0,
                 corpora: tuple[str, ...] = ()) -> None:
        self.stats, self.priors, self.by = stats, priors, by
        self.mismatch, self.corpora = mismatch, corpora

    def __call__(self, items: Items, i: int, rng: np.random.Generator) -> torch.Tensor:
        key = statistics_key(items, i, self.by)
        mean, std = self.stats[key]
        prior_mean, prior_std = self.priors[str(items.channels[i])]
        others = [(c, key[1]) for c in self.corpora if c != key[0] and (c, key[1]) in self.stats]
        if others and rng.uniform() < self.mismatch:
            other_mean, other_std = self.stats[others[int(rng.integers(len(others)))]]
            prior_mean, prior_std = shrunk_statistics(other_mean, other_std, prior_mean, prior_std, float(rng.uniform()))
        shrunk_mean, shrunk_std = shrunk_statistics(mean, std, prior_mean, prior_std, float(rng.uniform()))
        return items.feats[i].float() * (std / shrunk_std) + (mean - shrunk_mean) / shrunk_std


class SpeakerShift:
    """Each training clip heard as if from another voice: its (corpus-standardised) frames moved by
    one random offset drawn from the spread of the training speakers' mean frames about their
    corpus's, ``scale`` times a typical speaker's offset (config key ``speaker_shift``).

    Acted corpora have few speakers (EMOVO 4 in training), and a head can learn a voice as an
    emotion; the speakers' means are taken over all their clips, every emotion alike, so that these
    directions are meant to be voice, not emotion. The offset is the training speakers' offsets
    mixed with Gaussian weights (a draw from their covariance), added to every frame of the clip
    alike. Round 17 (the model card) read it worse held out: RAVDESS 0.387 against 0.419."""

    def __init__(self, train: Items, scale: float) -> None:
        clean = np.flatnonzero(train.variants == 0)
        clip_means = {i: train.feats[i].float().mean(0) for i in clean}
        offsets = []
        for corpus in np.unique(train.corpora[clean]):
            in_corpus = clean[train.corpora[clean] == corpus]
            means = torch.stack([torch.stack([clip_means[i] for i in in_corpus[train.speakers[in_corpus] == s]]).mean(0)
                                 for s in np.unique(train.speakers[in_corpus])])
            offsets.append(means - means.mean(0))
        self.offsets = torch.cat(offsets)
        self.scale = scale
        log.info("speaker shift: %d training speakers, typical offset norm %.2f, scale %.2f", len(self.offsets),
                 float(self.offsets.norm(dim=1).pow(2).mean().sqrt()), scale)

    def __call__(self, frames: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        weights = torch.from_numpy(rng.standard_normal(len(self.offsets))).float() / len(self.offsets) ** 0.5
        return frames.float() + self.scale * (weights @ self.offsets)


def speaker_shift(cfg: dict, train: Items) -> SpeakerShift | None:
    """The config's ``speaker_shift`` over ``train``'s speakers, or None."""
    scale = float(cfg.get("speaker_shift", 0.0))
    return SpeakerShift(train, scale) if scale else None


def partly_adapted(cfg: dict, stats: Statistics, priors: Priors, by: str, corpora: tuple[str, ...]) -> PartlyAdapted | None:
    """The config's re-reading of training clips (``partly_adapted``, ``mismatched_statistics``), or None."""
    if not cfg.get("partly_adapted"):
        return None
    return PartlyAdapted(stats, priors, by, mismatch=float(cfg.get("mismatched_statistics", 0.0)), corpora=corpora)


def install_statistics(net: SpeechHead, priors: Priors) -> None:
    """The statistics the head standardises raw frames by (trained on standardised frames, it held 0
    and 1): the wideband prior, and the narrowband one where the head keeps channels."""
    heads = list(net.members) if isinstance(net, SpeechHeadEnsemble) else [net]
    for head in heads:
        head.standardise.mean.copy_(priors["wideband"][0])
        head.standardise.std.copy_(priors["wideband"][1])
        if head.standardise.channels:
            head.standardise.narrowband_mean.copy_(priors["narrowband"][0])
            head.standardise.narrowband_std.copy_(priors["narrowband"][1])


def read_as_library(net: SpeechHead, items: Items, *, adapt: bool, seed: int = 0) -> list[torch.Tensor]:
    """The frames of ``items`` as the library's encoder reads them (``affect.speech.adaptation.ChannelReader``):
    by default each against the head's statistics for its channel; adapting, each copy heard as one
    deployment, clip after clip in a seeded order."""
    if not adapt:
        return ChannelReader(net.standardise).map(items.feats, list(items.channels))
    out: list[torch.Tensor] = list(items.feats)
    for variant in np.unique(items.variants):
        reader = ChannelReader(net.standardise, adapt=True)
        for i in np.random.default_rng(seed).permutation(np.flatnonzero(items.variants == variant)):
            (out[i],) = reader.map([items.feats[i]], [str(items.channels[i])])
    return out


def run_loco(cfg: dict, cache: Path, workdir: Path, backbone: str, feature_norm: str, variant: str | None = None,
             only: str | None = None) -> dict:
    """Leave-one-corpus-out figures for one encoder, feature normalisation and config variant (cached as JSON).
    ``only``: the fold that holds out that corpus, alone (its own JSON; the means are over it alone)."""
    stem = f"loco-{backbone}-{feature_norm}{'-' + variant if variant else ''}"
    out_path = workdir / f"{stem}{'-only-' + only if only else ''}.json"
    cfg, tag = variant_and_tag(cfg, variant)
    if out_path.is_file():
        return json.loads(out_path.read_text())
    folds = [workdir / f"{stem}-only-{c}.json" for c in cfg["corpora"]]
    if only is None and all(f.is_file() for f in folds):  # every fold run apart (--only): one result of them
        result = json.loads(folds[0].read_text()) | {"corpora": {}, "only": None, "folds_run_apart": True}
        for f in folds:
            result["corpora"] |= json.loads(f.read_text())["corpora"]
        result |= mean_uars(result["corpora"], adapting=cfg.get("standardise") == "corpus")
        out_path.write_text(json.dumps(result, indent=2) + "\n")
        return result
    corpora = tuple(cfg["corpora"])
    if only is not None and only not in corpora:
        raise ValueError(f"--only {only!r}: not one of this recipe's corpora {corpora}")
    spec = backbone_spec(backbone)
    items = first_outputs(load_items(cache, backbone, corpora, cfg["copies"], tag), spec, cfg)
    in_dim, layers = head_shape(spec, cfg)
    by_corpus, by = cfg.get("standardise") == "corpus", statistics_by(cfg)
    result: dict = {"backbone": backbone, "feature_norm": feature_norm, "variant": variant or "base",
                    "compute_type": spec.compute_type, "ensemble": int(cfg.get("ensemble", 1)), "statistics_by": by,
                    "corpora": {}, "only": only}
    if by_corpus:  # each corpus by the statistics of its train speakers; the held-out one as a deployment would
        moments = corpus_moments(items, items.splits == "train", by)
        stats = corpus_statistics(moments)
        trained_on = standardised_by_corpus(items, stats, by)
    else:
        trained_on = items
    held_logits: dict[str, dict[str, torch.Tensor]] = {}
    for held in (c for c in corpora if only in (None, c)):
        rest = items.corpora != held
        train = without_confounded(trained_on.select(rest & (items.splits == "train")), cfg)
        val = trained_on.select(rest & (items.splits == "validation") & (items.variants <= 1))
        priors = pooled_priors(moments, by, leave_out=held) if by_corpus else None
        shrink = partly_adapted(cfg, stats, priors, by, tuple(c for c in corpora if c != held)) if by_corpus else None
        net, info = train_members(train, val, cfg, in_dim, feature_norm, layers=layers,
                                  tag=f"[{backbone} {feature_norm} -{held}]", shrink=shrink,
                                  voice=speaker_shift(cfg, train))
        held_items = items.select((items.corpora == held) & (items.variants <= 1))
        extra: dict = {}
        if by_corpus:
            converged = held_out_scores(net, trained_on.select((items.corpora == held) & (items.variants <= 1)))
            install_statistics(net, priors)
            adapted = held_items.with_feats(read_as_library(net, held_items, adapt=True, seed=cfg["seed"]))
            held_items = held_items.with_feats(read_as_library(net, held_items, adapt=False))
            extra = {"adapted": held_out_scores(net, adapted), "converged": converged}
            log.info("held out %s adapting: UAR clean %.3f (converged %.3f)", held, extra["adapted"]["uar_clean"],
                     converged["uar_clean"])
        scores = held_out_scores(net, held_items) | extra
        held_logits[held] = {"logits": predict(net, held_items.feats), "labels": torch.from_numpy(held_items.labels),
                             "variants": torch.from_numpy(held_items.variants)}
        result["corpora"][held] = scores | {"best_epoch": info["best_epoch"], "validation": info["validation"],
                                            "layer_weights": layer_weights(net)}
        log.info("held out %s: UAR clean %.3f telephone %.3f, max share %.2f", held, scores["uar_clean"],
                 scores["uar_telephone"], scores["max_predicted_share_clean"])
    result |= mean_uars(result["corpora"], adapting=by_corpus)
    if only is None:  # a temperature from the other folds needs them (folds run apart have none)
        result |= cross_corpus_calibration(held_logits)
    workdir.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=2) + "\n")
    return result


def mean_uars(folds: dict[str, dict], *, adapting: bool) -> dict[str, float]:
    """The held-out UARs averaged over ``folds`` (clean and telephone; adapting and converged too)."""
    out = {f"mean_uar_{copy}": float(np.mean([v[f"uar_{copy}"] for v in folds.values()])) for copy in ("clean", "telephone")}
    if adapting:
        for path in ("adapted", "converged"):
            for copy in ("clean", "telephone"):
                out[f"{path}_mean_uar_{copy}"] = float(np.mean([v[path][f"uar_{copy}"] for v in folds.values()]))
    return out


def cross_corpus_calibration(held_logits: dict[str, dict[str, torch.Tensor]]) -> dict:
    """A temperature for voices from corpora the head never heard, and what it is worth.

    ``loco_temperature``: fitted (NLL) on the held-out predictions of every fold (clean and telephone
    copies). Its worth is read without fitting on the corpus scored: for each corpus, a temperature
    fitted on the *other* folds' held-out predictions, ECE on this one's clean clips, beside ECE at
    temperature 1."""
    def pooled(names: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        return (torch.cat([held_logits[c]["logits"] for c in names]), torch.cat([held_logits[c]["labels"] for c in names]))

    names = sorted(held_logits)
    out: dict = {"loco_temperature": fit_temperature(*pooled(names)), "calibration": {}}
    for corpus in names:
        others = [c for c in names if c != corpus]
        t = fit_temperature(*pooled(others))
        clean = held_logits[corpus]["variants"] == 0
        logits, labels = held_logits[corpus]["logits"][clean], held_logits[corpus]["labels"][clean].numpy()
        out["calibration"][corpus] = {
            "temperature_from_others": t,
            "ece_t1": expected_calibration_error(torch.softmax(logits, -1).numpy(), labels, bins=10),
            "ece_others_t": expected_calibration_error(torch.softmax(logits / t, -1).numpy(), labels, bins=10),
        }
    return out


def run_final(cfg: dict, cache: Path, workdir: Path, out: Path, resume: bool, backbone: str | None = None,
              variant: str | None = None) -> dict:
    """The shipped head: every corpus's train speakers, chosen on every corpus's validation speakers
    (the config's ``final`` names the encoder, normalisation and config variant; ``backbone``
    trains the same recipe over another encoder, ``variant`` another variant, a candidate's)."""
    backbone, feature_norm = backbone or cfg["final"]["backbone"], cfg["final"]["feature_norm"]
    variant = variant or cfg["final"].get("variant")
    cfg, tag = variant_and_tag(cfg, variant)
    spec = backbone_spec(backbone)
    items = first_outputs(load_items(cache, backbone, tuple(cfg["corpora"]), cfg["copies"], tag), spec, cfg)
    by_corpus, by = cfg.get("standardise") == "corpus", statistics_by(cfg)
    moments = corpus_moments(items, items.splits == "train", by) if by_corpus else {}
    stats = corpus_statistics(moments)
    priors = pooled_priors(moments, by) if by_corpus else None  # every corpus's train frames (per channel)
    trained_on = standardised_by_corpus(items, stats, by) if by_corpus else items
    train = without_confounded(trained_on.select(items.splits == "train"), cfg)
    val = trained_on.select((items.splits == "validation") & (items.variants <= 1))
    in_dim, layers = head_shape(spec, cfg)
    shrink = partly_adapted(cfg, stats, priors, by, tuple(cfg["corpora"])) if by_corpus else None
    net, info = train_members(train, val, cfg, in_dim, feature_norm, layers=layers,
                              ckpt=workdir / f"final-{backbone}-{variant}-last.pt", resume=resume, tag="[final]", shrink=shrink,
                              voice=speaker_shift(cfg, train))
    if by_corpus:  # raw frames are read against the pooled statistics of their channel
        install_statistics(net, priors)
        val = items.select((items.splits == "validation") & (items.variants <= 1))
        val = val.with_feats(read_as_library(net, val, adapt=False))
    val_logits = predict(net, val.feats)
    temperature = fit_temperature(val_logits, torch.from_numpy(val.labels))  # for the path without adaptation
    clean = val.variants == 0
    speaker_shares = speaker_max_shares(val_logits.argmax(-1).numpy()[clean], val.speakers[clean])
    runs_on = backbone_spec(stopped_after(backbone, kept_outputs(spec, cfg)))  # the encoder that reads this head
    meta = {
        "recipe": "recipes/speech_multicorpus", "config": cfg, "backbone": runs_on.key,
        "backbone_description": runs_on.description, "compute_type": runs_on.compute_type,
        "best_epoch": info["best_epoch"], "validation": info["validation"], "validation_parts": info["validation_parts"],
        "temperature": temperature, "members": int(cfg.get("ensemble", 1)), "num_params": parameter_count(net),
        "layer_weights": layer_weights(net), "standardise": cfg.get("standardise"), "statistics_by": by,
        "validation_speaker_max_share_clean": speaker_shares,
    }
    save_speech_weights(net, out, meta)
    summary = {k: v for k, v in meta.items() if k != "config"} | {"history": info["history"]}
    (workdir / f"final-{backbone}-{variant}-summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    log.info("final: best epoch %s, validation %.3f, temperature %.2f; wrote %s (%d params)", info["best_epoch"],
             info["validation"], temperature, out, meta["num_params"])
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=("loco", "final"))
    ap.add_argument("--config", type=Path, default=HERE / "config.json")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--workdir", type=Path, default=HERE / "checkpoints")
    ap.add_argument("--backbone", action="append",
                    help="loco: encoders to compare (default: the config's); final: the one encoder (default: the config's final)")
    ap.add_argument("--feature-norm", action="append", help="loco: normalisations to compare (default: the config's)")
    ap.add_argument("--variant", action="append", help="loco: named config variants to compare (default: none)")
    ap.add_argument("--only", help="loco: run only the fold that holds out this corpus")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: the config's)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    cfg = json.loads(args.config.read_text())
    torch.set_num_threads(args.threads or cfg["torch_threads"])
    if args.mode == "final":
        if (args.backbone and len(args.backbone) > 1) or (args.variant and len(args.variant) > 1):
            ap.error("final trains one head: give --backbone and --variant at most once")
        run_final(cfg, args.cache, args.workdir, args.out, args.resume, backbone=(args.backbone or [None])[0],
                  variant=(args.variant or [None])[0])
        return 0
    for backbone in args.backbone or cfg["backbones"]:
        for norm in args.feature_norm or [cfg["head"]["feature_norm"]]:
            for variant in args.variant or [None]:
                res = run_loco(cfg, args.cache, args.workdir, backbone, norm, variant, only=args.only)
                log.info("LOCO %s %s %s: mean UAR clean %.3f telephone %.3f", backbone, norm, variant or "base",
                         res["mean_uar_clean"], res["mean_uar_telephone"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

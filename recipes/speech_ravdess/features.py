"""Frozen-encoder features of RAVDESS clips and their augmented copies, cached outside the tree.

Each clip is read at its own rate, resampled to 16 kHz, cut to its speech with the same VAD the
library uses, then degraded (``copies`` variants per training clip: the clean clip, a
telephone-band copy, and random mixes of speed/pitch, gain, noise and telephone band) and run
through the frozen Whisper encoder. Only the encoder outputs that cover real audio are kept, in
float16, one file per actor, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from affect.datasets.ravdess import RavdessClip, full_clips
from affect.labels import emotion_index
from affect.speech._audio import prepare_file
from affect.speech._backbone import WhisperBackbone, valid_outputs
from affect.speech._vad import VoiceActivity
from affect.speech.augment import add_noise, change_gain, change_speed, telephone_band

log = logging.getLogger("recipes.speech_ravdess")


def speech_span(vad: VoiceActivity, samples: np.ndarray) -> np.ndarray:
    """The clip from its first to its last speech (the whole clip if the VAD finds none)."""
    segments = vad.segments(samples)
    if not segments:
        return samples
    return samples[segments[0][0] : segments[-1][1]]


def augment(samples: np.ndarray, variant: int, rng: np.random.Generator, aug: dict) -> np.ndarray:
    """Variant 0 is the clean clip, 1 its telephone-band copy, 2+ random mixes."""
    if variant == 0:
        return samples
    if variant == 1:
        return telephone_band(change_gain(samples, rng.uniform(*aug["gain_db"])))
    x = samples
    if rng.random() < aug["p_speed"]:
        x = change_speed(x, rng.uniform(*aug["speed"]))
    x = change_gain(x, rng.uniform(*aug["gain_db"]))
    if rng.random() < aug["p_noise"]:
        x = add_noise(x, rng.uniform(*aug["snr_db"]), rng, colour="pink" if rng.random() < 0.5 else "white")
    if rng.random() < aug["p_telephone"]:
        x = telephone_band(x)
    return x


def actor_cache(cache: Path, actor: int, copies: int) -> Path:
    return cache / f"actor{actor:02d}_x{copies}.pt"


def build_cache(full_data: Path, cache: Path, actors: tuple[int, ...], copies: int, aug: dict, seed: int,
                backbone: WhisperBackbone, vad: VoiceActivity) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    for actor in actors:
        path = actor_cache(cache, actor, copies)
        if path.is_file():
            continue
        rng = np.random.default_rng(seed * 1000 + actor)
        clips = full_clips(full_data, (actor,))
        feats: list[torch.Tensor] = []
        labels, variants, statements = [], [], []
        for clip in clips:
            speech = speech_span(vad, prepare_file(clip.path).samples)
            for variant in range(copies):
                audio = augment(speech, variant, rng, aug)
                out = backbone.encode(audio)[: valid_outputs(len(audio))]
                feats.append(torch.from_numpy(out).half())
                labels.append(emotion_index(clip.emotion))
                variants.append(variant)
                statements.append(clip.statement)
        torch.save({"feats": feats, "labels": labels, "variants": variants, "statements": statements,
                    "files": [c.path.name for c in clips]}, path.with_suffix(".tmp"))
        path.with_suffix(".tmp").rename(path)
        log.info("cached actor %02d: %d clips x %d copies", actor, len(clips), copies)


def load_cache(cache: Path, actors: tuple[int, ...], copies: int, keep_variants: tuple[int, ...] | None = None
               ) -> tuple[list[torch.Tensor], np.ndarray, np.ndarray]:
    feats, labels, variants = [], [], []
    for actor in actors:
        data = torch.load(actor_cache(cache, actor, copies))
        for f, y, v in zip(data["feats"], data["labels"], data["variants"]):
            if keep_variants is None or v in keep_variants:
                feats.append(f)
                labels.append(y)
                variants.append(v)
    return feats, np.array(labels), np.array(variants)


def clip_label(clip: RavdessClip) -> int:
    return emotion_index(clip.emotion)

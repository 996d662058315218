"""Frozen-encoder features of every clip of the speech corpora (RAVDESS, EmoDB, URDU, EMOVO) and
of their degraded copies.

    python -m recipes.speech_multicorpus.features [--full-data /work/full-data]
        [--cache /work/cache/speech] [--variant NAME]

Each clip is read at its own rate, resampled to 16 kHz, cut to its speech with the library's VAD,
then degraded into ``copies`` variants (0 clean, 1 telephone band, 2+ random mixes of what calls
do to a voice: speed and pitch, delivery tempo (where a variant asks), gain, room reverberation,
noise at 0-20 dB SNR, telephone band or a coarse codec), each copy's upper-band energy share kept
(``affect.speech._channel``: the recipe tells the channel from it as the library does, and keeps
statistics per channel), and run
through *every* frozen encoder compared (the same degraded audio for each, so the comparison is
fair). Only the outputs that cover real audio are kept, in float16,
one file per corpus and encoder under the cache folder (outside the tree), so an interrupted run
resumes at the corpus where it stopped. Progress goes to the log.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

from affect.datasets.speech import SPEECH_CORPORA, SpeechClip, read_speech_corpus
from affect.labels import emotion_index
from affect.speech._audio import prepare_file
from affect.speech._backbone import WhisperBackbone, valid_outputs
from affect.speech._channel import upper_band_share
from affect.speech._vad import VoiceActivity
from affect.speech.augment import (add_noise, add_reverb, change_gain, change_speed, change_tempo, low_bitrate,
                                   telephone_band)
from recipes._variants import with_variant
from recipes.speech_ravdess.features import speech_span

log = logging.getLogger("recipes.speech_multicorpus")
HERE = Path(__file__).resolve().parent
DEFAULT_CACHE = Path("/work/cache/speech")




def degrade(samples: np.ndarray, variant: int, rng: np.random.Generator, aug: dict) -> np.ndarray:
    """Variant 0 is the clean clip, 1 its telephone-band copy, 2+ random mixes."""
    if variant == 0:
        return samples
    if variant == 1:
        return telephone_band(change_gain(samples, rng.uniform(*aug["gain_db"])))
    x = samples
    if rng.random() < aug["p_speed"]:
        x = change_speed(x, rng.uniform(*aug["speed"]))
    if aug.get("p_tempo", 0.0) and rng.random() < aug["p_tempo"]:  # drawn only where asked: the base's draws unchanged
        x = change_tempo(x, float(np.exp(rng.uniform(*np.log(aug["tempo"])))))
    if rng.random() < aug["p_reverb"]:
        x = add_reverb(x, rng.uniform(*aug["rt60_s"]), rng, wet=rng.uniform(*aug["reverb_wet"]))
    x = change_gain(x, rng.uniform(*aug["gain_db"]))
    if rng.random() < aug["p_noise"]:
        x = add_noise(x, rng.uniform(*aug["snr_db"]), rng, colour="pink" if rng.random() < 0.5 else "white")
    channel = rng.random()
    if channel < aug["p_telephone"]:
        x = telephone_band(x)
    elif channel < aug["p_telephone"] + aug["p_codec"]:
        x = low_bitrate(x, int(rng.integers(6, 10)))
    return x


def cache_path(cache: Path, backbone: str, corpus: str, copies: int, tag: str = "") -> Path:
    """``tag``: a config variant's own augmentation (``augment_tag``) is cached apart from the base's."""
    return cache / backbone / f"{corpus}_x{copies}{tag}.pt"


def augment_tag(base: dict, cfg: dict) -> str:
    """The cache tag of ``cfg`` (the base config with a variant applied): a variant that changes the
    augmentation must name its own cache, so that no head is trained on copies made otherwise."""
    tag = cfg.get("augment_tag", "")
    if cfg.get("augment") != base.get("augment") and not tag:
        raise ValueError("this variant changes the augmentation: give it an augment_tag (its cache's name)")
    return tag


def variant_and_tag(cfg: dict, variant: str | None) -> tuple[dict, str]:
    """The config with ``variant`` applied, and the tag of the cache its augmentation was made in."""
    applied = with_variant(cfg, variant)
    return applied, augment_tag(cfg, applied)


def build_corpus(clips: list[SpeechClip], backbones: dict[str, WhisperBackbone], vad: VoiceActivity, cache: Path,
                 corpus: str, copies: int, aug: dict, seed: int, tag: str = "") -> None:
    """One cache file per encoder for ``corpus`` (skipped when all exist)."""
    paths = {key: cache_path(cache, key, corpus, copies, tag) for key in backbones}
    if all(p.is_file() for p in paths.values()):
        log.info("%s: cached already", corpus)
        return
    rng = np.random.default_rng(seed * 1000 + SPEECH_CORPORA.index(corpus))
    feats: dict[str, list[torch.Tensor]] = {key: [] for key in backbones}
    items: list[dict] = []
    t0 = time.time()
    for n, clip in enumerate(clips, 1):
        speech = speech_span(vad, prepare_file(clip.path).samples)
        for variant in range(copies):
            audio = degrade(speech, variant, rng, aug)
            for key, backbone in backbones.items():
                out = backbone.encode(audio[: int(30 * 16000)])[: valid_outputs(len(audio))]
                feats[key].append(torch.from_numpy(out).half())
            items.append({"clip": n - 1, "variant": variant, "upper_band_share": upper_band_share(audio)})
        if n % 100 == 0 or n == len(clips):
            rate = n / (time.time() - t0)
            log.info("%s: %d/%d clips (%.1f clips/s, %.0f s left)", corpus, n, len(clips), rate, (len(clips) - n) / rate)
    meta = {
        "files": [c.path.name for c in clips],
        "speakers": [c.speaker for c in clips],
        "labels": [emotion_index(c.emotion) for c in clips],
        "corpus_labels": [c.label for c in clips],
        "splits": [c.split for c in clips],
        "items": items,
    }
    for key, path in paths.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(meta | {"feats": feats[key], "backbone": key, "compute_type": backbones[key].compute_type},
                   path.with_suffix(".tmp"))
        path.with_suffix(".tmp").rename(path)
    log.info("%s: cached %d clips x %d copies for %s", corpus, len(clips), copies, ", ".join(backbones))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=Path, default=HERE / "config.json")
    ap.add_argument("--full-data", type=Path, default=Path("/work/full-data"))
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--corpora", nargs="*", default=list(SPEECH_CORPORA))
    ap.add_argument("--backbones", nargs="*", help="encoders to cache (default: the config's)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: the config's)")
    ap.add_argument("--variant", help="a config variant whose augmentation (augment_tag) is cached apart")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    cfg, tag = variant_and_tag(json.loads(args.config.read_text()), args.variant)
    threads = args.threads or cfg["torch_threads"]
    torch.set_num_threads(threads)
    backbones = {key: WhisperBackbone(key, threads=threads) for key in args.backbones or cfg["backbones"]}
    vad = VoiceActivity()
    for corpus in args.corpora:
        clips = read_speech_corpus(corpus, args.full_data)
        build_corpus(clips, backbones, vad, args.cache, corpus, cfg["copies"], cfg["augment"], cfg["seed"], tag)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

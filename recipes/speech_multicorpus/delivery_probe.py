"""Probe (not shipped, nothing chosen on it): what in a set of unheard voices draws one answer.

    python -m recipes.speech_multicorpus.delivery_probe [--full-data /work/full-data] [--corpus tess] [--every 10]

Reads every ``--every``-th clip of a corpus no entry trained on (TESS by default) with the default
speech entry, as it is and changed one way at a time: level, silence, noise, length, delivery
tempo at the same pitch, pitch at the same tempo, and both together. For each change it prints
the answers per emotion and the UAR, so a lean that follows one property of the recordings shows
as the row that moves it. Figures and what was concluded: the speech model card ("What draws the
disgust answers").
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from affect import InvalidInputError
from affect.datasets.speech import read_speech_corpus
from affect.labels import EMOTION_NAMES, emotion_index
from affect.speech import SpeechEncoder
from affect.speech._audio import MODEL_RATE, prepare_file
from affect.speech.augment import add_noise, change_gain, change_speed, change_tempo, level_dbfs
from evaluation.answer_shares import answer_counts
from evaluation.recall import uar
from evaluation.speech_answers import prediction

SEMITONES_DOWN = 3


def _trimmed(samples: np.ndarray, margin_s: float = 0.1) -> np.ndarray:
    energy = np.convolve(samples.astype(np.float64) ** 2, np.ones(320) / 320, mode="same")
    loud = np.flatnonzero(energy > energy.max() * 1e-3)
    margin = int(margin_s * MODEL_RATE)
    return samples[max(0, loud[0] - margin): loud[-1] + margin]


def _lower_pitch(samples: np.ndarray) -> np.ndarray:
    """Pitch ``SEMITONES_DOWN`` lower at the same tempo: slowed and lowered by resampling, then
    brought back to its tempo by a stretch that keeps the new pitch."""
    factor = 2 ** (-SEMITONES_DOWN / 12)
    return change_tempo(change_speed(samples, factor), 1 / factor)


def changes(rng: np.random.Generator) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    silence = np.zeros(MODEL_RATE, dtype=np.float32)
    return {
        "as they are": lambda x: x,
        "20 dB quieter": lambda x: change_gain(x, -20),
        "levelled to -20 dBFS": lambda x: change_gain(x, -20 - level_dbfs(x)),
        "silence trimmed (0.1 s kept)": _trimmed,
        "1 s of silence added each side": lambda x: np.concatenate([silence, x, silence]),
        "white noise at 20 dB SNR": lambda x: add_noise(x, 20, rng),
        "the clip said twice": lambda x: np.concatenate([x, x]),
        "30% faster, same pitch": lambda x: change_tempo(x, 1.3),
        "23% slower, same pitch": lambda x: change_tempo(x, 1 / 1.3),
        f"{SEMITONES_DOWN} semitones lower, same tempo": _lower_pitch,
        "25% faster and higher (resampled)": lambda x: change_speed(x, 1.25),
        "20% slower and lower (resampled)": lambda x: change_speed(x, 0.8),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full-data", type=Path, default=Path("/work/full-data"))
    ap.add_argument("--corpus", default="tess")
    ap.add_argument("--every", type=int, default=10)
    args = ap.parse_args(argv)
    clips, audio = read_speech_corpus(args.corpus, args.full_data, "test")[:: args.every], []
    for clip in clips:
        try:
            audio.append((prepare_file(clip.path).samples, emotion_index(clip.emotion)))
        except InvalidInputError:  # refused by the library's contract, as the benchmark leaves it out
            continue
    gold = np.array([label for _, label in audio])
    encoder = SpeechEncoder()
    print(f"{len(audio)} clips of {args.corpus} (every {args.every}th), {encoder.model_id}\n")
    print(f"| the clips | {' | '.join(EMOTION_NAMES)} | UAR |")
    print("|---|" + "---|" * (len(EMOTION_NAMES) + 1))
    for name, change in changes(np.random.default_rng(0)).items():
        pred = []
        for samples, _ in tqdm(audio, desc=name, leave=False):
            pred.append(prediction(encoder.analyze(change(samples), MODEL_RATE))[0])
        pred = np.array(pred)
        counts = " | ".join(map(str, answer_counts(pred, len(EMOTION_NAMES))))
        print(f"| {name} | {counts} | {uar(gold, pred):.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Speech baseline: MFCC (+ deltas) and pitch/energy statistics per clip, standardised per speaker,
with a logistic regression. Trained on RAVDESS actors 1-20 in the same run that tests it.

Per-speaker standardisation z-scores every feature over the clips of the same actor (for the
test actors too, over their own clips): it removes voice and microphone differences, the usual
trick of classic speech-emotion baselines, and gives the baseline an advantage the real
encoder (which sees one turn at a time) does not have.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torchaudio.functional as AF
import torchaudio.transforms as T

from affect.speech._audio import MODEL_RATE

N_MFCC = 20
_mfcc = T.MFCC(MODEL_RATE, n_mfcc=N_MFCC, melkwargs={"n_fft": 400, "hop_length": 160, "n_mels": 40})


def _stats(x: np.ndarray) -> list[float]:
    if x.size == 0:
        return [0.0] * 5
    return [float(x.mean()), float(x.std()), float(np.percentile(x, 10)), float(np.percentile(x, 90)),
            float(np.percentile(x, 90) - np.percentile(x, 10))]


def clip_features(samples: np.ndarray) -> np.ndarray:
    """One vector per clip: MFCC/delta/delta-delta means and deviations, pitch and energy statistics."""
    x = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))
    mfcc = _mfcc(x)
    d1 = AF.compute_deltas(mfcc)
    d2 = AF.compute_deltas(d1)
    spectral = torch.cat([mfcc, d1, d2])  # [60, frames]
    frames = x[: len(x) // 160 * 160].reshape(-1, 160)
    log_energy = (frames.pow(2).mean(1) + 1e-10).log10().numpy()
    loud = log_energy > log_energy.max() - 3.0  # frames within 30 dB of the peak: roughly the speech
    pitch = AF.detect_pitch_frequency(x, MODEL_RATE, freq_low=70, freq_high=400).numpy()
    pitch = pitch[(pitch > 70) & (pitch < 400)]
    return np.concatenate([
        spectral.mean(1).numpy(), spectral.std(1).numpy(),
        _stats(log_energy[loud]), [float(loud.mean())],
        _stats(np.log(pitch)) if pitch.size else [0.0] * 5,
    ]).astype(np.float64)


def standardise_per_speaker(features: np.ndarray, speakers: Sequence[int]) -> np.ndarray:
    out = np.empty_like(features)
    speakers = np.asarray(speakers)
    for s in np.unique(speakers):
        rows = speakers == s
        mu, sd = features[rows].mean(0), features[rows].std(0)
        out[rows] = (features[rows] - mu) / np.where(sd > 1e-8, sd, 1.0)
    return out


class MfccBaseline:
    """Fit on (features, speakers, labels) of the training actors; predict for other actors."""

    def __init__(self, C: float = 0.1, seed: int = 0) -> None:
        from sklearn.linear_model import LogisticRegression

        self.model = LogisticRegression(C=C, max_iter=5000, class_weight="balanced", random_state=seed)

    def fit(self, features: np.ndarray, speakers: Sequence[int], labels: Sequence[int]) -> "MfccBaseline":
        self.model.fit(standardise_per_speaker(features, speakers), np.asarray(labels))
        return self

    def predict(self, features: np.ndarray, speakers: Sequence[int]) -> np.ndarray:
        return self.model.predict(standardise_per_speaker(features, speakers))


def features_of(clips: Sequence[np.ndarray], on_clip: Callable[[], None] | None = None) -> np.ndarray:
    out = []
    for samples in clips:
        out.append(clip_features(samples))
        if on_clip:
            on_clip()
    return np.stack(out)

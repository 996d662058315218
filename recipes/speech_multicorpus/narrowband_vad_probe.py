"""Probe (not shipped): how the voice activity detector should read phone-line (narrowband) audio.

    python -m recipes.speech_multicorpus.narrowband_vad_probe [--full-data /work/full-data] [--every 3]

Reads VALIDATION speakers only (``affect.datasets.speech.SPEAKER_SPLITS``: RAVDESS 21-22, EmoDB 10
and 14, URDU's five, EMOVO f3), every ``--every``-th clip of each corpus. No test speaker is read.

Speech: each clip is resampled to 16 kHz as the library does; today's detector (16 kHz, threshold
0.5) finds its first and last speech, and that stretch is cut into back-to-back slices of 0.3, 0.5
and 1.0 s. Each slice is read as is (clean, at the file's own rate) and as a phone line delivers it
(``affect.speech.augment.telephone_band`` of the whole clip, kept at 8 kHz, the slice cut at the
same times and handed to the library at 8 kHz, which resamples it to 16 kHz). A slice counts as
found when the detector, starting afresh on it, returns any speech span.

Non-speech, the same lengths: synthetic signals (white and pink noise at -60 to -20 dBFS, 50/60 Hz
mains hum with harmonics, silence with faint line noise, DTMF digits, dial, ring-back and busy
tones), each through the same phone band and handed over at 8 kHz; plus the stretches before the
first and after the last speech of the clips, cut into slices in which today's clean path finds
none, through the same phone band. The same signals unbanded at 16 kHz (and the clean silences)
are the wideband non-speech set. A non-speech slice found as speech is a false detection.

Candidates (a clip's path is chosen by ``affect.speech._channel.detect_channel`` of its whole
16 kHz audio and source rate, known before the detector runs; wideband clips always take today's
path, 16 kHz at threshold 0.5):
  a   today: every clip at 16 kHz, threshold 0.5;
  b   narrowband clips decimated to 8 kHz and read by Silero's native 8 kHz mode (256-sample
      windows), threshold 0.5;
  c   narrowband clips at 16 kHz with threshold 0.35, or 0.3;
  d   b with threshold 0.35, or 0.3.
(The detector's "off" threshold is Silero's default, 0.15 under the threshold.)

Choice rule, written before the probe was first run (2026-12-08):
  A candidate is eligible when (1) its false-detection share on the narrowband non-speech set is
  not above today's by more than 1.0 percentage point at any of the three lengths, (2) its share
  of clean speech slices found is not below today's by more than 1.0 point at any length, and (3)
  its false-detection share on the wideband non-speech set is not above today's by more than 1.0
  point at any length. Among eligible candidates the one with the highest share of narrowband
  0.5 s slices found is adopted, if that share is at least 5 points above today's; within 1.0
  point of the best, the lower pooled narrowband false-detection share wins, then the higher
  threshold, then 16 kHz (the smaller change). Otherwise today's path stays.
Figures and the decision: the speech model card ("Long turns", "Known failure modes").
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from affect.datasets.speech import SPEECH_CORPORA, read_speech_corpus
from affect.speech._audio import MODEL_RATE, prepare_file, resample
from affect.speech._channel import detect_channel
from affect.speech._vad import VadSettings, VoiceActivity
from affect.speech.augment import PHONE_RATE, telephone_band

LENGTHS = (0.3, 0.5, 1.0)
NARROW_RATE = 8_000
WINDOWS = {MODEL_RATE: 512, NARROW_RATE: 256}
# name -> (rate narrowband clips are read at, their threshold)
CANDIDATES: dict[str, tuple[int, float]] = {
    "a 16k 0.5 (today)": (MODEL_RATE, 0.5),
    "b 8k 0.5": (NARROW_RATE, 0.5),
    "c 16k 0.35": (MODEL_RATE, 0.35),
    "c 16k 0.3": (MODEL_RATE, 0.3),
    "d 8k 0.35": (NARROW_RATE, 0.35),
    "d 8k 0.3": (NARROW_RATE, 0.3),
}
TODAY = "a 16k 0.5 (today)"


@dataclass(frozen=True)
class Slice:
    """16 kHz samples as the library holds them, with the rate they arrived at."""

    samples: np.ndarray
    source_rate: int
    kind: str
    length: float


def probabilities(model: torch.jit.ScriptModule, clips: list[np.ndarray], rate: int) -> list[list[float]]:
    """Silero's speech probability per window, every clip its own batch row from a fresh state."""
    window = WINDOWS[rate]
    longest = max(max(len(c) for c in clips), window)
    padded = -(-longest // window) * window
    rows = np.zeros((len(clips), padded), dtype=np.float32)
    for row, clip in enumerate(clips):
        rows[row, : len(clip)] = clip
    batch = torch.from_numpy(rows)
    with torch.inference_mode():
        model.reset_states()
        probs = torch.cat([model(batch[:, i : i + window], rate) for i in range(0, padded, window)], 1)
    return [probs[row, : max(1, -(-len(clip) // window))].tolist() for row, clip in enumerate(clips)]


def found(vad: VoiceActivity, probs: list[float], n_samples: int, rate: int, threshold: float) -> bool:
    s = vad.settings
    spans = vad._from_probs(probs, sampling_rate=rate, threshold=threshold, min_speech_duration_ms=s.min_speech_ms,
                            min_silence_duration_ms=s.min_silence_ms, speech_pad_ms=s.speech_pad_ms,
                            max_speech_duration_s=s.max_segment_s,
                            audio_length_samples=max(n_samples, WINDOWS[rate]))
    return any(int(t["start"]) < n_samples for t in spans)


def phone_line(samples16k: np.ndarray) -> np.ndarray:
    """The phone band of 16 kHz audio, as delivered: 8 kHz samples."""
    return telephone_band(samples16k, MODEL_RATE, back_to_rate=False)


def delivered(samples8k: np.ndarray) -> np.ndarray:
    """What the library holds of 8 kHz audio: resampled to 16 kHz (``prepare_array``)."""
    return resample(samples8k, PHONE_RATE, MODEL_RATE)


def cut(start: int, end: int, length: float, rate: int) -> Iterator[tuple[int, int]]:
    step = int(round(length * rate))
    for at in range(start, end - step + 1, step):
        yield at, at + step


def speech_and_silence(vad: VoiceActivity, full_data: Path, every: int) -> tuple[list[Slice], list[Slice], list[Slice]]:
    """(speech slices clean and phone-band, clean silence slices, phone-band silence slices)."""
    speech: list[Slice] = []
    quiet_clean: list[Slice] = []
    quiet_phone: list[Slice] = []
    clips = []
    for corpus in SPEECH_CORPORA:
        chosen = read_speech_corpus(corpus, full_data, "validation")[::every]
        assert all(c.split == "validation" for c in chosen)
        clips += chosen
        print(f"{corpus}: {len(chosen)} validation clips ({', '.join(sorted({c.speaker for c in chosen}))})")
    for clip in clips:
        audio = prepare_file(clip.path)
        x = audio.samples
        spans = vad.speech_spans(x)
        if not spans:
            continue
        first, last = spans[0][0], spans[-1][1]
        phone8k = phone_line(x)
        for length in LENGTHS:
            for s, e in cut(first, last, length, MODEL_RATE):
                speech.append(Slice(x[s:e], audio.source_rate, f"clean/{clip.corpus}", length))
                speech.append(Slice(delivered(phone8k[s // 2 : e // 2]), PHONE_RATE, f"phone/{clip.corpus}", length))
            for lo, hi in ((0, first), (last, len(x))):
                for s, e in cut(lo, hi, length, MODEL_RATE):
                    quiet_clean.append(Slice(x[s:e], audio.source_rate, "clip silence", length))
                    quiet_phone.append(Slice(delivered(phone8k[s // 2 : e // 2]), PHONE_RATE, "clip silence", length))
    # only the silences in which today's clean path finds no speech
    keep = [not spans for spans in vad.speech_spans_many([q.samples for q in quiet_clean])]
    return (speech, [q for q, k in zip(quiet_clean, keep) if k], [q for q, k in zip(quiet_phone, keep) if k])


def _tones(freqs: tuple[float, ...], n: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n) / MODEL_RATE
    x = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)) for f in freqs) / len(freqs)
    return np.asarray(x, dtype=np.float32)


def _keyed(x: np.ndarray, on: float, off: float, rng: np.random.Generator) -> np.ndarray:
    """``x`` switched on for ``on`` seconds and off for ``off``, from a random point of the cycle."""
    phase = (np.arange(len(x)) / MODEL_RATE + rng.uniform(0, on + off)) % (on + off)
    return np.asarray(x * (phase < on), dtype=np.float32)


def _noise(n: int, rng: np.random.Generator, pink: bool) -> np.ndarray:
    x = rng.standard_normal(n)
    if pink:
        spectrum = np.fft.rfft(x)
        spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1.0))
        x = np.fft.irfft(spectrum, n=n)
    return np.asarray(x / np.sqrt(np.mean(x**2)), dtype=np.float32)


def _at(x: np.ndarray, dbfs: float) -> np.ndarray:
    return np.asarray(x * 10 ** (dbfs / 20) / max(np.sqrt(np.mean(x**2)), 1e-12), dtype=np.float32)


DTMF_LOW, DTMF_HIGH = (697.0, 770.0, 852.0, 941.0), (1209.0, 1336.0, 1477.0)


def synthetic(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Non-speech a phone line carries, ``n`` samples at 16 kHz."""
    out: dict[str, np.ndarray] = {}
    for level in (-60, -45, -30, -20):
        out[f"white {level} dBFS"] = _at(_noise(n, rng, False), level)
        out[f"pink {level} dBFS"] = _at(_noise(n, rng, True), level)
    for mains in (50.0, 60.0):
        hum = _tones(tuple(mains * k for k in (1, 2, 3, 5, 7)), n, rng)
        for level in (-40, -20):
            out[f"hum {mains:g} Hz {level} dBFS"] = _at(hum, level)
    out["silence + line noise"] = _at(_noise(n, rng, False), -70) + _at(_tones((50.0, 150.0), n, rng), -65)
    digits = [(lo, hi) for lo in DTMF_LOW for hi in DTMF_HIGH]
    lo, hi = digits[rng.integers(len(digits))]
    out["DTMF held"] = _at(_tones((lo, hi), n, rng), -12)
    out["DTMF keyed (0.1 s on/off)"] = _keyed(_at(_tones((lo, hi), n, rng), -12), 0.1, 0.1, rng)
    out["dial tone 350+440"] = _at(_tones((350.0, 440.0), n, rng), -15)
    out["ring-back 440+480"] = _at(_tones((440.0, 480.0), n, rng), -15)
    out["ring-back UK 400+450 (0.4/0.2)"] = _keyed(_at(_tones((400.0, 450.0), n, rng), -15), 0.4, 0.2, rng)
    out["busy 480+620 (0.5/0.5)"] = _keyed(_at(_tones((480.0, 620.0), n, rng), -15), 0.5, 0.5, rng)
    return {k: np.clip(v, -1, 1).astype(np.float32) for k, v in out.items()}


def synthetic_slices(seeds: int) -> tuple[list[Slice], list[Slice]]:
    """(wideband at 16 kHz, phone band at 8 kHz delivered) slices of every synthetic kind."""
    wide: list[Slice] = []
    phone: list[Slice] = []
    lead = int(0.5 * MODEL_RATE)  # the band filters settle before the slice starts
    for seed in range(seeds):
        rng = np.random.default_rng(1000 + seed)
        for length in LENGTHS:
            n = int(round(length * MODEL_RATE))
            for kind, x in synthetic(lead + n, rng).items():
                wide.append(Slice(x[lead:], MODEL_RATE, kind, length))
                phone.append(Slice(delivered(phone_line(x)[lead // 2 :]), PHONE_RATE, kind, length))
    return wide, phone


def detections(vad: VoiceActivity, slices: list[Slice]) -> dict[str, np.ndarray]:
    """Candidate -> whether speech was found in each slice."""
    channels = [detect_channel(s.samples, s.source_rate) for s in slices]
    narrow8k = [resample(s.samples, MODEL_RATE, NARROW_RATE) for s in slices]
    probs16 = probabilities(vad._model, [s.samples for s in slices], MODEL_RATE)
    probs8 = probabilities(vad._model, narrow8k, NARROW_RATE)
    out = {}
    for name, (rate, threshold) in CANDIDATES.items():
        hits = []
        for s, ch, p16, p8, x8 in zip(slices, channels, probs16, probs8, narrow8k):
            if ch == "wideband":
                hits.append(found(vad, p16, len(s.samples), MODEL_RATE, VadSettings().threshold))
            elif rate == NARROW_RATE:
                hits.append(found(vad, p8, len(x8), NARROW_RATE, threshold))
            else:
                hits.append(found(vad, p16, len(s.samples), MODEL_RATE, threshold))
        out[name] = np.array(hits)
    narrow = sum(c == "narrowband" for c in channels)
    print(f"  ({len(slices)} slices, {narrow} read as narrowband)")
    return out


def shares(slices: list[Slice], hits: np.ndarray) -> dict[float, float]:
    return {length: float(np.mean([h for s, h in zip(slices, hits) if s.length == length])) for length in LENGTHS}


def table(title: str, slices: list[Slice], det: dict[str, np.ndarray]) -> dict[str, dict[float, float]]:
    counts = {length: sum(s.length == length for s in slices) for length in LENGTHS}
    print(f"\n{title} (slices: " + ", ".join(f"{l:g} s {counts[l]}" for l in LENGTHS) + ")")
    print(f"  {'candidate':<22}" + "".join(f"{f'{l:g} s':>9}" for l in LENGTHS) + f"{'pooled':>9}")
    out = {}
    for name, hits in det.items():
        out[name] = shares(slices, hits)
        print(f"  {name:<22}" + "".join(f"{100 * out[name][l]:8.1f}%" for l in LENGTHS) + f"{100 * hits.mean():8.1f}%")
    return out


def by_kind(slices: list[Slice], det: dict[str, np.ndarray]) -> None:
    kinds = sorted({s.kind for s in slices})
    print(f"  {'kind (all lengths)':<34}" + "".join(f"{' '.join(n.split()[:3]):>12}" for n in det))
    for kind in kinds:
        mask = np.array([s.kind == kind for s in slices])
        print(f"  {kind:<34}" + "".join(f"{100 * det[n][mask].mean():11.0f}%" for n in det))


def choose(narrow_speech: dict, clean_speech: dict, narrow_false: dict, wide_false: dict,
           narrow_false_pooled: dict[str, float]) -> str:
    tol = 0.01
    eligible = [n for n in CANDIDATES
                if all(narrow_false[n][l] <= narrow_false[TODAY][l] + tol for l in LENGTHS)
                and all(clean_speech[n][l] >= clean_speech[TODAY][l] - tol for l in LENGTHS)
                and all(wide_false[n][l] <= wide_false[TODAY][l] + tol for l in LENGTHS)]
    print("\neligible: " + "; ".join(eligible))
    best = max(narrow_speech[n][0.5] for n in eligible)
    near = [n for n in eligible if narrow_speech[n][0.5] >= best - tol]
    near.sort(key=lambda n: (narrow_false_pooled[n], -CANDIDATES[n][1], CANDIDATES[n][0] != MODEL_RATE))
    pick = near[0]
    if narrow_speech[pick][0.5] < narrow_speech[TODAY][0.5] + 0.05:
        return TODAY
    return pick


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m recipes.speech_multicorpus.narrowband_vad_probe")
    ap.add_argument("--full-data", type=Path, default=Path("/work/full-data"))
    ap.add_argument("--every", type=int, default=3)
    ap.add_argument("--seeds", type=int, default=8, help="instances of each synthetic kind per length")
    args = ap.parse_args()
    torch.set_num_threads(1)
    vad = VoiceActivity()
    speech, quiet_clean, quiet_phone = speech_and_silence(vad, args.full_data, args.every)
    wide_syn, phone_syn = synthetic_slices(args.seeds)
    clean = [s for s in speech if s.kind.startswith("clean")]
    phone = [s for s in speech if s.kind.startswith("phone")]
    wide_quiet, narrow_quiet = wide_syn + quiet_clean, phone_syn + quiet_phone
    det = {}
    for name, group in (("clean", clean), ("phone", phone), ("wide quiet", wide_quiet), ("narrow quiet", narrow_quiet)):
        print(f"detecting: {name}")
        det[name] = detections(vad, group)
    clean_speech = table("Speech found, clean slices (file's own rate)", clean, det["clean"])
    narrow_speech = table("Speech found, phone-band slices (delivered at 8 kHz)", phone, det["phone"])
    for corpus in SPEECH_CORPORA:
        mask = np.array([s.kind == f"phone/{corpus}" for s in phone])
        table(f"  phone-band, {corpus}", [s for s, m in zip(phone, mask) if m], {n: h[mask] for n, h in det["phone"].items()})
    narrow_false = table("False detections, phone-band non-speech (delivered at 8 kHz)", narrow_quiet, det["narrow quiet"])
    by_kind(narrow_quiet, det["narrow quiet"])
    wide_false = table("False detections, wideband non-speech (16 kHz)", wide_quiet, det["wide quiet"])
    by_kind(wide_quiet, det["wide quiet"])
    pooled = {n: float(h.mean()) for n, h in det["narrow quiet"].items()}
    print(f"\nadopted under the rule: {choose(narrow_speech, clean_speech, narrow_false, wide_false, pooled)}")


if __name__ == "__main__":
    main()

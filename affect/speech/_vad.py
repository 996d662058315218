"""Voice activity: where the speech is, with the Silero VAD model the ``silero-vad`` package ships.

The package's TorchScript model is loaded from the installed wheel (``load_silero_vad()`` reads
``silero_vad/data/silero_vad.jit``), so nothing is downloaded. Speech spans are then grouped
into segments of at most ``max_segment_s`` seconds: a long turn is analysed segment by segment
and the results pooled, a short one is a single segment from its first to its last speech.

A phone line's audio (narrowband: ``affect.speech._channel``) is read at 8 kHz, by the model's own
8 kHz mode, with a lower threshold (``VadSettings.narrowband_rate``, ``narrowband_threshold``):
resampled to 16 kHz, its empty upper band held back the 16 kHz mode's rise on short answers.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from threading import Lock

import numpy as np
import torch

from affect._errors import ModelLoadError
from affect.speech._audio import MODEL_RATE, resample
from affect.speech._channel import Channel

WINDOWS = {MODEL_RATE: 512, 8_000: 256}  # samples per VAD step (32 ms) at the model's two rates
WINDOW = WINDOWS[MODEL_RATE]


@dataclass(frozen=True)
class SpeechSegment:
    """A stretch of speech, in seconds from the start of the turn's audio."""

    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start

    def to_dict(self) -> dict[str, float]:
        return {"start": round(self.start, 3), "end": round(self.end, 3)}


@dataclass(frozen=True)
class VadSettings:
    """The detector's settings. Narrowband clips (a phone line) are read at ``narrowband_rate``
    with ``narrowband_threshold``; wideband ones at 16 kHz with ``threshold``.

    The narrowband pair was chosen by ``recipes/speech_multicorpus/narrowband_vad_probe.py`` under
    a rule written before it ran (validation speakers of the four corpora, 2026-12-07): on
    telephone-band slices it found speech in 82% of 0.5 s slices against 67% for the 16 kHz mode
    at 0.5, with its false detections on phone-line noise, hum and tones within the rule's 1 point
    of that path's (at most 0.6% of a length's 774 slices, keyed DTMF digits, against none), and the
    wideband path unchanged. Its table: the speech model card.
    """

    threshold: float = 0.5
    min_speech_ms: int = 250
    min_silence_ms: int = 300
    speech_pad_ms: int = 100
    max_segment_s: float = 12.0
    narrowband_rate: int = 8_000
    narrowband_threshold: float = 0.35

    @property
    def shortest_turn_s(self) -> float:
        """The shortest audio in which the detector can be expected to find speech: ``min_speech_ms``
        of it with ``speech_pad_ms`` either side, rounded up to a tenth of a second (0.5 s).

        The detector keeps speech only once it has lasted ``min_speech_ms``, and its model, which
        starts afresh on each turn, takes a few 32 ms windows to rise to its threshold. Cut into
        back-to-back slices from its first speech to its last (every third clip of the validation
        speakers of RAVDESS, EmoDB, URDU and EMOVO, 2026-12-07; ``recipes/speech_multicorpus/
        narrowband_vad_probe.py``), it found speech in 98% of clean 1 s slices, 91% of 0.5 s ones
        and 47% of 0.3 s ones (the clean clips a phone line's rule calls narrowband, mostly URDU's, on
        the narrowband path; 89% and 46% all at 16 kHz); through an 8 kHz phone band, on the narrowband path (8 kHz mode,
        threshold 0.35), in 95%, 82% and 34% (the 16 kHz mode at 0.5, the path before: 91%, 67%,
        16%). Shorter audio is still read when speech is found in it; only the reason for finding
        none differs (``too_short``).
        """
        return math.ceil((self.min_speech_ms + 2 * self.speech_pad_ms) / 100) / 10

    def too_short(self, seconds: float) -> str | None:
        """Why a turn of ``seconds`` of audio in which no speech was found has no speech reading,
        when it is shorter than ``shortest_turn_s`` (a streaming frame rather than an utterance);
        ``None`` when it is long enough, and no speech was there to find (``NO_SPEECH``)."""
        if seconds >= self.shortest_turn_s:
            return None
        return f"audio too short ({seconds:.2f} s; at least {self.shortest_turn_s:g} s needed: send one utterance per turn)"


class VoiceActivity:
    """Silero VAD over 16 kHz audio (narrowband clips at ``VadSettings.narrowband_rate``). Not
    re-entrant: one call at a time (guarded by a lock)."""

    def __init__(self, settings: VadSettings | None = None) -> None:
        self.settings = settings or VadSettings()
        if self.settings.narrowband_rate not in WINDOWS:
            raise ValueError(f"narrowband_rate must be one of Silero VAD's rates {sorted(WINDOWS)}, "
                             f"got {self.settings.narrowband_rate}")
        threads = torch.get_num_threads()
        try:
            from silero_vad import load_silero_vad
            from silero_vad.utils_vad import get_speech_timestamps_from_probs

            with warnings.catch_warnings():  # the package finds its own file with a deprecated importlib call
                warnings.simplefilter("ignore", DeprecationWarning)
                self._model = load_silero_vad(onnx=False)
        except Exception as exc:  # ImportError, or a damaged package
            raise ModelLoadError(f"the speech branch needs the 'silero-vad' package's VAD model: {exc}") from exc
        finally:
            torch.set_num_threads(threads)  # silero_vad sets 1 thread at import; keep the caller's choice
        self._from_probs = get_speech_timestamps_from_probs
        self._lock = Lock()

    def speech_probabilities(self, clips: list[np.ndarray], rate: int = MODEL_RATE) -> list[list[float]]:
        """Silero's speech probability for every 32 ms window of every clip, all at ``rate``
        (16 or 8 kHz).

        The clips are stepped together, one batch row each (the model keeps a state per row),
        so many turns cost about as many model calls as the longest of them. A row's windows
        past its own end are padding and are dropped; the rest equal a clip-by-clip pass.
        """
        if not clips:
            return []
        window = WINDOWS[rate]
        longest = max(max(len(c) for c in clips), window)
        padded = -(-longest // window) * window
        rows = np.zeros((len(clips), padded), dtype=np.float32)
        for row, clip in enumerate(clips):
            rows[row, : len(clip)] = clip  # a read-only clip (a decoded wire buffer) is copied, never wrapped
        batch = torch.from_numpy(rows)
        with self._lock, torch.inference_mode():
            # The model is stepped over 32 ms windows: tiny ops that several threads only slow
            # down (2-10x on a busy CPU), so it runs on one thread, as its authors advise.
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                self._model.reset_states()
                probs = torch.cat([self._model(batch[:, i : i + window], rate) for i in range(0, padded, window)], 1)
            finally:
                torch.set_num_threads(threads)
        return [probs[row, : max(1, -(-len(clip) // window))].tolist() for row, clip in enumerate(clips)]

    def speech_spans_many(self, clips: list[np.ndarray],
                          channels: Sequence[Channel] | None = None) -> list[list[tuple[int, int]]]:
        """``(start, end)`` 16 kHz sample indices of each speech span of each clip, in order.

        ``channels`` (one per clip; all wideband when not given) sends the narrowband clips down
        their own path: decimated to ``narrowband_rate`` and stepped as one batch at
        ``narrowband_threshold``; the wideband clips are another batch, at 16 kHz and ``threshold``.
        """
        s = self.settings
        channels = channels or ["wideband"] * len(clips)
        if len(channels) != len(clips):
            raise ValueError(f"{len(channels)} channels for {len(clips)} clips")
        out: list[list[tuple[int, int]]] = [[] for _ in clips]
        for channel in ("wideband", "narrowband"):
            todo = [i for i, c in enumerate(channels) if c == channel]
            if not todo:
                continue
            rate, threshold = (s.narrowband_rate, s.narrowband_threshold) if channel == "narrowband" else (MODEL_RATE, s.threshold)
            read = [resample(clips[i], MODEL_RATE, rate) for i in todo]
            for i, clip, probs in zip(todo, read, self.speech_probabilities(read, rate)):
                spans = self._from_probs(
                    probs,
                    sampling_rate=rate,
                    threshold=threshold,
                    min_speech_duration_ms=s.min_speech_ms,
                    min_silence_duration_ms=s.min_silence_ms,
                    speech_pad_ms=s.speech_pad_ms,
                    max_speech_duration_s=s.max_segment_s,
                    audio_length_samples=max(len(clip), WINDOWS[rate]),
                )
                scale, n = MODEL_RATE / rate, len(clips[i])
                out[i] = [(int(t["start"] * scale), min(int(t["end"] * scale), n)) for t in spans if int(t["start"] * scale) < n]
        return out

    def speech_spans(self, samples: np.ndarray, channel: Channel = "wideband") -> list[tuple[int, int]]:
        """``(start, end)`` sample indices of each speech span, in order."""
        return self.speech_spans_many([samples], [channel])[0]

    def segments_many(self, clips: list[np.ndarray],
                      channels: Sequence[Channel] | None = None) -> list[list[tuple[int, int]]]:
        """:meth:`segments` of many clips, their VAD run as one batch per channel."""
        return [self._merge(spans) for spans in self.speech_spans_many(clips, channels)]

    def segments(self, samples: np.ndarray, channel: Channel = "wideband") -> list[tuple[int, int]]:
        """Speech spans merged, in order, into segments no longer than ``max_segment_s``."""
        return self._merge(self.speech_spans(samples, channel))

    def _merge(self, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
        limit = int(self.settings.max_segment_s * MODEL_RATE)
        merged: list[tuple[int, int]] = []
        for start, end in spans:
            if merged and end - merged[-1][0] <= limit:
                merged[-1] = (merged[-1][0], end)
            else:
                merged.append((start, end))
        return merged

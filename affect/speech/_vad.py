"""Voice activity: where the speech is, with the Silero VAD model the ``silero-vad`` package ships.

The package's TorchScript model is loaded from the installed wheel (``load_silero_vad()`` reads
``silero_vad/data/silero_vad.jit``), so nothing is downloaded. Speech spans are then grouped
into segments of at most ``max_segment_s`` seconds: a long turn is analysed segment by segment
and the results pooled, a short one is a single segment from its first to its last speech.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from threading import Lock

import numpy as np
import torch

from affect._errors import ModelLoadError
from affect.speech._audio import MODEL_RATE

WINDOW = 512  # samples per VAD step at 16 kHz (32 ms)


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
    threshold: float = 0.5
    min_speech_ms: int = 250
    min_silence_ms: int = 300
    speech_pad_ms: int = 100
    max_segment_s: float = 12.0

    @property
    def shortest_turn_s(self) -> float:
        """The shortest audio in which the detector can be expected to find speech: ``min_speech_ms``
        of it with ``speech_pad_ms`` either side, rounded up to a tenth of a second (0.5 s).

        The detector keeps speech only once it has lasted ``min_speech_ms``, and its model, which
        starts afresh on each turn, takes a few 32 ms windows to rise to ``threshold``: from the
        middle of an utterance a median of 2 on RAVDESS test speech at 16 kHz, 7 to 8 through an
        8 kHz phone band. Cut into slices from its first speech to its last (every sixth clip of
        actors 23 and 24), it found speech in 96-97% of 1 s slices, 83% of 0.5 s ones (49% at
        8 kHz), 33% of 0.3 s ones (2%) and none of 0.25 s (2026-12-07). Shorter audio is still
        read when speech is found in it; only the reason for finding none differs (``too_short``).
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
    """Silero VAD over 16 kHz audio. Not re-entrant: one call at a time (guarded by a lock)."""

    def __init__(self, settings: VadSettings | None = None) -> None:
        self.settings = settings or VadSettings()
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

    def speech_probabilities(self, clips: list[np.ndarray]) -> list[list[float]]:
        """Silero's speech probability for every 32 ms window of every clip.

        The clips are stepped together, one batch row each (the model keeps a state per row),
        so many turns cost about as many model calls as the longest of them. A row's windows
        past its own end are padding and are dropped; the rest equal a clip-by-clip pass.
        """
        if not clips:
            return []
        longest = max(max(len(c) for c in clips), WINDOW)
        padded = -(-longest // WINDOW) * WINDOW
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
                probs = torch.cat([self._model(batch[:, i : i + WINDOW], MODEL_RATE) for i in range(0, padded, WINDOW)], 1)
            finally:
                torch.set_num_threads(threads)
        return [probs[row, : max(1, -(-len(clip) // WINDOW))].tolist() for row, clip in enumerate(clips)]

    def speech_spans_many(self, clips: list[np.ndarray]) -> list[list[tuple[int, int]]]:
        """``(start, end)`` sample indices of each speech span of each clip, in order."""
        s = self.settings
        out = []
        for clip, probs in zip(clips, self.speech_probabilities(clips)):
            spans = self._from_probs(
                probs,
                sampling_rate=MODEL_RATE,
                threshold=s.threshold,
                min_speech_duration_ms=s.min_speech_ms,
                min_silence_duration_ms=s.min_silence_ms,
                speech_pad_ms=s.speech_pad_ms,
                max_speech_duration_s=s.max_segment_s,
                audio_length_samples=max(len(clip), WINDOW),
            )
            n = len(clip)
            out.append([(int(t["start"]), min(int(t["end"]), n)) for t in spans if int(t["start"]) < n])
        return out

    def speech_spans(self, samples: np.ndarray) -> list[tuple[int, int]]:
        """``(start, end)`` sample indices of each speech span, in order."""
        return self.speech_spans_many([samples])[0]

    def segments_many(self, clips: list[np.ndarray]) -> list[list[tuple[int, int]]]:
        """:meth:`segments` of many clips, their VAD run as one batch."""
        return [self._merge(spans) for spans in self.speech_spans_many(clips)]

    def segments(self, samples: np.ndarray) -> list[tuple[int, int]]:
        """Speech spans merged, in order, into segments no longer than ``max_segment_s``."""
        return self._merge(self.speech_spans(samples))

    def _merge(self, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
        limit = int(self.settings.max_segment_s * MODEL_RATE)
        merged: list[tuple[int, int]] = []
        for start, end in spans:
            if merged and end - merged[-1][0] <= limit:
                merged[-1] = (merged[-1][0], end)
            else:
                merged.append((start, end))
        return merged

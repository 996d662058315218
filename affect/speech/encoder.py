"""The speech encoder: emotion, sentiment, valence and arousal of a turn's audio, fully offline.

Pipeline: validate and resample to 16 kHz mono -> Silero VAD finds the speech (a phone line's by
its own 8 kHz mode; none: the answer is "no speech detected", or "audio too short (...)" for audio
shorter than an utterance) -> speech is grouped into segments of at most 12 s -> each segment goes
through the frozen Whisper tiny.en encoder and the trained head -> segment probabilities are
pooled, weighted by segment length.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from threading import Lock
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch

from affect._errors import InvalidInputError
from affect.results import AffectEstimate, Modality, ModalityResult
from affect.media import AudioFile, AudioInput
from affect.speech._audio import DEFAULT_MAX_SECONDS, MODEL_RATE, Audio, prepare_array, prepare_file
from affect.speech._backbone import BACKBONES, WhisperBackbone, valid_outputs
from affect.speech._network import pad_frames
from affect.labels import sentiment_from_emotions
from affect.speech._vad import SpeechSegment, VadSettings, VoiceActivity
from affect.speech._weights_io import load_speech_head
from affect.speech._channel import Channel, detect_channel
from affect.speech.adaptation import ChannelReader
from affect.speech.weights import SpeechWeights
from affect.turn_flow import ConversationOptions
from affect_proto.rules import file_bytes_with_rate_problem

if TYPE_CHECKING:
    from affect.conversation import PreparedTurn, Turn

NO_SPEECH = "no speech detected"


@dataclass(frozen=True)
class PreparedClip:
    """A turn's audio after validation and resampling: what the batch call consumes.

    ``spans`` (the sample ranges of the segments to analyse) are ``None`` until the voice
    activity detector has run; the batch call runs it for all its clips at once. Holds the
    16 kHz samples only until it is analysed; nothing in it is ever logged.
    """

    audio: Audio
    spans: tuple[tuple[int, int], ...] | None = None

    @property
    def segments(self) -> tuple[SpeechSegment, ...]:
        return tuple(SpeechSegment(s / MODEL_RATE, e / MODEL_RATE) for s, e in self.spans or ())


@dataclass(frozen=True)
class SpeechResult:
    """What the speech branch says about one turn.

    ``result`` is ``None`` when there is nothing to analyse, and ``reason`` then says why
    (``"no speech detected"``, or for audio shorter than ``VadSettings.shortest_turn_s``
    ``"audio too short (0.25 s; at least 0.5 s needed: send one utterance per turn)"``).
    ``segments`` are the speech stretches found (seconds from the start), ``segment_results`` the
    reading of each; ``result`` pools them by length.
    """

    result: ModalityResult | None
    reason: str | None
    segments: tuple[SpeechSegment, ...] = ()
    segment_results: tuple[ModalityResult, ...] = ()
    duration: float = 0.0
    source_rate: int = MODEL_RATE

    @property
    def has_speech(self) -> bool:
        return self.result is not None

    @property
    def speech_seconds(self) -> float:
        return sum(s.duration for s in self.segments)

    def to_dict(self) -> dict[str, Any]:
        return {
            "result": None if self.result is None else self.result.to_dict(),
            "reason": self.reason,
            "segments": [
                s.to_dict() | {"emotion": r.emotion.value, "confidence": r.confidence}
                for s, r in zip(self.segments, self.segment_results)
            ] if self.segment_results else [s.to_dict() for s in self.segments],
            "duration": round(self.duration, 3),
            "speech_seconds": round(self.speech_seconds, 3),
            "source_rate": self.source_rate,
        }


@dataclass(frozen=True)
class SpeechRequest:
    """One turn for ``analyze_many``: an array with its sample rate, or a file (path or bytes)."""

    audio: AudioInput
    sample_rate: int | None = None


def prepare_clip(audio: AudioInput, sample_rate: int | None = None, *,
                 max_seconds: float = DEFAULT_MAX_SECONDS) -> PreparedClip:
    """A turn's audio checked and resampled to 16 kHz, with no model: what
    :meth:`SpeechEncoder.prepare` does, usable where the encoder runs elsewhere."""
    check_audio_source(audio, sample_rate)
    if isinstance(audio, (np.ndarray, torch.Tensor)):
        clip = prepare_array(audio, sample_rate, max_seconds=max_seconds)
    else:
        clip = prepare_file(audio, max_seconds=max_seconds)
    return PreparedClip(audio=clip)


def check_audio_source(audio: object, sample_rate: int | None) -> None:
    """Refuse audio of a kind the encoder cannot read, before anything is decoded: what is not
    an ``affect.media.AudioInput``, and bytes given a ``sample_rate`` (raw samples, which would be
    read as a file: ``affect_proto.rules.file_bytes_with_rate_problem``)."""
    if isinstance(audio, (np.ndarray, torch.Tensor)):
        if sample_rate is None:
            raise InvalidInputError("sample_rate is required with an array of samples", field="sample_rate")
    elif not isinstance(audio, (str, Path, bytes, bytearray, memoryview)):
        raise InvalidInputError(
            f"audio must be a numpy array, a tensor, a file path or a file's bytes, got {type(audio).__name__}",
            field="audio",
        )
    elif problem := file_bytes_with_rate_problem(audio, sample_rate, "np.frombuffer(data, np.int16) with sample_rate="):
        raise InvalidInputError(problem, field="audio")


@dataclass(frozen=True)
class SpeechTurns:
    """What a conversation needs of a speech encoder (``affect.turn_flow.ModalityTurns``), here or
    in another process: the audio checks. Each turn's audio is decoded and resampled where the
    turn enters; the voice activity detector runs in the batch call."""

    model_id: str
    max_seconds: float
    modality: ClassVar[Modality] = Modality.SPEECH
    batch_method: ClassVar[str] = "analyze_prepared"

    def new_state(self, options: ConversationOptions) -> None:
        return None

    def check(self, turn: "Turn") -> None:
        check_audio_source(turn.audio, turn.sample_rate)

    def requests(self, turn: "Turn", state: None) -> list[PreparedClip]:
        assert turn.audio is not None  # asked only of a turn that carries audio
        return [prepare_clip(turn.audio, turn.sample_rate, max_seconds=self.max_seconds)]

    def record(self, prepared: "PreparedTurn", answers: list[Any], state: None) -> None:
        """A result, or why there is none ("no speech detected", "audio too short (...)")."""
        (analysis,) = answers
        if analysis.result is not None:
            prepared.results[Modality.SPEECH] = analysis.result
        else:
            prepared.absent[Modality.SPEECH] = analysis.reason

    def forget_speaker(self, state: None, speaker: str, former: str) -> None:
        """Nothing is kept per conversation (``adapt``'s running statistics are the encoder's own)."""


class SpeechEncoder:
    """Emotion from the voice, offline: Silero VAD + frozen Whisper tiny.en encoder + a trained head.

    >>> encoder = SpeechEncoder()
    >>> answer = encoder.analyze(samples, sample_rate=8000)  # or encoder.analyze_file("turn.wav")
    >>> answer.result.emotion if answer.has_speech else answer.reason
    """

    modality = Modality.SPEECH

    def __init__(
        self,
        *,
        weights: SpeechWeights | str | None = None,
        max_seconds: float = DEFAULT_MAX_SECONDS,
        vad: VadSettings | None = None,
        threads: int | None = None,
        adapt: bool = False,
    ) -> None:
        """``adapt``: read each voice against the running statistics of all the speech this encoder
        has heard (``affect.speech.adaptation``), for weights trained with corpus statistics.
        Answers then depend on the traffic heard before (not reproducible turn by turn); off, the
        head reads every turn against its training statistics."""
        if not max_seconds > 0:
            raise ValueError("max_seconds must be positive")
        self.weights = SpeechWeights.resolve(weights)
        self.model_id = self.weights.value.id
        self.max_seconds = float(max_seconds)
        self.head, self.train_meta = load_speech_head(self.weights.value.verified_path())
        if adapt and self.head.standardise is None:
            raise InvalidInputError(f"adapt=True needs speech weights trained with corpus statistics; {self.model_id} "
                                    f"was not (the default, {SpeechWeights.DEFAULT.value.id}, is)", field="adapt")
        # Weights with training statistics read each clip against those of its channel (or, adapting,
        # against this deployment's running statistics for that channel).
        self.reader = ChannelReader(self.head.standardise, adapt=adapt) if self.head.standardise is not None else None
        self.temperature = float(self.train_meta.get("temperature", 1.0))  # fitted on the validation actors
        # The head names its encoder; round-1 weights name it by description (tiny.en).
        backbone = self.train_meta.get("backbone")
        self.backbone = WhisperBackbone(backbone if backbone in BACKBONES else None, threads=threads)
        self.vad = VoiceActivity(vad)
        self._lock = Lock()

    @property
    def turns(self) -> SpeechTurns:
        return SpeechTurns(self.model_id, self.max_seconds)

    # -- preparing -----------------------------------------------------------------------
    def prepare(self, audio: AudioInput, sample_rate: int | None = None) -> PreparedClip:
        """Validate and resample (cheap; the speech is found in the batch call). Arrays need
        ``sample_rate``; files carry their own."""
        return prepare_clip(audio, sample_rate, max_seconds=self.max_seconds)

    def find_speech(self, clips: Sequence[PreparedClip]) -> list[PreparedClip]:
        """The clips with their speech segments found, by one batched VAD pass (one per channel)
        over those without. A clip's channel for the VAD is told from all its audio (its speech is
        not found yet): a phone line's is read by the VAD's narrowband path (``VadSettings``)."""
        todo = [i for i, clip in enumerate(clips) if clip.spans is None]
        channels = [detect_channel(clips[i].audio.samples, clips[i].audio.source_rate) for i in todo]
        found = self.vad.segments_many([clips[i].audio.samples for i in todo], channels) if todo else []
        out = list(clips)
        for i, spans in zip(todo, found):
            out[i] = replace(clips[i], spans=tuple(spans))
        return out

    # -- analysing -----------------------------------------------------------------------
    def analyze(self, audio: AudioInput, sample_rate: int | None = None) -> SpeechResult:
        """One turn: samples with their ``sample_rate``, or a WAV/FLAC/OGG file (path or bytes)."""
        return self.analyze_prepared([self.prepare(audio, sample_rate)])[0]

    def analyze_file(self, path: AudioFile) -> SpeechResult:
        return self.analyze(path)

    def analyze_many(self, requests: Sequence[SpeechRequest]) -> list[SpeechResult]:
        """Many turns: each prepared, then all analysed in one batch (see ``analyze_prepared``)."""
        return self.analyze_prepared([self.prepare(r.audio, r.sample_rate) for r in requests])

    def analyze_prepared(self, clips: Sequence[PreparedClip]) -> list[SpeechResult]:
        """Many prepared clips at once: the server's batch call.

        The voice activity detector steps through all clips together, segments of equal
        padded length share one encoder call, and the head reads every segment of every clip
        in a single forward pass.
        """
        clips = self.find_speech(clips)
        jobs = [(ci, s, e) for ci, clip in enumerate(clips) for s, e in clip.spans or ()]
        channels = [self._channel(clip) for clip in clips]
        probs = (self._segment_probs([clips[ci].audio.samples[s:e] for ci, s, e in jobs], [channels[ci] for ci, _, _ in jobs])
                 if jobs else np.zeros((0, 7)))
        per_clip: dict[int, list[tuple[float, np.ndarray]]] = defaultdict(list)
        for (ci, s, e), p in zip(jobs, probs):
            per_clip[ci].append(((e - s) / MODEL_RATE, p))
        return [self._answer(clip, per_clip.get(ci, [])) for ci, clip in enumerate(clips)]

    def _channel(self, clip: PreparedClip) -> Channel:
        """The line the clip's speech came through, told from its speech alone (not its pauses)."""
        if self.reader is None or not clip.spans:
            return "wideband"
        speech = np.concatenate([clip.audio.samples[s:e] for s, e in clip.spans])
        return detect_channel(speech, clip.audio.source_rate)

    def _segment_probs(self, segments: list[np.ndarray], channels: list[Channel]) -> np.ndarray:
        feats = self.backbone.features
        by_length: dict[int, list[int]] = defaultdict(list)
        mels = [feats(seg) for seg in segments]
        for i, mel in enumerate(mels):
            by_length[mel.shape[1]].append(i)
        frames: list[torch.Tensor | None] = [None] * len(segments)
        for same_length in by_length.values():
            for idx in _calls(same_length, mels[same_length[0]].shape[1]):
                out = self.backbone.encode_features(np.stack([mels[i] for i in idx]))
                for row, i in zip(out, idx):
                    frames[i] = torch.from_numpy(row[: valid_outputs(len(segments[i]))].copy())
        present = [f for f in frames if f is not None]  # every segment has its frames; the filter is for the type
        if self.reader is not None:
            present = self.reader.map(present, [c for f, c in zip(frames, channels) if f is not None])
        probs = []
        with self._lock, torch.inference_mode():
            for idx in _calls(range(len(present)), max((len(f) for f in present), default=1) * 2):
                batch, mask = pad_frames([present[i] for i in idx])
                probs.append(torch.softmax(self.head(batch, mask) / self.temperature, dim=-1).numpy())
        return np.concatenate(probs) if probs else np.zeros((0, 7))

    def _answer(self, clip: PreparedClip, parts: list[tuple[float, np.ndarray]]) -> SpeechResult:
        common: dict[str, Any] = {"segments": clip.segments, "duration": clip.audio.duration, "source_rate": clip.audio.source_rate}
        if not parts:
            reason = self.vad.settings.too_short(clip.audio.duration) or NO_SPEECH
            return SpeechResult(result=None, reason=reason, **common)
        seconds = np.array([w for w, _ in parts])
        pooled = (seconds[:, None] * np.stack([p for _, p in parts])).sum(0) / seconds.sum()
        return SpeechResult(
            result=self._result(pooled),
            reason=None,
            segment_results=tuple(self._result(p) for _, p in parts),
            **common,
        )

    def _result(self, probs: np.ndarray) -> ModalityResult:
        emotion = [float(p) for p in probs]
        fields = AffectEstimate.fields_from_probs(emotion, sentiment_from_emotions(emotion))
        return ModalityResult(**fields, modality=Modality.SPEECH, model=self.model_id)


# Mel frames (100 a second) that one encoder call may read: a call's memory grows with its
# frames. A 599 s clip read in one call rose the peak by 645 MB over its 37 MB of samples; in calls of
# 30 s, by 200 MB, and 1.4x faster. Short turns' batches lose nothing either: 32 turns of 3.5 s read
# in calls of 8 took 366-372 ms against 437-474 ms in one call (this machine, 2026-12-07, one run).
MEL_FRAMES_PER_CALL = 3_000


def _calls(items: Sequence[int], frames_each: int) -> list[list[int]]:
    """``items`` in runs whose frames together stay within ``MEL_FRAMES_PER_CALL`` (one at least)."""
    size = max(1, MEL_FRAMES_PER_CALL // max(1, frames_each))
    items = list(items)
    return [items[i:i + size] for i in range(0, len(items), size)]

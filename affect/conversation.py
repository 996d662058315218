"""A conversation: turns analysed in order, each with what came before it.

A turn goes through three steps, which a server can drive one by one so that the model work
of many conversations is batched: ``prepare`` checks the input and says what each encoder must
run, the encoders run (alone or batched with other conversations' turns), and ``complete``
fuses their results and advances the conversation. The middle step, and the order of all
three, live in ``affect.turn_flow``, which ``analyze`` (in place), the server and Ray Serve call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from affect._errors import InvalidInputError
from affect.fusion import fuse
from affect.limits import MAX_ID_CHARS, check_image_count, check_not_empty
from affect.results import MODALITIES, AffectEstimate, FaceReading, Modality, ModalityResult, TurnResult
from affect.state import ConversationState, StateThresholds
from affect.text._input import clean_text
from affect.text.encoder import TextRequest
from affect.turn_flow import analyze_prepared

if TYPE_CHECKING:
    from affect.analyzer import Analyzer


@dataclass(frozen=True)
class Turn:
    """One turn as a caller sends it: any of the modalities, and who spoke.

    ``audio`` is an array of samples (with ``sample_rate``) or a WAV/FLAC/OGG file (path or
    bytes). ``images`` are encoded bytes, file paths or uint8 arrays; colour arrays need
    ``channel_order`` ("bgr" or "rgb"). ``image`` is shorthand for a single image.
    """

    text: str | bytes | None = None
    speaker: str | None = None
    audio: Any = None
    sample_rate: int | None = None
    image: Any = None
    images: Sequence[Any] = ()
    channel_order: str | None = None

    def all_images(self) -> list[Any]:
        return ([self.image] if self.image is not None else []) + list(self.images)

    def is_empty(self) -> bool:
        return self.text is None and self.audio is None and not self.all_images()


@dataclass
class PreparedTurn:
    """A checked turn and the encoder requests it needs (decoded audio and images, never logged)."""

    turn: Turn
    text: TextRequest | None = None
    speech: Any = None  # affect.speech.PreparedClip
    faces: list[Any] = field(default_factory=list)  # gray uint8 images for the face encoder
    results: dict[Modality, ModalityResult] = field(default_factory=dict)
    absent: dict[Modality, str] = field(default_factory=dict)
    face_analyses: list[Any] = field(default_factory=list)  # affect.face.FaceAnalysis per image
    speech_analysis: Any = None  # affect.speech.SpeechResult


class Conversation:
    """Per-conversation state. Keeps only what the models need (a few embeddings), never raw
    text or media, and is bounded however long the conversation runs."""

    def __init__(self, analyzer: "Analyzer", conversation_id: str | None = None, *, text_context: bool = True,
                 thresholds: StateThresholds | None = None) -> None:
        self.analyzer = analyzer
        self.id = conversation_id
        self.turns_seen = 0
        self.state = ConversationState(thresholds, forecaster=getattr(analyzer, "forecaster", None))
        self._text_context = analyzer.text.new_context() if (analyzer.text is not None and text_context) else None
        new_tracker = getattr(analyzer.face, "new_tracker", None)  # the face encoder's track state: boxes, no pixels
        self._face_tracker = new_tracker() if new_tracker is not None else None

    def analyze(self, turn: Turn | None = None, /, **fields: object) -> TurnResult:
        """Analyse the next turn: ``conversation.analyze(text="...", speaker="caller")``."""
        prepared = self.prepare(turn if turn is not None else Turn(**fields))  # type: ignore[arg-type]
        return analyze_prepared(self, prepared)  # each encoder on this turn alone (affect.turn_flow)

    def prepare(self, turn: Turn) -> PreparedTurn:
        """Check the turn (raising ``InvalidInputError`` naming the field) and build its requests."""
        images = turn.all_images()
        check_not_empty(has_text=turn.text is not None, has_audio=turn.audio is not None, images=len(images))
        speaker = turn.speaker
        if speaker is not None and (not isinstance(speaker, str) or len(speaker) > MAX_ID_CHARS):
            raise InvalidInputError(f"speaker must be a string of at most {MAX_ID_CHARS} characters", field="speaker")
        prepared = PreparedTurn(turn)
        if turn.text is not None:
            if self.analyzer.text is None:
                raise InvalidInputError("this analyzer has no text encoder loaded", field="text")
            text = clean_text(turn.text, max_chars=self.analyzer.text.max_chars)
            prepared.text = TextRequest(text, speaker, self._text_context)
        if turn.audio is not None:
            if self.analyzer.speech is None:
                raise InvalidInputError("this analyzer has no speech encoder loaded", field="audio")
            prepared.speech = self.analyzer.speech.prepare(turn.audio, turn.sample_rate)
        if images:
            if self.analyzer.face is None:
                raise InvalidInputError("this analyzer has no face encoder loaded", field="images")
            check_image_count(len(images))
            from affect.face._input import load_gray

            prepared.faces = [load_gray(image, turn.channel_order) for image in images]  # type: ignore[arg-type]
        return prepared

    @staticmethod
    def add_speech(prepared: PreparedTurn, analysis: Any) -> None:
        """Record the speech encoder's answer: a result, or why there is none ("no speech detected")."""
        prepared.speech_analysis = analysis
        if analysis.result is not None:
            prepared.results[Modality.SPEECH] = analysis.result
        else:
            prepared.absent[Modality.SPEECH] = analysis.reason

    def add_faces(self, prepared: PreparedTurn, analyses: Sequence[Any]) -> None:
        """Record the face encoder's answers: the turn's face reading is its largest face.

        Each image's faces get track ids that follow them from the conversation's earlier images.
        """
        if self._face_tracker is not None:
            analyses = [self._face_tracker.update(analysis) for analysis in analyses]
        prepared.face_analyses = list(analyses)
        faces = [face for analysis in analyses for face in analysis.faces]
        if faces:
            prepared.results[Modality.FACE] = max(faces, key=lambda f: f.box.area).result
        else:
            prepared.absent[Modality.FACE] = analyses[0].reason if analyses else "no image"

    def complete(self, prepared: PreparedTurn) -> TurnResult:
        """Fuse the encoders' results into the turn's answer and advance the conversation."""
        per_modality = {m: prepared.results[m] for m in MODALITIES if m in prepared.results}  # the one order
        fused: AffectEstimate | None = None
        shares: dict[Modality, float] = {}
        rule = ""
        if per_modality:  # else every modality sent was absent (silence, no face): no reading
            reading = fuse(per_modality)
            fused, shares, rule = reading.estimate, reading.shares, reading.fusion
        state, events = self.state.update(fused, prepared.turn.speaker, self.turns_seen)
        result = TurnResult(
            fused=fused,
            turn_index=self.turns_seen,
            speaker=prepared.turn.speaker,
            present=tuple(m for m in MODALITIES if m in per_modality),
            modalities=dict(per_modality),
            # The one exception to the modality order: why a modality is absent reads text,
            # speech, face ("speech: no speech detected; face: no face detected"), as it always has.
            absent={m: prepared.absent[m] for m in reversed(MODALITIES) if m in prepared.absent},
            shares=shares,
            fusion=rule,
            state=state,
            events=events,
            faces=tuple(
                FaceReading(i, f.box.x, f.box.y, f.box.w, f.box.h, f.detection_score, f.result, f.track_id)
                for i, analysis in enumerate(prepared.face_analyses) for f in analysis.faces
            ),
        )
        self.turns_seen += 1
        return result

    def close(self) -> None:
        """Drop the state at once (it is also dropped when the object is)."""
        self._text_context = None
        self._face_tracker = None

    def __enter__(self) -> "Conversation":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

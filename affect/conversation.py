"""A conversation: turns analysed in order, each with what came before it.

A turn goes through three steps, which a server can drive one by one so that the model work
of many conversations is batched: ``prepare`` checks the input and says what each encoder must
run, the encoders run (alone or batched with other conversations' turns), and ``complete``
fuses their results and advances the conversation. ``analyze`` does all three in place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from affect._errors import InvalidInputError
from affect.fusion import fuse
from affect.results import MODALITIES, AffectEstimate, Modality, ModalityResult, TurnResult
from affect.state import ConversationState, StateThresholds
from affect.text._input import clean_text
from affect.text.encoder import TextRequest

if TYPE_CHECKING:
    from affect.analyzer import Analyzer

MAX_SPEAKER_CHARS = 128


@dataclass(frozen=True)
class Turn:
    """One turn as a caller sends it: any of the modalities, and who spoke."""

    text: str | bytes | None = None
    speaker: str | None = None

    def is_empty(self) -> bool:
        return self.text is None


@dataclass
class PreparedTurn:
    """A checked turn and the encoder requests it needs."""

    turn: Turn
    text: TextRequest | None = None
    results: dict[Modality, ModalityResult] = field(default_factory=dict)
    absent: dict[Modality, str] = field(default_factory=dict)


class Conversation:
    """Per-conversation state. Keeps only what the models need (a few embeddings), never raw
    text or media, and is bounded however long the conversation runs."""

    def __init__(self, analyzer: "Analyzer", conversation_id: str | None = None, *, text_context: bool = True,
                 thresholds: StateThresholds | None = None) -> None:
        self.analyzer = analyzer
        self.id = conversation_id
        self.turns_seen = 0
        self.state = ConversationState(thresholds)
        self._text_context = analyzer.text.new_context() if (analyzer.text is not None and text_context) else None

    def analyze(self, turn: Turn | None = None, /, **fields: object) -> TurnResult:
        """Analyse the next turn: ``conversation.analyze(text="...", speaker="caller")``."""
        prepared = self.prepare(turn if turn is not None else Turn(**fields))  # type: ignore[arg-type]
        if prepared.text is not None:
            prepared.results[Modality.TEXT] = self.analyzer.text.analyze_many([prepared.text])[0]  # type: ignore[union-attr]
        return self.complete(prepared)

    def prepare(self, turn: Turn) -> PreparedTurn:
        """Check the turn (raising ``InvalidInputError`` naming the field) and build its requests."""
        if turn.is_empty():
            raise InvalidInputError("a turn needs at least one of text, audio or image", field="turn")
        speaker = turn.speaker
        if speaker is not None and (not isinstance(speaker, str) or len(speaker) > MAX_SPEAKER_CHARS):
            raise InvalidInputError(f"speaker must be a string of at most {MAX_SPEAKER_CHARS} characters", field="speaker")
        prepared = PreparedTurn(turn)
        if turn.text is not None:
            if self.analyzer.text is None:
                raise InvalidInputError("this analyzer has no text encoder loaded", field="text")
            text = clean_text(turn.text, max_chars=self.analyzer.text.max_chars)
            prepared.text = TextRequest(text, speaker, self._text_context)
        return prepared

    def complete(self, prepared: PreparedTurn) -> TurnResult:
        """Fuse the encoders' results into the turn's answer and advance the conversation."""
        per_modality = prepared.results
        fields, shares, rule = fuse(per_modality)
        state, events = self.state.update(AffectEstimate(**fields), prepared.turn.speaker, self.turns_seen)
        result = TurnResult(
            **fields,
            turn_index=self.turns_seen,
            speaker=prepared.turn.speaker,
            present=tuple(m for m in MODALITIES if m in per_modality),
            modalities=dict(per_modality),
            absent=dict(prepared.absent),
            shares=shares,
            fusion=rule,
            state=state,
            events=events,
        )
        self.turns_seen += 1
        return result

    def close(self) -> None:
        """Drop the state at once (it is also dropped when the object is)."""
        self._text_context = None

    def __enter__(self) -> "Conversation":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""A conversation: turns analysed in order, each with what came before it.

A turn goes through three steps, which a server can drive one by one so that the model work
of many conversations is batched: ``prepare`` checks the input and says what each encoder must
run, the encoders run (alone or batched with other conversations' turns), and ``complete``
fuses their results and advances the conversation. The middle step, and the order of all
three, live in ``affect.turn_flow``, which ``analyze`` (in place), the server and Ray Serve call.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

from affect._errors import ConversationClosedError
from affect.fusion import fuse
from affect.limits import (check_id, check_images_list, check_loaded, check_named_speaker, check_not_empty,
                           former_speaker, unread_modalities)
from affect.media import AudioInput, ImageInput
from affect.results import MODALITIES, AffectEstimate, FaceReading, Modality, ModalityResult, TurnResult
from affect.state import ConversationState, StateThresholds
from affect.turn_flow import ConversationOptions, analyze_prepared, turns_of

if TYPE_CHECKING:
    from affect.analyzer import Analyzer
    from affect.text.prior import PriorSpec


@dataclass(frozen=True)
class Turn:
    """One turn as a caller sends it: any of the modalities, and who spoke.

    ``audio`` is an array of samples (with ``sample_rate``) or a WAV/FLAC/OGG file (path or
    bytes, which carry their own rate: bytes with a ``sample_rate`` are refused). ``images`` are
    encoded bytes, file paths or uint8 arrays; colour arrays need ``channel_order`` ("bgr" or "rgb").
    ``image`` is shorthand for a single image; one image given as ``images`` is refused when the
    turn is made (``InvalidInputError``, field ``images``).
    Their types, ``AudioInput`` and ``ImageInput`` (``affect.media``), say what is accepted.
    """

    text: str | bytes | None = None
    speaker: str | None = None
    audio: AudioInput | None = None
    sample_rate: int | None = None
    image: ImageInput | None = None
    images: Sequence[ImageInput] = ()
    channel_order: str | None = None

    def __post_init__(self) -> None:
        # Checked where a turn is made, so that a Turn read piece by piece cannot exist.
        check_images_list(self.images)

    def all_images(self) -> list[ImageInput]:
        """``image`` (when given), then ``images``: the order the turn's images are read in."""
        return list(self.images_by_field().values())

    def images_by_field(self) -> dict[str, ImageInput]:
        """``all_images`` by the field that gives each (``image``, ``images[0]`` ...), in that order."""
        first = {"image": self.image} if self.image is not None else {}
        return first | {f"images[{i}]": image for i, image in enumerate(self.images)}

    def sent(self) -> dict[Modality, str]:
        """The modalities this turn was given, each with the field that gives it (empty text too)."""
        fields = {Modality.FACE: ("images", bool(self.all_images())),  # in the one modality order
                  Modality.SPEECH: ("audio", self.audio is not None),
                  Modality.TEXT: ("text", self.text is not None)}
        return {m: name for m, (name, sent) in fields.items() if sent}

    def unread(self, loaded: Collection[Modality] | None = None) -> dict[Modality, str]:
        """The modalities sent that are not read, with why (``affect.limits.unread_modalities``):
        text that is none to read (empty or white space, ``affect.limits.is_no_text``: a speech
        recogniser's empty transcript) beside audio or images, ``{Modality.TEXT: "empty text"}``;
        and, given the modalities whose models are ``loaded``, one without its model beside
        another that is read, ``{Modality.TEXT: "no text model loaded"}``. The turn is read from
        the others."""
        return unread_modalities(self.sent(), self.text, loaded)

    def carried(self, unread: Collection[Modality]) -> dict[Modality, str]:
        """The modalities this turn is read from, each with the field that carries it: those sent,
        but the ``unread`` (``Turn.unread``, derived once by the caller)."""
        return {m: name for m, name in self.sent().items() if m not in unread}


class TurnFields(TypedDict, total=False):
    """``Turn``'s fields as keywords (``conversation.analyze(text=..., speaker=...)``), typed for
    editors and type checkers; ``tests/test_rules.py`` keeps the two alike."""

    text: str | bytes | None
    speaker: str | None
    audio: AudioInput | None
    sample_rate: int | None
    image: ImageInput | None
    images: Sequence[ImageInput]
    channel_order: str | None


def as_turn(turn: "Turn | str | bytes | None", fields: TurnFields) -> Turn:
    """The turn ``analyze`` was given: a ``Turn``, its fields as keywords, or its text first
    (``analyze("Where is my refund?", speaker="caller")``, as the client's ``send`` takes it)."""
    if isinstance(turn, (str, bytes)):
        if "text" in fields:
            raise TypeError("the text was given twice: first and as text=")
        return replace(Turn(**fields), text=turn)
    if turn is None:
        return Turn(**fields)
    if not isinstance(turn, Turn):
        raise TypeError(f"analyze() takes a Turn, a text or a turn's fields as keywords, got {type(turn).__name__}")
    if fields:
        raise TypeError(f"pass a Turn or its fields, not both (got a Turn and {', '.join(sorted(fields))})")
    return turn


@dataclass
class PreparedTurn:
    """A checked turn and the requests it makes of each encoder (decoded audio and images,
    never logged), then the answers recorded into it."""

    turn: Turn
    requests: dict[Modality, list[Any]] = field(default_factory=dict)  # in the one modality order
    results: dict[Modality, ModalityResult] = field(default_factory=dict)
    # A modality's reading under the prior its weights learnt, where the analyzer reads it under
    # another (text with a ``text_prior``): what the forecaster is handed.
    as_trained: dict[Modality, ModalityResult] = field(default_factory=dict)
    absent: dict[Modality, str] = field(default_factory=dict)
    faces: tuple[FaceReading, ...] = ()  # every face of the turn's images (the face encoder's record)


class Conversation:
    """Per-conversation state. Keeps only what the models need (a few embeddings, face boxes),
    never raw text or media, and is bounded however long the conversation runs."""

    def __init__(self, analyzer: "Analyzer", conversation_id: str | None = None, *, text_context: bool = True,
                 text_prior: "PriorSpec" = None, thresholds: StateThresholds | None = None,
                 event_speakers: Iterable[str] = ()) -> None:
        if conversation_id is not None:
            check_id(conversation_id, "conversation_id")
        self.analyzer = analyzer
        self.id = conversation_id
        self.turns_seen = 0
        self.closed = False
        self._resets = 0  # speakers started anew (reset_speaker): each reset's former speaker a new name
        self.state = ConversationState(thresholds, forecaster=getattr(analyzer, "forecaster", None),
                                       event_speakers=event_speakers)
        options = ConversationOptions(text_context=text_context, text_prior=text_prior)
        self._turns = {m: turns_of(encoder) for m, encoder in analyzer.encoders.items()}  # the one table
        self._states: dict[Modality, Any] = {m: turns.new_state(options) for m, turns in self._turns.items()}

    def analyze(self, turn: Turn | str | bytes | None = None, /, **fields: Unpack[TurnFields]) -> TurnResult:
        """Analyse the next turn: ``conversation.analyze("...", speaker="caller")``, its fields as
        keywords (``text=``, ``audio=``, ``image=`` ...) or a ``Turn``."""
        prepared = self.prepare(as_turn(turn, fields))
        return analyze_prepared(self, prepared)  # each encoder on this turn alone (affect.turn_flow)

    def prepare(self, turn: Turn) -> PreparedTurn:
        """Check the turn (raising ``InvalidInputError`` naming the field) and build its requests.
        A closed conversation has no state to read a turn against: ``ConversationClosedError``."""
        if self.closed:
            raise ConversationClosedError("this conversation is closed: open a new one for more turns")
        check_not_empty(turn)
        unread = turn.unread(self._turns)  # a modality without its model is left unread beside one read
        carried = turn.carried(unread)
        if turn.speaker is not None:
            check_id(turn.speaker, "speaker")
        check_loaded(carried, self._turns)  # nothing can be read: refused, naming what is missing
        for modality in carried:  # every cheap check before any decoding
            self._turns[modality].check(turn)
        requests = {m: self._turns[m].requests(turn, self._states[m]) for m in carried}
        return PreparedTurn(turn, requests={m: r for m, r in requests.items() if r}, absent=unread)

    def record(self, modality: Modality, prepared: PreparedTurn, answers: list[Any]) -> None:
        """One encoder's answers to this turn's requests into the turn and this conversation's
        state for that modality (``affect.turn_flow.record`` calls it in the one order). Once the
        conversation is closed, answers that arrive late (a server finishing a turn whose caller
        left) change nothing."""
        state = self._states[modality]
        if state is None and self.closed:
            return
        self._turns[modality].record(prepared, answers, state)

    def _as_the_forecaster_learnt(self, prepared: PreparedTurn, per_modality: dict[Modality, ModalityResult],
                                  fused: AffectEstimate | None) -> AffectEstimate | None:
        """The turn fused again from each modality's reading under the prior its weights learnt,
        where the analyzer reads one under another (a ``text_prior``), for a forecaster that learnt
        from such readings: a deployment's prior does not feed it readings it never saw. ``None``
        when the fused reading serves."""
        forecaster = self.state.forecaster
        if fused is None or not prepared.as_trained or not getattr(forecaster, "learnt_from_trained_readings", False):
            return None
        return fuse({**per_modality, **prepared.as_trained}).estimate

    def complete(self, prepared: PreparedTurn) -> TurnResult:
        """Fuse the encoders' results into the turn's answer and advance the conversation."""
        per_modality = {m: prepared.results[m] for m in MODALITIES if m in prepared.results}  # the one order
        fused: AffectEstimate | None = None
        shares: dict[Modality, float] = {}
        rule = ""
        if per_modality:  # else every modality sent was absent (silence, no face): no reading
            reading = fuse(per_modality)
            fused, shares, rule = reading.estimate, reading.shares, reading.fusion
        state, events = (None, ()) if self.closed else self.state.update(  # a late turn adds nothing to a closed one
            fused, prepared.turn.speaker, self.turns_seen,
            forecast_reading=self._as_the_forecaster_learnt(prepared, per_modality, fused))
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
            faces=prepared.faces,
        )
        self.turns_seen += 1
        return result

    def reset_speaker(self, speaker: str) -> int:
        """Start ``speaker`` anew mid-conversation, as a speaker not yet heard (a human agent taking
        over from a bot under the same name, a new caller put through): their smoothed readings and
        history are dropped, their events armed again (a first angry turn raises ``rising_anger``
        as a new speaker's does), and what is kept of their earlier turns reads as another
        person's: the forecaster's window (their forecast starts from scratch) and the text
        context (their next text is not read as theirs continuing); their face tracks start
        anew. Every other speaker's state, events and forecast are as they were, and the
        conversation's own smoothed state goes on. Returns how many turns their state held (0:
        none under that name: a misspelt name?). ``InvalidInputError`` for a name a turn's speaker
        could not have or an empty one (the unnamed speaker cannot be reset); ``ConversationClosedError``
        once closed."""
        if self.closed:
            raise ConversationClosedError("this conversation is closed: open a new one for more turns")
        check_named_speaker(speaker)
        self._resets += 1
        former = former_speaker(self._resets)  # what their earlier turns are called, in every state alike
        for modality, turns in self._turns.items():
            turns.forget_speaker(self._states[modality], speaker, former)
        return self.state.reset_speaker(speaker, former)

    def close(self) -> None:
        """Drop the state at once (it is also dropped when the object is): each encoder's and the
        conversation's own (its speakers' names, readings and forecast)."""
        self._states = {m: None for m in self._states}
        self.state = ConversationState(self.state.thresholds, forecaster=self.state.forecaster,
                                       event_speakers=self.state.event_speakers)
        self.closed = True

    def __enter__(self) -> "Conversation":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

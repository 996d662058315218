"""A turn's path, in one place: the modality table that the library, the server and Ray all drive.

    Conversation.prepare(turn)               check the turn; each modality it carries builds
                                             its requests (``turns.requests``)  -> PreparedTurn
    for each encoder of the table, in the one modality order (affect.results.MODALITIES):
        batch(encoder)(requests)             the one costly call: here (``analyze_prepared``), in a
                                             server's micro-batch, or in a Ray encoder deployment
        turns.record(prepared, answers, ..)  the answers into the turn (and the conversation's
                                             per-modality state: text context, face tracks)
    Conversation.complete(prepared)          fuse the answers, update the state   -> TurnResult

The table is ``Analyzer.encoders`` (a mapping from ``Modality``); what a conversation needs of
each entry is its ``ModalityTurns`` (``encoder.turns``), a small picklable object, so a Ray
ingress that loads no model holds just those. ``analyze_prepared`` (the library,
``Conversation.analyze``) and ``analyze_submitted`` (the gRPC servicer, whose submitters are
micro-batchers, or Ray deployment handles on Ray Serve) are the two ways to walk it; neither
knows a modality by name. Adding a modality is its input field on ``Turn`` (and the proto's),
one encoder class with its ``ModalityTurns``, and its entry in ``affect.analyzer.ENCODER_CLASSES``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from affect.results import MODALITIES, Modality, TurnResult

if TYPE_CHECKING:
    from affect.conversation import Conversation, PreparedTurn, Turn
    from affect.text.prior import PriorSpec

BatchCall = Callable[[Sequence[Any]], Sequence[Any]]
Submit = Callable[[Any], Awaitable[Any]]


@dataclass(frozen=True)
class ConversationOptions:
    """A conversation's options that an encoder's per-conversation state reads."""

    text_context: bool = True  # read each text turn with the turns before it
    # The label prior this conversation's text is reported under (``affect.text.prior``: a preset
    # name or a mapping of emotions); ``None``: the text encoder's own (``Analyzer(text_prior=...)``).
    text_prior: PriorSpec = None


@runtime_checkable
class ModalityTurns(Protocol):
    """What a conversation needs of one modality's encoder: cheap, picklable, no model.

    ``check`` refuses the turn's input for this modality by what needs no decoding (its type,
    size and count; raising ``InvalidInputError`` that names the field): a conversation checks
    every modality of a turn before it decodes any, so a turn refused for its text costs no image
    decoding. ``requests`` checks the rest and decodes it; ``batch_method`` names the encoder's batch call (requests of
    many turns in, one answer per request out, no conversation state changed: it may run in
    another process); ``record`` puts the answers into the turn (``prepared.results`` or
    ``prepared.absent``) and into the conversation's state for this modality. ``forget_speaker``
    starts a speaker anew in that state (``Conversation.reset_speaker``): what it holds of their
    earlier turns reads as another person's (``former``, the name the conversation gives them
    for this reset), or is dropped.
    """

    modality: Modality
    model_id: str
    batch_method: str

    def new_state(self, options: ConversationOptions) -> Any: ...

    def check(self, turn: "Turn") -> None: ...

    def requests(self, turn: "Turn", state: Any) -> list[Any]: ...

    def record(self, prepared: "PreparedTurn", answers: list[Any], state: Any) -> None: ...

    def forget_speaker(self, state: Any, speaker: str, former: str) -> None: ...


class Encoder(Protocol):
    """A loaded encoder as the table holds it (``Analyzer.encoders``): its modality, its weights'
    id, its ``turns`` and the batch call they name."""

    modality: Modality
    model_id: str

    @property
    def turns(self) -> ModalityTurns: ...


def turns_of(encoder: Any) -> ModalityTurns:
    """The encoder's ``ModalityTurns``; a stand-in that is one already (a Ray ingress's) is itself."""
    return encoder if isinstance(encoder, ModalityTurns) else encoder.turns


def batch_call(encoder: Any) -> BatchCall:
    """The encoder's batch call, as its ``ModalityTurns`` names it."""
    return getattr(encoder, turns_of(encoder).batch_method)


def record(conversation: "Conversation", prepared: "PreparedTurn", answers: Mapping[Modality, Sequence[Any]]) -> None:
    """Every modality's answers into the turn, in the one modality order."""
    for modality in MODALITIES:
        if modality in answers:
            conversation.record(modality, prepared, list(answers[modality]))


def analyze_prepared(conversation: "Conversation", prepared: "PreparedTurn") -> TurnResult:
    """The turn in this process: each encoder's batch call on this turn's requests alone."""
    encoders = conversation.analyzer.encoders
    answers = {m: batch_call(encoders[m])(requests) for m, requests in prepared.requests.items()}
    record(conversation, prepared, answers)
    return conversation.complete(prepared)


async def analyze_submitted(conversation: "Conversation", prepared: "PreparedTurn",
                            submit: Callable[[Modality], Submit]) -> TurnResult:
    """The turn with each request submitted to a batch that other turns share (``submit(m)``
    gives the modality's ``await submit(request)``); the encoders run side by side."""
    requests = prepared.requests
    jobs = [asyncio.gather(*(submit(m)(r) for r in reqs)) for m, reqs in requests.items()]
    answers = dict(zip(requests, await asyncio.gather(*jobs)))
    record(conversation, prepared, answers)
    return conversation.complete(prepared)

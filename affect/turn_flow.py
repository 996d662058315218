"""A turn's path, in one place: the modality table that the library, the server and Ray all drive.

    Conversation.prepare(turn)            check the turn, decode its media      -> PreparedTurn
    for each modality of the table, in the one modality order (affect.results.MODALITIES):
        step.requests(prepared)           what the turn asks of that encoder (cheap, per turn)
        step.batch(encoder)(requests)     the one costly call: here (``analyze_prepared``), in a
                                          server's micro-batch, or in a Ray encoder deployment
        step.record(conversation, ...)    the answers into the turn (and the conversation's
                                          per-modality state: face tracks, voice statistics)
    Conversation.complete(prepared)       fuse the answers, update the state   -> TurnResult

``analyze_prepared`` (the library, ``Conversation.analyze``) and ``analyze_submitted`` (the gRPC
servicer, whose submitters are micro-batchers, or Ray deployment handles on Ray Serve) are the
two ways to walk it; neither knows a modality by name. Adding a modality is one encoder class,
registered in ``affect.analyzer.ENCODER_CLASSES`` (and a keyword of ``Analyzer`` to choose it),
and one ``ModalityStep`` here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from affect.results import MODALITIES, Modality, TurnResult

if TYPE_CHECKING:
    from affect.conversation import Conversation, PreparedTurn

BatchCall = Callable[[Sequence[Any]], Sequence[Any]]
Submit = Callable[[Any], Awaitable[Any]]


class Encoder(Protocol):
    """What the table needs of an encoder (``Analyzer.encoders`` maps each Modality to one):
    its modality, its weights' id, and the batch call its ``ModalityStep`` names."""

    modality: Modality
    model_id: str


@dataclass(frozen=True)
class ModalityStep:
    """What the turn's path needs to know of one modality."""

    modality: Modality
    requests: Callable[["PreparedTurn"], list[Any]]  # the turn's requests to this encoder ([] when none)
    batch_method: str  # the encoder's batch call: requests of many turns in, one answer per request out
    # The answers, in request order, into the turn and the conversation's state. A batch call
    # changes no conversation state (it may run in another process, on a copy of the text
    # context); what the conversation keeps of its answers is recorded here.
    record: Callable[["Conversation", "PreparedTurn", list[Any]], None]

    def batch(self, encoder: Any) -> BatchCall:
        return getattr(encoder, self.batch_method)


def _record_text(conversation: "Conversation", prepared: "PreparedTurn", answers: list[Any]) -> None:
    assert prepared.text is not None  # the turn asked for text
    prepared.results[Modality.TEXT] = prepared.text.record(answers[0])  # the turn joins the text context


def _record_speech(conversation: "Conversation", prepared: "PreparedTurn", answers: list[Any]) -> None:
    conversation.add_speech(prepared, answers[0])


def _record_faces(conversation: "Conversation", prepared: "PreparedTurn", answers: list[Any]) -> None:
    conversation.add_faces(prepared, answers)


STEPS: Mapping[Modality, ModalityStep] = {step.modality: step for step in sorted((
    # one face request per image (a gray array); the turn's reading is its largest face
    ModalityStep(Modality.FACE, lambda p: list(p.faces), "analyze_many", _record_faces),
    # one prepared clip (decoded, resampled; the speaker's voice statistics when there are any)
    ModalityStep(Modality.SPEECH, lambda p: [p.speech] if p.speech is not None else [], "analyze_prepared",
                 _record_speech),
    # one TextRequest: the cleaned text, its speaker and the conversation's text context; the
    # answer (a TextAnalysis) carries the turn's embedding, which joins the context on record
    ModalityStep(Modality.TEXT, lambda p: [p.text] if p.text is not None else [], "analyze_prepared", _record_text),
), key=lambda s: MODALITIES.index(s.modality))}


def requests_of(prepared: "PreparedTurn") -> dict[Modality, list[Any]]:
    """The turn's requests per modality, for the modalities it carries."""
    return {m: requests for m, step in STEPS.items() if (requests := step.requests(prepared))}


def record(conversation: "Conversation", prepared: "PreparedTurn", answers: Mapping[Modality, list[Any]]) -> None:
    """Every modality's answers into the turn, in the one modality order."""
    for modality, step in STEPS.items():
        if modality in answers:
            step.record(conversation, prepared, list(answers[modality]))


def analyze_prepared(conversation: "Conversation", prepared: "PreparedTurn") -> TurnResult:
    """The turn in this process: each encoder's batch call on this turn's requests alone."""
    encoders = conversation.analyzer.encoders
    answers = {m: STEPS[m].batch(encoders[m])(requests) for m, requests in requests_of(prepared).items()}
    record(conversation, prepared, answers)
    return conversation.complete(prepared)


async def analyze_submitted(conversation: "Conversation", prepared: "PreparedTurn",
                            submit: Callable[[Modality], Submit]) -> TurnResult:
    """The turn with each request submitted to a batch that other turns share (``submit(m)``
    gives the modality's ``await submit(request)``); the encoders run side by side."""
    requests = requests_of(prepared)
    jobs = [asyncio.gather(*(submit(m)(r) for r in reqs)) for m, reqs in requests.items()]
    answers = dict(zip(requests, await asyncio.gather(*jobs)))
    record(conversation, prepared, answers)
    return conversation.complete(prepared)

"""The text encoder: emotion and sentiment of a turn, given the turns before it."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from threading import Lock
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from affect._errors import InvalidInputError
from affect._weights import WeightsEnum
from affect.option_rules import context_weight_problem
from affect.results import AffectEstimate, Modality, ModalityResult
from affect.text._base import load_base
from affect.text._batching import DialogueTexts, dialogue_batch, embed_texts
from affect.text._input import DEFAULT_MAX_CHARS, clean_text
from affect.text._network import SPEAKER_UNKNOWN, mix_context, speaker_relation
from affect.text._weights_io import load_text_net
from affect.text.prior import DEFAULT_PRIOR, PriorSpec, prior_log_ratio, resolve_prior, shift_for
from affect.text.weights import TextWeights
from affect.turn_flow import ConversationOptions

if TYPE_CHECKING:
    from affect.conversation import PreparedTurn, Turn


@dataclass
class TextContext:
    """The past turns of one conversation, as the encoder needs them: a few vectors, not text.

    Holds at most ``window`` turn embeddings (most recent last) with their speakers, so it is
    small and bounded however long the conversation runs, and it never keeps the raw text.
    """

    window: int
    turns: deque = field(default_factory=deque)

    def push(self, embedding: torch.Tensor, speaker: str | None) -> None:
        self.turns.append((embedding, speaker))
        while len(self.turns) > self.window:
            self.turns.popleft()

    def forget(self, speaker: str, former: str) -> None:
        """``speaker`` starts anew: their past turns here are read as another person's (``former``,
        a name no turn can have: ``affect.limits.former_speaker``), not as the same speaker's."""
        if any(s == speaker for _, s in self.turns):
            self.turns = deque((e, former if s == speaker else s) for e, s in self.turns)

    def __len__(self) -> int:
        return len(self.turns)


@dataclass(frozen=True)
class TextConversation:
    """A conversation's text state: its past turns (``None``: each turn is read alone) and the
    prior shift its turns are reported under (``None``: the encoder's, ``TextEncoder.set_prior``)."""

    context: TextContext | None
    prior_shift: torch.Tensor | None = None


@dataclass(frozen=True)
class TextRequest:
    """One turn to analyse: its text, its speaker, the context it belongs to (if any) and its
    conversation's prior shift (``None``: the encoder's)."""

    text: str | bytes  # UTF-8 bytes are decoded where the text is cleaned
    speaker: str | None = None
    context: TextContext | None = None
    prior_shift: torch.Tensor | None = None

    def record(self, analysis: "TextAnalysis") -> ModalityResult:
        """The turn joins its context (its embedding and speaker): the one update of a text
        context, whether the encoder ran here or in another process (``affect.turn_flow``)."""
        if self.context is not None:
            self.context.push(analysis.embedding, self.speaker)
        return analysis.result


@dataclass(frozen=True)
class TextAnalysis:
    """The encoder's answer to one request, before the turn joins its context."""

    result: ModalityResult
    embedding: torch.Tensor  # what ``TextRequest.record`` pushes onto the context
    # The same turn read under the prior the weights learnt (``None`` when ``result`` is that
    # reading): what a conversation's forecaster learnt from, whatever the deployment's prior.
    as_trained: ModalityResult | None = None


@dataclass(frozen=True)
class Readings:
    """Calibrated emotion and sentiment logits of many turns, read with their past turns and
    without them: the two readings ``TextEncoder.reported`` mixes into what the library reports."""

    with_context: tuple[torch.Tensor, torch.Tensor]
    without_context: tuple[torch.Tensor, torch.Tensor]

    def rows(self, index: torch.Tensor) -> Readings:
        """The readings of the turns at ``index`` (in that order)."""
        (emo, sent), (emo_alone, sent_alone) = self.with_context, self.without_context
        return Readings((emo[index], sent[index]), (emo_alone[index], sent_alone[index]))

    def last_turns(self, lengths: Sequence[int]) -> Readings:
        """Each dialogue's last turn, of dialogues of these lengths read in one ``read_dialogues`` call:
        how a turn is read after its own past turns (an EmoContext chat, a corpus's test turn)."""
        return self.rows(torch.tensor(list(lengths)).cumsum(0) - 1)


@dataclass(frozen=True)
class TextTurns:
    """What a conversation needs of a text encoder (``affect.turn_flow.ModalityTurns``), here or
    in another process: its character limit, context window and the label prior its weights
    learnt. The conversation's state is a ``TextConversation``."""

    model_id: str
    max_chars: int
    window: int
    train_prior: tuple[float, ...] | None = None
    modality: ClassVar[Modality] = Modality.TEXT
    batch_method: ClassVar[str] = "analyze_prepared"

    def new_state(self, options: ConversationOptions) -> TextConversation:
        """Raises ``ValueError`` naming what is wrong with ``options.text_prior``."""
        shift = None if options.text_prior is None else shift_for(options.text_prior, self.train_prior)
        return TextConversation(TextContext(window=self.window) if options.text_context else None, shift)

    def check(self, turn: "Turn") -> None:
        clean_text(turn.text, max_chars=self.max_chars)

    def requests(self, turn: "Turn", state: TextConversation) -> list[TextRequest]:
        """The turn's text, cleaned once here (``CleanText`` passes every later check as it is)."""
        return [TextRequest(clean_text(turn.text, max_chars=self.max_chars), turn.speaker, state.context, state.prior_shift)]

    def record(self, prepared: "PreparedTurn", answers: list[Any], state: TextConversation) -> None:
        (request,), (analysis,) = prepared.requests[Modality.TEXT], answers
        prepared.results[Modality.TEXT] = request.record(analysis)  # the turn joins the text context
        if analysis.as_trained is not None:
            prepared.as_trained[Modality.TEXT] = analysis.as_trained

    def forget_speaker(self, state: TextConversation, speaker: str, former: str) -> None:
        """The speaker's past turns in the context read as another speaker's (``former``) from now on."""
        if state.context is not None:
            state.context.forget(speaker, former)


class TextEncoder:
    """Context-aware text emotion and sentiment, fully offline.

    >>> encoder = TextEncoder()
    >>> context = encoder.new_context()
    >>> encoder.analyze("I waited an hour and nobody called back.", context=context).emotion
    <Emotion.ANGER: 'anger'>
    """

    modality = Modality.TEXT

    def __init__(
        self,
        *,
        weights: TextWeights | str | None = None,
        max_chars: int = DEFAULT_MAX_CHARS,
        prior: PriorSpec = DEFAULT_PRIOR,
        context_weight: float | None = None,
    ) -> None:
        """``prior``: the label frequencies the deployment expects (``affect.text.prior``): a
        preset (``"trained"``, the default: the probabilities as trained; ``"conversational"``;
        ``"uniform"``) or a mapping of emotion names to frequencies. Weights that do
        not record their training prior (round 1) ignore it.

        ``context_weight``: how much of a turn's answer comes from reading it with the past turns
        (the rest from reading it alone; ``affect.text._network.mix_context``), from 0 (past turns
        ignored) to 1 (the context reading only). ``None``: the weights entry's own value
        (``context_weight`` in its meta, chosen on held-out dialogue; 1 where it says none)."""
        if context_weight is not None and (problem := context_weight_problem(context_weight)):
            raise InvalidInputError(f"context_weight {problem}", field="context_weight")  # before the network loads
        self.weights = TextWeights.resolve(weights)
        meta = self.weights.meta
        self.max_chars = max_chars
        self.max_tokens = int(meta.get("max_tokens", 96))
        if meta.get("encoder_weights"):  # the encoder comes from other shipped weights: check them too
            TextWeights.resolve(meta["encoder_weights"]).value.verified_path()
        self.tokenizer, base = load_base(meta.get("base_path"))
        self.net, self.train_meta = load_text_net(self.weights.value.verified_path(), base)
        self.model_id = self.weights.value.id
        self.context_weight = float(meta.get("context_weight", 1.0) if context_weight is None else context_weight)
        self.set_prior(prior)
        self._lock = Lock()  # the network is not re-entrant across threads

    def set_prior(self, prior: PriorSpec) -> None:
        """Follow another expected label prior from the next turn on (see ``__init__``).

        ``prior_shift`` is then what is added to the calibrated emotion logits."""
        trained = self.train_meta.get("train_prior")
        self.prior = resolve_prior(prior)
        self.prior_shift = prior_log_ratio(self.prior, None if trained is None else torch.tensor(trained))
        # Set once here, read on every turn: with a shift, each turn is also reported without it.
        self._shifted = bool(self.prior_shift.any())
        self._no_shift = torch.zeros_like(self.prior_shift)

    @property
    def window(self) -> int:
        return self.net.window

    @property
    def turns(self) -> TextTurns:
        trained = self.train_meta.get("train_prior")
        return TextTurns(self.model_id, self.max_chars, self.window, None if trained is None else tuple(trained))

    def new_context(self) -> TextContext:
        return TextContext(window=self.window)

    def analyze(self, text: str | bytes, *, speaker: str | None = None, context: TextContext | None = None) -> ModalityResult:
        """One turn. With ``context``, the turn is read after the ones already in it and then added."""
        return self.analyze_many([TextRequest(text, speaker, context)])[0]

    def analyze_many(self, requests: Sequence[TextRequest]) -> list[ModalityResult]:
        """Many turns (of different conversations) in one forward pass, each added to its context.

        Two requests may share a context only if they are in conversation order.
        """
        return [analysis.result for analysis in self._read(requests, record=True)]

    def analyze_prepared(self, requests: Sequence[TextRequest]) -> list[TextAnalysis]:
        """Many turns in one forward pass, their contexts read but left as they are: the batch
        call of ``affect.turn_flow`` (here, in a server's micro-batch or in a Ray deployment),
        whose record step adds each turn to its context with ``TextRequest.record``.

        The text of ``Conversation.prepare`` is clean already and is not cleaned again.
        """
        return self._read(requests, record=False)

    def _read(self, requests: Sequence[TextRequest], *, record: bool) -> list[TextAnalysis]:
        texts = [clean_text(r.text, max_chars=self.max_chars) for r in requests]  # once: CleanText passes as it is
        with self._lock, torch.inference_mode():
            current = embed_texts(self.net, self.tokenizer, texts, max_tokens=self.max_tokens)
            answers = []
            for i, request in enumerate(requests):
                readings = self._readings(current[i : i + 1], *self._context_tensors(request))
                shift = request.prior_shift  # the conversation's prior, else the encoder's
                shifted = self._shifted if shift is None else bool(shift.any())
                emo, sent = self.reported(readings, prior_shift=shift)
                as_trained = None
                if shifted:  # a deployment prior: the reading without it too (the forecaster's input)
                    emo_trained, sent_trained = self.reported(readings, prior_shift=self._no_shift)
                    as_trained = self._result(emo_trained[0], sent_trained[0])
                answers.append(TextAnalysis(self._result(emo[0], sent[0]), current[i].clone(), as_trained))
                if record:  # before the next request, which may share the context
                    request.record(answers[-1])
        return answers

    def read_dialogues(self, dialogues: Sequence[DialogueTexts], *, use_context: bool = True,
                       on_batch: Callable[[int], None] | None = None) -> Readings:
        """Every turn of many dialogues ((text, speaker) pairs in order), each with the turns before
        it, in batches (for benchmarks and recipes); ``reported`` gives what ``analyze`` would."""
        with self._lock, torch.inference_mode():
            current, context, mask, relation = dialogue_batch(self.net, self.tokenizer, dialogues,
                                                              max_tokens=self.max_tokens, on_batch=on_batch)
            return self._readings(current, context, mask if use_context else torch.zeros_like(mask), relation, both=True)

    def reported(self, readings: Readings, *, prior_shift: torch.Tensor | None = None,
                 context_weight: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Emotion and sentiment log-probabilities as the library reports them: the expected prior
        (``prior_shift``, default this encoder's) applied to both readings, then mixed by
        ``context_weight`` (default this encoder's)."""
        shift = self.prior_shift if prior_shift is None else prior_shift
        weight = self.context_weight if context_weight is None else context_weight
        (emo, sent), (emo_alone, sent_alone) = readings.with_context, readings.without_context
        return mix_context(emo + shift, emo_alone + shift, weight), mix_context(sent, sent_alone, weight)

    def _readings(self, current: torch.Tensor, context: torch.Tensor, mask: torch.Tensor,
                  relation: torch.Tensor, *, both: bool = False) -> Readings:
        """Both readings when ``both`` (any ``context_weight`` may be applied later), else only
        what this encoder's weight needs."""
        if not bool(mask.any()) or (self.context_weight >= 1.0 and not both):  # one reading serves both
            with_context = self.net.calibrated(*self.net.classify(current, context, mask, relation))
            return Readings(with_context, with_context)
        n = current.shape[0]  # both readings in one pass: the second half sees no past turns
        emo, sent = self.net.calibrated(*self.net.classify(current.repeat(2, 1), context.repeat(2, 1, 1),
                                                           torch.cat([mask, torch.zeros_like(mask)]), relation.repeat(2, 1)))
        return Readings((emo[:n], sent[:n]), (emo[n:], sent[n:]))

    def analyze_conversation(
        self, turns: Sequence[str | tuple[str, str | None]], *, use_context: bool = True
    ) -> list[ModalityResult]:
        """Every turn of a whole conversation, each read with the turns before it."""
        context = self.new_context() if use_context else None
        out = []
        for turn in turns:
            text, speaker = (turn, None) if isinstance(turn, (str, bytes)) else turn
            out.append(self.analyze(text, speaker=speaker, context=context))
        return out

    def _context_tensors(self, request: TextRequest) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        window, dim = self.window, self.net.emotion_head.in_features
        context = torch.zeros(1, window, dim)
        mask = torch.zeros(1, window, dtype=torch.bool)
        relation = torch.full((1, window), SPEAKER_UNKNOWN, dtype=torch.long)
        if request.context is not None:
            for k, (embedding, speaker) in enumerate(reversed(request.context.turns)):
                context[0, k] = embedding
                mask[0, k] = True
                relation[0, k] = speaker_relation(request.speaker, speaker)
        return context, mask, relation

    def _result(self, emotion_logits: torch.Tensor, sentiment_logits: torch.Tensor) -> ModalityResult:
        emo = torch.softmax(emotion_logits, -1).tolist()
        sent = torch.softmax(sentiment_logits, -1).tolist()
        return ModalityResult(**AffectEstimate.fields_from_probs(emo, sent), modality=Modality.TEXT, model=self.model_id)




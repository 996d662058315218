"""The entry point: load the encoders once, analyse turns and conversations."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from enum import Enum
from typing import TYPE_CHECKING, Any, TypedDict, Unpack, cast

from affect.conversation import Conversation, Turn, TurnFields
from affect.results import MODALITIES, Modality, ModalityResult, ModelLoadEvent, TurnResult
from affect.state import StateThresholds
from affect.text.encoder import TextEncoder
from affect.text.prior import DEFAULT_PRIOR, PriorSpec
from affect.text.weights import TextWeights

if TYPE_CHECKING:  # the encoders' classes are imported when one is built: they bring torch (and OpenCV)
    from affect.face import FaceEncoder, FaceWeights
    from affect.forecast import Forecaster
    from affect.speech import SpeechEncoder, SpeechWeights
    from affect.turn_flow import Encoder, ModalityTurns


class EncoderChoices(TypedDict, total=False):
    """``Analyzer``'s keyword per modality (the modalities of ``ENCODER_CLASSES``, kept alike by
    ``tests/test_layering.py``), typed for editors and type checkers: ``True`` for the default weights,
    a weights name or member, an encoder, a stand-in for one that runs elsewhere (its
    ``ModalityTurns``, as the Ray Serve ingress passes), or ``None``/``False`` to leave it out."""

    face: FaceEncoder | FaceWeights | ModalityTurns | str | bool | None
    speech: SpeechEncoder | SpeechWeights | ModalityTurns | str | bool | None
    text: TextEncoder | TextWeights | ModalityTurns | str | bool | None


class Analyzer:
    """Holds the loaded encoders; cheap to share across threads and conversations.

    >>> analyzer = Analyzer()
    >>> with analyzer.conversation() as conv:
    ...     conv.analyze(text="Hi, my order never arrived.", speaker="caller").emotion
    """

    def __init__(self, *, text_prior: PriorSpec = DEFAULT_PRIOR, forecast: Forecaster | bool | None = True,
                 runtime: str | Mapping[str, str] = "auto",
                 encoder_options: Mapping[str, Mapping[str, Any]] | None = None,
                 on_progress: Callable[[ModelLoadEvent], None] | None = None,
                 **encoders: Unpack[EncoderChoices]) -> None:
        """One keyword per modality (``text``, ``speech``, ``face``: the keys of
        ``ENCODER_CLASSES``), each ``True`` for the default weights (also when left out), a
        weights name or enum member, an encoder instance (or an object standing in for one, as
        the Ray Serve ingress passes), or ``None``/``False`` to leave that modality out.

        ``text_prior``: the emotion frequencies your traffic is expected to have (see
        ``affect.text.prior``): ``"trained"`` (default: the probabilities as trained, chosen on the
        dialogue corpora's dev splits), ``"conversational"`` (everyday dialogue: about half
        neutral), ``"uniform"``, or a mapping such as ``{"neutral": 0.8, ...}``.

        ``forecast``: the next-turn forecaster (``affect.forecast``): ``True`` for the shipped
        one, a ``Forecaster``, or ``None``/``False`` for no ``state.forecast``.

        ``runtime``: what runs the networks: ``"auto"`` (default: ONNX Runtime where
        ``benchmarks.speed`` found it faster, when ``affect[onnx]`` is installed, else PyTorch;
        the same answers either way), ``"torch"`` (PyTorch eager), ``"onnx"``, ``"onnx-int8"``
        (the text network in int8: answers move a little), or a mapping by modality such as
        ``{"text": "onnx-int8", "face": "onnx"}``; see ``affect.onnx``. ``"auto"`` leaves the
        encoder instances you pass as they are; a named runtime applies to them too.

        ``encoder_options``: keyword arguments, by modality, for the encoders the Analyzer builds
        (not for instances you pass), such as ``{"face": {"min_face_fraction": 0.3}}`` for webcam
        frames where the face is large (one detector window instead of dozens; see
        ``affect.face.FaceEncoder``).

        ``on_progress``: called with a ``ModelLoadEvent`` as each model the Analyzer loads
        starts and is done (on its runtime), in load order: the encoders in the modality order,
        then the forecaster. Models you pass as instances are not loaded here and not reported.
        The ``affect`` command line draws its progress line from these."""
        unknown = sorted(set(encoders) - {m.value for m in ENCODER_CLASSES})
        if unknown:
            raise TypeError(f"Analyzer() got unexpected keyword arguments {unknown}; the modalities are "
                            f"{[m.value for m in ENCODER_CLASSES]}")
        runtimes = _runtimes(runtime)  # checked before any model loads
        choices = {m: encoders.get(m.value, True) for m in MODALITIES if m in ENCODER_CLASSES}
        unknown = sorted(set(encoder_options or {}) - {m.value for m in ENCODER_CLASSES})
        if unknown:
            raise TypeError(f"encoder_options names no modality: {unknown}; the modalities are "
                            f"{[m.value for m in ENCODER_CLASSES]}")
        options = {m: dict((encoder_options or {}).get(m.value, {})) for m in ENCODER_CLASSES}
        options[Modality.TEXT].setdefault("prior", text_prior)
        loaded = {}
        for m, choice in choices.items():
            # "auto" leaves an instance the caller built as it is; a named runtime applies to it too
            on = runtimes.get(m.value) if _builds(choice) or runtime != "auto" else None
            encoder = _load(m.value, choice, ENCODER_CLASSES[m], on_progress, runtime=on, **options.get(m, {}))
            if encoder is not None:
                loaded[m] = encoder
        self._encoders: dict[Modality, Encoder] = loaded  # in the one modality order
        self.forecaster: Forecaster | None = _load("forecast", forecast, _forecaster_class, on_progress)

    @property
    def encoders(self) -> dict[Modality, "Encoder"]:
        """The loaded encoders by modality, in the one modality order (``affect.results.MODALITIES``)."""
        return dict(self._encoders)

    # Each modality's entry is built from its class in ENCODER_CLASSES, or is the encoder the caller
    # passed (EncoderChoices); an Analyzer built with stand-ins (the Ray Serve ingress's) holds those.
    @property
    def text(self) -> TextEncoder | None:
        """The ``affect.TextEncoder`` (or ``None``)."""
        return cast("TextEncoder | None", self._encoders.get(Modality.TEXT))

    @property
    def speech(self) -> SpeechEncoder | None:
        """The ``affect.speech.SpeechEncoder`` (or ``None``)."""
        return cast("SpeechEncoder | None", self._encoders.get(Modality.SPEECH))

    @property
    def face(self) -> FaceEncoder | None:
        """The ``affect.face.FaceEncoder`` (or ``None``)."""
        return cast("FaceEncoder | None", self._encoders.get(Modality.FACE))

    @property
    def models(self) -> dict[str, str]:
        """Loaded models by modality, as ``name@version``."""
        return {m.value: enc.model_id for m, enc in self.encoders.items() if enc}

    def conversation(self, conversation_id: str | None = None, *, text_context: bool = True,
                     text_prior: PriorSpec = None, thresholds: StateThresholds | None = None,
                     event_speakers: Iterable[str] = ()) -> Conversation:
        """A new conversation; usable directly or as a context manager.

        ``conversation_id`` (and each turn's ``speaker``) is at most 128 characters with no
        control, format or line-separator character (``affect.limits.check_id``, the rule the
        server applies to the same fields): ``InvalidInputError`` otherwise.

        ``text_prior``: the label prior this conversation's text is read under, as for the
        Analyzer's (a preset or a mapping of emotions); ``None`` keeps the Analyzer's. One
        analyzer (or server) can so serve a support desk and a chatbot each under its own.
        Raises ``ValueError`` naming what is wrong with it.

        ``thresholds``: the numbers behind this conversation's events (``affect.state.StateThresholds``:
        e.g. ``StateThresholds(escalation_anger=0.3)`` for fewer, surer escalation warnings).

        ``event_speakers``: the speakers whose events are raised, e.g. ``["caller"]`` for a console
        that wants no warnings about its own agents (empty: every speaker's, as by default). Every
        speaker's readings, state and forecast are kept all the same (the forecast reads the
        other speakers' turns too); only the events of the others are not raised. At most 16
        names, each a speaker's name as a turn gives it (``InvalidInputError`` naming
        ``event_speakers`` otherwise; one name alone, as a string, too).
        """
        return Conversation(self, conversation_id, text_context=text_context, text_prior=text_prior,
                            thresholds=thresholds, event_speakers=event_speakers)

    def analyze(self, turn: Turn | str | bytes | None = None, /, **fields: Unpack[TurnFields]) -> TurnResult:
        """One turn on its own, with no conversation around it: a text first, its fields as
        keywords, or a ``Turn`` (as ``Conversation.analyze``)."""
        return Conversation(self).analyze(turn, **fields)

    def analyze_conversation(self, turns: Iterable[Turn | str | bytes], *,
                             event_speakers: Iterable[str] = ()) -> list[TurnResult]:
        """Every turn of a whole conversation, in order (each a ``Turn``, or a text alone);
        ``event_speakers`` as for ``conversation()`` (checked before the first turn is read)."""
        conversation = Conversation(self, event_speakers=event_speakers)
        return [conversation.analyze(turn) for turn in turns]

    def analyze_text(self, text: str) -> ModalityResult:
        """The text encoder's own result for one text without context."""
        if self.text is None:
            raise RuntimeError("no text encoder loaded")
        return self.text.analyze(text)


def _builds(choice: Any) -> bool:
    """Whether the Analyzer loads this ``choice`` itself (default weights, or named ones)."""
    return choice is True or isinstance(choice, (str, Enum))


def _load(name: str, choice: Any, load_class: Callable[[], type], on_progress: Callable[[ModelLoadEvent], None] | None,
          *, runtime: str | None = None, **options: Any) -> Any:
    """``choice`` as the Analyzer takes it, put on ``runtime`` (``None``: left as it is); a model
    loaded here is reported to ``on_progress`` as it starts (before its class is imported, which
    may be torch's first import) and when it is ready."""
    report = on_progress if on_progress is not None and _builds(choice) else None
    started = time.perf_counter()
    if report:
        report(ModelLoadEvent(name, "start"))
    model = _build(choice, load_class, **options)
    if model is not None and runtime is not None:
        from affect.onnx import use_runtime

        use_runtime(model, runtime)
    if report:
        report(ModelLoadEvent(name, "done", model_id=model.model_id, runtime=getattr(model, "runtime", "torch"),
                              seconds=time.perf_counter() - started))
    return model


def _build(choice: Any, load_class: Callable[[], type], **options: Any) -> Any:
    """``choice`` as the Analyzer takes it; the class is imported only when it is built."""
    if choice is None or choice is False:
        return None
    if choice is True:
        return load_class()(**options)
    if isinstance(choice, (str, Enum)):
        return load_class()(weights=choice, **options)
    return choice  # an encoder instance (or a stand-in for one that runs elsewhere)


def _runtimes(runtime: str | Mapping[str, str]) -> dict[str, str]:
    if runtime == "torch":
        return {}
    from affect.onnx import runtime_for

    return {m.value: runtime_for(runtime, m.value) for m in MODALITIES}


def _text_encoder_class() -> type[TextEncoder]:
    return TextEncoder


def _speech_encoder_class() -> type[SpeechEncoder]:
    from affect.speech import SpeechEncoder

    return SpeechEncoder


def _forecaster_class() -> type[Forecaster]:
    from affect.forecast import Forecaster

    return Forecaster


def _face_encoder_class() -> type[FaceEncoder]:
    from affect.face import FaceEncoder

    return FaceEncoder


# The encoder class of each modality (imported when first built: loading one is costly): the
# registry. A new modality is its input field on ``Turn``, its encoder class with its ``turns``
# (see ``affect.turn_flow``) and its entry here; it is then a keyword of ``Analyzer`` (typed in
# ``EncoderChoices``).
ENCODER_CLASSES: Mapping[Modality, Callable[[], type]] = {
    Modality.FACE: _face_encoder_class,
    Modality.SPEECH: _speech_encoder_class,
    Modality.TEXT: _text_encoder_class,
}

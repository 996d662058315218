"""How a conversation is going: smoothed valence and arousal, their trend, and events.

Every turn's fused reading updates an exponential moving average (EMA) for the conversation
and for the turn's speaker. Events are raised when a speaker's state crosses a documented
threshold, once, and re-armed only after the state has recovered (hysteresis), so a service
agent is told about a change, not about every turn of it. Memory is bounded: a fixed number of
recent values per speaker and at most ``max_speakers`` speakers (the least recent is dropped).

With a forecaster (``affect.forecast.Forecaster``, loaded by default by ``Analyzer``), every turn
with a reading also gives each recent speaker's next-turn P(negative) and P(anger)
(``StateSnapshot.forecast``), and ``escalation_risk`` is raised when a speaker's forecast anger
reaches ``escalation_anger``. It is a forecast of the speaker's next turn: often raised once
their anger has begun (on MELD, most warnings come on a turn already read as anger), sometimes
before it; its event-level precision and recall are in the forecast model card.

Events are raised for every speaker, or only for those named in ``event_speakers`` (a console
that wants no warnings about its own agents); the state and forecast are kept for everyone all
the same, and an unwatched speaker's events are armed and disarmed as always, only not raised.
``reset_speaker`` starts one speaker anew mid-conversation (a human agent taking over from a bot
under the same name, a new caller put through): their smoothed state is dropped, their events
armed, and their earlier turns read by the forecaster as another person's.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from affect.forecast_features import Reading
from affect.labels import EMOTION_NAMES
from affect.limits import check_event_speakers, is_former_speaker
from affect.results import AffectEstimate, Event, SpeakerForecast, SpeakerSnapshot, StateSnapshot
from affect_proto.rules import escalation_anger_problem

__all__ = ["ConversationState", "Event", "ForecasterLike", "SpeakerForecast", "SpeakerSnapshot", "StateSnapshot",
           "StateThresholds"]  # the snapshot value types live in affect.results; importable here too


@dataclass(frozen=True)
class StateThresholds:
    """The numbers behind the events. Valence and arousal are in [-1, 1]; anger is a probability."""

    smoothing: float = 0.5  # EMA weight of the newest turn
    trend_turns: int = 4  # the trend is the least-squares slope over this many recent turns
    negative_valence: float = -0.25  # sustained_negative_shift: smoothed valence below this ...
    negative_drop: float = 0.3  # ... after falling at least this far from its recent peak ...
    negative_turns: int = 2  # ... for this many turns in a row
    recovered_valence: float = 0.0  # re-armed (and negative_recovered raised) above this
    anger_level: float = 0.3  # rising_anger: smoothed anger probability at least this ...
    anger_rise_turns: int = 2  # ... and rising for this many turns in a row (or the speaker's first turn)
    anger_rearm: float = 0.15  # re-armed below this
    history: int = 8  # recent smoothed values kept per speaker
    max_speakers: int = 16
    # escalation_risk: a speaker's forecast P(anger) for their next turn at least this (chosen on
    # MELD dev by recipes/forecast: see affect/models/forecast/MODEL_CARD.md) ...
    escalation_anger: float = 0.20  # forecast-gru@2 on MELD dev: 36% of the next turns so warned were angry (base rate 15%)
    escalation_rearm: float = 0.13  # ... re-armed when it falls below this (two thirds of it), or when
    escalation_calm_turns: int = 3  # ... the speaker's smoothed anger has stayed under anger_rearm this many turns

    def __post_init__(self) -> None:
        """Values that would break the events silently (no speaker kept, a warning on every turn,
        an empty history) are refused here, naming the field."""
        def refuse(name: str, rule: str) -> None:
            raise ValueError(f"StateThresholds.{name} must be {rule}, got {getattr(self, name)!r}")

        if not 0 < self.smoothing <= 1:
            refuse("smoothing", "in (0, 1]")
        for name in ("trend_turns", "negative_turns", "anger_rise_turns", "max_speakers", "escalation_calm_turns"):
            if isinstance(getattr(self, name), bool) or not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                refuse(name, "a whole number of at least 1")
        if not isinstance(self.history, int) or self.history < max(self.trend_turns, self.anger_rise_turns + 1):
            refuse("history", f"a whole number of at least trend_turns and anger_rise_turns + 1 "
                              f"({max(self.trend_turns, self.anger_rise_turns + 1)})")
        for name in ("anger_level", "anger_rearm", "escalation_anger", "escalation_rearm"):
            if not 0 <= getattr(self, name) <= 1:
                refuse(name, "a probability in [0, 1]")
        if self.anger_rearm > self.anger_level:
            refuse("anger_rearm", f"at most anger_level ({self.anger_level})")
        if self.escalation_rearm > self.escalation_anger:
            refuse("escalation_rearm", f"at most escalation_anger ({self.escalation_anger})")
        if not self.recovered_valence >= self.negative_valence:
            refuse("recovered_valence", f"at least negative_valence ({self.negative_valence})")


def escalation_at(level: float, base: StateThresholds | None = None) -> StateThresholds:
    """``base`` (the defaults) with ``escalation_risk`` raised at a forecast P(anger) of ``level``
    and re-armed at the same fraction of it as by default (0.13 / 0.20): one knob for a desk
    that wants fewer, surer warnings (or more). Raises ``ValueError`` outside (0, 1]."""
    base = base or StateThresholds()
    if problem := escalation_anger_problem(level):  # the contract's rule, which the client applies before sending
        raise ValueError(problem)
    return replace(base, escalation_anger=float(level),
                   escalation_rearm=float(level) * base.escalation_rearm / base.escalation_anger)


class ForecasterLike(Protocol):
    """What the state needs of a forecaster (``affect.forecast.Forecaster``)."""

    window: int
    # True when its training readings were made under each model's own training prior (no
    # ``text_prior`` shift): a conversation then hands it each turn read that way.
    learnt_from_trained_readings: bool

    def forecast(self, readings: Sequence[Reading]) -> tuple[SpeakerForecast, ...]: ...


def _slope(values: list[float]) -> float:
    n = len(values)
    if n < 2:
        return 0.0
    mean_x, mean_y = (n - 1) / 2, sum(values) / n
    num = sum((x - mean_x) * (y - mean_y) for x, y in enumerate(values))
    den = sum((x - mean_x) ** 2 for x in range(n))
    return num / den


@dataclass
class _Track:
    """EMA of valence, arousal and the emotion distribution, with recent history."""

    history_len: int
    turns: int = 0
    valence: float = 0.0
    arousal: float = 0.0
    emotions: list[float] = field(default_factory=lambda: [0.0] * len(EMOTION_NAMES))
    valence_history: deque = field(default_factory=deque)
    arousal_history: deque = field(default_factory=deque)
    anger_history: deque = field(default_factory=deque)
    negative_run: int = 0
    negative_armed: bool = True
    in_negative: bool = False
    anger_armed: bool = True
    calm_turns: int = 0  # the speaker's turns in a row with smoothed anger under anger_rearm
    escalation_armed: bool = True

    def update(self, estimate: AffectEstimate, alpha: float) -> None:
        a = 1.0 if self.turns == 0 else alpha
        self.valence = (1 - a) * self.valence + a * estimate.valence
        self.arousal = (1 - a) * self.arousal + a * estimate.arousal
        self.emotions = [(1 - a) * old + a * new for old, new in zip(self.emotions, estimate.emotion_vector())]
        self.turns += 1
        for history, value in ((self.valence_history, self.valence), (self.arousal_history, self.arousal),
                               (self.anger_history, self.emotions[EMOTION_NAMES.index("anger")])):
            history.append(value)
            while len(history) > self.history_len:
                history.popleft()

    def dominant(self) -> str:
        return EMOTION_NAMES[max(range(len(self.emotions)), key=self.emotions.__getitem__)]


class ConversationState:
    """Updated by each turn's fused reading; gives a snapshot and the events the turn raised."""

    def __init__(self, thresholds: StateThresholds | None = None, forecaster: ForecasterLike | None = None, *,
                 event_speakers: Iterable[str] = ()) -> None:
        """``event_speakers``: the speakers whose events are raised (empty: everyone's); the state
        and forecast are kept for every speaker either way. Refused (``InvalidInputError``) as
        ``affect.limits.check_event_speakers`` says: a list of at most 16 speakers' names."""
        self.thresholds = thresholds or StateThresholds()
        self.event_speakers = check_event_speakers(event_speakers)
        self._watched = frozenset(self.event_speakers)
        self._all = _Track(self.thresholds.history)
        self._speakers: OrderedDict[str | None, _Track] = OrderedDict()
        self._forecaster = forecaster
        self._readings: deque[Reading] = deque(maxlen=forecaster.window if forecaster else 1)
        self._forecast: tuple[SpeakerForecast, ...] = ()
        self._last_index: int | None = None

    @property
    def forecaster(self) -> ForecasterLike | None:
        return self._forecaster

    def update(self, estimate: AffectEstimate | None, speaker: str | None, turn_index: int, *,
               forecast_reading: AffectEstimate | None = None) -> tuple[StateSnapshot | None, tuple[Event, ...]]:
        """Advance by one turn's reading. A turn without a reading (``None``) is ignored: the
        state is returned as it was and no event is raised, so silence never reads as calm; before
        the first reading there is no state to return (``None``: its numbers would read as neutral).
        ``forecast_reading``: the turn as the forecaster is to read it, if not ``estimate``."""
        if estimate is None:
            return (self.snapshot() if self._all.turns else None), ()
        if self._last_index is not None and turn_index <= self._last_index:
            raise ValueError(f"turn_index {turn_index} after turn {self._last_index}: a conversation's turns come in order")
        self._last_index = turn_index
        speaker = speaker or None  # "" is no speaker, as on the wire (affect_server.convert)
        t = self.thresholds
        self._all.update(estimate, t.smoothing)
        track = self._speakers.pop(speaker, None) or _Track(t.history)
        self._speakers[speaker] = track  # most recent last
        while len(self._speakers) > t.max_speakers:
            self._speakers.popitem(last=False)
        track.update(estimate, t.smoothing)
        events = self._events(track, speaker, turn_index)
        if self._forecaster is not None:
            seen = estimate if forecast_reading is None else forecast_reading
            self._readings.append(Reading.of(turn_index, speaker, seen.emotion_vector(), seen.sentiment_vector()))
            # A reset speaker's earlier turns are read as another person's, who gets no forecast.
            self._forecast = tuple(f for f in self._forecaster.forecast(self._readings) if not is_former_speaker(f.speaker))
            events += self._escalations(turn_index)
        return self.snapshot(), self._raised(events)

    def _raised(self, events: tuple[Event, ...]) -> tuple[Event, ...]:
        """The events of the watched speakers (``event_speakers``; all when empty). An event names
        the speaker it is about, who may not be the turn's (an escalation_risk forecast for the
        caller on the agent's turn): that is the speaker watched."""
        if not self._watched:
            return events
        return tuple(e for e in events if e.speaker in self._watched)

    def reset_speaker(self, speaker: str, former: str) -> int:
        """Start ``speaker`` anew, as a speaker the conversation has not heard: their smoothed
        readings and history dropped, their events armed again, and their earlier turns still in
        the forecaster's window read as another person's (``former``, a name no turn can have:
        ``affect.limits.former_speaker``), so that their forecast starts from scratch while every
        other speaker's is as before (the forecaster reads the same turns for them). The
        conversation's own smoothed valence, arousal and trend and the other speakers' state are
        kept. Returns how many turns their state held (0: none under that name, or dropped for
        ``max_speakers``). ``speaker`` is checked by the caller (``Conversation.reset_speaker``:
        the unnamed speaker cannot be reset)."""
        track = self._speakers.pop(speaker, None)
        if any(r.speaker == speaker for r in self._readings):
            self._readings = deque((replace(r, speaker=former) if r.speaker == speaker else r for r in self._readings),
                                   maxlen=self._readings.maxlen)
        self._forecast = tuple(f for f in self._forecast if f.speaker != speaker)
        return track.turns if track is not None else 0

    def _escalations(self, turn_index: int) -> tuple[Event, ...]:
        t, out = self.thresholds, []
        for f in self._forecast:
            track = self._speakers.get(f.speaker)
            if track is None:
                continue
            if track.escalation_armed and f.anger >= t.escalation_anger:
                track.escalation_armed = False
                out.append(Event("escalation_risk", f.speaker, turn_index, f.anger,
                                 f"{f.speaker or 'the speaker'}'s next turn is likely to be angry (P {f.anger:.2f})"))
            elif not track.escalation_armed and (f.anger < t.escalation_rearm
                                                 or track.calm_turns >= t.escalation_calm_turns):
                # The forecast remembers an angry spell for many turns after it: a speaker seen calm
                # again is warned of a second spell too, as rising_anger re-arms on their own anger.
                track.escalation_armed = True
        return tuple(out)

    def extrapolate(self, speaker: str | None) -> tuple[float, float] | None:
        """The speaker's smoothed valence and anger one turn ahead along their recent slope
        (``trend_turns``), or ``None`` for a speaker not seen: the trend a forecast is judged against."""
        track = self._speakers.get(speaker)
        if track is None:
            return None
        n = self.thresholds.trend_turns
        return (track.valence + _slope(list(track.valence_history)[-n:]),
                track.emotions[EMOTION_NAMES.index("anger")] + _slope(list(track.anger_history)[-n:]))

    def snapshot(self) -> StateSnapshot:
        t = self.thresholds
        recent_v = list(self._all.valence_history)[-t.trend_turns:]
        recent_a = list(self._all.arousal_history)[-t.trend_turns:]
        return StateSnapshot(
            turns=self._all.turns,
            valence=self._all.valence,
            arousal=self._all.arousal,
            valence_trend=_slope(recent_v),
            arousal_trend=_slope(recent_a),
            speakers=tuple(SpeakerSnapshot(s, k.turns, k.valence, k.arousal, k.dominant()) for s, k in self._speakers.items()),
            forecast=self._forecast,
        )

    def _events(self, track: _Track, speaker: str | None, turn_index: int) -> tuple[Event, ...]:
        t = self.thresholds
        who = speaker or "the speaker"
        events = []
        peak = max(track.valence_history)
        if track.valence < t.negative_valence and peak - track.valence >= t.negative_drop:
            track.negative_run += 1
        else:  # turns in a row: a turn that fails either rule ends the run
            track.negative_run = 0
        if track.negative_armed and track.negative_run >= t.negative_turns:
            track.negative_armed, track.in_negative = False, True
            events.append(Event("sustained_negative_shift", speaker, turn_index, track.valence,
                                f"{who}'s mood has turned negative (valence {track.valence:+.2f}, down {peak - track.valence:.2f})"))
        elif track.in_negative and track.valence > t.recovered_valence:
            track.negative_armed, track.in_negative = True, False
            events.append(Event("negative_recovered", speaker, turn_index, track.valence,
                                f"{who}'s mood has recovered (valence {track.valence:+.2f})"))

        anger = list(track.anger_history)
        rising = len(anger) > t.anger_rise_turns and all(
            b > a for a, b in zip(anger[-t.anger_rise_turns - 1:-1], anger[-t.anger_rise_turns:]))
        # A first turn already angry has no rise to show: it counts as one. (A speaker dropped for
        # max_speakers who comes back starts again as new, this rule too: their state is gone.)
        opens_angry = track.turns == 1
        if track.anger_armed and (rising or opens_angry) and anger[-1] >= t.anger_level:
            track.anger_armed = False
            how = "is angry from the first turn" if opens_angry else "is getting angrier"
            events.append(Event("rising_anger", speaker, turn_index, anger[-1], f"{who} {how} (anger {anger[-1]:.2f})"))
        elif not track.anger_armed and anger[-1] < t.anger_rearm:
            track.anger_armed = True
        track.calm_turns = track.calm_turns + 1 if anger[-1] < t.anger_rearm else 0
        return tuple(events)

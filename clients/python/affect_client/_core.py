"""What the sync and async clients share: options, channels, metadata, retries, parsing.

The two clients are thin shells over these functions, so a rule lives in one place.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import os
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import NoReturn, TypedDict, TypeVar, Union

import grpc
from affect_proto import affect_pb2 as pb
from affect_proto import rules

from affect_client import _constants as C
from affect_client._exceptions import (
    AffectClientError,
    ClientClosedError,
    ConnectionSettingError,
    DeadlineExceededError,
    InvalidInputError,
    InvalidSettingError,
    TurnRefusedError,
    TurnTimeoutError,
    effective_code,
    noted,
    status_code,
)
from affect_client._limits import check_size
from affect_client._target import is_loopback, target_problem, with_default_port
from affect_client._types import TurnResult

logger = logging.getLogger("affect_client")  # retries, at INFO; never a turn's content


class ChannelState:
    """Whether a client's connection is still open: one object shared by the client and the
    copies ``with_options`` makes of it, so closing any owner closes it for all."""

    __slots__ = ("closed",)

    def __init__(self) -> None:
        self.closed = False

    def check_open(self) -> None:
        if self.closed:
            raise ClientClosedError("the client is closed; make a new one")


@dataclass(frozen=True)
class ClientOptions:
    """Every setting of a client. ``with_options(...)`` returns a copy with some changed."""

    target: str = C.DEFAULT_TARGET  # host:port or a gRPC scheme's; a host without a port gets 50051 (_target)
    token: str | None = None  # sent as "authorization: Bearer <token>"
    tls: bool = False
    root_certificates: bytes | None = None  # PEM; None uses the system's roots
    # deadlines, retries included (Retries, within): a unary call; an opening; one turn
    timeout: float | None = C.DEFAULT_TIMEOUT_S
    open_timeout: float | None = C.DEFAULT_OPEN_TIMEOUT_S
    turn_timeout: float | None = C.DEFAULT_TURN_TIMEOUT_S
    conversation_deadline: float | None = None  # whole stream; None: no deadline
    max_retries: int = C.DEFAULT_MAX_RETRIES
    busy_retries: int = C.DEFAULT_BUSY_RETRIES  # RESOURCE_EXHAUSTED with a retry hint: resent after the hint
    # a conversation's stream ended UNAVAILABLE, or the server closed it for idleness: reopened, the text
    # of this many last turns replayed (affect_client._resume); 0: not resumed, the error is raised
    resume_turns: int = C.DEFAULT_RESUME_TURNS
    # while a call is open, the connection is pinged when nothing has arrived on it for this long and
    # closed when a ping goes unanswered as long (at most 10 s): a stream whose path died silently ends
    # UNAVAILABLE, and is resumed; 0 (the default): no pings; else at least affect_proto.rules.MIN_KEEPALIVE_S
    # (15 for a client of affect serve itself; see _constants.DEFAULT_KEEPALIVE_S for why off)
    keepalive_s: float = C.DEFAULT_KEEPALIVE_S
    application: str | None = None  # Ray Serve's "application" metadata, for a multi-app cluster
    metadata: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    def replace(self, **changes: object) -> "ClientOptions":
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]  # any field, by name


class CallSettings(TypedDict, total=False):
    """What ``with_options(...)`` may change: the fields of ``ClientOptions`` but the connection's
    own (``CONNECTION_OPTIONS``), as typed keywords, so that an editor and mypy catch a misspelt or
    mistyped one (``tests/test_client_parity.py`` keeps them alike)."""

    token: str | None
    timeout: float | None
    open_timeout: float | None
    turn_timeout: float | None
    conversation_deadline: float | None
    max_retries: int
    busy_retries: int
    resume_turns: int
    application: str | None
    metadata: tuple[tuple[str, str], ...]


class ClientSettings(CallSettings, total=False):
    """A new client's keyword settings (``AffectClient(target, token=..., tls=True)``): the fields
    of ``ClientOptions`` but ``target``, which is the client's first argument."""

    tls: bool
    root_certificates: bytes | None
    keepalive_s: float


def resolve_options(options: ClientOptions | None, target: str | None, settings: Mapping[str, object]) -> ClientOptions:
    """A client's options: ``options`` (or the defaults, with ``AFFECT_TARGET`` and ``AFFECT_TOKEN``
    from the environment when set), then ``target``, then keyword settings."""
    options = options or environment_options()
    if target:
        settings = {**settings, "target": target}
    return _checked(options.replace(**settings) if settings else options)


CONNECTION_OPTIONS = frozenset({"target", "tls", "root_certificates", "keepalive_s"})  # fixed once the channel exists


def copied_options(options: ClientOptions, changes: Mapping[str, object]) -> ClientOptions:
    """The options of a copy ``with_options`` makes: it shares the connection, so what the
    connection was made with cannot change, and a token still needs TLS off this machine."""
    if fixed := sorted(CONNECTION_OPTIONS & changes.keys()):
        raise InvalidSettingError(f"with_options cannot change {', '.join(fixed)}: a copy shares this client's connection; "
                                  "make a new client for another target or transport", field=fixed[0])
    return _checked(options.replace(**changes))


def _checked(options: ClientOptions) -> ClientOptions:
    """The options, if every setting can be used; else ``InvalidSettingError`` naming the first that cannot."""
    if problem := setting_problem(options):
        raise InvalidSettingError(problem[1], field=problem[0])
    options = options.replace(target=with_default_port(options.target))  # one rule for a port-less target
    if options.token and not options.tls and not is_loopback(options.target):
        raise InvalidSettingError(f"a token without TLS would travel in clear text to {options.target}: use tls=True "
                                  "(plaintext with a token is allowed on loopback only, as the server allows it)",
                                  field="token")
    return options


_COUNTS = {"max_retries": "no retries", "busy_retries": "none", "resume_turns": "no resuming"}  # what 0 means
_SECONDS = ("timeout", "open_timeout", "turn_timeout", "conversation_deadline")  # None: no limit
_TEXTS = ("token", "application")  # None: none


def setting_problem(options: ClientOptions) -> tuple[str, str] | None:
    """The first setting of ``options`` that cannot be used and why, or None."""
    if not isinstance(options.target, str) or not options.target.strip():
        return "target", f"target must be a gRPC target such as {C.DEFAULT_TARGET}, got {options.target!r}"
    if problem := target_problem(options.target):
        return "target", problem
    for name, zero in _COUNTS.items():
        value = getattr(options, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            return name, f"{name} must be 0 ({zero}) or a larger whole number, got {value!r}"
    for name in _SECONDS:
        value = getattr(options, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not 0 < value < math.inf):
            return name, f"{name} must be a number of seconds above 0, or None for no limit, got {value!r}"
    for name in _TEXTS:
        value = getattr(options, name)
        if value is not None and not isinstance(value, str):
            return name, f"{name} must be a string or None, got {type(value).__name__}"
    if not isinstance(options.tls, bool):
        return "tls", f"tls must be True or False, got {options.tls!r}"
    if options.root_certificates is not None and not isinstance(options.root_certificates, bytes):
        return "root_certificates", f"root_certificates must be PEM bytes or None, got {type(options.root_certificates).__name__}"
    if not isinstance(options.metadata, (tuple, list)) or not all(
            isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(part, str) for part in pair)
            for pair in options.metadata):
        return "metadata", "metadata must be (key, value) pairs of strings"
    keepalive = options.keepalive_s
    if isinstance(keepalive, bool) or not isinstance(keepalive, (int, float)) or not (
            keepalive == 0 or rules.MIN_KEEPALIVE_S <= keepalive < math.inf):
        return "keepalive_s", (f"keepalive_s must be 0 (no pings) or at least {rules.MIN_KEEPALIVE_S:g} s, not {keepalive!r}: "
                               "a server takes pings more often than that as abuse and ends the connection")
    return None


def environment_options() -> ClientOptions:
    """The defaults, with the target and token read from ``AFFECT_TARGET`` / ``AFFECT_TOKEN`` if set."""
    env = {"target": os.environ.get("AFFECT_TARGET"), "token": os.environ.get("AFFECT_TOKEN")}
    return ClientOptions().replace(**{k: v for k, v in env.items() if v})


def call_metadata(options: ClientOptions) -> tuple[tuple[str, str], ...]:
    metadata = list(options.metadata)
    if options.token:
        metadata.append(("authorization", f"Bearer {options.token}"))
    if options.application:
        metadata.append(("application", options.application))
    return tuple(metadata)


def channel_arguments(options: ClientOptions) -> list[tuple[str, int]]:
    """The channel's settings: the message size, its reconnection backoff (``reconnect_arguments``)
    and its keepalive (``keepalive_args``)."""
    return [("grpc.max_receive_message_length", C.MAX_MESSAGE_BYTES), ("grpc.max_send_message_length", C.MAX_MESSAGE_BYTES),
            *reconnect_arguments(), *keepalive_args(options.keepalive_s)]


def reconnect_arguments() -> list[tuple[str, int]]:
    """The channel's own reconnection backoff, on the retries' schedule. A channel that failed to
    connect fails calls at once until its next attempt, which gRPC makes after 1 s growing 1.6-fold
    to 120 s: a server listening again at 9 s was reached at 14 s whatever the retries did."""
    return [("grpc.initial_reconnect_backoff_ms", round(C.INITIAL_BACKOFF_S * 1000)),
            ("grpc.max_reconnect_backoff_ms", round(C.MAX_BACKOFF_S * 1000))]


def keepalive_args(keepalive_s: float) -> list[tuple[str, int]]:
    """gRPC's keepalive (its ``doc/keepalive.md``): a ping when nothing has been read for
    ``keepalive_s`` (any frame read restarts the wait: an affect server's own pings, every 10 s,
    keep a client with a longer interval from pinging at all), and the connection closed, its calls
    ended UNAVAILABLE, when a ping (any: flow control's too) is not answered within ``keepalive_s``,
    at most ``KEEPALIVE_TIMEOUT_S``. gRPC 1.85 times pings out after ``grpc.http2.ping_timeout_ms``
    (60 s by default) whatever ``keepalive_timeout_ms`` says: both are set.

    Only while a call is open (``keepalive_permit_without_calls`` 0: a server takes pings on a
    connection without calls as abuse unless 2 hours apart), and with no cap on the pings sent while
    the client sends nothing else (``max_pings_without_data`` 0; gRPC's 2 left a quiet
    conversation's path unwatched after 2 pings)."""
    if not keepalive_s:
        return []
    time_ms = min(round(keepalive_s * 1000), 2**31 - 1)  # gRPC reads an int
    timeout_ms = round(min(keepalive_s, C.KEEPALIVE_TIMEOUT_S) * 1000)
    return [("grpc.keepalive_time_ms", time_ms), ("grpc.keepalive_timeout_ms", timeout_ms),
            ("grpc.http2.ping_timeout_ms", timeout_ms), ("grpc.keepalive_permit_without_calls", 0),
            ("grpc.http2.max_pings_without_data", 0)]


def credentials(options: ClientOptions) -> grpc.ChannelCredentials | None:
    if not options.tls:
        return None
    return grpc.ssl_channel_credentials(root_certificates=options.root_certificates)


def backoff_delays(caps: Iterable[float]) -> Iterator[float]:
    """Exponential backoff with full jitter: how long to wait before each retry, below its cap."""
    for cap in caps:
        yield random.uniform(0, cap)


def _backoff_caps(max_retries: int) -> list[float]:
    """The longest wait before each of ``max_retries`` retries: doubling up to ``MAX_BACKOFF_S``."""
    caps: list[float] = []
    delay = C.INITIAL_BACKOFF_S
    for _ in range(max_retries):
        caps.append(delay)
        delay = min(C.MAX_BACKOFF_S, delay * 2)
    return caps


def retry_window_s(max_retries: int) -> float:
    """How long a call refused UNAVAILABLE is retried: as long as ``max_retries`` waits of the
    backoff take at their longest (19.75 s at the default 8; 0: not retried). Full jitter makes
    the waits themselves shorter (about half, on average), so the retries go on past them."""
    return sum(_backoff_caps(max_retries))


class LateAnswers:
    """A stream's turns that timed out, whose answers are still to come. The server answers each
    request of a stream once, in order, so those answers come before the next turn's: both twins
    count them here and drop them as they come (``Conversation._answer``)."""

    def __init__(self) -> None:
        self.owed = 0

    def timed_out(self, turn_timeout: float | None) -> TurnTimeoutError:
        """The error of a turn with no answer within ``turn_timeout``, its answer now owed."""
        self.owed += 1
        return TurnTimeoutError(turn_timeout or 0.0)

    def drops(self) -> bool:
        """Whether the answer just read is a timed-out turn's, to be dropped (one fewer owed)."""
        if not self.owed:
            return False
        self.owed -= 1
        return True


def not_opened(timeout: float | None) -> DeadlineExceededError:
    """A conversation's opening with no answer within ``timeout`` s."""
    return DeadlineExceededError(grpc.StatusCode.DEADLINE_EXCEEDED,
                                 f"the conversation did not open within {timeout or 0.0:.1f} s")


class Retries:
    """The retries of one call, one conversation's opening or one turn: UNAVAILABLE (calls and
    openings only) with jittered backoff, until ``max_retries`` are spent and their window has
    passed (``retry_window_s``), whichever comes last, so that the last attempt is made at the
    window's end or after whatever the jitter drew; RESOURCE_EXHAUSTED that carries the server's
    retry hint, after the hinted delay, up to ``busy_retries``. Nothing else is retried, nor an
    UNAVAILABLE no wait will cure (``ConnectionSettingError``: a name that does not resolve, TLS
    that does not match the server) but in a resume. Every request retried is safe to resend: a
    refused turn is not counted. Each retry is logged at INFO (``affect_client``): the status and
    gRPC's words for UNAVAILABLE, the wait, never what was sent.

    ``within``: the setting whose seconds are the whole's deadline, retries included, as gRPC's own
    deadline covers its retry policy: ``timeout`` for a call (Analyze, ListModels),
    ``open_timeout`` for a conversation's opening, ``turn_timeout`` for a turn (its busy resends
    included). No retry starts, and no wait before one ends, past the deadline (a wait that would
    is cut to half the time left, for one last attempt), and each attempt may take what is left of
    it (``left``). A setting of None: no deadline, the window alone.

    ``resuming``: a conversation's stream opened again after its server went away
    (``affect_client._resume``). A resume is recovery, not the turn's: its window is its own, at
    least ``RESUME_REOPEN_S`` (``within``, the opening's timeout, bounds each attempt alone), and
    the turns it sends then each have their own ``turn_timeout``. ALREADY_EXISTS is retried too,
    which a server from before ``OpenConversation.resume`` says while it still holds the
    conversation on a connection that broke (it frees it once its keepalive finds the connection
    dead); a newer one takes the conversation over at once.

    ``clock``: seconds, as ``time.monotonic`` counts them (which it is, but in a test of the rule)."""

    def __init__(self, options: ClientOptions, *, within: str | None = None, unavailable: bool = True,
                 resuming: bool = False, clock: Callable[[], float] = time.monotonic) -> None:
        caps = _backoff_caps(options.max_retries if unavailable else 0)
        self._options = options
        self._backoff = backoff_delays(caps)
        self._busy_left = options.busy_retries
        self._codes = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ALREADY_EXISTS) if resuming else (grpc.StatusCode.UNAVAILABLE,)
        self._resuming = resuming
        self._clock = clock
        self._started = clock()
        self._until = self._started + max(sum(caps), C.RESUME_REOPEN_S if resuming else 0.0)  # sum: retry_window_s
        seconds: float | None = getattr(options, within) if within else None
        self._within, self._seconds = within, seconds
        self._deadline = None if seconds is None or resuming else self._started + seconds
        self._each = seconds if resuming else None
        self._attempts = 0  # failed so far
        self._spent = ""  # the count the last failure found spent, if it did
        self._cut = False  # a retry's wait reached the deadline: the last attempt is made

    def left(self) -> float | None:
        """Seconds the next attempt may take (its gRPC deadline, its wait for an answer): what is
        left of the deadline, or the opening's timeout for each of a resume's; None: no limit."""
        if self._deadline is None:
            return self._each
        return max(0.0, self._deadline - self._clock())

    def delay(self, error: AffectClientError) -> float | None:
        """Seconds to wait before sending again, or None to raise ``error`` (``given_up``)."""
        self._attempts += 1
        delay = self._retry_delay(error)
        if delay is not None and self._deadline is not None:
            left = self._deadline - self._clock()
            if delay >= left:
                busy = getattr(error, "code", None) == grpc.StatusCode.RESOURCE_EXHAUSTED
                if self._cut or left <= 0 or busy:  # the last attempt the deadline allowed was made, or the
                    self._cut = True  # server asked for more time than is left (gRPC's pushback rule: no retry)
                    return None
                self._cut = True  # one last attempt, halfway to the deadline, with half the time left for it
                delay = left / 2
        if delay is not None:
            self._log_retry(error, delay)
        return delay

    def _log_retry(self, error: AffectClientError, delay: float) -> None:
        """One retry, at INFO: what failed (gRPC's connection words for UNAVAILABLE; a busy
        refusal's hint), the attempt, the wait. Never a request's content."""
        code = getattr(error, "code", grpc.StatusCode.UNKNOWN)
        said = {grpc.StatusCode.UNAVAILABLE: ((getattr(error, "details", "") or "").splitlines() or [""])[0],
                grpc.StatusCode.ALREADY_EXISTS: "the conversation is still held by the old stream"}.get(code, "busy")
        bounds = f"max_retries={self._options.max_retries}" if code in self._codes else f"busy_retries={self._options.busy_retries}"
        if self._within and self._seconds is not None:
            bounds += f", {self._within}={self._seconds:g} s"
        logger.info("%s: %s; attempt %d failed, retrying in %.2f s (%s)", code.name, said, self._attempts, delay, bounds)

    def _retry_delay(self, error: AffectClientError) -> float | None:
        code = getattr(error, "code", None)
        if isinstance(error, ConnectionSettingError) and not self._resuming:
            self._spent = ""
            return None
        if code in self._codes:
            delay = next(self._backoff, None)
            left = self._until - self._clock()
            if delay is None and left > 0:
                delay = min(random.uniform(0, C.MAX_BACKOFF_S), left)  # the last one ends at the window's end
            self._spent = "" if delay is not None else "max_retries"
            return delay
        hint = getattr(error, "retry_after", None)
        if code == grpc.StatusCode.RESOURCE_EXHAUSTED and hint is not None and hint <= C.MAX_BUSY_WAIT_S:
            if self._busy_left <= 0:
                self._spent = "busy_retries"
                return None
            self._busy_left -= 1
            return hint * random.uniform(1.0, 1.25)  # not before the hint, and not all refused clients at once
        self._spent = ""
        return None

    def given_up(self, failure: AffectClientError) -> AffectClientError:
        """``failure`` as it is raised when it is not retried: after retries, or cut short by the
        deadline, its message says how many attempts were made over how long, and why they
        stopped (``(3 attempts over 2.0 s: timeout=2 s reached)``)."""
        reached = self._cut or (self._deadline is not None and self._clock() >= self._deadline)
        if self._attempts <= 1 and not reached:
            return failure
        note = f"{self._attempts} attempt{'s' if self._attempts != 1 else ''} over {self._clock() - self._started:.1f} s"
        if reached:
            note += f": {self._within}={self._seconds:g} s reached"
        elif self._spent == "max_retries":  # retried past them until their window ended: more attempts than retries
            note += f": max_retries={self._options.max_retries} spent and their {self._until - self._started:.1f} s window passed"
        elif self._spent:
            note += f": {self._spent}={getattr(self._options, self._spent)} spent"
        return noted(failure, note)


T = TypeVar("T")


def retrying(attempt: Callable[[float | None], T], options: ClientOptions, *, within: str | None,
             unavailable: bool = True, resuming: bool = False, catch: type[AffectClientError] = AffectClientError) -> T:
    """``attempt(left)`` until it returns, retried on the failures (of type ``catch``) that
    ``Retries`` retries; ``left``: the seconds the attempt may take (``Retries.left``)."""
    retries = Retries(options, within=within, unavailable=unavailable, resuming=resuming)
    while True:
        try:
            return attempt(retries.left())
        except catch as failure:
            if (delay := retries.delay(failure)) is None:
                raise retries.given_up(failure) from None
        time.sleep(delay)


async def retrying_async(attempt: Callable[[float | None], Awaitable[T]], options: ClientOptions, *, within: str | None,
                         unavailable: bool = True, resuming: bool = False,
                         catch: type[AffectClientError] = AffectClientError) -> T:
    """``retrying`` for coroutines: the same rule, waiting with ``asyncio.sleep``."""
    retries = Retries(options, within=within, unavailable=unavailable, resuming=resuming)
    while True:
        try:
            return await attempt(retries.left())
        except catch as failure:
            if (delay := retries.delay(failure)) is None:
                raise retries.given_up(failure) from None
        await asyncio.sleep(delay)


TextPrior = Union[str, Mapping[str, float], None]


def prior_option(text_prior: TextPrior) -> str:
    """A text prior as the wire carries it (``ConversationOptions.text_prior``): a preset name or
    ``emotion=weight`` pairs as they are, a mapping as ``emotion=weight`` pairs, ``None`` as empty
    (the server's own prior). Checked here by the contract's rules, which the server applies
    (``rules.text_prior_problem``, ``rules.prior_weights_problem``: ``InvalidInputError``, field
    ``text_prior``): an unknown preset or emotion, a weight that is not a finite number >= 0."""
    if text_prior is None or isinstance(text_prior, str):
        if text_prior and (problem := rules.text_prior_problem(text_prior)):
            raise InvalidInputError(problem, field="text_prior")
        return text_prior or ""
    if not isinstance(text_prior, Mapping):
        raise InvalidInputError(f"text_prior must be a preset name or a mapping of emotions to weights, "
                                f"got {type(text_prior).__name__}", field="text_prior")
    weights = {str(getattr(key, "value", key)): weight for key, weight in text_prior.items()}
    if problem := rules.prior_weights_problem(weights):
        raise InvalidInputError(problem, field="text_prior")
    return ",".join(f"{name}={float(weight)!r}" for name, weight in weights.items())  # each weight checked above


def open_request(conversation_id: str | None, *, omit_modality_results: bool, disable_text_context: bool,
                 text_prior: TextPrior = None, escalation_anger: float | None = None,
                 event_speakers: Iterable[str] = ()) -> pb.ConverseRequest:
    """A conversation's opening; ``escalation_anger`` is sent only when given (unset: the server's).
    The options are checked here by the contract's rules, which the server applies
    (``InvalidInputError`` naming the option): ``event_speakers`` (one name given alone would be
    sent letter by letter), ``text_prior`` (``prior_option``) and ``escalation_anger`` (in (0, 1])."""
    speakers = rules.as_listed(event_speakers)  # an iterator is read once, here
    if problem := rules.event_speakers_problem(speakers):
        raise InvalidInputError(problem, field="event_speakers")
    assert isinstance(speakers, tuple)  # the rule has checked it
    if escalation_anger is not None and (problem := rules.escalation_anger_problem(escalation_anger)):
        raise InvalidInputError(problem, field="escalation_anger")
    options = pb.ConversationOptions(omit_modality_results=omit_modality_results, disable_text_context=disable_text_context,
                                     text_prior=prior_option(text_prior), event_speakers=speakers)
    if escalation_anger is not None:
        options.escalation_anger = escalation_anger
    return pb.ConverseRequest(open=pb.OpenConversation(conversation_id=conversation_id or "", options=options))


def reset_request(speaker: str) -> pb.ConverseRequest:
    """A ``ResetSpeaker`` for ``speaker``, checked here by the contract's rule (``InvalidInputError``,
    field ``speaker``: a name a turn's speaker could not have, or an empty one)."""
    if problem := rules.named_speaker_problem(speaker):
        raise InvalidInputError(problem, field="speaker")
    return pb.ConverseRequest(reset_speaker=pb.ResetSpeaker(speaker=speaker))


def analyze_request(turn: pb.Turn, *, text_prior: TextPrior = None) -> pb.AnalyzeRequest:
    """An Analyze call's request, if this client may send it (``_limits.check_size``: no server has
    told its limits to a call)."""
    request = pb.AnalyzeRequest(turn=turn, options=pb.ConversationOptions(text_prior=prior_option(text_prior)))
    check_size(request)
    return request


def turn_request(turn: pb.Turn) -> pb.ConverseRequest:
    """A conversation's turn; its flow checks it against the limits of the stream it goes on
    (``_limits.check_fits``), which a resume may change."""
    return pb.ConverseRequest(turn=turn)


Answer = Union[TurnResult, pb.SpeakerReset]  # what a conversation's request is answered with


def parse_answer(request: pb.ConverseRequest, response: pb.ConverseResponse) -> Answer:
    """The answer to ``request``: a turn's result, a reset's acknowledgement, or
    ``TurnRefusedError`` when the server refused it."""
    if request.WhichOneof("kind") == "reset_speaker":
        return parse_reset_response(response)
    return parse_turn_response(response)


def parse_reset_response(response: pb.ConverseResponse) -> pb.SpeakerReset:
    """The reset's acknowledgement, or ``TurnRefusedError`` when the server refused it (a server
    older than ``ResetSpeaker`` refuses it INVALID_ARGUMENT)."""
    if response.WhichOneof("kind") == "speaker_reset":
        return response.speaker_reset
    return _refused_or_unexpected(response, "a speaker's reset")


def parse_turn_response(response: pb.ConverseResponse) -> TurnResult:
    """The turn's result, or ``TurnRefusedError`` when the server refused it."""
    if response.WhichOneof("kind") == "result":
        return TurnResult.from_pb(response.result)
    return _refused_or_unexpected(response, "a turn")


def _refused_or_unexpected(response: pb.ConverseResponse, what: str) -> NoReturn:
    kind = response.WhichOneof("kind")
    if kind == "error":
        e = response.error
        raise TurnRefusedError(status_code(e.code), e.message, e.field, e.turn_id,
                               e.retry_after_ms / 1000 if e.retry_after_ms else None)
    raise RuntimeError(f"unexpected {kind!r} message in answer to {what}")

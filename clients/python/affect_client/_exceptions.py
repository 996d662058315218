"""The client's one exception tree.

    AffectClientError
    ├── APIStatusError              the server ended a call with a gRPC status (``.code``; ``.field`` when
    │   │                           it names what it refused: a conversation's opening, ``options.*``;
    │   │                           ``.reason`` when it says why: ``"idle"``, ``"draining"``)
    │   ├── InvalidArgumentError    INVALID_ARGUMENT
    │   ├── ResourceExhaustedError  RESOURCE_EXHAUSTED (limits; ``.retry_after`` when the server is busy)
    │   ├── UnauthenticatedError    UNAUTHENTICATED (token)
    │   ├── AlreadyExistsError      ALREADY_EXISTS (this conversation id is open on the server: yours,
    │   │                           or a resume whose old stream a server from before takeovers
    │   │                           still held after 30 s)
    │   ├── UnavailableError        UNAVAILABLE (retryable; a conversation resumes on a new stream
    │   │   │                       itself, unless resume_turns=0 or it has resumed 3 times)
    │   │   └── ConnectionSettingError  UNAVAILABLE that waiting will not cure (``.field`` names the
    │   │                           setting): the target's host name does not resolve (``target``), the
    │   │                           server does not speak TLS (``tls``) or its certificate is not trusted
    │   │                           (``root_certificates``); not retried (but in a resume)
    │   ├── DeadlineExceededError   DEADLINE_EXCEEDED (a call's timeout or open_timeout, its retries
    │   │   │                       included; a conversation the server closed for idleness, reason
    │   │   │                       "idle", is resumed on the next send unless resume_turns=0)
    │   │   └── TurnTimeoutError    no answer to a turn within turn_timeout: the conversation goes on,
    │   │                           the turn's late answer is dropped when it comes
    │   └── ConversationTakenOverError  ABORTED, reason "taken_over": a newer stream of this
    │                               conversation id from the same address (a resume) holds it now;
    │                               never resumed (that would take it back)
    ├── TurnRefusedError            one turn refused, sent by send() or analyze() alike (``.code``, ``.field``,
    │   │                           ``.retry_after``); a conversation goes on. By the server, or by the client
    │   │                           before sending (then also an InvalidInputError: the two below)
    │   ├── TurnInputError          (also an InvalidInputError) its input, refused unsent: a rule of the
    │   │                           contract (``.field`` the argument: ``text``, ``images``, ``audio``) or a
    │   │                           limit its server told (``conversation.limits``; ``.field`` the server's: ``turn.text``)
    │   └── TurnTooLargeError       (also an InvalidInputError) over the size of a message the server reads
    │                               or the client sends: not sent (``.size``, ``.limit``, in bytes)
    ├── ConversationClosedError     send() on a conversation that has ended
    ├── ClientClosedError           a call on a client that is closed (or a copy made of it)
    └── InvalidInputError           (also a ValueError) refused before sending (``.field``): a turn's input
        │                           (TurnInputError above: a missing file, an array without its sample
        │                           rate), an option (``text_prior``), a speaker to reset
        └── InvalidSettingError     a client setting that cannot be used (``.field`` names it:
                                    ``max_retries=-1``, ``with_options(target=...)``)

``retry_after`` is the server's hint, in seconds, for a refusal because it is busy: the same
request sent again after that long may succeed. None when there is none (a limit the request
will never fit). A conversation whose ``send()`` was cancelled or interrupted is closed: its later
``send()`` raises ``ConversationClosedError``; one whose turn timed out (``TurnTimeoutError``) goes on.
A call given up after retries says so at the end of its message: ``(3 attempts over 2.0 s:
timeout=2 s reached)``, ``(17 attempts over 19.8 s: max_retries=8 spent and their 19.8 s window passed)``.
"""

from __future__ import annotations

import re

import grpc
from affect_proto import rules


class AffectClientError(Exception):
    """Base of every error this client raises."""


class APIStatusError(AffectClientError):
    """The server ended a call with a status. ``field`` names what it refused, when it says
    (``options.text_prior`` on opening a conversation); empty otherwise. ``reason`` is why the
    server ended it, when it says (the trailer ``rules.ABORT_REASON_TRAILER``: ``"idle"`` for a
    conversation it closed after its idle timeout, ``"draining"``, ...); empty for a status the
    client or gRPC set (``turn_timeout``, a deadline) or a server from before reasons. Behind
    Ray Serve's proxy, which drops trailers, both are read from the end of the status message
    (``rules.TRAILERS_IN_MESSAGE``), and ``details`` is the message without them."""

    def __init__(self, code: grpc.StatusCode, message: str, retry_after: float | None = None, *, field: str = "",
                 reason: str = "") -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.details = message
        self.retry_after = retry_after
        self.field = field
        self.reason = reason


class InvalidArgumentError(APIStatusError): ...


class ResourceExhaustedError(APIStatusError): ...


class UnauthenticatedError(APIStatusError): ...


class AlreadyExistsError(APIStatusError): ...


class UnavailableError(APIStatusError): ...


class ConnectionSettingError(UnavailableError):
    """UNAVAILABLE because of how the client was told to connect, not because the server is away
    (``connection_setting_problem``): raised at the first attempt of a call or an opening, where
    retries would only delay it (19.8 s at the default ``max_retries``). ``field`` names the
    setting to check; ``details`` says what gRPC reported. A resume still retries it: the target
    worked before (a Kubernetes headless service's name does not resolve while it has no ready pod)."""


class DeadlineExceededError(APIStatusError): ...


class TurnTimeoutError(DeadlineExceededError):
    """A conversation's turn (or reset) got no answer within ``turn_timeout``. The conversation
    goes on, on the same stream: the server answers a stream's turns once each and in order, so
    the late answer is known when it comes and dropped, and the next ``send()`` gets its own (its
    wait, within its own ``turn_timeout``, includes the late answer's). The server may still read
    the late turn: its text joins the conversation's context there. Not resumed, no ``reason``."""

    def __init__(self, timeout: float) -> None:
        super().__init__(grpc.StatusCode.DEADLINE_EXCEEDED,
                         f"no answer within {timeout:g} s; the conversation goes on (this turn's answer is "
                         "dropped when it comes)")


class ConversationTakenOverError(APIStatusError):
    """The conversation's stream was ended (ABORTED, reason ``rules.TAKEN_OVER_REASON``) because a
    newer stream of the same conversation id from the same client address opened it as a resume
    (``OpenConversation.resume``): that stream holds the conversation now, with its own state. This
    one is not resumed (it would take the conversation back, and the two would take it in turns);
    it is closed, and later sends raise ``ConversationClosedError``."""


class TurnRefusedError(AffectClientError):
    """One turn refused (its input, a limit, busy, or the server failed on it): a conversation's
    turn (the conversation goes on) or an ``analyze()`` call's, alike. Refused by the server, or
    by the client before sending: ``TurnInputError`` for its input (a rule of the contract, or a
    limit the server told on opening, ``Conversation.limits``), ``TurnTooLargeError`` for its size,
    each an ``InvalidInputError`` too."""

    def __init__(self, code: grpc.StatusCode, message: str, field: str, turn_id: str,
                 retry_after: float | None = None) -> None:
        # Not super(): TurnTooLargeError is an InvalidInputError too, whose __init__ takes a field.
        AffectClientError.__init__(self, f"{code.name}: {message}")
        self.code = code
        self.details = message
        self.field = field
        self.turn_id = turn_id
        self.retry_after = retry_after


class ConversationClosedError(AffectClientError):
    """The conversation has ended; open a new one."""


class ClientClosedError(AffectClientError):
    """The client (or the client it was copied from) is closed; make a new one."""


class InvalidInputError(AffectClientError, ValueError):
    """What was given cannot be used as it is (a turn's input, an option, a setting): refused
    before anything goes on the wire. ``field`` names it."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


class TurnInputError(TurnRefusedError, InvalidInputError):
    """A turn refused by the client before sending it, for its input: the server never saw it, and
    a conversation goes on. It breaks a rule of the contract (``affect_proto.rules``: text over the
    contract's 10,000 characters, more than 8 images, a missing file, an array without its sample
    rate; ``field`` the argument, ``text``, ``images``, ``audio``, with the library's message) or
    is over a lower limit its server told on opening (``Conversation.limits``; the field and
    message the server would give, ``turn.text``). INVALID_ARGUMENT, no ``retry_after``. Both a
    ``TurnRefusedError`` (one turn refused, whoever refused it) and an ``InvalidInputError`` (refused
    before sending, as these always were), whatever limits the server has; ``str()`` is the
    message alone (``TurnTooLargeError``'s begins with its code, as a ``TurnRefusedError``'s)."""

    def __init__(self, message: str, *, field: str, turn_id: str = "") -> None:
        super().__init__(grpc.StatusCode.INVALID_ARGUMENT, message, field, turn_id)
        self.args = (message,)


class TurnTooLargeError(TurnRefusedError, InvalidInputError):
    """A turn over the size of one message (``size`` bytes on the wire, ``limit`` the most that
    may go), refused by the client before sending: over its server's ``max_message_mb``, which
    the server told on opening (``Conversation.limits.max_message_bytes``), or over the client's
    own limit (``MAX_MESSAGE_BYTES``, 16 MiB) when it told none. Sent, gRPC would refuse it and
    end the conversation's whole stream; unsent, the conversation goes on. RESOURCE_EXHAUSTED, as
    gRPC says, field ``turn``, no ``retry_after``: it will never fit. An ``InvalidInputError``
    too, as this refusal was before the server told its limits."""

    def __init__(self, message: str, *, size: int, limit: int, turn_id: str = "") -> None:
        super().__init__(grpc.StatusCode.RESOURCE_EXHAUSTED, message, "turn", turn_id)
        self.size = size
        self.limit = limit

    @classmethod
    def over(cls, size: int, limit: int, *, told: bool, sent: bool = False, turn_id: str = "") -> "TurnTooLargeError":
        """The refusal of a turn of ``size`` bytes over ``limit``: the server's ``max_message_mb``
        (``told``: it said so, on opening a conversation, or ``sent``: gRPC refused an Analyze call's
        request there) or the client's own; one wording, whoever found it."""
        over = (f"this server's max_message_mb of {_mib(limit)} MiB ({limit:,} bytes)" if told or sent else
                f"the {_mib(limit)} MiB ({limit:,} bytes) this client sends in one message")
        return cls(f"the turn is {size / 2**20:.2f} MiB ({size:,} bytes) on the wire, over {over}: "
                   f"{'the server refused it' if sent else 'it was not sent'}; send shorter audio or smaller pictures",
                   size=size, limit=limit, turn_id=turn_id)


def _mib(size: int) -> str:
    """A limit in MiB, as ``max_message_mb`` counts them and as it was set: 16, 1.5, 0.05."""
    return f"{size / 2**20:.2f}".rstrip("0").rstrip(".")


class InvalidSettingError(InvalidInputError):
    """A client setting that cannot be used (``field`` names it), refused when the client or a
    copy of it (``with_options``) is made."""


def noted(error: AffectClientError, note: str) -> AffectClientError:
    """``error`` (a status or a refusal) with ``note`` after its message, in ``details`` and
    ``str()`` alike; any other error (one refused before sending) as it is."""
    if isinstance(error, (APIStatusError, TurnRefusedError)) and not isinstance(error, InvalidInputError):
        error.details = f"{error.details} ({note})"
        error.args = (f"{error.code.name}: {error.details}",)
    return error


_BY_CODE = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
}


# How Ray Serve's gRPC proxy reports a replica that died while it held the call (it has no way
# to send UNAVAILABLE for it): the call never finished, the replica is gone, and the same
# request reaches a live replica if sent again, which is what UNAVAILABLE means.
_REPLICA_DIED = "The actor died unexpectedly"


def effective_code(error: grpc.RpcError) -> grpc.StatusCode:
    """The call's status code, with a Ray Serve replica's death read as UNAVAILABLE."""
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    details = _raw_message(error)
    if code == grpc.StatusCode.INTERNAL and _REPLICA_DIED in details:
        return grpc.StatusCode.UNAVAILABLE
    return code


# What gRPC's UNAVAILABLE says of a connection its settings keep from ever working (gRPC 1.85, checked
# on loopback against affect serve, tests/test_client_target.py), the setting to check, and why. A server
# that is restarting says "Connection refused"; nothing it does gives these. A plaintext client against
# a TLS server sees only "Socket closed", as from a server going away, so that one is retried.
_SETTING_PROBLEMS = (
    ("Domain name not found", "target", "the target's host name does not resolve: check the name in the target"),
    ("Name or service not known", "target", "the target's host name does not resolve: check the name in the target"),
    ("Misformatted domain name", "target", "the target's host is no host name: write host:port"),
    ("WRONG_VERSION_NUMBER", "tls",
     "the TLS handshake failed: the server does not speak TLS (tls=True against a plaintext server? leave tls off, "
     "or use the server's TLS port)"),
    ("CERTIFICATE_VERIFY_FAILED", "root_certificates",
     "the TLS handshake failed: the server's certificate is not trusted (give its CA as root_certificates=, and "
     "check that the target's host name is one the certificate names)"),
)  # a handshake that failed otherwise (a connection reset mid-handshake by a restarting server) is retried


def connection_setting_problem(code: grpc.StatusCode, details: str) -> tuple[str, str] | None:
    """The setting and the likely cause of an UNAVAILABLE that no retry will cure, or None."""
    if code != grpc.StatusCode.UNAVAILABLE:
        return None
    folded = details.lower()
    return next(((field, cause) for text, field, cause in _SETTING_PROBLEMS if text.lower() in folded), None)


def status_error(error: grpc.RpcError, *, turn_id: str | None = None) -> APIStatusError | TurnRefusedError:
    """The SDK exception for a failed call, keeping its status code as an enum, the field the
    server names (``refused_field``) and the reason it gives (``abort_reason``). ``turn_id``: the
    call carried one turn (Analyze), so a refusal of that turn (a field of it,
    ``rules.is_turn_field``) is ``TurnRefusedError``, as the same turn refused in a conversation is."""
    code = effective_code(error)
    details = status_message(error) if hasattr(error, "details") else str(error)
    if code != (error.code() if hasattr(error, "code") else code):
        details = f"the server replica holding this call died; send it again (proxy said: {(details or '').splitlines()[0]})"
    field = refused_field(error)
    if turn_id is not None and (too_large := _over_message_size(code, details or "", turn_id)):
        return too_large
    if turn_id is not None and rules.is_turn_field(field):
        return TurnRefusedError(code, details or "", field, turn_id, retry_hint(error))
    if problem := connection_setting_problem(code, details or ""):
        return ConnectionSettingError(code, f"{problem[1]} (gRPC said: {details})", field=problem[0])
    reason = abort_reason(error)
    kind = ConversationTakenOverError if _taken_over(code, reason) else _BY_CODE.get(code, APIStatusError)
    return kind(code, details or "", retry_hint(error), field=field, reason=reason)


# gRPC's own refusal of a request over the server's max receive size (its C-core's words, 1.85).
_OVER_MAX = re.compile(r"Received message larger than max \((\d+) vs\. (\d+)\)")


def _over_message_size(code: grpc.StatusCode, details: str, turn_id: str) -> TurnTooLargeError | None:
    """An Analyze call's turn that gRPC refused for its size at the server (RESOURCE_EXHAUSTED,
    "SERVER: Received message larger than max (4000025 vs. 1048576)"), raised as ``send()`` raises
    one it finds over the limit its conversation was told (``TurnTooLargeError.over``): no server
    tells a call its limit beforehand."""
    if code != grpc.StatusCode.RESOURCE_EXHAUSTED or not (match := _OVER_MAX.search(details)):
        return None
    return TurnTooLargeError.over(int(match.group(1)), int(match.group(2)), told=False, sent=True, turn_id=turn_id)


def _taken_over(code: grpc.StatusCode, reason: str) -> bool:
    """Whether a call's end is the server's takeover of its conversation by a newer stream of it."""
    return code == grpc.StatusCode.ABORTED and reason == rules.TAKEN_OVER_REASON


def retry_hint(error: grpc.RpcError) -> float | None:
    """The server's retry hint in seconds (the trailer ``grpc-retry-pushback-ms``), if it sent one."""
    value = _trailer(error, rules.RETRY_PUSHBACK_TRAILER)
    if value is None:
        return None
    try:
        milliseconds = int(value)
    except (TypeError, ValueError):
        return None
    return milliseconds / 1000 if milliseconds >= 0 else None


def refused_field(error: grpc.RpcError) -> str:
    """The field the server says it refused (the trailer ``rules.REFUSED_FIELD_TRAILER``), or ""."""
    value = _trailer(error, rules.REFUSED_FIELD_TRAILER)
    return value if isinstance(value, str) else ""


def abort_reason(error: grpc.RpcError) -> str:
    """Why the server says it ended the call (the trailer ``rules.ABORT_REASON_TRAILER``), or ""."""
    value = _trailer(error, rules.ABORT_REASON_TRAILER)
    return value if isinstance(value, str) else ""


def closed_for_idleness(error: AffectClientError) -> bool:
    """Whether ``error`` is the server's close of a conversation after its idle timeout
    (DEADLINE_EXCEEDED with the reason ``rules.IDLE_REASON``), not a deadline or ``turn_timeout``."""
    return (isinstance(error, APIStatusError) and error.code == grpc.StatusCode.DEADLINE_EXCEEDED
            and error.reason == rules.IDLE_REASON)


def status_message(error: grpc.RpcError) -> str:
    """The call's status message, without the trailers a server behind Ray Serve's proxy writes
    at its end (``rules.trailers_in_message``): the message plain ``affect serve`` gives."""
    return rules.trailers_in_message(_raw_message(error))[0]


def _raw_message(error: grpc.RpcError) -> str:
    return (error.details() if hasattr(error, "details") else "") or ""


def _trailer(error: grpc.RpcError, name: str) -> str | bytes | None:
    """The trailer ``name`` the call ended with; else the one the status message carries
    (``rules.TRAILERS_IN_MESSAGE``: a proxy such as Ray Serve's dropped the trailers)."""
    try:
        trailers = error.trailing_metadata() if hasattr(error, "trailing_metadata") else None
    except Exception:  # noqa: BLE001 - a call that ended before any metadata: none
        trailers = None
    for key, value in trailers or ():
        if key == name:
            return value
    return rules.trailers_in_message(_raw_message(error))[1].get(name)


def status_code(value: int) -> grpc.StatusCode:
    for code in grpc.StatusCode:
        if code.value[0] == value:
            return code
    return grpc.StatusCode.UNKNOWN

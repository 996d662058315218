"""How the client reads its target and what it says when the connection cannot work, against a real
affect server on loopback (or none), both twins. A new user's audit found: a target without a port
meant gRPC's 443, not affect's 50051; a URL (``http://host:50051``) and a name that does not resolve,
or ``tls=True`` against a plaintext server, were retried for 19.8 s like a restarting server, in
silence, then failed with gRPC's words alone; ``analyze()`` over the server's message size gave
gRPC's raw "Received message larger than max" where ``send()`` gives ``TurnTooLargeError``."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from affect import Analyzer
from affect_client import (
    AffectClient,
    AsyncAffectClient,
    ClientOptions,
    ConnectionSettingError,
    InvalidSettingError,
    TurnTooLargeError,
    UnavailableError,
)
from affect_client import _core
from affect_client._target import with_default_port
from affect_server.launch import free_port
from tests._serving import ServerThread, server_starting_later
from tests.test_server import _cert

TWINS = ["sync", "async"]


def _list_models(twin: str, target: str, **settings: Any) -> list[str]:
    """``list_models()`` through the ``twin`` client: the models' names."""
    async def async_twin() -> list[str]:
        async with AsyncAffectClient(target, **settings) as client:
            return [model.id for model in await client.list_models()]

    if twin == "async":
        return asyncio.run(async_twin())
    with AffectClient(target, **settings) as client:
        return [model.id for model in client.list_models()]


def _refusal(call: Callable[[], object]) -> tuple[Exception, float]:
    """The error ``call`` raises and how long it took."""
    started = time.monotonic()
    with pytest.raises(Exception) as raised:
        call()
    return raised.value, time.monotonic() - started


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_a_target_without_a_port_is_given_affects_default_port() -> None:
    """One rule (``_target.with_default_port``) for every form that names a host: 50051, as
    ``affect serve`` listens on and ``AFFECT_TARGET``'s default says, not gRPC's 443; a target of
    another kind is kept as it is."""
    for given, meant in [("127.0.0.1", "127.0.0.1:50051"), ("localhost", "localhost:50051"), ("::1", "[::1]:50051"),
                         ("[::1]", "[::1]:50051"), ("dns:///affect.internal", "dns:///affect.internal:50051"),
                         ("ipv4:127.0.0.1,127.0.0.2:7", "ipv4:127.0.0.1:50051,127.0.0.2:7"),
                         ("affect.internal:443", "affect.internal:443"), ("unix:/run/affect.sock", "unix:/run/affect.sock")]:
        assert with_default_port(given) == meant
        assert AffectClient(given).options.target == meant == AsyncAffectClient(given).options.target
    assert ClientOptions().target == "127.0.0.1:50051"


@pytest.mark.parametrize("twin", TWINS)
def test_a_host_without_a_port_reaches_a_server_on_50051(analyzer: Analyzer, twin: str) -> None:
    if not _port_free(50051):
        pytest.skip("something else listens on 50051 here")
    with ServerThread(analyzer, port=50051):
        assert _list_models(twin, "127.0.0.1", max_retries=0) == _list_models(twin, "127.0.0.1:50051", max_retries=0)


@pytest.mark.parametrize("url, instead", [
    ("http://127.0.0.1:50051", "write '127.0.0.1:50051' (and tls=True for TLS)"),
    ("grpc://affect.internal", "write 'affect.internal:50051' (and tls=True for TLS)"),
    ("https://affect.example.com/v1", "write 'affect.example.com:443' with tls=True"),
    ("grpcs://affect.example.com:8443", "write 'affect.example.com:8443' with tls=True"),
])
def test_a_url_is_refused_as_the_client_is_made_saying_what_to_write(url: str, instead: str) -> None:
    """It was retried for 19.8 s ("Misformatted domain name"); now ``InvalidSettingError`` at once."""
    for make in (AffectClient, AsyncAffectClient):
        with pytest.raises(InvalidSettingError) as refused:
            make(url)
        assert refused.value.field == "target" and isinstance(refused.value, ValueError)
        assert str(refused.value) == (f"target must be a gRPC target, host:port (such as 127.0.0.1:50051), not a URL: "
                                      f"got {url!r}; {instead}")


@pytest.mark.parametrize("twin", TWINS)
def test_grpcs_own_schemes_still_reach_the_server(analyzer: Analyzer, twin: str) -> None:
    with ServerThread(analyzer) as server:
        port = server.running.port
        for target in (f"dns:///127.0.0.1:{port}", f"ipv4:127.0.0.1:{port}", f"dns:///localhost:{port}"):
            assert _list_models(twin, target, max_retries=0), target


@pytest.mark.parametrize("twin", TWINS)
def test_a_name_that_does_not_resolve_fails_at_once_saying_so(twin: str) -> None:
    """At the default ``max_retries`` it took 19.8 s (14 attempts); ``.invalid`` never resolves (RFC 2606)."""
    error, took = _refusal(lambda: _list_models(twin, "nosuchhost.invalid:50051"))
    assert isinstance(error, ConnectionSettingError) and isinstance(error, UnavailableError), repr(error)
    assert took < 3, took
    assert error.code == grpc.StatusCode.UNAVAILABLE and error.field == "target"
    assert str(error).startswith("UNAVAILABLE: the target's host name does not resolve: check the name in the target "
                                 "(gRPC said: "), str(error)
    assert "nosuchhost.invalid" in str(error) and "attempts" not in str(error)

    async def open_async() -> None:
        async with AsyncAffectClient("nosuchhost.invalid:50051") as client, client.conversation():
            pass

    def open_sync() -> None:
        with AffectClient("nosuchhost.invalid:50051") as client, client.conversation():
            pass

    opening, took = _refusal(lambda: asyncio.run(open_async()) if twin == "async" else open_sync())  # a conversation too
    assert type(opening) is ConnectionSettingError and str(opening) == str(error) and took < 3, (repr(opening), took)


@pytest.mark.parametrize("twin", TWINS)
def test_tls_that_does_not_match_the_server_fails_at_once_naming_the_setting(analyzer: Analyzer, twin: str,
                                                                           tmp_path: Path) -> None:
    """``tls=True`` against a plaintext server (gRPC: "Tls handshake failed ... WRONG_VERSION_NUMBER"),
    and a TLS server whose certificate the client does not trust (CERTIFICATE_VERIFY_FAILED), raise
    ``ConnectionSettingError`` at the first attempt. A plaintext client against a TLS server sees only
    "Socket closed", as a server going away would show it: that one is still retried."""
    key, cert = _cert(tmp_path)
    with ServerThread(analyzer) as plain, ServerThread(analyzer, tls_cert=str(cert), tls_key=str(key)) as secure:
        error, took = _refusal(lambda: _list_models(twin, plain.target, tls=True))
        assert isinstance(error, ConnectionSettingError) and error.field == "tls" and took < 3, (repr(error), took)
        assert str(error).startswith("UNAVAILABLE: the TLS handshake failed: the server does not speak TLS (tls=True "
                                     "against a plaintext server? leave tls off, or use the server's TLS port)"), str(error)
        tls_target = f"localhost:{secure.running.port}"
        error, took = _refusal(lambda: _list_models(twin, tls_target, tls=True))  # the system's roots: not trusted
        assert isinstance(error, ConnectionSettingError) and error.field == "root_certificates" and took < 3, repr(error)
        assert "the server's certificate is not trusted (give its CA as root_certificates=" in str(error)
        assert _list_models(twin, tls_target, tls=True, root_certificates=cert.read_bytes())  # the right settings work
        error, took = _refusal(lambda: _list_models(twin, tls_target, timeout=1))
        assert type(error) is UnavailableError and error.details.endswith(": timeout=1 s reached)"), repr(error)


@pytest.mark.parametrize("twin", TWINS)
def test_a_tls_server_not_up_yet_is_still_waited_for(analyzer: Analyzer, twin: str, tmp_path: Path) -> None:
    """What a restarting TLS server says before it listens is "Connection refused", not a handshake
    failure: the TLS client's retries reach it once it is up."""
    key, cert = _cert(tmp_path)
    port = free_port()
    with server_starting_later(analyzer, port, 1.0, tls_cert=str(cert), tls_key=str(key)):
        assert _list_models(twin, f"localhost:{port}", tls=True, root_certificates=cert.read_bytes(), timeout=10)


def test_a_resume_still_retries_what_a_new_call_does_not() -> None:
    """A resume's target worked before: a name that stops resolving (a Kubernetes headless service
    with no ready pod, mid-deploy) is waited for there, as UNAVAILABLE is."""
    unresolved = ConnectionSettingError(grpc.StatusCode.UNAVAILABLE, "does not resolve", field="target")
    assert _core.Retries(ClientOptions(), within="timeout").delay(unresolved) is None
    assert _core.Retries(ClientOptions(), within="open_timeout", resuming=True).delay(unresolved) is not None


@pytest.mark.parametrize("twin", TWINS)
def test_each_retry_is_logged_at_info_without_what_was_sent(twin: str, caplog: pytest.LogCaptureFixture) -> None:
    """The client was silent for the 20 s of its retries; each is now logged to ``affect_client``
    (status, gRPC's words, the attempt, the wait), never the turn."""
    async def async_twin() -> None:
        async with AsyncAffectClient("127.0.0.1:1", timeout=1) as client:
            await client.analyze("my card is 4111 1111 1111 1111")

    def sync_twin() -> None:
        with AffectClient("127.0.0.1:1", timeout=1) as client:
            client.analyze("my card is 4111 1111 1111 1111")

    with caplog.at_level(logging.INFO, logger="affect_client"):
        error, _ = _refusal(lambda: asyncio.run(async_twin()) if twin == "async" else sync_twin())
    retries = [r for r in caplog.records if r.name == "affect_client"]
    assert retries and all(r.levelno == logging.INFO for r in retries)
    attempts = int(str(error).rsplit("(", 1)[1].split(" attempts")[0])
    assert len(retries) == attempts - 1, (len(retries), str(error))  # one a retry; the last attempt is raised
    first = retries[0].getMessage()
    assert first.startswith("UNAVAILABLE: failed to connect to all addresses; ") and "127.0.0.1:1" in first, first
    assert "; attempt 1 failed, retrying in " in first and first.endswith(" s (max_retries=8, timeout=1 s)"), first
    assert not any("4111" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("twin", TWINS)
def test_analyze_over_the_servers_message_size_is_refused_as_send_refuses_it(analyzer: Analyzer, twin: str) -> None:
    """``analyze()`` got gRPC's raw "SERVER: Received message larger than max (4000025 vs. 1048576)"
    (``ResourceExhaustedError``); now the ``TurnTooLargeError`` a conversation's ``send()`` raises, in
    the same words but for who refused it."""
    picture = np.full((2000, 2000), 128, np.uint8)

    async def async_twin() -> tuple[Exception, Exception]:
        async with AsyncAffectClient(server.target) as client:
            with pytest.raises(TurnTooLargeError) as by_analyze:
                await client.analyze(image=picture, turn_id="t1")
            async with client.conversation() as conversation:
                with pytest.raises(TurnTooLargeError) as by_send:
                    await conversation.send(image=picture, turn_id="t1")
        return by_analyze.value, by_send.value

    with ServerThread(analyzer, max_message_mb=1) as server:
        if twin == "async":
            by_analyze, by_send = asyncio.run(async_twin())
        else:
            with AffectClient(server.target) as client:
                by_analyze, _ = _refusal(lambda: client.analyze(image=picture, turn_id="t1"))
                with client.conversation() as conversation:
                    by_send, _ = _refusal(lambda: conversation.send(image=picture, turn_id="t1"))
    for error in (by_analyze, by_send):
        assert isinstance(error, TurnTooLargeError), repr(error)
        assert error.code == grpc.StatusCode.RESOURCE_EXHAUSTED and error.field == "turn" and error.turn_id == "t1"
        assert error.limit == 2**20 and error.retry_after is None
    assert isinstance(by_analyze, TurnTooLargeError) and isinstance(by_send, TurnTooLargeError)
    size = by_analyze.size
    assert str(by_analyze) == (f"RESOURCE_EXHAUSTED: the turn is 3.81 MiB ({size:,} bytes) on the wire, over this server's "
                               "max_message_mb of 1 MiB (1,048,576 bytes): the server refused it; send shorter audio "
                               "or smaller pictures")
    assert str(by_send) == str(by_analyze).replace(f"{size:,}", f"{by_send.size:,}").replace(
        "the server refused it", "it was not sent")

"""One ``AsyncAffectClient`` through several event loops, against a real server on loopback: a
client kept for a program's life (a module-level client of a web app whose tests run a loop each,
a script calling ``asyncio.run`` twice) works in each loop, with nothing of one loop left to fail
in the next (``affect_client._loop_channel``)."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from collections.abc import Iterator

import pytest

from affect_client import (AffectClientError, AsyncAffectClient, AsyncConversation, ClientClosedError,
                           ConversationClosedError)
from tests._serving import ServerThread

LOOP_CLOSED = "Event loop is closed"


@pytest.fixture(scope="module")
def server(analyzer: object) -> Iterator[ServerThread]:
    with ServerThread(analyzer, max_turns_per_second=1000) as running:
        yield running


def _wait_until_none_open(server: ServerThread) -> int:
    deadline = time.monotonic() + 10
    while server.open_conversations() and time.monotonic() < deadline:
        time.sleep(0.05)
    return server.open_conversations()


def test_an_async_client_made_before_any_event_loop_runs_works_under_asyncio_run(server: ServerThread) -> None:
    """A client made at import time (a module-level client, no loop running yet) once failed on
    first use with grpc.aio's "attached to a different loop"."""
    client = AsyncAffectClient(server.target)

    async def use() -> str:
        async with client.with_options(timeout=30) as copy:
            models = await copy.list_models()
            result = await client.analyze("My parcel is late again.")
            return f"{len(models) > 0} {result.present}"

    assert asyncio.run(use()) == "True ('text',)"
    assert asyncio.run(use()) == "True ('text',)"  # a second loop (the next asyncio.run) gets its own channel
    asyncio.run(client.close())


def test_one_client_serves_loop_after_loop_and_leaves_nothing_to_fail_in_the_next(
        server: ServerThread, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    """Each ``asyncio.run`` analyses, holds a conversation (a reset included) and ends with one
    conversation left open and one turn still waiting for its answer, as a careless caller would:
    a call still open when its loop closed made grpc.aio print "RuntimeError: Event loop is closed"
    when its end came (3 times in these 5 runs). Now the loop's end closes them in the loop: the
    server frees them, and nothing is printed or logged."""
    client = AsyncAffectClient(server.target)
    left_open: list[AsyncConversation] = []

    async def use(run: int) -> tuple[str, int, int]:
        result = await client.analyze("My parcel is late again.")
        async with client.conversation() as conversation:
            await conversation.send("Where is my order?", speaker="caller")
            reset = await conversation.reset_speaker("caller")
            turn = (await conversation.send("Hello, I'm taking over.", speaker="caller")).turn_index
        forgotten = await client.conversation().open()
        await forgotten.send("Is anyone there?", speaker="caller")
        left_open.append(forgotten)
        asyncio.get_running_loop().create_task(forgotten.send("Hello?", speaker="caller"))  # never awaited
        await asyncio.sleep(0)
        return str(result.present), reset, turn

    runs = [asyncio.run(use(run)) for run in range(5)]
    assert runs == [("('text',)", 1, 1)] * 5
    assert _wait_until_none_open(server) == 0  # each loop's end closed its conversations
    gc.collect()
    time.sleep(0.5)  # any late end of an earlier loop's call is delivered (and complained of) by now
    assert asyncio.run(analyze_in_a_new_loop(client)) == ("text",)
    noise = capfd.readouterr().err + caplog.text
    assert noise.count(LOOP_CLOSED) == 0, noise

    async def stale() -> None:  # a conversation of an earlier loop: a clear error, not grpc.aio's
        await left_open[0].send("Still there?", speaker="caller")

    with pytest.raises(ConversationClosedError, match="opened in another event loop.*open a new conversation"):
        asyncio.run(stale())
    asyncio.run(client.close())


async def analyze_in_a_new_loop(client: AsyncAffectClient) -> tuple[str, ...]:
    return (await client.analyze("Thanks, that fixed it.")).present


def test_close_and_async_with_end_the_client_in_whichever_loop(server: ServerThread) -> None:
    """``close()`` in a later loop than the one that last used the client, and ``async with``
    in a loop of its own: the client is closed for every later use (and its copies)."""
    client = AsyncAffectClient(server.target)
    copy = client.with_options(timeout=10)

    assert asyncio.run(analyze_in_a_new_loop(copy)) == ("text",)
    asyncio.run(client.close())
    for c in (client, copy):
        with pytest.raises(ClientClosedError, match="closed"):
            asyncio.run(analyze_in_a_new_loop(c))

    async def scoped() -> tuple[str, ...]:
        async with AsyncAffectClient(server.target) as c:
            return await analyze_in_a_new_loop(c)

    assert asyncio.run(scoped()) == ("text",)


def test_a_client_used_by_a_loop_still_running_elsewhere_says_to_make_one_per_loop(server: ServerThread) -> None:
    """Two loops running at once (one per thread) cannot share one connection: the second gets a
    clear error, not grpc.aio's; the first goes on, and a close from the other thread closes it."""
    client = AsyncAffectClient(server.target)
    other = asyncio.new_event_loop()
    thread = threading.Thread(target=other.run_forever, daemon=True)
    thread.start()
    try:
        async def analyze() -> tuple[str, ...]:
            return (await client.analyze("Could you check again?")).present

        assert asyncio.run_coroutine_threadsafe(analyze(), other).result(60) == ("text",)
        with pytest.raises(AffectClientError, match="another event loop.*make one client per event loop"):
            asyncio.run(analyze())
        assert asyncio.run_coroutine_threadsafe(analyze(), other).result(60) == ("text",)
        asyncio.run(client.close())  # closed in its own loop, from this one
        with pytest.raises(ClientClosedError):
            asyncio.run_coroutine_threadsafe(analyze(), other).result(60)
    finally:
        other.call_soon_threadsafe(other.stop)
        thread.join(10)
        other.close()


def test_an_async_conversation_used_before_it_is_opened_says_how_to_open_it(server: ServerThread) -> None:
    """``await client.conversation().send(...)`` raised "the conversation is not open", where the
    blocking twin opens on ``conversation()``: the error names both ways to open it, and the one
    it names works on the same conversation."""
    async def scoped() -> tuple[str, ...]:
        async with AsyncAffectClient(server.target) as client:
            conversation = client.conversation()
            for attempt in (lambda: conversation.send("Hello?"), lambda: conversation.reset_speaker("caller")):
                with pytest.raises(ConversationClosedError) as unopened:
                    await attempt()
                assert "async with client.conversation() as conversation" in str(unopened.value)
                assert "await conversation.open()" in str(unopened.value)
            await conversation.open()
            try:
                return (await conversation.send("Hello?")).present
            finally:
                await conversation.close()

    assert asyncio.run(scoped()) == ("text",)

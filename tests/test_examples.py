"""The examples run as a user runs them: ``examples/chatbot.py`` in its own process, against a
real server on loopback that wants a token, with lines piped in."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests._serving import ServerThread

ROOT = Path(__file__).resolve().parents[1]
CHATBOT = ROOT / "examples" / "chatbot.py"
TOKEN = "s3cret-for-the-example"


def _chatbot(lines: list[str], *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The chatbot fed ``lines``, with only the ``AFFECT_*`` variables given here."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AFFECT_")}
    clean["PYTHONPATH"] = os.pathsep.join(str(ROOT / p) for p in ("clients/python", "protos/python"))
    return subprocess.run([sys.executable, str(CHATBOT), *args], input="".join(f"{line}\n" for line in lines),
                          capture_output=True, text=True, timeout=120, env={**clean, **env})


@pytest.fixture(scope="module")
def server(analyzer: Any) -> Any:
    with ServerThread(analyzer, token=TOKEN) as running:
        yield running


def test_the_chatbot_reads_target_and_token_from_the_environment_and_carries_on_past_a_refused_turn(server: Any) -> None:
    """``--token`` defaulted to None and was passed as ``token=None``, which overrode
    ``AFFECT_TOKEN``; and a line over the 10,000 characters a turn may have ended the chat ("the
    affect service failed"). Now the environment is honoured and that one turn is said unread."""
    ran = _chatbot(["Hello, I need some help with my order.", "a" * 10_001, "Thanks, that's great!"],
                   AFFECT_TARGET=server.target, AFFECT_TOKEN=TOKEN)
    assert ran.returncode == 0, ran.stderr
    replies = [line for line in ran.stdout.split("you> ") if line.startswith("bot> ")]
    assert len(replies) == 3 and ran.stderr == ""
    assert replies[1] == "bot> (I could not read that: text has 10,001 characters; the limit is 10,000)\n"
    assert "[" in replies[2] and "failed" not in ran.stdout  # the turn after it was read


def test_the_chatbot_says_in_one_line_that_its_token_was_refused(server: Any) -> None:
    """A wrong or missing token was a traceback from opening the conversation, outside the error
    handling; it is one line on stderr and exit status 1. ``--token`` wins over the environment."""
    refusal = "chatbot: the affect service refused the token: set AFFECT_TOKEN (or pass --token)\n"
    for env in ({"AFFECT_TOKEN": "wrong"}, {}):
        ran = _chatbot(["Hello?"], AFFECT_TARGET=server.target, **env)
        assert (ran.returncode, ran.stderr) == (1, refusal) and "bot>" not in ran.stdout
    ran = _chatbot(["Hello?"], "--target", server.target, "--token", TOKEN, AFFECT_TOKEN="wrong")
    assert ran.returncode == 0 and ran.stdout.count("bot> ") == 1, ran.stderr

"""A chatbot loop that reads how the user feels before it answers.

    affect serve &                      # in another terminal
    python examples/chatbot.py [--target 127.0.0.1:50051]

The target and token are ``AFFECT_TARGET`` and ``AFFECT_TOKEN`` (else 127.0.0.1:50051, no
token) unless ``--target`` / ``--token`` are given; prefer the variable for the token, as a
flag shows in ``ps``.

Each line you type is one turn of one conversation stream. The bot picks its tone from the
turn's emotion, and it hands over to a human when your next turn is forecast to be angry: each
result carries the forecast of how your next turn is likely to feel (``result.state.forecast``),
and when the server raises ``escalation_risk`` for you (forecast P(anger) past the threshold
documented in ``affect/state.py``), the bot passes the conversation on instead of answering
again. The warning often comes once anger has begun, sometimes before it (its precision and
recall: the forecast model card). The conversation raises only the user's events
(``event_speakers=["user"]``): were the bot's own replies sent as turns too, no warning about
the bot would reach this loop.
"""

from __future__ import annotations

import argparse
import sys

from affect_client import AffectClient, AffectClientError, Conversation, TurnRefusedError, UnauthenticatedError

REPLIES = {
    "anger": "I'm sorry this has been so frustrating. Let me fix it right now.",
    "sadness": "That sounds hard. I'm here to help however I can.",
    "fear": "Don't worry, nothing is lost. Let's go through it together.",
    "disgust": "I understand, that's not the experience we want for you.",
    "happiness": "Glad to hear it!",
    "surprise": "Oh! Tell me more.",
    "neutral": "Got it. What else can I do for you?",
}
HANDOVER = "I'm bringing in a colleague who can sort this out with you right now; they can see everything so far."


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", default=None, help="host:port of the service (default: AFFECT_TARGET)")
    parser.add_argument("--token", default=None, help="its bearer token (default: AFFECT_TOKEN)")
    args = parser.parse_args()

    try:  # no --token: the client reads AFFECT_TOKEN (token=None would override it)
        client = AffectClient(args.target, token=args.token) if args.token else AffectClient(args.target)
        with client, client.conversation(event_speakers=["user"]) as conversation:
            chat(conversation)
    except UnauthenticatedError:
        print("chatbot: the affect service refused the token: set AFFECT_TOKEN (or pass --token)", file=sys.stderr)
        return 1
    except AffectClientError as error:  # the service is unreachable or failed: the chat cannot go on
        print(f"chatbot: the affect service failed: {error}", file=sys.stderr)
        return 1
    return 0


def chat(conversation: Conversation) -> None:
    """Each line typed is one turn; a turn the service could not read is said so, and the chat goes on."""
    print("Talk to the bot (an empty line or Ctrl-D ends).")
    while True:
        try:
            line = input("you> ").strip()
        except EOFError:
            break
        if not line:
            break
        try:
            result = conversation.send(line, speaker="user")
        except TurnRefusedError as refused:  # this turn alone (too long, the service busy): carry on
            print(f"bot> (I could not read that: {refused.details})")
            continue
        fused, emotion = result.fused, result.emotion
        if fused is None or emotion is None:  # nothing was read (result.has_reading is False)
            print(f"bot> (no reading: {result.no_reading_reason})")
            continue
        forecast = next((f for f in result.state.forecast if f.speaker == "user"), None) if result.state else None
        outlook = f", next turn P(anger) {forecast.anger:.2f} P(negative) {forecast.negative:.2f}" if forecast else ""
        if any(e.kind == "escalation_risk" for e in result.events):  # the user's: the only speaker watched
            print(f"bot> {HANDOVER}   [{emotion} {fused.confidence:.2f}{outlook}]")
            print("(a human agent takes over the conversation)")
            break
        print(f"bot> {REPLIES[emotion]}   [{emotion} {fused.confidence:.2f}, "
              f"{result.sentiment}, valence {fused.valence:+.2f}{outlook}]")
        for event in result.events:
            print(f"bot> (noticed: {event.message})")


if __name__ == "__main__":
    sys.exit(main())

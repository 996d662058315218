"""A chatbot loop that reads how the user feels before it answers.

    affect serve &                      # in another terminal
    python examples/chatbot.py [--target 127.0.0.1:50051]

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

from affect_client import AffectClient, AffectClientError, TurnRefusedError

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", default="127.0.0.1:50051")
    parser.add_argument("--token", default=None)
    args = parser.parse_args()

    with AffectClient(args.target, token=args.token) as client, client.conversation(event_speakers=["user"]) as conversation:
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
            except TurnRefusedError as refused:
                print(f"bot> (I could not read that: {refused.details})")
                continue
            except AffectClientError as error:
                print(f"bot> (the affect service failed: {error})")
                break
            if not result.has_reading:
                print(f"bot> (no reading: {result.no_reading_reason})")
                continue
            forecast = next((f for f in result.state.forecast if f.speaker == "user"), None) if result.state else None
            outlook = f", next turn P(anger) {forecast.anger:.2f} P(negative) {forecast.negative:.2f}" if forecast else ""
            if any(e.kind == "escalation_risk" for e in result.events):  # the user's: the only speaker watched
                print(f"bot> {HANDOVER}   [{result.emotion} {result.fused.confidence:.2f}{outlook}]")
                print("(a human agent takes over the conversation)")
                break
            print(f"bot> {REPLIES[result.emotion]}   [{result.emotion} {result.fused.confidence:.2f}, "
                  f"{result.sentiment}, valence {result.fused.valence:+.2f}{outlook}]")
            for event in result.events:
                print(f"bot> (noticed: {event.message})")


if __name__ == "__main__":
    main()

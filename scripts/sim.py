#!/usr/bin/env python
"""Chat with a running BAKAME (make run) as a learner would, through the REST channel.

Interactive:      python scripts/sim.py
One-shot script:  python scripts/sim.py --sender learner7 "muraho" "Aline" "imibare" "ni 12"
Each learner is a sender id; reuse it to come back as the same learner.
"""
from __future__ import annotations

import argparse
import sys
import uuid

import requests


def send(url: str, sender: str, text: str, timeout: float = 30.0) -> list:
    response = requests.post(url, json={"sender": sender, "message": text}, timeout=timeout)
    response.raise_for_status()
    return response.json()


def show(replies: list) -> None:
    for reply in replies:
        if reply.get("text"):
            print(f"BAKAME: {reply['text']}")
        for i, button in enumerate(reply.get("buttons") or [], 1):
            print(f"   {i}. {button.get('title')}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("messages", nargs="*", help="messages to send in order (default: interactive)")
    parser.add_argument("--url", default="http://localhost:5005/webhooks/rest/webhook")
    parser.add_argument("--sender", default=f"sim-{uuid.uuid4().hex[:8]}", help="learner id (reuse to return)")
    args = parser.parse_args()

    try:
        if args.messages:
            for text in args.messages:
                print(f"you:    {text}")
                show(send(args.url, args.sender, text))
            return 0
        print(f"Talking to {args.url} as '{args.sender}'. Type a message; empty line or Ctrl-D quits.")
        for line in sys.stdin:
            if not line.strip():
                break
            show(send(args.url, args.sender, line.strip()))
    except requests.ConnectionError:
        print(f"Cannot reach {args.url}: start the assistant first with `make run`.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

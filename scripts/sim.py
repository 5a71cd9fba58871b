#!/usr/bin/env python
"""Chat with a running BAKAME (make run) as a learner would, through the REST channel.

Interactive:      python scripts/sim.py
One-shot script:  python scripts/sim.py --sender learner7 "muraho" "Aline" "imibare" "ni 12"
Each learner is a sender id; reuse it to come back as the same learner.

USSD, as a phone's screen:  python scripts/sim.py --ussd [--phone +250788000001] [1 Amina 1 7 ...]
posts exactly what the aggregator posts (sessionId, serviceCode, phoneNumber, networkCode, text
with every entry of the session joined by *) to /webhooks/ussd/webhook and shows the screen;
an END screen closes the session, the next entry dials again (a new session).
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


class UssdPhone:
    """A basic phone on a USSD code: one session at a time, entries joined like the aggregator does."""

    def __init__(self, url: str, phone: str, code: str = "*384*1234#") -> None:
        self.url, self.phone, self.code = url, phone, code
        self.session, self.entries = None, []

    def dial(self) -> str:
        self.session, self.entries = f"ATUid_{uuid.uuid4().hex[:16]}", []
        return self._post()

    def enter(self, entry: str) -> str:
        if self.session is None:
            self.dial()
        self.entries.append(entry)
        return self._post()

    def _post(self) -> str:
        form = {"sessionId": self.session, "serviceCode": self.code, "phoneNumber": self.phone,
                "networkCode": "63510", "text": "*".join(self.entries)}
        response = requests.post(self.url, data=form, timeout=30)
        response.raise_for_status()
        if response.text.startswith("END"):
            self.session = None
        return response.text


def show_screen(screen: str) -> None:
    kind, _, body = screen.partition(" ")
    print("+" + "-" * 34 + "+")
    for line in body.splitlines():
        print("| " + line)
    print("+" + "-" * 34 + f"+ {kind} ({len(body)} chars)")


def run_ussd(args: argparse.Namespace) -> int:
    url = args.url.replace("/rest/webhook", "/ussd/webhook")
    phone = UssdPhone(url, args.phone, args.code)
    show_screen(phone.dial())
    entries = iter(args.messages) if args.messages else (line.strip() for line in sys.stdin)
    for entry in entries:
        if args.messages:
            print(f"> {entry}")
        screen = phone.enter(entry) if phone.session else phone.dial()
        show_screen(screen)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("messages", nargs="*", help="messages to send in order (default: interactive)")
    parser.add_argument("--url", default="http://localhost:5005/webhooks/rest/webhook")
    parser.add_argument("--sender", default=f"sim-{uuid.uuid4().hex[:8]}", help="learner id (reuse to return)")
    parser.add_argument("--ussd", action="store_true", help="be a phone on the USSD code (shows the screen)")
    parser.add_argument("--phone", default="+250788000001", help="the phone number (--ussd)")
    parser.add_argument("--code", default="*384*1234#", help="the USSD code dialled (--ussd)")
    args = parser.parse_args()

    try:
        if args.ussd:
            return run_ussd(args)
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

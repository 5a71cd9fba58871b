"""Does compacting long sessions (``infra.tracker_store.compact``) change what the bot
does? Compares the policies' next action on full conversations and on their compacted form.

    python -m bench.check_compaction --redis redis://127.0.0.1:6379/0 --prefix <key prefix>

For every action the bot took after the first compaction point of the longest stored
conversations (full trackers: a store run with ``TRACKER_COMPACT_AFTER_TURNS=0``), the
prediction of Rasa's policy ensemble on the tracker up to that point is compared with the
prediction on its compacted form. Prints the decisions compared and every difference; exit
code 1 when there is one. ``tests/test_tracker_compaction.py`` runs the same comparison.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any, List, Optional, Tuple

from bench.stack import MODEL
from core.config import as_int, env


def compare_decisions(processor: Any, full: Any, after: int = 24, keep: int = 8,
                      every: int = 1) -> Tuple[int, List[str]]:
    """Compare the policies' next action on ``full`` (a tracker) and on its compacted form
    at every action after the first compaction point; (decisions compared, differences)."""
    from rasa.shared.core.events import ActionExecuted, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    from infra.tracker_store import compact

    domain = processor.domain
    events = list(full.events)
    users = [i for i, e in enumerate(events) if isinstance(e, UserUttered)]
    if len(users) <= after + 1:
        return 0, []
    compared, differences = 0, []
    for i in range(users[after + 1], len(events)):
        if not isinstance(events[i], ActionExecuted) or i % every:
            continue
        prefix = events[:i]
        whole = DialogueStateTracker.from_events(full.sender_id, [], domain.slots)
        whole.events.extend(prefix)
        whole.replay_events()
        cut = compact(whole, prefix, after, keep)
        if cut is None:
            continue
        small = DialogueStateTracker.from_events(full.sender_id, [], domain.slots)
        small.events.extend(cut)
        small.replay_events()
        a = processor._predict_next_with_tracker(whole)
        b = processor._predict_next_with_tracker(small)
        name_a = domain.action_names_or_texts[a.max_confidence_index]
        name_b = domain.action_names_or_texts[b.max_confidence_index]
        compared += 1
        if name_a != name_b or a.policy_name != b.policy_name:
            differences.append(f"event {i}: full -> {name_a} ({a.policy_name}), compacted -> {name_b} "
                               f"({b.policy_name}); actual: {events[i].action_name}")
    return compared, differences


async def main_async(args: argparse.Namespace) -> int:
    import logging

    import redis
    from infra.rasa_patches import load_agent_for_evaluation
    from rasa.shared.core.trackers import DialogueStateTracker

    client = redis.Redis.from_url(args.redis)
    keys = sorted(client.scan_iter(match=f"{args.prefix}:tracker:*", count=1000), key=lambda k: -client.strlen(k))
    keys = keys[: args.limit]
    if not keys:
        print(f"no trackers under {args.prefix}:tracker:*", file=sys.stderr)
        return 2
    agent = load_agent_for_evaluation(args.model)
    for name in ("rasa", "structlog", ""):
        logging.getLogger(name).setLevel(logging.WARNING)
    processor = agent.processor
    after = as_int(env("TRACKER_COMPACT_AFTER_TURNS"), 24)
    keep = as_int(env("TRACKER_COMPACT_KEEP_TURNS"), 8)
    compared = differences = 0
    for key in keys:
        raw = json.loads(client.get(key))
        full = DialogueStateTracker.from_dict(key.decode().rsplit(":", 1)[-1], raw["events"], processor.domain.slots)
        n, diffs = compare_decisions(processor, full, after, keep, args.every)
        compared += n
        differences += len(diffs)
        for line in diffs:
            print(f"{key.decode()[-12:]} {line}")
        print(f"{key.decode()[-12:]}: {len(full.events)} events, compared so far {compared}")
    print(f"{compared} decisions compared, {differences} different")
    return 1 if differences else 0


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    p.add_argument("--prefix", required=True, help="the tracker store's key prefix (bench<run id> for a bench run)")
    p.add_argument("--model", default=str(MODEL))
    p.add_argument("--limit", type=int, default=4, help="longest N conversations")
    p.add_argument("--every", type=int, default=1, help="compare every Nth event only (speed)")
    return asyncio.run(main_async(p.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())

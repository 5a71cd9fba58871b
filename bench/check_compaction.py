"""Does the ``compact`` speedup change what the bot does? Replays long conversations and
compares the policies' next action on the full tracker and on its compacted form.

    python -m bench.check_compaction --redis redis://127.0.0.1:6379/0 --prefix bench<run> [--limit 4]

For every action the bot took after the first compaction point of each stored
conversation (trackers left in Redis by a run of the benchmark with ``--keep-trackers``,
or any production-format tracker store), the prediction of Rasa's policy ensemble on the
tracker up to that point is compared with the prediction on the compacted tracker (the
same events cut as :func:`bench.speedups_rasa.compact` cuts them). Prints the number of
decisions compared and every difference; exit code 1 when there is one.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import Any, List, Optional

from bench.stack import MODEL


async def main_async(args: argparse.Namespace) -> int:
    import redis

    from rasa.core.agent import Agent
    from rasa.shared.core.events import ActionExecuted, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    from bench.speedups_rasa import compact

    client = redis.Redis.from_url(args.redis)
    keys = sorted(client.scan_iter(match=f"{args.prefix}:tracker:*", count=1000), key=lambda k: -client.strlen(k))
    keys = keys[: args.limit]
    if not keys:
        print(f"no trackers under {args.prefix}:tracker:*", file=sys.stderr)
        return 2
    import logging

    agent = Agent.load(str(args.model))
    for name in ("rasa", "structlog", ""):
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        import structlog

        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    except Exception:  # noqa: BLE001
        pass
    processor = agent.processor
    domain = processor.domain
    compared = differences = 0
    for key in keys:
        raw = json.loads(client.get(key))
        full = DialogueStateTracker.from_dict(key.decode().rsplit(":", 1)[-1], raw["events"], domain.slots)
        events = list(full.events)
        users = [i for i, e in enumerate(events) if isinstance(e, UserUttered)]
        after = int(os.environ.get("BENCH_COMPACT_AFTER_TURNS") or 24)
        if len(users) <= after + 1:
            continue
        first = users[after + 1]
        for i in range(first, len(events)):
            if not isinstance(events[i], ActionExecuted) or i % args.every:
                continue
            prefix = events[:i]
            whole = DialogueStateTracker.from_events(full.sender_id, [], domain.slots)
            whole.events.extend(prefix)
            whole.replay_events()
            cut = compact(whole, prefix)
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
                differences += 1
                print(f"{key.decode()[-12:]} event {i}: full -> {name_a} ({a.policy_name}), "
                      f"compacted -> {name_b} ({b.policy_name}); actual: {events[i].action_name}")
        print(f"{key.decode()[-12:]}: {len(users)} turns, {len(events)} events, compared so far {compared}")
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

"""BAKAME benchmarks (issue 6): ``make bench`` / ``python -m bench.run``.

* :mod:`bench.stats`   percentiles, summaries, windows (pure)
* :mod:`bench.twilio`  signed Twilio requests and TwiML parsing (pure)
* :mod:`bench.report`  result JSON -> markdown table, docs/benchmarks.md (pure)
* :mod:`bench.stack`   starts the stack: fake LLM, action server, Rasa (production config)
* :mod:`bench.action_server`  ``rasa run actions`` with a per-action timing middleware
* :mod:`bench.learners` simulated SMS / voice / REST learners doing a math drill or a debate
* :mod:`bench.load`    closed-loop and paced load phases, the long session
* :mod:`bench.run`     the whole benchmark, in one run
"""

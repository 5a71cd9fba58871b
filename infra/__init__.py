"""BAKAME's production plumbing (Rasa side): Redis tracker and lock stores that fail
politely, a PostgreSQL event broker that never loses or duplicates an event, the
production REST channel, health checks and the environment derivation they share.

``endpoints.prod.yml`` and ``credentials.prod.yml`` (``make run-prod``, ``docker compose
up``) load it; ``make run`` (embedded defaults) uses only the launcher every Rasa start goes
through (:mod:`infra.rasa_main`) and the patches of Rasa it installs (:mod:`infra.rasa_patches`).
"""

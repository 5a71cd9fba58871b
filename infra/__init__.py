"""BAKAME's production plumbing (Rasa side): Redis tracker and lock stores that fail
politely, a PostgreSQL event broker that never loses or duplicates an event, the
production REST channel, health checks and the environment derivation they share.

Nothing here is used by ``make run`` (embedded defaults); ``endpoints.prod.yml`` and
``credentials.prod.yml`` (``make run-prod``, ``docker compose up``) load it.
"""

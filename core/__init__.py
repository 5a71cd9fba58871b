"""The bottom layer: small shared types and helpers with no project dependencies.

``actions/``, ``infra/`` and ``connectors/`` all import from here, so packages form a stack
(connectors -> infra -> core, actions -> core) and nothing imports upward: a module in
``core`` imports only the standard library and third-party packages, never ``actions``,
``infra``, ``connectors`` or ``nlu_components``. What belongs here is one definition of a
concept several layers need (reading settings, the GSM-7 alphabet, fuzzy word matching,
...), not anything that talks to Rasa, Twilio, a database or a network service.
"""

"""What the action server adds to rasa-sdk's Sanic app, through rasa-sdk's plugin hook
(``attach_sanic_app_extensions``, called by ``rasa run actions`` after importing this package):

* ``GET /healthz`` (``actions/health.py``);
* before the server starts: the tutors' content and spaCy are loaded, so no learner waits
  seconds for the first answer (explicitly here, not as a side effect of importing a module).
"""
from __future__ import annotations

import logging
from typing import Any

import pluggy
from rasa_sdk.plugin import plugin_manager

from actions.health import healthz

logger = logging.getLogger(__name__)

PLUGIN_NAME = "bakame-action-server"
hookimpl = pluggy.HookimplMarker("rasa_sdk")


def warm_up() -> None:
    """Load every tutor's content and the grammar checker's spaCy pipeline."""
    from actions.tutoring import grammar_check
    from actions.tutoring.registry import tutors

    tutors()
    grammar_check.warm_up()
    logger.info("tutors and spaCy loaded")


async def _warm_up_before_start(app: Any, loop: Any) -> None:
    warm_up()


class ActionServerPlugin:
    @hookimpl
    def attach_sanic_app_extensions(self, app: Any) -> None:
        app.add_route(healthz, "/healthz", methods=["GET"], name="bakame_healthz")
        app.register_listener(_warm_up_before_start, "before_server_start")


def register() -> None:
    manager = plugin_manager()
    if manager.get_plugin(PLUGIN_NAME) is None:
        manager.register(ActionServerPlugin(), name=PLUGIN_NAME)


register()  # rasa-sdk imports every module of the actions package before it builds the app

"""Every Rasa server of BAKAME starts here: ``python -m infra.rasa_main <rasa arguments>``.

    python -m infra.rasa_main run --model models/bakame.tar.gz --endpoints endpoints.yml ...
    python -m infra.rasa_main shell | interactive | test core ...

is ``rasa <rasa arguments>`` (Rasa's own CLI, in this process) plus:

* the project's patches of Rasa (:func:`infra.rasa_patches.install`), installed after the
  CLI has configured logging (so their one log line shows) and before the command runs;
  Sanic's workers are forked later and inherit them. On another Rasa version than the
  one they were written for, nothing starts (exit 1, one line saying why).
* third-party deprecation noise filtered (DeprecationWarning, PendingDeprecationWarning,
  FutureWarning, SQLAlchemy's 2.0 notice, TensorFlow's C++ start-up lines), so the first
  screen of ``make run`` shows BAKAME's and Rasa's own messages. Rasa's UserWarnings
  (about the model or the domain) still show.

``make run``, ``make run-prod``, the Docker image, ``make shell`` / ``interactive`` /
``test-stories``, the benchmark (``bench.rasa_launcher``) and the tests start Rasa this
way (``tests/test_rasa_patches.py`` checks each start). The action server (rasa_sdk) is not
Rasa Core and keeps ``rasa run actions``.
"""
from __future__ import annotations

import os
import sys
import warnings
from typing import Any, List, Optional

import pluggy

NOISE = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)


def quiet_third_party_warnings() -> None:
    """Ignore :data:`NOISE`, ahead of any filter a library put in front (call again after
    importing one that does: Sanic asks for every DeprecationWarning once)."""
    os.environ.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")  # read when SQLAlchemy is imported
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    for category in NOISE:
        warnings.filterwarnings("ignore", category=category)


class InstallPatches:
    """A Rasa CLI plugin (Rasa's own pluggy hooks): ``configure_commandline`` runs once the
    CLI has configured logging and warnings, right before the command."""

    @pluggy.HookimplMarker("rasa")
    def configure_commandline(self, cmdline_arguments: Any) -> None:
        from infra import rasa_patches

        # Rasa just asked for every UserWarning once, in front: pyparsing's deprecations are both.
        quiet_third_party_warnings()
        rasa_patches.install()
        return None  # pluggy drops None: Rasa's endpoints file stays as given


def main(argv: Optional[List[str]] = None) -> None:
    quiet_third_party_warnings()
    import sanic  # noqa: F401 - it puts a "once" filter for DeprecationWarning in front of ours...
    quiet_third_party_warnings()  # ...ours go back in front
    from rasa.__main__ import main as rasa_cli
    from rasa.plugin import plugin_manager

    from infra import rasa_patches

    try:
        rasa_patches.check_version()
    except rasa_patches.UnsupportedRasa as exc:
        sys.exit(f"infra.rasa_main: {exc}")
    manager = plugin_manager()
    if manager.get_plugin("bakame-rasa-patches") is None:
        manager.register(InstallPatches(), name="bakame-rasa-patches")
    sys.argv = ["rasa", *(sys.argv[1:] if argv is None else argv)]
    rasa_cli()


if __name__ == "__main__":
    main()

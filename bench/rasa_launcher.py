"""The benchmark's Rasa: ``python -m infra.rasa_main`` (patches installed, as every start),
with the packages of ``$BENCH_OVERLAY_DIR`` (changed copies of infra/, connectors/, ...)
taking precedence over the checkout's: measure a proposed change before applying it
(``make bench BENCH_OVERLAY=dir``). Rasa puts the working directory at the front of
``sys.path``; the overlay goes in front of it, before the launcher is imported (so an
overlay's copy of ``infra.rasa_main`` / ``infra.rasa_patches`` is the one measured). An
older checkout without the launcher gets Rasa's CLI as it is."""
from __future__ import annotations

import os
import sys


def main() -> None:
    overlay = os.environ.get("BENCH_OVERLAY_DIR")
    if overlay:
        sys.path.insert(0, overlay)
    try:
        from infra.rasa_main import main as launch
    except ModuleNotFoundError as exc:  # a checkout from before infra/rasa_main.py
        if exc.name not in ("infra", "infra.rasa_main"):
            raise
        from rasa.__main__ import main as rasa_cli

        sys.argv[0] = "rasa"
        rasa_cli()
        return
    launch()


if __name__ == "__main__":
    main()

"""``rasa ...`` with the packages of ``$BENCH_OVERLAY_DIR`` (changed copies of infra/,
connectors/, ...) taking precedence over the checkout's: measure a proposed change before
applying it (``make bench BENCH_OVERLAY=dir``). Rasa puts the working directory at the front
of ``sys.path``; the overlay goes in front of it."""
from __future__ import annotations

import os
import sys


def main() -> None:
    overlay = os.environ.get("BENCH_OVERLAY_DIR")
    if overlay:
        sys.path.insert(0, overlay)
    from rasa.__main__ import main as rasa_main

    sys.argv[0] = "rasa"
    rasa_main()


if __name__ == "__main__":
    main()

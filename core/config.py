"""Reading settings: one environment lookup and one meaning of a boolean or number.

Values come from credentials.yml, endpoints.yml keyword arguments or the environment, so
they arrive as strings, numbers, booleans or ``None``. An empty or unreadable value means
"not set": the caller's default applies.
"""
from __future__ import annotations

import logging
import math
import os
from typing import Any, Mapping, Optional

logger = logging.getLogger(__name__)

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


def env(*names: str, default: Optional[str] = None, environ: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """The first of ``names`` set to a non-blank value (stripped), else ``default``."""
    environ = os.environ if environ is None else environ
    for name in names:
        value = environ.get(name)
        if value is not None and value.strip():
            return value.strip()
    return default


def _unset(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def as_bool(value: Any, default: bool) -> bool:
    """``True`` for 1/true/yes/on, ``False`` for 0/false/no/off (any case), else ``default``."""
    if isinstance(value, bool):
        return value
    if _unset(value):
        return default
    text = str(value).strip().lower()
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    logger.warning("ignoring invalid yes/no value %r, using %s", value, default)
    return default


def as_float(value: Any, default: Any) -> Any:
    """``value`` as a finite float, else ``default``."""
    if _unset(value):
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number):
        logger.warning("ignoring invalid number %r, using %s", value, default)
        return default
    return number


def as_int(value: Any, default: Any) -> Any:
    """``value`` as a whole number ("8" and "8.0" are 8; a fraction is cut), else ``default``."""
    number = as_float(value, None)
    return default if number is None else int(number)

"""Class codes (issue 17): the short code a teacher gives and a learner says, types or keys
to join the class ("class 4821", "ishuri 4821", "join class ABC12"). Read by the action
server (actions/classes.py) and checked by the dashboard when a class is created."""
from __future__ import annotations

import re
from typing import Any, Optional

# A code: 3-8 letters/digits holding at least one digit (so "class", "ishuri" never match).
_CODE = re.compile(r"(?<![A-Za-z0-9])(?=[A-Za-z]*\d)[A-Za-z0-9]{3,8}(?![A-Za-z0-9])")


def normalise_code(code: Any) -> Optional[str]:
    """Upper case without spaces or dashes ("abc-12" -> "ABC12"); None when it is no code."""
    text = re.sub(r"[\s\-]", "", str(code or "")).upper()
    return text if _CODE.fullmatch(text) else None


def class_code_in(text: Optional[str]) -> Optional[str]:
    """The class code said or typed in a message ("join class 4821" -> "4821"), the last one
    when several are given; None when the message holds none."""
    found = _CODE.findall(text or "")
    return normalise_code(found[-1]) if found else None

"""Text a phone can say or show: no pictographs.

Emoji mean nothing to a TTS voice (some read their names aloud) and cost a whole SMS its
GSM-7 alphabet, so the LLM client and the voice channel drop them; the SMS channel cleans
further to GSM-7 (core.gsm).
"""
from __future__ import annotations

import re
from typing import Text

_EMOJI = re.compile(
    "[\U0001F000-\U0001FAFF\U00002600-\U000027BF\U0001F1E6-\U0001F1FF\U00002300-\U000023FF"
    "\U00002B00-\U00002BFF\U0000FE0E\U0000FE0F\U0000200D\U000020E3]+"
)


def strip_emoji(text: Text) -> Text:
    return re.sub(r"[ ]{2,}", " ", _EMOJI.sub("", text)).strip()

"""The one error a channel has to know about, and the polite answer to it.

:class:`StoreUnavailable` is raised by the Redis tracker and lock stores after their
retries ran out. It travels out of ``Agent.handle_message`` to the input channel, which
answers the learner with :func:`polite_reply` (HTTP 200) instead of an error.
"""
from __future__ import annotations

from collections import OrderedDict
from threading import Lock
from typing import Optional, Text

from core import language, texts

TRY_AGAIN_KEY = "try_again_later"
_LANGUAGE_CACHE_SIZE = 50_000


class StoreUnavailable(RuntimeError):
    """Redis (conversation state or locks) could not be reached; the turn was not run."""

    def __init__(self, what: Text, cause: Optional[BaseException] = None) -> None:
        detail = f": {type(cause).__name__}" if cause is not None else ""
        super().__init__(f"{what} unavailable{detail}")
        self.what = what


class _LanguageMemory:
    """Last known language per conversation, in this process only (bounded LRU).

    Filled by the tracker store on every successful save, read when the store is down:
    a Kinyarwanda speaker who answers "7" still gets the apology in Kinyarwanda.
    """

    def __init__(self, size: int = _LANGUAGE_CACHE_SIZE) -> None:
        self._size = size
        self._data: "OrderedDict[str, str]" = OrderedDict()
        self._lock = Lock()

    def remember(self, sender_id: Text, code: Optional[Text]) -> None:
        if not sender_id or not language.is_supported(code):
            return
        with self._lock:
            self._data[sender_id] = code
            self._data.move_to_end(sender_id)
            while len(self._data) > self._size:
                self._data.popitem(last=False)

    def get(self, sender_id: Text) -> Optional[Text]:
        with self._lock:
            return self._data.get(sender_id)


languages = _LanguageMemory()


def learner_language(sender_id: Optional[Text], text: Optional[Text]) -> Text:
    """The learner's language without a tracker: the message itself decides (with the
    language last seen for this learner as the current one), the default when unknown."""
    current = languages.get(sender_id or "")
    try:
        detected = language.detect(text or "", current)
    except Exception:  # noqa: BLE001 - an apology must never fail
        detected = current
    return language.or_default(detected)


def polite_reply(sender_id: Optional[Text], text: Optional[Text]) -> Text:
    """"Please try again shortly" in the learner's language (``try_again_later`` in
    actions/content/messages.yml; the catalogues are read when this module is imported,
    so a broken one stops the server at start, not at the apology)."""
    return texts.text(TRY_AGAIN_KEY, learner_language(sender_id, text))


texts.text(TRY_AGAIN_KEY, language.DEFAULT)  # read the catalogues now (see polite_reply)

"""What the channels say on their own (never the tutoring content, which the bot sends).

Every prompt exists in English and Kinyarwanda; when the learner's language is not known
yet (slot ``language`` is None) both are used, Kinyarwanda first. All texts are plain
ASCII (GSM-7 safe, readable by a TTS voice). Any prompt can be replaced per channel in
credentials.yml (``prompts: {holding: {en: ..., rw: ...}}``).

The Kinyarwanda texts should be reviewed by a native speaker before launch.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Text

DEFAULT_PROMPTS: Dict[Text, Dict[Text, Text]] = {
    # voice
    "welcome": {
        "en": "Hello! I am BAKAME, your learning friend. Press 1 for math, 2 for English, "
              "3 for reading, 4 for debate, 9 to change language, 0 for help.",
        "rw": "Muraho! Ndi BAKAME, inshuti yawe mu kwiga. Kanda 1 ku mibare, 2 ku cyongereza, "
              "3 ku gusoma, 4 ku mpaka, 9 guhindura ururimi, 0 ku bufasha.",
    },
    "reprompt_silence": {
        "en": "I did not hear you.",
        "rw": "Sinakumvise.",
    },
    "reprompt_fallback": {
        "en": "Please say your answer, or use the keypad.",
        "rw": "Vuga igisubizo cyawe, cyangwa ukoreshe utubuto twa telefone.",
    },
    "goodbye_silence": {
        "en": "I cannot hear you, so I will end the call now. Call again any time. Goodbye!",
        "rw": "Sinkumva, reka mpagarike. Uzongere uhamagare igihe cyose. Murabeho!",
    },
    "low_confidence": {
        "en": "Sorry, I did not catch that. Please say it again, or use the keypad.",
        "rw": "Mbabarira, sinakumvise neza. Ongera ubivuge, cyangwa ukoreshe utubuto twa telefone.",
    },
    "holding": {
        "en": "One moment please.",
        "rw": "Tegereza gato.",
    },
    "error": {
        "en": "Sorry, something went wrong. Please try again.",
        "rw": "Mbabarira, habaye ikibazo. Ongera ugerageze.",
    },
    "error_hangup": {
        "en": "Sorry, something went wrong. Please call again later. Goodbye!",
        "rw": "Mbabarira, habaye ikibazo. Uzongere uhamagare nyuma. Murabeho!",
    },
    "goodbye": {
        "en": "Goodbye!",
        "rw": "Murabeho!",
    },
    "press_for": {
        "en": "Press {n} for {title}.",
        "rw": "Kanda {n} kuri {title}.",
    },
    # sms
    "sms_option": {
        "en": "{n}. {title}",
        "rw": "{n}. {title}",
    },
    "sms_empty": {
        "en": "Please send a text message. Send 0 to see what I can do.",
        "rw": "Ohereza ubutumwa bwanditse. Ohereza 0 urebe ibyo nshobora gukora.",
    },
    "sms_media": {
        "en": "Sorry, I can only read text. Please type your message.",
        "rw": "Mbabarira, nsoma inyandiko gusa. Andika ubutumwa bwawe.",
    },
    "sms_too_long": {
        "en": "Your message is too long. Please send a shorter one.",
        "rw": "Ubutumwa bwawe ni burebure cyane. Ohereza ubugufi.",
    },
    "sms_more_hint": {
        "en": "(Reply MORE for the rest)",
        "rw": "(Andika MORE ubone ibindi)",
    },
    "sms_holding": {
        "en": "I am still thinking. Reply OK in a moment to get my answer.",
        "rw": "Ndacyatekereza. Mu kanya andika OK ubone igisubizo.",
    },
    "sms_in_progress": {
        "en": "I am still working on your last message.",
        "rw": "Ndacyasubiza ubutumwa bwawe bwa nyuma.",
    },
}


class Prompts:
    def __init__(self, overrides: Optional[Mapping[Text, Any]] = None) -> None:
        self.texts: Dict[Text, Dict[Text, Text]] = {k: dict(v) for k, v in DEFAULT_PROMPTS.items()}
        for key, value in (overrides or {}).items():
            if isinstance(value, Mapping):
                self.texts.setdefault(key, {}).update({str(k): str(v) for k, v in value.items() if v})
            elif value:
                self.texts[key] = {"en": str(value), "rw": str(value)}

    def get(self, key: Text, language: Optional[Text], **values: Any) -> Text:
        """The prompt in ``language``; both languages (rw first) when it is unknown."""
        entry = self.texts[key]
        if language in ("en", "rw"):
            text = entry.get(language) or entry.get("en") or ""
        else:
            rw, en = entry.get("rw", ""), entry.get("en", "")
            text = en if rw == en else " ".join(t for t in (rw, en) if t)
        return text.format(**values) if values else text

    def one(self, key: Text, language: Optional[Text], **values: Any) -> Text:
        """The prompt in one language only (English when unknown): for button phrases."""
        entry = self.texts[key]
        text = entry.get(language or "en") or entry.get("en") or ""
        return text.format(**values) if values else text

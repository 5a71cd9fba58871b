"""BAKAME on USSD through a local aggregator: ``POST /webhooks/ussd/webhook/<secret>``.

Africa's Talking's USSD protocol (most East African aggregators speak it): each screen is a
form POST (``sessionId``, ``serviceCode``, ``phoneNumber``, ``networkCode``, ``text``: every
entry of the session so far joined by ``*``) answered with ``CON <screen>`` (wait for an
entry) or ``END <screen>`` (close the session). Only the entries after the ones already
handled are new (``ussd_screens.new_entries``), so a retried request shows the same screen
again without a second turn.

A dial opens on the language choice (a new learner), "continue where you stopped" (an
activity in progress: the saved screen, or the assistant's repeat) or the menu. Every screen
is made of numbered choices (``connectors.ussd_screens``), cut into pages of at most
``screen_chars`` (182) characters. A session older than ``session_budget`` (120 s, before
operators cut sessions) ends with ``END`` "dial again to continue"; the screen it would have
shown is kept for the learner (``ussd:learner:<conversation id>``, a day) and offered on the
next dial. The conversation id is the keyed hash of the number, as on every channel.

With outreach on, 6 on the menu opens reminders and reports (``connectors.outreach_desk``,
the desk of every channel): a reminder tomorrow at a chosen hour by SMS or call, or a
parent's number typed on the screen; text typed anywhere is read like an SMS ("remind me
tomorrow", "umubyeyi 07...") and any phone number in it is masked before the assistant.
"""
from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, List, Optional, Text

from sanic.request import Request

from rasa.core.channels.channel import CollectingOutputChannel

from connectors.aggregator import AggregatorInputBase, form_of
from connectors.common import BotOutput, read_conversation
from connectors.settings import UssdSettings
from connectors.outreach_desk import MENU_KEY, Learner, OutreachDesk
from connectors.prompts import CATALOGUE
from connectors.turns import result_of
from connectors.ussd_screens import Decision, Screen, Step, decide, kind_after, new_entries, paginate
from core import language as languages
from core import texts
from infra.outreach import process_outreach

SESSION_TTL = 900.0  # operators end sessions within minutes
LEARNER_TTL = 24 * 3600.0  # how long "continue where you stopped" is offered
OUTREACH_KINDS = ("outreach", "guardian")  # the reminders menu; a guardian's number awaited
TYPED = ("text", "answer", "keypad_text")  # entries typed by the learner (not a fixed payload)
FOOTERS = {"home": "ussd_menu", "math": "ussd_math_footer", "answer": "ussd_answer_footer",
           "name": "ussd_name_footer"}


class UssdCollector(CollectingOutputChannel):
    """Collects the turn's messages; the name selects ``channel: ussd`` responses."""

    @classmethod
    def name(cls) -> Text:
        return "ussd"


@dataclass
class UssdSession:
    """One USSD session (``ussd:session:<sessionId>``)."""

    started_at: float = field(default_factory=time.time)
    consumed: int = 0  # entries of ``text`` handled
    screen: Optional[Dict[Text, Any]] = None  # the screen shown last
    lang: Optional[Text] = None
    pending: List[Text] = field(default_factory=list)  # turns still running

    @classmethod
    def from_dict(cls, data: Optional[Dict[Text, Any]]) -> "UssdSession":
        data = data or {}
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass
class UssdRequest:
    request: Request
    on_new_message: Callable
    form: Dict[Text, Text]
    sender_id: Text
    session_id: Text
    started: float
    session: UssdSession


class UssdInput(AggregatorInputBase):
    """USSD menus on any phone: language, lessons, math by keypad, hints, progress."""

    settings_class = UssdSettings
    state_namespace = "ussd"
    collector_class = UssdCollector
    settings: UssdSettings
    outreach: Any = None  # infra.outreach.Outreach; None: the process's (OUTREACH_ENABLED), if any
    _desk: Optional[OutreachDesk] = None

    @classmethod
    def name(cls) -> Text:
        return "ussd"

    @property
    def desk(self) -> OutreachDesk:
        if self._desk is None:
            self._desk = OutreachDesk(self.outreach or process_outreach(), self.hasher)
        return self._desk

    # ------------------------------------------------------------------ webhook
    async def _apology(self, request: Request) -> Text:
        return "END " + self.prompts.get("error", None)

    @staticmethod
    def _session_key(session_id: Text) -> Text:
        return f"ussd:session:{session_id}"

    @staticmethod
    def _learner_key(sender_id: Text) -> Text:
        return f"ussd:learner:{sender_id}"

    async def _handle(self, request: Request, on_new_message: Callable, started: float) -> Text:
        form = form_of(request)
        session_id = (form.get("sessionId") or "").strip()
        if self.hasher is None or not session_id:
            return await self._apology(request)
        sender_id = self.hasher.sender_id(self._number(form.get("phoneNumber")), fallback=session_id)
        session = UssdSession.from_dict(await self.store.get(self._session_key(session_id)))
        ussd = UssdRequest(request, on_new_message, form, sender_id, session_id, started, session)
        entries, total = new_entries(form.get("text"), session.consumed)
        screen = Screen.from_dict(session.screen)
        if screen is None:
            screen = await self._first_screen(ussd)
        for entry in entries:
            screen = await self._next_screen(ussd, screen, entry)
        session.consumed, session.screen = max(total, session.consumed), screen.to_dict()
        await self.store.set(self._session_key(session_id), asdict(session), SESSION_TTL)
        if screen.kind in FOOTERS:  # where the learner is, offered again on the next dial
            await self.store.set(self._learner_key(sender_id), {"screen": screen.to_dict()}, LEARNER_TTL)
        if screen.kind == "end":  # the assistant ended the conversation (goodbye)
            return "END " + screen.text
        if time.time() - session.started_at > self.settings.session_budget:
            code = form.get("serviceCode") or ""
            return "END " + self.prompts.get("ussd_dial_again", session.lang, code=code)
        return "CON " + screen.text

    # ------------------------------------------------------------------ screens
    def _screen(self, kind: Text, body: Text, lang: Optional[Text], choices: Optional[List[Text]] = None) -> Screen:
        # one language on a screen (the default until the learner chose): several would not fit
        footer = "ussd_menu_outreach" if kind == "home" and self.desk.enabled else FOOTERS.get(kind)
        options = self.prompts.one(footer, lang) if footer else ""
        pages = paginate(body, options, self.settings.screen_chars,
                         self.prompts.one("ussd_next", lang), self.prompts.one("ussd_back", lang))
        return Screen(kind, pages, 0, list(choices or []))

    def _home(self, lang: Optional[Text], name: Optional[Text] = None) -> Screen:
        hello = self.prompts.get("ussd_hello_named", lang, name=name) if name else self.prompts.get("ussd_hello", lang)
        return self._screen("home", hello, lang)

    async def _first_screen(self, ussd: UssdRequest) -> Screen:
        """The screen of a dial: language (new learner), continue (an activity open) or the menu."""
        view = await read_conversation(ussd.request.app, ussd.sender_id)
        lang = ussd.session.lang = view.language
        if lang is None:
            return self._screen("language", self.prompts.get("ussd_language", None), None)
        saved = Screen.from_dict((await self.store.get(self._learner_key(ussd.sender_id)) or {}).get("screen"))
        open_activity = view.module and view.active_loop == "tutor_form"
        if open_activity or (saved is not None and (saved.kind in FOOTERS and saved.kind != "home")):
            module = self.prompts.get(f"ussd_module_{view.module}", lang) if open_activity and \
                texts.has(f"{CATALOGUE}ussd_module_{view.module}") else ""
            name_part = f", {view.name}" if view.name else ""
            return Screen("resume", [self.prompts.get("ussd_resume", lang, name_part=name_part, module=module)
                                     .replace("  ", " ")])
        return self._home(lang, view.name)

    async def _next_screen(self, ussd: UssdRequest, screen: Screen, entry: Text) -> Screen:
        ussd.session.consumed += 1
        lang = ussd.session.lang
        if screen.kind in OUTREACH_KINDS or (screen.kind == "home" and self.desk.opens_menu(entry)
                                             and int(MENU_KEY) > len(screen.choices)):
            return await self._outreach(ussd, screen, entry.strip())
        decision = decide(entry, screen, self.keypad, lang, skip_word=self.prompts.one("ussd_skip", lang))
        step = decision.step
        if step in (Step.SAME, Step.INVALID):
            return screen
        if step in (Step.NEXT, Step.PREV):
            return Screen(screen.kind, screen.pages, screen.page + (1 if step is Step.NEXT else -1), screen.choices)
        if step is Step.HOME:
            return self._home(lang)
        if step is Step.FETCH:
            return await self._fetch(ussd, screen)
        if step is Step.CONTINUE:
            saved = Screen.from_dict((await self.store.get(self._learner_key(ussd.sender_id)) or {}).get("screen"))
            if saved is not None and saved.kind in FOOTERS and saved.kind != "home":
                return saved
            decision = Decision(Step.ASK, "/repeat", "menu")
        elif step is Step.LEAVE:
            decision = Decision(Step.ASK, "/stop", "menu")
        return await self._ask(ussd, decision, entry)

    def _learner(self, ussd: UssdRequest) -> Learner:
        return Learner(ussd.sender_id, self._number(ussd.form.get("phoneNumber")), ussd.session.lang)

    async def _outreach(self, ussd: UssdRequest, screen: Screen, entry: Text) -> Screen:
        """The reminders menu (from the menu's key 6), its choices, a guardian's number typed."""
        lang = ussd.session.lang
        if screen.kind == "home":
            return Screen("outreach", [self.prompts.one("ussd_outreach_menu", lang)])
        if entry == "00":
            return self._home(lang)
        if screen.kind == "outreach":
            choice = await self.desk.choose(entry, self._learner(ussd))
            if choice is None:
                return screen
            if choice.awaiting:
                return Screen("guardian", [self.prompts.one("ussd_outreach_guardian", lang)])
            return self._screen("home", choice.reply or "", lang)
        reply = await self.desk.typed_guardian(entry, self._learner(ussd))
        if reply is None:  # not a number: say so, and wait for one again
            return Screen("guardian", [texts.text("outreach.guardian_not_a_number", lang) + "\n"
                                       + self.prompts.one("ussd_outreach_guardian", lang)])
        return self._screen("home", reply, lang)

    # ------------------------------------------------------------------ turns
    async def _ask(self, ussd: UssdRequest, decision: Decision, entry: Text) -> Screen:
        """One message through the assistant; a new learner's language choice also greets them.
        Typed text is first read like an SMS (a reminder, a guardian's number: ``outreach_desk``)."""
        if decision.kind in TYPED:
            typed = entry.strip() if decision.kind == "keypad_text" else decision.text or entry  # spaces kept
            step = await self.desk.step(typed, self._learner(ussd))
            if step.reply is not None:
                return self._screen("home", step.reply, ussd.session.lang)
            decision = Decision(decision.step, step.body, decision.kind)
        first = await self._turn(ussd, decision.text or entry, decision.kind)
        if decision.kind == "language" and first is not None and first.get("loop") != "name_form":
            view = await read_conversation(ussd.request.app, ussd.sender_id)
            if not view.name:
                first = await self._turn(ussd, "/greet", "menu") or first
        return self._after(ussd, first)

    async def _turn(self, ussd: UssdRequest, text: Text, kind: Text) -> Optional[Dict[Text, Any]]:
        """The turn's result; None while it runs on past the turn budget (then it is pending)."""
        turn_id = uuid.uuid4().hex[:16]
        metadata = {"channel": self.name(), "input": kind, "network_code": ussd.form.get("networkCode") or None}
        metadata = {k: v for k, v in metadata.items() if v}
        message_id = f"ussd:{ussd.session_id}:{ussd.session.consumed}:{turn_id[:6]}"

        async def work(timer: Any) -> Dict[Text, Any]:
            return await self._ask_rasa(ussd.request.app, ussd.on_new_message, timer, text, ussd.sender_id,
                                        message_id, metadata, kind)

        record = await self._run_turn(ussd.sender_id, turn_id, ussd.started, work)
        if record is None:
            ussd.session.pending.append(turn_id)
            return None
        return result_of(record) or {"output": {"texts": [self.prompts.get("error", ussd.session.lang)]},
                                     "language": ussd.session.lang}

    async def _fetch(self, ussd: UssdRequest, screen: Screen) -> Screen:
        records, ussd.session.pending = await self.turns.collect_ready(ussd.sender_id, ussd.session.pending)
        if not records:
            return screen if ussd.session.pending else self._home(ussd.session.lang)
        result = result_of(records[-1]) or {}
        result = dict(result, output=self._carried_output(records).as_dict())
        return self._after(ussd, result)

    def _after(self, ussd: UssdRequest, result: Optional[Dict[Text, Any]]) -> Screen:
        """The screen showing a turn's result (or the holding screen while it runs)."""
        lang = ussd.session.lang
        if result is None:
            return Screen("holding", [self.prompts.get("ussd_holding", lang)])
        if languages.is_supported(result.get("language")):
            lang = ussd.session.lang = result["language"]
        output = BotOutput.from_dict(result.get("output"))
        kind = "end" if output.end_call else kind_after(result)
        body = "\n".join(output.texts)
        choices = [] if kind == "math" else [b["payload"] for b in output.buttons]
        if choices:
            body += "\n" + "\n".join(f"{i}. {b['title']}" for i, b in enumerate(output.buttons, 1))
        return self._screen(kind, body, lang, choices)

"""Math tutor: generated word problems set in Rwandan life, five levels.

Content (templates, hints, worked answers, the tutor's phrases) lives in
``actions/content/math.yml``; see the comment at its top for the template format.

Levels: 1 single-digit sums, 2 two-digit addition/subtraction, 3 multiplication/division,
4 money word problems (RWF), 5 multi-step word problems.

Scoring (per problem, two tries):
* right on the first try: ``10 x level`` points, right on the second try: ``5 x level``;
  ``correct`` +1, ``streak`` +1, ``misses`` reset to 0;
* a wrong try breaks the streak (``streak`` = 0); the first wrong try gives a hint, the
  second gives the worked answer, counts as a missed problem (``misses`` +1) and moves on;
* every graded try counts in ``attempts`` (so ``accuracy`` = right tries / all tries);
* every 3rd correct answer in a row moves the level up (max 5), every 3rd missed
  problem in a row moves it down (min 1);
* a turn with no number in it is not graded (asked again, ``outcome`` None).

State (the ``tutor_state`` slot), JSON only::

    {"module": "math", "tries": 0 | 1,
     "problem": {"id": "l2:34+58", "tid": "add2", "level": 2, "answer": 92,
                 "values": {"a": 34, "b": 58, ...}}}

``start`` always begins a fresh state with a new problem; ``answer``/``hint`` keep any
other keys the glue put in the state (e.g. ``_asked``). The module never finishes by
itself: every graded answer that closes a problem comes with the next problem.
"""
from __future__ import annotations

import ast
import operator
import random
from typing import Any, Dict, List, Optional

from actions.answer_check import check_math_answer
from actions.tutoring.base import Progress, Reply, Tutor
from actions.tutoring.common import copy_progress, load_content_file
from core import language, texts

MIN_LEVEL, MAX_LEVEL = 1, 5
LEVEL_UP_STREAK = 3  # correct answers in a row to move up
LEVEL_DOWN_MISSES = 3  # missed problems in a row to move down
POINTS_PER_LEVEL = 10
SEEN_LIMIT = 400  # most recent problem ids kept in Progress.seen
GENERATION_TRIES = 60


def load_content() -> Dict[str, Any]:
    """The parsed ``math.yml``, its levels keyed by number."""
    data = dict(load_content_file("math.yml"))
    data["levels"] = {int(level): templates for level, templates in data["levels"].items()}
    return data


# --- safe arithmetic for the templates' let/where/answer expressions -------------

_BINOPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_CMPOPS = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}


def evaluate(expression: str, names: Dict[str, Any]) -> Any:
    """Evaluate a small arithmetic/comparison expression over ``names`` (no calls)."""

    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return node.value
        if isinstance(node, ast.Name):
            return names[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            return _BINOPS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -ev(node.operand)
        if isinstance(node, ast.Compare):
            left = ev(node.left)
            for op, right_node in zip(node.ops, node.comparators):
                right = ev(right_node)
                if type(op) not in _CMPOPS or not _CMPOPS[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.BoolOp):
            values = [ev(v) for v in node.values]
            return all(values) if isinstance(node.op, ast.And) else any(values)
        raise ValueError(f"unsupported expression: {expression!r}")

    return ev(ast.parse(str(expression), mode="eval"))


def _whole(value: Any) -> Optional[int]:
    """``value`` as an int when it is a whole number, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


class MathTutor(Tutor):
    name = "math"

    def __init__(self, rng: Optional[random.Random] = None) -> None:
        self.rng = rng if rng is not None else random.Random()
        self.content = load_content()
        self.templates: Dict[str, Dict[str, Any]] = {}
        self.level_of: Dict[str, int] = {}
        for level, templates in self.content["levels"].items():
            for template in templates:
                self.templates[template["id"]] = template
                self.level_of[template["id"]] = level

    # --- texts ---------------------------------------------------------------

    def render(self, problem: Dict[str, Any], lang: str) -> Dict[str, str]:
        """The problem's question, hint and worked answer in ``lang``."""
        template = self.templates[problem["tid"]][language.or_default(lang)]
        values = dict(problem["values"], answer=problem["answer"])
        return {part: template[part].format(**values) for part in ("q", "hint", "worked")}

    # --- problems --------------------------------------------------------------

    def _draw(self, spec: Any) -> Any:
        if isinstance(spec, dict) and "choice" in spec:
            return self.rng.choice(list(spec["choice"]))
        if isinstance(spec, (list, tuple)) and len(spec) in (2, 3):
            low, high = int(spec[0]), int(spec[1])
            step = int(spec[2]) if len(spec) == 3 else 1
            return low + step * self.rng.randint(0, (high - low) // step)
        return spec

    def _instance(self, template: Dict[str, Any], level: int,
                  drawn: Optional[Dict[str, Any]] = None) -> Optional[Dict[str, Any]]:
        """One instance of ``template`` with the ``drawn`` vars values (random when not
        given); None when the values break a rule."""
        if drawn is None:
            drawn = {name: self._draw(spec) for name, spec in (template.get("vars") or {}).items()}
        values: Dict[str, Any] = dict(drawn)
        try:
            for name, expression in (template.get("let") or {}).items():
                derived = evaluate(expression, values)
                values[name] = _whole(derived) if _whole(derived) is not None else derived
            if template.get("where") and not evaluate(template["where"], values):
                return None
            answer = _whole(evaluate(template["answer"], values))
        except (ZeroDivisionError, KeyError, ValueError):
            return None
        if answer is None or answer < 0:
            return None
        key = str(template.get("key") or template["id"]).format(**values)
        return {"id": f"l{level}:{key}", "tid": template["id"], "level": level, "answer": answer, "values": values}

    def make_problem(self, template_id: str, **values: Any) -> Dict[str, Any]:
        """The problem of template ``template_id`` with the given ``vars`` values (for
        tests and tools; raises ValueError when the values break the template's rules)."""
        template = self.templates[template_id]
        level = self.level_of[template_id]
        missing = set(template.get("vars") or {}) - set(values)
        if missing:
            raise ValueError(f"missing values: {sorted(missing)}")
        problem = self._instance(template, level, {n: values[n] for n in (template.get("vars") or {})})
        if problem is None:
            raise ValueError(f"values break the rules of {template_id}: {values}")
        return problem

    def generate_problem(self, level: int, seen: Optional[List[str]] = None, avoid: Optional[str] = None,
                         avoid_template: Optional[str] = None) -> Dict[str, Any]:
        """A new problem at ``level`` whose id is not in ``seen`` (if at all possible),
        from another template than ``avoid_template`` (when the level has several)."""
        level = min(MAX_LEVEL, max(MIN_LEVEL, int(level or MIN_LEVEL)))
        templates = [t for t in self.content["levels"][level] if t["id"] != avoid_template] \
            or self.content["levels"][level]
        seen_ids = set(seen or ())
        fallback = None
        for attempt in range(GENERATION_TRIES):
            if attempt == GENERATION_TRIES // 2:  # this variety is spent: any template will do
                templates = self.content["levels"][level]
            problem = self._instance(self.rng.choice(templates), level)
            if problem is None:
                continue
            if problem["id"] not in seen_ids and problem["id"] != avoid:
                return problem
            if fallback is None and problem["id"] != avoid:
                fallback = problem
        if fallback is not None:
            return fallback
        raise RuntimeError(f"math.yml: no valid problem for level {level}")

    def _new_problem(self, progress: Progress, state: Dict[str, Any]) -> Dict[str, Any]:
        current = state.get("problem") or {}
        problem = self.generate_problem(progress.level, progress.seen, avoid=current.get("id"),
                                        avoid_template=current.get("tid"))
        progress.seen = [s for s in progress.seen if s != problem["id"]][-(SEEN_LIMIT - 1):] + [problem["id"]]
        state["problem"] = problem
        state["tries"] = 0
        return problem

    def _current(self, state: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
        if not state or state.get("module", self.name) != self.name:
            return None
        problem = state.get("problem")
        if not isinstance(problem, dict) or problem.get("tid") not in self.templates:
            return None
        return problem

    # --- Tutor interface ---------------------------------------------------------------

    def start(self, lang: str, progress: Progress, state: Optional[Dict[str, Any]] = None) -> Reply:
        lang = language.or_default(lang)
        p = copy_progress(progress)
        p.level = min(MAX_LEVEL, max(MIN_LEVEL, p.level or MIN_LEVEL))
        st = _fresh_state(state, self.name)
        problem = self._new_problem(p, st)
        messages = [texts.text("math.intro", lang, level=p.level), self.render(problem, lang)["q"]]
        return Reply(messages=messages, state=st, progress=p)

    def prompt(self, lang: str, state: Dict[str, Any]) -> str:
        lang = language.or_default(lang)
        problem = self._current(state)
        if problem is None:
            return texts.text("math.no_problem", lang)
        return self.render(problem, lang)["q"]

    def hint(self, lang: str, progress: Progress, state: Dict[str, Any]) -> Reply:
        lang = language.or_default(lang)
        problem = self._current(state)
        if problem is None:
            return self.start(lang, progress, state)
        return Reply(messages=[texts.text("math.hint", lang, hint=self.render(problem, lang)["hint"])],
                     state=dict(state), progress=copy_progress(progress))

    def answer(self, text: str, lang: str, progress: Progress, state: Dict[str, Any]) -> Reply:
        lang = language.or_default(lang)
        problem = self._current(state)
        if problem is None:
            return self.start(lang, progress, state)
        p = copy_progress(progress)
        p.level = min(MAX_LEVEL, max(MIN_LEVEL, p.level or MIN_LEVEL))
        st = dict(state)
        rendered = self.render(problem, lang)
        check = check_math_answer(problem["answer"], text or "", lang)
        if not check.correct and check.understood is None:
            return Reply(messages=[texts.text("math.not_number", lang, question=rendered["q"])], state=st, progress=p)

        p.attempts += 1
        level = int(problem.get("level") or p.level or MIN_LEVEL)
        if check.correct:
            first_try = not st.get("tries")
            points = POINTS_PER_LEVEL * level if first_try else POINTS_PER_LEVEL * level // 2
            p.correct += 1
            p.points += points
            p.streak += 1
            p.misses = 0
            feedback = f"{self.rng.choice(texts.value('math.praise', lang))} " \
                       f"{texts.text('math.points', lang, points=points, total=p.points)}"
            if p.streak % LEVEL_UP_STREAK == 0 and p.level < MAX_LEVEL:
                p.level += 1
                feedback += " " + texts.text("math.level_up", lang, level=p.level)
            nxt = self._new_problem(p, st)
            messages = [feedback, texts.text("math.next", lang, question=self.render(nxt, lang)["q"])]
            return Reply(messages=messages, state=st, progress=p, outcome=True)

        p.streak = 0
        if not st.get("tries"):
            st["tries"] = 1
            return Reply(messages=[texts.text("math.wrong_first", lang, hint=rendered["hint"])], state=st, progress=p, outcome=False)

        p.misses += 1
        messages = [texts.text("math.wrong_second", lang, answer=problem["answer"], worked=rendered["worked"])]
        level_note = ""
        if p.misses % LEVEL_DOWN_MISSES == 0 and p.level > MIN_LEVEL:
            p.level -= 1
            level_note = texts.text("math.level_down", lang, level=p.level) + " "
        nxt = self._new_problem(p, st)
        messages.append(level_note + texts.text("math.next", lang, question=self.render(nxt, lang)["q"]))
        return Reply(messages=messages, state=st, progress=p, outcome=False)


def _fresh_state(state: Optional[Dict[str, Any]], module: str) -> Dict[str, Any]:
    """A new state for ``module`` (the old one, if any, belongs to a finished item)."""
    return {"module": module}

"""connectors/ stays readable: no class over ~250 lines, no function over ~60 (issue 12)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

CONNECTORS = Path(__file__).resolve().parent.parent / "connectors"
MAX_CLASS_LINES = 250
MAX_FUNCTION_LINES = 60


def _definitions():
    for path in sorted(CONNECTORS.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                first = min([node.lineno] + [d.lineno for d in node.decorator_list])
                yield path.name, node, node.end_lineno - first + 1


def test_the_check_sees_the_channels():
    names = {(file, node.name) for file, node, _ in _definitions()}
    assert ("twilio_voice.py", "TwilioVoiceInput") in names and ("base.py", "TwilioInputBase") in names


@pytest.mark.parametrize("kind, limit", [("class", MAX_CLASS_LINES), ("function", MAX_FUNCTION_LINES)])
def test_no_definition_is_over_its_limit(kind, limit):
    too_long = [
        f"{file}:{node.lineno} {node.name} ({lines} lines)"
        for file, node, lines in _definitions()
        if isinstance(node, ast.ClassDef) == (kind == "class") and lines > limit
    ]
    assert too_long == []

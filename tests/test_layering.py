"""The packages form a stack (docs/architecture.md): nothing imports upward.

    core            shared types and helpers: imports no project package
    infra           stores, broker, settings, Rasa patches: imports core
    actions         the action server: imports infra, core
    connectors      Rasa's input channels: imports infra, core
    nlu_components  Rasa NLU components (trained into the model): imports core

Every import counts, also those inside functions."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT = {"core", "infra", "actions", "connectors", "nlu_components", "scripts", "bench", "tests", "dashboard", "ops"}
ALLOWED = {
    "core": set(),
    "infra": {"core"},
    "actions": {"core", "infra"},
    "connectors": {"core", "infra"},
    "nlu_components": {"core"},
}


def imported_packages(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top in PROJECT:
                yield node.lineno, top


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_no_package_imports_upward(package):
    wrong = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for line, top in imported_packages(path):
            if top != package and top not in ALLOWED[package]:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {top}")
    assert not wrong, "\n".join(wrong)


def test_the_check_sees_an_upward_import(tmp_path):
    bad = tmp_path / "m.py"
    bad.write_text("def f():\n    from actions.llm import get_llm\n")
    assert list(imported_packages(bad)) == [(2, "actions")]

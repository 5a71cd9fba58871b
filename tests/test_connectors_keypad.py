"""Keypad digits to Rasa messages (connectors.keypad)."""
from __future__ import annotations

import pytest

from connectors.keypad import DEFAULT_KEYPAD, KeypadMenu
from core.language import other as other_language


@pytest.fixture
def menu():
    return KeypadMenu()


@pytest.mark.parametrize("digits,text", [
    ("1", "/start_math"), ("2", "/start_english"), ("3", "/start_reading"), ("4", "/start_debate"),
    ("0", "/help"), ("*", "/repeat"), ("1#", "/start_math"), ("5", "/check_progress"), ("7", "/request_hint"),
])
def test_default_menu(menu, digits, text):
    assert menu.resolve(digits).text == text


@pytest.mark.parametrize("current,target", [(None, "rw"), ("en", "rw"), ("rw", "en")])
def test_nine_toggles_the_language(menu, current, target):
    entry = menu.resolve("9", language=current)
    assert entry.kind == "language"
    assert entry.text == '/set_language{"language": "%s"}' % target


def test_default_language_for_the_toggle_is_configurable():
    assert KeypadMenu(default_language="rw").resolve("9").text == '/set_language{"language": "en"}'
    assert other_language("xx") == "rw"


def test_during_a_math_problem_digits_are_the_answer(menu):
    assert menu.resolve("12", math_active=True).text == "12"
    assert menu.resolve("12#", math_active=True).kind == "answer"
    assert menu.resolve("1", math_active=True).text == "1"  # not "start math"
    assert menu.resolve("9", math_active=True).text == "9"  # not "change language"
    assert menu.resolve("*", math_active=True).text == "/repeat"
    assert menu.resolve("*0", math_active=True).text == "/help"
    assert menu.resolve("*9", math_active=True, language="rw").text == '/set_language{"language": "en"}'
    assert menu.resolve("*8", math_active=True).kind == "text"


def test_buttons_come_before_the_menu(menu):
    buttons = ["/affirm", "/deny"]
    assert menu.resolve("2", buttons=buttons).text == "/deny"
    assert menu.resolve("3", buttons=buttons).text == "/start_reading"
    assert menu.resolve("2", buttons=buttons, math_active=True).text == "2"


def test_unknown_and_empty_entries(menu):
    assert menu.resolve("") is None and menu.resolve("#") is None and menu.resolve(None) is None
    assert menu.resolve("86").kind == "text" and menu.resolve("86").text == "86"
    assert menu.resolve("*1").text == "/start_math"


def test_custom_mapping_and_validation():
    menu = KeypadMenu({"1": "/start_reading", "#": "/stop", "2": ""})
    assert menu.resolve("1").text == "/start_reading"
    assert menu.resolve("2").kind == "text"
    assert menu.mapping == {"1": "/start_reading", "#": "/stop"}
    with pytest.raises(ValueError):
        KeypadMenu({"10": "/x"})
    with pytest.raises(ValueError):
        KeypadMenu({"a": "/x"})
    assert DEFAULT_KEYPAD["9"] == "language"

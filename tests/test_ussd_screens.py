"""USSD screens: pages within the operator's limit, what each entry means (connectors/ussd_screens.py)."""
import pytest

from connectors.keypad import KeypadMenu
from connectors.ussd_screens import Screen, Step, decide, kind_after, new_entries, paginate

KEYPAD = KeypadMenu()


@pytest.mark.parametrize("length", [10, 150, 181, 182, 183, 400, 1500])
def test_every_page_fits_the_screen_and_nothing_is_lost(length):
    words = [f"w{i}" for i in range(length)]
    body = " ".join(words)[:length * 3]
    pages = paginate(body, "Type the answer. 01 hint, 00 menu", 182, "1 next", "0 back")
    assert all(len(p) <= 182 for p in pages)
    assert pages[-1].endswith("Type the answer. 01 hint, 00 menu")
    assert all(p.endswith("1 next") for p in pages[:1] if len(pages) > 1)
    assert all(p.endswith("1 next 0 back") for p in pages[1:-1])
    shown = " ".join(p.rsplit("\n", 1)[0] for p in pages).split()
    assert shown == body.split()


def test_a_short_text_is_one_page_with_its_options():
    assert paginate("What is 2 + 2?", "Type the answer. 01 hint, 00 menu", 182, "1 next", "0 back") == [
        "What is 2 + 2?\nType the answer. 01 hint, 00 menu"]


def test_texts_are_gsm_safe():
    [page] = paginate("It\u2019s \u201cgreat\u201d \U0001F600", "", 182, "1 next", "0 back")
    assert page == "It's \"great\""


def _ussd_findings(root):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    import check_data

    report = check_data.Report()
    check_data.check_ussd_screens(check_data.Project(root, ("en", "rw")), report)
    return report


def test_make_validate_checks_every_ussd_text_fits_a_screen(tmp_path):
    from pathlib import Path

    real = _ussd_findings(Path(__file__).resolve().parents[1])
    assert real.findings == [] and real.checked["ussd screens"] >= 20
    content = tmp_path / "actions" / "content"
    content.mkdir(parents=True)
    (content / "channel.yml").write_text(
        'ussd_menu:\n  en: "1 Math"\n  rw: "1 Imibare"\n'
        f'ussd_resume:\n  en: "Welcome back{{name_part}}! {"x" * 160}"\n  rw: "Murakaza neza{{name_part}}!"\n')
    [finding] = _ussd_findings(tmp_path).findings
    assert finding.code == "too-long-ussd" and "channel.ussd_resume" in finding.message and "(en)" in finding.message


def test_entries_on_a_math_screen():
    math = Screen("math", ["What is 0 + 0?\nType the answer. 01 hint, 00 menu"])
    assert decide("0", math, KEYPAD, "en").text == "0"  # an answer, not "back"
    assert decide("12", math, KEYPAD, "en").kind == "answer"
    assert decide("01", math, KEYPAD, "en").text == "/request_hint"
    assert decide("00", math, KEYPAD, "en").step is Step.LEAVE
    assert decide("", math, KEYPAD, "en").step is Step.SAME


def test_paging_entries_come_first_while_there_are_pages():
    paged = Screen("math", ["a\n1 next", "b\n1 next 0 back", "c\noptions"], page=1)
    assert decide("1", paged, KEYPAD, "en").step is Step.NEXT
    assert decide("0", paged, KEYPAD, "en").step is Step.PREV
    last = Screen("math", paged.pages, page=2)
    assert decide("1", last, KEYPAD, "en").text == "1" and decide("0", last, KEYPAD, "en").text == "0"
    story = Screen("answer", paged.pages, page=2)
    assert decide("0", story, KEYPAD, "en").step is Step.PREV


def test_menu_language_name_and_buttons():
    home = Screen("home", ["menu"])
    assert decide("1", home, KEYPAD, "en").text == "/start_math"
    assert decide("9", home, KEYPAD, "en").text == '/set_language{"language": "rw"}'
    assert decide("00", home, KEYPAD, "en").step is Step.HOME
    language = Screen("language", ["..."])
    assert decide("1", language, KEYPAD, None).text == '/set_language{"language": "rw"}'
    assert decide("2", language, KEYPAD, None).text == '/set_language{"language": "en"}'
    assert decide("3", language, KEYPAD, None).step is Step.INVALID
    name = Screen("name", ["..."])
    assert decide("1", name, KEYPAD, "rw", skip_word="reka").text == "reka"
    assert decide("Amina", name, KEYPAD, "rw").text == "Amina"
    buttons = Screen("home", ["..."], choices=["/affirm", "/deny"])
    assert decide("2", buttons, KEYPAD, "en").text == "/deny"


def test_only_new_entries_of_the_history_count():
    assert new_entries("", 0) == ([], 0)
    assert new_entries("1", 0) == (["1"], 1)
    assert new_entries("1*00*1*7", 3) == (["7"], 4)
    assert new_entries("1*00*1*7", 4) == ([], 4)  # a retry


def test_kind_after_a_turn():
    assert kind_after({"loop": "name_form"}) == "name"
    assert kind_after({"math": True, "loop": "tutor_form", "module": "math"}) == "math"
    assert kind_after({"loop": "tutor_form", "module": "reading"}) == "answer"
    assert kind_after({"loop": None, "module": None}) == "home"

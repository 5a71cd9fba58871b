"""GSM-7 sanitising and SMS segmenting (connectors.gsm)."""
from __future__ import annotations

import pytest

from connectors import gsm


@pytest.mark.parametrize("raw,clean", [
    ("\u201cHello\u201d \u2018there\u2019", "\"Hello\" 'there'"),
    ("Well done \U0001F389\U0001F44F!", "Well done !"),
    ("3 \u00d7 4 = 12 \u2014 great\u2026", "3 x 4 = 12 - great..."),
    ("\u00bd + \u00bc", "1/2 + 1/4"),
    ("x\u00b2", "x^2"),
    ("Caf\u00ea cr\u00e8me, gar\u00e7on", "Cafe cr\u00e8me, garcon"),  # e-grave is GSM, e-circumflex is not
    ("Muraho\u00a0neza", "Muraho neza"),
    ("a\u200bb\ufeffc", "abc"),
    ("line1\r\nline2\n\n\n\nline3", "line1\nline2\n\nline3"),
    ("Ni byo! \U0001F600 Komereza aho.", "Ni byo! Komereza aho."),
    ("\u0645\u0631\u062d\u0628\u0627 hello", "hello"),
])
def test_sanitize_maps_to_gsm7(raw, clean):
    out = gsm.sanitize(raw)
    assert out == clean
    assert gsm.is_gsm(out)


def test_kinyarwanda_and_english_text_is_untouched():
    text = "Murakaza neza! Subiza buri kibazo ukoresheje umubare: 12 + 7 = ? (n'umwana)"
    assert gsm.sanitize(text) == text


def test_septets_count_extension_characters_twice():
    assert gsm.septets("abc") == 3
    assert gsm.septets("[x]") == 5
    assert gsm.septets("\u20ac") == 2


@pytest.mark.parametrize("length,segments", [(0, 0), (1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3)])
def test_segment_boundaries(length, segments):
    assert gsm.segment_count("a" * length) == segments


def test_extension_pairs_are_never_split_across_segments():
    text = "a" * 152 + "^" + "b" * 10  # the escape pair would straddle the 153 boundary
    assert gsm.septets(text) == 164
    assert gsm.segment_count(text) == 2
    text = "a" * 152 + "^" * 77
    assert gsm.septets(text) == 306 and gsm.segment_count(text) == 3


def test_split_keeps_short_text_whole():
    assert gsm.split_for_sms("short", 2, "(MORE)") == ("short", "")


@pytest.mark.parametrize("max_segments", [1, 2, 3])
def test_split_fits_the_limit_and_cuts_at_a_sentence_or_word(max_segments):
    text = " ".join(f"Step {i}: add the tens, then the ones." for i in range(40))
    reply, rest = gsm.split_for_sms(text, max_segments, "(Reply MORE for the rest)")
    assert gsm.segment_count(reply) <= max_segments
    assert reply.endswith(" (Reply MORE for the rest)")
    head = reply[: -len(" (Reply MORE for the rest)")]
    assert text.startswith(head) and rest and text.endswith(rest)
    assert head.endswith(".") or head.endswith("then") or not head[-1].isalnum() or text[len(head)] == " "
    assert (head + " " + rest).split() == text.split()


def test_split_a_single_very_long_word():
    reply, rest = gsm.split_for_sms("x" * 500, 1, "(MORE)")
    assert gsm.segment_count(reply) == 1 and reply.endswith("(MORE)")
    assert len(reply) - len(" (MORE)") + len(rest) == 500


def test_join_messages_skips_empty_parts():
    assert gsm.join_messages(["a", "", "  ", "b "]) == "a\nb"

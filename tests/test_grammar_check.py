"""The rule-based grammar checker: each error kind found and corrected, no false alarms."""
import pytest

from actions.tutoring import grammar_check as gc
from actions.tutoring.grammar_check import Correction, check_grammar, correct, explain, lexicon

# (sentence, kind, wrong span, suggestion, fully corrected sentence)
ERRORS = [
    # subject-verb agreement
    ("She go to school every day.", "subject_verb", "go", "goes", "She goes to school every day."),
    ("My mother work on a farm.", "subject_verb", "work", "works", "My mother works on a farm."),
    ("They was at the market.", "subject_verb", "was", "were", "They were at the market."),
    ("We was happy.", "subject_verb", "was", "were", "We were happy."),
    ("I is a student.", "subject_verb", "is", "am", "I am a student."),
    ("He have two cows.", "subject_verb", "have", "has", "He has two cows."),
    ("She don't like rice.", "subject_verb", "don't", "doesn't", "She doesn't like rice."),
    ("They goes to church on Sunday.", "subject_verb", "goes", "go", "They go to church on Sunday."),
    ("My parents is farmers.", "subject_verb", "is", "are", "My parents are farmers."),
    ("It rain a lot in April.", "subject_verb", "rain", "rains", "It rains a lot in April."),
    ("Every student have a book.", "subject_verb", "have", "has", "Every student has a book."),
    ("He study hard every day.", "subject_verb", "study", "studies", "He studies hard every day."),
    ("There is two cows.", "subject_verb", "is", "are", "There are two cows."),
    ("I think she go to school.", "subject_verb", "go", "goes", "I think she goes to school."),
    # verb form after do/does/did, modals and "to"; "I am agree"
    ("She doesn't goes to school.", "verb_form", "goes", "go", "She doesn't go to school."),
    ("I didn't went to school.", "verb_form", "went", "go", "I didn't go to school."),
    ("I want to went home.", "verb_form", "went", "go", "I want to go home."),
    ("He can swims.", "verb_form", "swims", "swim", "He can swim."),
    ("Does she goes to school?", "verb_form", "goes", "go", "Does she go to school?"),
    ("I can to go.", "verb_form", "to go", "go", "I can go."),
    ("I am agree with you.", "verb_form", "am agree", "agree", "I agree with you."),
    ("I'm agree.", "verb_form", "I'm agree", "I agree", "I agree."),
    ("I am not agree.", "verb_form", "am not agree", "don't agree", "I don't agree."),
    # tense with time words
    ("Yesterday I go to the market.", "tense", "go", "went", "Yesterday I went to the market."),
    ("She go to school yesterday.", "tense", "go", "went", "She went to school yesterday."),
    ("Tomorrow I went to Huye.", "tense", "went", "will go", "Tomorrow I will go to Huye."),
    ("Last week we play football.", "tense", "play", "played", "Last week we played football."),
    ("Two days ago I visit my grandmother.", "tense", "visit", "visited",
     "Two days ago I visited my grandmother."),
    ("Yesterday I am sick.", "tense", "am", "was", "Yesterday I was sick."),
    ("Yesterday I don't go to school.", "tense", "don't", "didn't", "Yesterday I didn't go to school."),
    ("Tomorrow I was at home.", "tense", "was", "will be", "Tomorrow I will be at home."),
    ("Yesterday I have a test.", "tense", "have", "had", "Yesterday I had a test."),
    # articles
    ("I have a apple.", "article", "a", "an", "I have an apple."),
    ("She is an university student.", "article", "an", "a", "She is a university student."),
    ("I visited an European country.", "article", "an", "a", "I visited a European country."),
    ("We waited a hour.", "article", "a", "an", "We waited an hour."),
    ("I am student.", "article", "student", "a student", "I am a student."),
    ("My father is farmer.", "article", "farmer", "a farmer", "My father is a farmer."),
    ("I want to be doctor.", "article", "doctor", "a doctor", "I want to be a doctor."),
    ("She is honest teacher.", "article", "honest teacher", "an honest teacher", "She is an honest teacher."),
    ("I live in the Kigali.", "article", "the Kigali", "Kigali", "I live in Kigali."),
    ("I speak the English.", "article", "the English", "English", "I speak English."),
    ("I have a homework.", "article", "a homework", "homework", "I have homework."),
    ("I have cow.", "article", "cow", "a cow", "I have a cow."),
    # plurals
    ("I have two cat.", "plural", "two cat", "two cats", "I have two cats."),
    ("There are many book in the library.", "plural", "many book", "many books",
     "There are many books in the library."),
    ("She has two child.", "plural", "two child", "two children", "She has two children."),
    ("I bought five mango.", "plural", "five mango", "five mangoes", "I bought five mangoes."),
    ("It costs 500 franc.", "plural", "500 franc", "500 francs", "It costs 500 francs."),
    ("The childs are playing.", "plural", "childs", "children", "The children are playing."),
    ("Two mans came to our house.", "plural", "mans", "men", "Two men came to our house."),
    ("My foots are tired.", "plural", "foots", "feet", "My feet are tired."),
    ("Every days I wash my clothes.", "plural", "Every days", "Every day", "Every day I wash my clothes."),
    ("One of my friend is sick.", "plural", "friend", "friends", "One of my friends is sick."),
    ("Give me some advices.", "plural", "advices", "advice", "Give me some advice."),
    ("I have many homeworks.", "plural", "many homeworks", "much homework", "I have much homework."),
    ("Many money is needed.", "plural", "Many money", "Much money", "Much money is needed."),
    # comparatives, age
    ("This food is more better.", "comparative", "more better", "better", "This food is better."),
    ("Kigali is more bigger than Huye.", "comparative", "more bigger", "bigger", "Kigali is bigger than Huye."),
    ("The city is more big than the village.", "comparative", "more big", "bigger",
     "The city is bigger than the village."),
    ("He is the most tall boy.", "comparative", "most tall", "tallest", "He is the tallest boy."),
    ("I have 15 years.", "expression", "have 15 years", "am 15 years old", "I am 15 years old."),
]

CORRECT = [
    "She goes to school every day.",
    "My mother works on a farm.",
    "They were at the market.",
    "I am a student.",
    "I have an apple.",
    "She is a university student.",
    "He is an honest man.",
    "It is a European country.",
    "I bought a uniform.",
    "It takes an hour to walk to school.",
    "I live in Kigali.",
    "The Kigali Convention Centre is big.",
    "Yesterday I went to the market.",
    "Tomorrow I will go to Huye.",
    "Tomorrow I go to Kigali.",
    "I have two cats.",
    "We have two sheep.",
    "The children are playing.",
    "I agree with you.",
    "This food is better.",
    "I am 15 years old.",
    "I didn't go to school.",
    "I have homework.",
    "I have a water bottle.",
    "There are two cows.",
    "There is some water.",
    "Every day I wash my clothes.",
    "One of my friends is sick.",
    "Does she go to school?",
    "Can you help me?",
    "My mother and my father work on the farm.",
    "My brother and I go to the same school.",
    "My school work is hard.",
    "The bus stop is near my house.",
    "I know what you did yesterday.",
    "I am happy because yesterday I went to the market.",
    "Yesterday she told me that she likes rice.",
    "If I were a bird, I would fly.",
    "I read a book yesterday.",
    "She hurt her leg yesterday.",
    "I have been sick since yesterday.",
    "My brother who lives in Kigali visited us yesterday.",
    "She is like her mother.",
    "I like it very much.",
    "Let it go.",
    "My family lives in Rubavu.",
    "My family live in Musanze.",
    "People are kind in my village.",
    "Last year I was in P5.",
    "My last exam was hard.",
    "At last we arrived.",
    "There were 30 students in my class.",
    "I was born in 2010.",
    "I have a two-hour walk to school.",
    "My two year old sister is cute.",
    "She works for an NGO.",
    "I want phone number.",
    "I like rice more than beans.",
    "The more you read, the better you write.",
    "We plant trees on umuganda day.",
    "i dont like rice",
    "I'm fine, thank you.",
    "He's a teacher.",
    "Mwaramutse mwarimu.",
]


@pytest.mark.parametrize("sentence,kind,wrong,suggestion,corrected", ERRORS)
def test_error_is_found_and_corrected(sentence, kind, wrong, suggestion, corrected):
    found = check_grammar(sentence)
    assert found, f"no error found in {sentence!r}"
    assert all(isinstance(c, Correction) for c in found)
    match = [c for c in found if c.kind == kind and c.wrong == wrong]
    assert match, f"{sentence!r}: {[(c.kind, c.wrong, c.suggestion) for c in found]}"
    c = match[0]
    assert c.suggestion == suggestion
    assert c.corrected == corrected
    assert sentence[c.start:c.end] == wrong
    assert c.explanation in lexicon().explanations


@pytest.mark.parametrize("sentence,kind,wrong,suggestion,corrected", ERRORS)
def test_corrected_sentence_is_clean(sentence, kind, wrong, suggestion, corrected):
    assert check_grammar(corrected) == []
    assert correct(sentence) == corrected


@pytest.mark.parametrize("sentence", CORRECT)
def test_no_false_alarm(sentence):
    found = check_grammar(sentence)
    assert found == [], [(c.kind, c.wrong, c.suggestion) for c in found]


def test_table_is_big_and_covers_every_kind():
    assert len(ERRORS) + len(CORRECT) >= 40
    assert {k for _, k, *_ in ERRORS} == set(gc.KINDS)


def test_several_errors_in_one_sentence():
    found = check_grammar("Yesterday she go to the market and buy two mango.")
    assert [(c.kind, c.wrong, c.suggestion) for c in found] == [
        ("tense", "go", "went"), ("tense", "buy", "bought"), ("plural", "two mango", "two mangoes"),
    ]
    assert {c.corrected for c in found} == {"Yesterday she went to the market and bought two mangoes."}


def test_tense_wins_over_agreement_for_the_same_verb():
    found = check_grammar("She go to school yesterday.")
    assert [(c.kind, c.suggestion) for c in found] == [("tense", "went")]


def test_sms_and_voice_style_input():
    assert correct("she dont like rice") == "she doesn't like rice"
    assert correct("yesterday i go to market") == "yesterday i went to market"
    assert correct("im agree") == "i agree"
    assert correct("I HAVE A APPLE") == "I HAVE AN APPLE"
    # curly quotes and extra spaces are normalised
    found = check_grammar("I\u2019m   agree")
    assert found[0].wrong == "I'm agree" and found[0].corrected == "I agree"


def test_empty_and_non_english_input():
    assert check_grammar("") == []
    assert check_grammar("   ") == []
    assert check_grammar("Ndabyemera kuko ari byiza.") == []
    assert check_grammar("?!") == []


def test_explanations_exist_in_both_languages():
    keys = {c.explanation for s, *_ in ERRORS for c in check_grammar(s)}
    expl = lexicon().explanations
    assert keys <= set(expl)
    for key, entry in expl.items():
        assert entry.get("en") and entry.get("rw"), key
        for text in (entry["en"], entry["rw"]):
            assert text.isascii(), key
            assert len(text) <= 130, key


def test_explain_fills_in_the_suggestion():
    c = check_grammar("I have two cat.")[0]
    assert "two cats" in explain(c, "en")
    assert "two cats" in explain(c, "rw")
    assert explain(c, "en") != explain(c, "rw")
    assert explain(c, "xx") == explain(c, "en")


def test_rules_are_data():
    lex = lexicon()
    assert lex.verbs["go"] == ("goes", "went", "gone")
    assert lex.third_of["study"] == "studies"
    assert lex.base_of_past["bought"] == "buy"
    assert lex.wrong_plurals["childs"] == "children"
    assert lex.plural_of["child"] == "children"
    assert "information" in lex.uncountable
    assert "hour" in lex.vowel_prefixes and "univers" in lex.consonant_prefixes
    assert "kigali" in lex.places
    assert len(lex.verbs) >= 150


def test_blank_spacy_pipeline_is_loaded_once():
    spacy = pytest.importorskip("spacy")
    nlp = gc._get_nlp()
    assert nlp is not None and gc._get_nlp() is nlp
    assert gc.tokenizer_backend() == "spacy"
    assert nlp.pipe_names == []  # spacy.blank("en"): tokenizer only, no pretrained model
    assert isinstance(nlp, spacy.language.Language)


def test_regex_fallback_when_spacy_is_missing(monkeypatch):
    monkeypatch.setattr(gc, "_NLP", None)
    monkeypatch.setattr(gc, "_NLP_FAILED", True)
    assert gc.tokenizer_backend() == "regex"
    assert correct("She don't like rice.") == "She doesn't like rice."
    assert correct("Yesterday I go to the market and buy two mango.") == \
        "Yesterday I went to the market and bought two mangoes."
    assert check_grammar("I'm fine, thank you.") == []


def test_word_forms_and_known_words():
    assert {"go", "goes", "went", "gone", "going"} <= gc.word_forms("go")
    assert {"market", "markets"} <= gc.word_forms("market")
    assert {"study", "studies", "studied"} <= gc.word_forms("study")
    assert gc.known_word_ratio("My mother is a teacher.") == 1.0
    assert gc.known_word_ratio("Mwaramutse neza mwarimu") == 0.0


def test_correction_to_dict():
    c = check_grammar("I have two cat.")[0]
    d = c.to_dict()
    assert d["kind"] == "plural" and d["suggestion"] == "two cats" and d["corrected"] == "I have two cats."

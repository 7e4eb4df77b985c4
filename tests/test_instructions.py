"""vtkit.ifeval_checks: every checker on hand-written passing and failing answers, think stripping,
strict vs loose, IFEval's tokenizers and options. vtkit.instructions: phrasings, the prompt generator
and its verified references, the trl reward."""
from __future__ import annotations

import json
import random

import pytest

from vtkit import ifeval_checks as ic
from vtkit import instructions as ins

# (id, kwargs, answers that pass, answers that fail): IFEval semantics, written out by hand
CASES = [
    ("punctuation:no_comma", {}, ["hello world"], ["hello, world"]),
    ("detectable_format:json_format", {}, ['```json\n{"a": 1}\n```', '{"answer": "x"}'], ["{a: 1}", "json please"]),
    ("detectable_format:number_bullet_lists", {"num_bullets": 2}, ["* one\n* two", "- one\n* two\ntext"],
     ["* one\n* two\n* three", "* one", "**bold** line\n* one"]),
    ("detectable_format:multiple_sections", {"section_spliter": "Section", "num_sections": 2},
     ["Section 1\nfoo\nSection 2\nbar", "Section 1 a Section 2 b Section 3 c"], ["Section 1\nfoo", "section 1 a section 2 b"]),
    ("detectable_format:title", {}, ["<<my title>>\ntext"], ["<<  >> text", "<my title>"]),
    ("keywords:existence", {"keywords": ["river", "music"]}, ["The River has music."], ["The river only."]),
    ("keywords:forbidden_words", {"forbidden_words": ["river"]}, ["rivers flow"], ["A River here"]),
    ("keywords:frequency", {"keyword": "robot", "frequency": 2, "relation": "at least"}, ["robot and Robot"],
     ["one robot"]),
    ("keywords:frequency", {"keyword": "robot", "frequency": 2, "relation": "less than"}, ["one robot", "none"],
     ["robot robot"]),
    ("keywords:letter_frequency", {"letter": "z", "let_frequency": 2, "let_relation": "at least"}, ["Zz top"], ["z"]),
    ("keywords:letter_frequency", {"letter": "z", "let_frequency": 2, "let_relation": "less than"}, ["z"], ["Zz"]),
    ("length_constraints:number_words", {"num_words": 5, "relation": "less than"}, ["one two three four"],
     ["one two three four five"]),
    ("length_constraints:number_words", {"num_words": 5, "relation": "at least"}, ["one, two; three-four five"],
     ["one two"]),
    ("length_constraints:number_sentences", {"num_sentences": 2, "relation": "at least"},
     ["Dr. Smith came. He left.", "Is it? Yes!"], ["Dr. Smith came home.", "Pi is 3.14 today."]),
    ("length_constraints:number_sentences", {"num_sentences": 2, "relation": "less than"},
     ["Mr. Lee paid 2.50 dollars at the U.S. store."], ["One. Two."]),
    ("length_constraints:number_paragraphs", {"num_paragraphs": 2}, ["a\n***\nb", "***\na\n***\nb"],
     ["a\n***\n\n***\nb", "a\n***\nb\n***\nc", "a b"]),
    ("length_constraints:nth_paragraph_first_word", {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "then"},
     ['Hello there.\n\n"Then, we go."'], ["Hello.\n\nNow we go.", "Then we go.\n\nHello.", "Hi.\n\nThen.\n\nMore."]),
    ("change_case:english_lowercase", {}, ["all lower 123", "the weather is nice today and we walk in the park."],
     ["Not lower", "123", "le chat dort sur la table et le chien mange dans la cuisine."]),
    ("change_case:english_capital", {}, ["THE WEATHER IS NICE TODAY AND WE WALK IN THE PARK."],
     ["ALL CAPs", "EL PERRO COME EN LA COCINA Y EL GATO DUERME EN LA MESA."]),
    ("change_case:capital_word_frequency", {"capital_frequency": 2, "capital_relation": "at least"},
     ["THIS is BIG"], ["THIS is big"]),
    ("change_case:capital_word_frequency", {"capital_frequency": 2, "capital_relation": "less than"},
     ["THIS is big", "the STATE-OF-THE-ART tool"], ["THIS is BIG"]),   # NLTK tokens: the hyphenated word is one
    ("language:response_language", {"language": "fr"}, ["Le chat dort sur la table et le chien mange dans la cuisine."],
     ["The cat sleeps on the table and the dog eats in the kitchen."]),
    ("startend:end_checker", {"end_phrase": "Any other questions?"}, ['Text. any other questions?"'],
     ["Any other questions? Bye."]),
    ("startend:quotation", {}, ['"quoted"'], ['"unclosed', '"']),
    ("combination:repeat_prompt", {"prompt_to_repeat": "Describe a park."}, ["describe a park. It is green."],
     ["Sure! Describe a park."]),
    ("combination:two_responses", {}, ["one\n******\ntwo", "******\none\n******\ntwo"],
     ["same\n******\nsame", "a\n******\n\n******\nb", "only one"]),
    ("detectable_content:postscript", {"postscript_marker": "P.S."}, ["Hi.\n\nP.S. see you"], ["Hi. PS see you"]),
    ("detectable_content:postscript", {"postscript_marker": "P.P.S"}, ["Hi.\np.p.s later"], ["Hi.\nP.S. later"]),
    ("detectable_content:number_placeholders", {"num_placeholders": 2}, ["[name] at [place]"], ["[name] only"]),
    ("detectable_format:number_highlighted_sections", {"num_highlights": 2}, ["*one* and **two**"],
     ["*one* and ** **", "*one* only"]),
    ("detectable_format:constrained_response", {}, ["My answer is no."], ["my answer is no.", "Yes."]),
    ("vtkit:ordered_items", {"items": ["apple", "plum"]}, ["An apple then a Plum."],
     ["plum then apple", "apple only", "pineapple then plum"]),
    ("vtkit:start_phrase", {"start_phrase": "In short"}, ["in short, yes."], ["Yes. In short"]),
    ("vtkit:numbered_list", {"num_items": 3}, ["1. a\n2. b\n3. c", "intro\n1) a\n2) b\n3) c"],
     ["1. a\n2. b", "1. a\n3. b\n4. c"]),
]


@pytest.mark.parametrize("iid,kw,good,bad", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_checker_pass_and_fail(iid, kw, good, bad):
    for g in good:
        assert ic.check(g, iid, **kw), (iid, g)
        assert ic.check(f"<think>plan, plan</think>\n{g}", iid, **kw), (iid, g)
        assert ins.REGISTRY[iid].check(g, **kw), (iid, g)      # the generator's registry grades the same
    for b in bad:
        assert not ic.check(b, iid, **kw), (iid, b)
        assert not ins.REGISTRY[iid].check(b, **kw), (iid, b)


# google-research instruction_following_eval/instructions_registry.py: INSTRUCTION_DICT's keys
IFEVAL_25 = """keywords:existence keywords:frequency keywords:forbidden_words keywords:letter_frequency
language:response_language length_constraints:number_sentences length_constraints:number_paragraphs
length_constraints:number_words length_constraints:nth_paragraph_first_word detectable_content:number_placeholders
detectable_content:postscript detectable_format:number_bullet_lists detectable_format:constrained_response
detectable_format:number_highlighted_sections detectable_format:multiple_sections detectable_format:json_format
detectable_format:title combination:two_responses combination:repeat_prompt startend:end_checker
change_case:capital_word_frequency change_case:english_capital change_case:english_lowercase punctuation:no_comma
startend:quotation""".split()


def test_checkers_are_ifevals_25_ids_plus_vtkits_3():
    assert len(IFEVAL_25) == 25 and ic.IFEVAL_IDS == set(IFEVAL_25)
    assert ic.VTKIT_IDS == {"vtkit:ordered_items", "vtkit:start_phrase", "vtkit:numbered_list"}
    assert set(ic.CHECKERS) == ic.IFEVAL_IDS | ic.VTKIT_IDS == {c[0] for c in CASES}
    # the generator covers every checker, and the checkers' names stay importable from vtkit.instructions
    assert set(ins.REGISTRY) == set(ic.CHECKERS)
    assert all(ins.REGISTRY[i].checker is ic.CHECKERS[i] for i in ic.CHECKERS)
    assert ins.check_strict is ic.check_strict and ins.check_loose is ic.check_loose
    assert ins.answer_text is ic.answer_text and ins.Options is ic.Options
    with pytest.raises(KeyError, match="unknown instruction id 'count:sentences'"):
        ic.checker("count:sentences")


def test_registry_covers_every_id_with_cases_and_phrasings():
    assert {c[0] for c in CASES} == set(ins.REGISTRY)
    rng = random.Random(0)
    for iid, spec in ins.REGISTRY.items():
        kw = spec.sample_kwargs(rng)
        text = spec.describe(**kw)
        assert isinstance(text, str) and len(text) > 20
        for k, v in kw.items():  # the sampled parameters are stated in the phrasing
            if isinstance(v, (int, str)) and v != "":
                assert str(ins.LANGUAGES.get(v, v) if k == "language" else v) in text, (iid, v, text)


def test_think_stripping():
    no_comma = ["punctuation:no_comma"]
    assert ic.answer_text("<think>a, b</think>\n  answer  ") == "answer  "   # the separator goes, nothing else
    assert ic.answer_text("\n\nplain, as given ") == "\n\nplain, as given "   # IFEval strict strips nothing
    assert ic.answer_text("<think>a</think>x</think>y") == "y"  # the last </think>
    assert ic.answer_text("<think>never closed, so") == ""
    assert ic.answer_text("plain answer") == "plain answer"
    assert ic.check_strict("<think>a, b, c</think>no commas", no_comma, [{}]) == [True]
    assert ic.check_strict("<think>x</think>a, b", no_comma, [{}]) == [False]
    # unfinished thinking: empty answer fails everything, even constraints an empty text would meet
    assert ic.check_strict("<think>no commas here", no_comma, [{}]) == [False]
    assert ic.check_loose("<think>no commas here", no_comma, [{}]) == [False]
    kw = {"forbidden_words": ["river"]}
    assert ins.REGISTRY["keywords:forbidden_words"].check("<think>river</think>fine", **kw)
    assert not ins.REGISTRY["keywords:forbidden_words"].check("<think>fine</think>river", **kw)


def test_loose_differs_from_strict():
    r = "Sure, here it is:\nno commas in this part"
    assert ic.check_strict(r, ["punctuation:no_comma"], [{}]) == [False]
    assert ic.check_loose(r, ["punctuation:no_comma"], [{}]) == [True]  # first line removed
    q = '*"quoted answer"*'
    assert ic.check_strict(q, ["startend:quotation"], [{}]) == [False]
    assert ic.check_loose(q, ["startend:quotation"], [{}]) == [True]  # asterisks removed
    tail = "The body text ends here.\nAny other questions?\nHope this helps!"
    kw = [{"end_phrase": "Any other questions?"}]
    assert ic.check_strict(tail, ["startend:end_checker"], kw) == [False]
    assert ic.check_loose(tail, ["startend:end_checker"], kw) == [True]  # last line removed
    # loose never rescues what no variant satisfies
    assert ic.check_loose("a, b\nc, d\ne, f", ["punctuation:no_comma"], [{}]) == [False]


def test_ifeval_style_kwargs_and_errors():
    ids = ["detectable_format:number_bullet_lists", "punctuation:no_comma"]
    kw = [{"num_bullets": 2, "keywords": None, "relation": None}, {"num_words": None}]  # IFEval rows carry Nones
    assert ic.check_strict("* a\n* b", ids, kw) == [True, True]
    assert ic.check_strict("* a\n* b", ids, json.dumps(kw)) == [True, True]
    with pytest.raises(KeyError, match="unknown instruction id 'count:sentences'"):
        ic.check_strict("x", ["count:sentences"], [{"N": 3}])
    with pytest.raises(ValueError, match="keyword arguments IFEval defines"):
        ic.check_strict("x", ["punctuation:no_comma"], [{"num_words": 3}])
    with pytest.raises(ValueError, match="one dict per id"):
        ic.check_strict("x", ids, [{}])
    with pytest.raises(ValueError, match="relation must be one of"):
        ic.check_strict("x y", ["length_constraints:number_words"], [{"num_words": 1, "relation": "more than"}])


def test_sentence_splitter():
    assert ic.split_sentences("Dr. Smith paid 3.50 at example.com today. Then he left! Why?") == \
        ["Dr. Smith paid 3.50 at example.com today.", "Then he left!", "Why?"]
    assert ic.count_sentences("The U.S. team won. It was close.") == 2
    assert ic.count_sentences("No terminal punctuation") == 1
    assert ic.count_words("It's a well-known fact, 42 times.") == 8


def test_sentences_and_words_are_nltk_punkt():
    # NLTK's documented example: "Mr." is a punkt abbreviation, so 4 sentences, not 5
    text = ("Hello Mr. Smith, how are you doing today? The weather is great, and Python is awesome. "
            "The sky is pinkish-blue. You shouldn't eat cardboard.")
    assert ic.sent_tokenize(text) == ["Hello Mr. Smith, how are you doing today?",
                                       "The weather is great, and Python is awesome.",
                                       "The sky is pinkish-blue.", "You shouldn't eat cardboard."]
    assert ic.count_sentences("Dr. Smith paid 3.50 at example.com today. Then he left! Why?") == 3
    # word_tokenize as in NLTK's tokenize doctest
    assert ic.word_tokenize("They'll save and invest more.") == ["They", "'ll", "save", "and", "invest", "more", "."]
    assert ic.word_tokenize("This is STATE-OF-THE-ART, OK?") == ["This", "is", "STATE-OF-THE-ART", ",", "OK", "?"]


def test_punkt_data_is_nltks_punkt_tab_english():
    """The parameters equal NLTK's punkt_tab/english files: sha256 of each file's sorted lines, taken
    from a copy of NLTK's punkt_tab (abbrev_types.txt, sent_starters.txt, collocations.tab; and
    ortho_context.tab, 236,303 characters) and compared on 2026-11-30 (see LOG_i14.md)."""
    import hashlib

    from punkt.data import english as e

    def h(lines):
        return hashlib.sha256("\n".join(sorted(lines)).encode()).hexdigest()
    assert h(e.ABBREV_TYPES) == "0ab7d6b126eed733d9bc5733d3a51ea575e90ece1b908e77c9d5b74e2a54213a"
    assert h(e.SENT_STARTERS) == "8a66e19f1bf6a03061dbcda945e46839d09612f8235dbcb1b994f59184ecc989"
    assert h(f"{a}\t{b}" for a, b in e.COLLOCATIONS) == \
        "73d7f183e9cf31ee6edf41df100a6f57c72404db66f599fe86b3fb2e6148f35f"
    assert h(f"{k}\t{v}" for k, v in e.ORTHO_CONTEXT.items()) == \
        "d762d271cb556bab69960781a49eb034588801983af80d39ac936362c812084f"
    assert len("\n".join(f"{k}\t{v}" for k, v in e.ORTHO_CONTEXT.items())) == 236303
    p = ic.punkt_tokenizer()._params   # and they are what the tokenizer uses
    assert p.abbrev_types == set(e.ABBREV_TYPES) and p.sent_starters == set(e.SENT_STARTERS)
    assert p.collocations == set(e.COLLOCATIONS) and dict(p.ortho_context) == dict(e.ORTHO_CONTEXT)


def test_numbered_list_and_leading_whitespace_as_ifeval():
    # punkt knows "p.m." and "..." inside a sentence; IFEval's regex splitter (split_sentences) does not
    for text, n_punkt, n_regex in [("Prof. Lee arrived at 5 p.m. and left. It was late.", 2, 3),
                                   ("Wait... what? Yes.", 2, 3), ("e.g. this one. And that.", 3, 2)]:
        assert (ic.count_sentences(text), len(ic.split_sentences(text))) == (n_punkt, n_regex), text
    kw = [{"num_sentences": 3, "relation": "less than"}]
    assert ic.check_strict("Wait... what? Yes.", ["length_constraints:number_sentences"], kw) == [True]
    # strict keeps leading blank lines: they make an empty first paragraph, which IFEval's strict fails
    nth = ["length_constraints:nth_paragraph_first_word"]
    kw = [{"num_paragraphs": 2, "nth_paragraph": 1, "first_word": "alpha"}]
    text = "\n\nAlpha one.\n\nBeta two."
    assert ic.check_strict(text, nth, kw) == [False]
    assert ic.check_strict(text.lstrip(), nth, kw) == [True]


def test_options_english_check_and_letter_policy():
    short = ["change_case:english_lowercase"]
    assert ic.detect_language("salut les amis") != "en"
    assert ic.check_strict("salut les amis", short, [{}]) == [False]                 # IFEval: langdetect
    assert ic.check_strict("salut les amis", short, [{}], options=ic.Options(english_check=False)) == [True]
    lf = ["keywords:letter_frequency"]
    kw = [{"letter": "#", "let_frequency": 3, "let_relation": "at least"}]
    sub = ic.graded_letter("#")
    assert sub.isalpha() and sub == ic.graded_letter("#")       # IFEval's random letter, seeded here
    assert ic.check_strict("###", lf, kw, options=ic.Options(letter="literal")) == [True]
    assert ic.check_strict("###", lf, kw) == [False]
    assert ic.check_strict(sub * 3, lf, kw) == [True]
    assert ic.graded_letter(" Z ") == "z"
    with pytest.raises(ValueError, match="letter"):
        ic.Options(letter="x")


def test_language_detection_is_deterministic():
    text = "Hola amigos, ¿cómo están hoy? Espero que bien."
    assert {ic.detect_language(text) for _ in range(5)} == {"es"}
    assert ic.check_strict(text, ["language:response_language"], [{"language": "es"}]) == [True]
    assert ic.check_strict("12345", ["language:response_language"], [{"language": "es"}]) == [True]  # undetectable


def test_one_record_schema_for_make_prompts_and_ifeval_loader():
    from vtkit import evalsets
    from vtkit.evaluation import instruction_fields
    row = ins.make_prompts(1, seed=0)[0]
    meta = json.loads(row["meta"])
    assert meta["instruction_id_list"] == row["instruction_id_list"] and meta["kwargs"] == json.loads(row["kwargs"])
    assert instruction_fields(row) == instruction_fields({"id": row["id"], "meta": row["meta"]})
    rec = evalsets.load("ifeval", path=ins_data_path())[0]
    ids, kws = instruction_fields(rec)
    assert ids == json.loads(rec["meta"])["instruction_id_list"] and len(kws) == len(ids)


def ins_data_path():
    from vtkit import ifeval
    return ifeval.default_input_data()


def test_make_prompts_deterministic_and_verified():
    a = ins.make_prompts(60, seed=3)
    b = ins.make_prompts(60, seed=3)
    c = ins.make_prompts(60, seed=4)
    assert a.to_list() == b.to_list() and a["prompt"] != c["prompt"]
    assert {"id", "domain", "prompt", "instruction_id_list", "kwargs", "solutions"} <= set(a.column_names)
    assert len(set(a["id"])) == 60 and set(a["domain"]) == {"instruct"}
    for r in a:
        ids, kws = r["instruction_id_list"], json.loads(r["kwargs"])
        assert 1 <= len(ids) <= 3 and len(ids) == len(kws) == r["difficulty"]
        groups = [ins.REGISTRY[i].group for i in ids if ins.REGISTRY[i].group]
        assert len(groups) == len(set(groups))  # no two layouts / cases / starts together
        for i, kw in zip(ids, kws):
            assert ins.REGISTRY[i].describe(**kw) in r["prompt"]
        sol = r["solutions"][0]
        assert sol.startswith("<think>") and all(ic.check_strict(sol, ids, kws))
        assert all(ic.check_loose(sol, ids, kws))


def test_make_prompts_reaches_every_constraint_and_respects_counts():
    ds = ins.make_prompts(300, seed=0, n_constraints=(2, 2))
    seen = {i for ids in ds["instruction_id_list"] for i in ids}
    assert seen == set(ins.REGISTRY) - ins.NOT_GENERATED
    assert set(ds["difficulty"]) == {2}
    with pytest.raises(ValueError, match="n_constraints"):
        ins.make_prompts(1, n_constraints=(3, 1))


def test_compose_reference_single_constraints_with_random_kwargs():
    rng = random.Random(1)
    base = "Describe a walk in the park."
    for iid, spec in ins.REGISTRY.items():
        for _ in range(10):
            kw = spec.sample_kwargs(rng)
            if iid == "combination:repeat_prompt":
                kw["prompt_to_repeat"] = base
            ref = ins.compose_reference(base, [iid], [kw], rng)
            assert ref is not None and spec.check(ref, **kw), (iid, kw, ref)


def test_instruction_reward():
    ids = [["punctuation:no_comma", "keywords:existence"]] * 3 + [[]]
    kws = [json.dumps([{}, {"keywords": ["river"]}])] * 3 + ["[]"]
    comps = ["<think>a, b</think>the river", "the river, again", "no river", "open-ended answer"]
    assert ins.instruction_reward(comps, ids, kws) == [1.0, 0.0, 1.0, None]
    frac = ins.make_instruction_reward("fraction")
    assert frac(comps, ids, kws) == [1.0, 0.5, 1.0, None]
    conv = [[{"role": "assistant", "content": c}] for c in comps]
    assert ins.instruction_reward(conv, ids, kws) == [1.0, 0.0, 1.0, None]
    assert ins.instruction_reward.__name__ == "instruction_reward"
    loose = ins.make_instruction_reward("all", loose=True)
    assert loose(["Sure, here:\nthe river"], ids[:1], kws[:1]) == [1.0]
    assert ins.instruction_reward(["Sure, here:\nthe river"], ids[:1], kws[:1]) == [0.0]
    with pytest.raises(ValueError, match="mode"):
        ins.make_instruction_reward("mean")

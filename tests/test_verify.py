"""vtkit.verify: answer/code/choice extraction, math-verify equivalence (also in threads), units; grading through vtkit.evaluation."""
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from vtkit import verify as V
from vtkit.evaluation import grade, grade_one


# ---- extract_answer --------------------------------------------------------------------------

@pytest.mark.parametrize("text,want", [
    ("<think>try \\boxed{1}</think> so \\boxed{2}", "2"),
    ("<think>x</think> first \\boxed{2} then \\boxed{3}", "3"),                 # the last one counts
    ("<think>x</think> \\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),                   # nested braces
    ("<think>x</think> \\boxed{\\{1, 2\\}}", "\\{1, 2\\}"),                       # escaped braces
    ("<think>x</think> \\fbox{7}", "7"),
    ("<think>x</think> \\boxed {  8 }", "8"),
    ("no think at all: \\boxed{5}", "5"),                                        # no </think>: whole text
    ("<think>only here \\boxed{5}</think> no answer", None),                    # only inside think
    ("<think>truncated \\boxed{5} and then", None),                             # <think> never closed
    ("<think>a</think> b </think> \\boxed{9}", "9"),                             # after the LAST </think>
    ("<think>a</think> \\boxed{9} </think> nothing", None),
    ("<think>a</think> \\boxed{3", None),                                       # unclosed box
    ("<think>a</think> \\boxed{}", None),
    ("", None), (None, None),
])
def test_extract_answer(text, want):
    assert V.extract_answer(text) == want


def test_extract_answer_rejects_non_text():
    with pytest.raises(TypeError, match="str"):
        V.extract_answer(42)


def test_extract_code():
    text = ("<think>```python\ndraft = 1\n```</think>\nHere:\n```python\ndef f():\n    return 1\n```\n"
            "and in C:\n```cpp\nint f();\n```\n")
    assert V.extract_code(text) == "def f():\n    return 1\n"
    assert V.extract_code("</think>```py\nx = 1\n```\n```\ny = 2\n```") == "y = 2\n"   # bare fence counts
    assert V.extract_code("<think>```python\nx = 1\n```</think> none") is None          # only in think
    assert V.extract_code("<think>```python\nx = 1\n```") is None                       # truncated
    assert V.extract_code("```python\nx = 1\n```") == "x = 1\n"                         # no think part
    assert V.extract_code("</think>```python\nx = 1\n```\n```python\ny = 2") == "x = 1\n"  # last is unclosed
    assert V.extract_code("</think>```python\n\n```") is None


@pytest.mark.parametrize("box,want", [("B", "B"), ("(C)", "C"), ("\\text{D}", "D"), ("\\textbf{(a)}", "A"),
                                      ("B) 13 m/s", "B"), ("$E$", "E"), ("Both", None), ("K", None), ("12", None)])
def test_extract_choice(box, want):
    assert V.extract_choice(f"<think>A? no</think> \\boxed{{{box}}}") == want


def test_extract_choice_follows_the_think_rule():
    assert V.extract_choice("<think>\\boxed{A}</think> I pick nothing") is None


def test_completion_text_accepts_chat_messages():
    msgs = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "</think>\\boxed{4}"}]
    assert V.completion_text(msgs) == "</think>\\boxed{4}"
    assert V.completion_text([{"role": "assistant", "content": [{"type": "text", "text": "hi"}]}]) == "hi"
    assert V.completion_text(None) == ""
    with pytest.raises(TypeError):
        V.completion_text(3.5)


# ---- is_equivalent ---------------------------------------------------------------------------

EQUIV = [("3", "3.0", True), ("1/2", "\\frac{1}{2}", True), ("0.5", "\\frac{1}{2}", True),
         ("x^2+1", "1+x^2", True), ("2\\sqrt{2}", "\\sqrt{8}", True), ("1000", "1,000", True),
         ("12", "13", False), ("-7", "7", False), ("\\frac{1}{3}", "0.3", False),
         ("Paris", "paris", True), ("Paris", "Sirap", False),                  # text gold: text comparison
         ("17", "\\boxed{17}", True), ("17", "$17$", True)]


@pytest.mark.parametrize("gold,pred,want", EQUIV)
def test_is_equivalent(gold, pred, want):
    assert V.is_equivalent(gold, pred) is want


@pytest.mark.parametrize("gold,pred", [(None, "3"), ("3", None), ("", "3"), ("3", "   "), ("}{", "3"),
                                       ("3", "\\frac{"), ("3", "\\boxed{"), ("3", object()), ("3", "x" * 5000)])
def test_is_equivalent_never_raises_on_garbage(gold, pred):
    assert V.is_equivalent(gold, pred) is False


def test_is_equivalent_is_gold_first():
    # math-verify turns a relation into an interval only when the relation is the gold: with the
    # arguments swapped these two results would swap
    assert V.is_equivalent("x>1", "(1,\\infty)") is True
    assert V.is_equivalent("(1,\\infty)", "x>1") is False
    assert V.is_equivalent("3", "x=3") is True


def test_exact_number_path_gives_math_verifys_verdict():
    from math_verify import parse, verify
    pairs = [("12", "12"), ("12", "13"), ("-0", "0"), ("12345678901234567890", "12345678901234567891"),
             ("\\frac{1}{2}", "0.5"), ("\\frac{1}{2}", "2/4"), ("-\\frac{3}{4}", "-0.75"), ("\\frac{1}{3000000}", "\\frac{1}{3000001}"),
             ("\\frac{1}{3}", "0.333333"), ("\\frac{1}{3}", "0.33"), ("0.1234567", "0.1234568"), ("7", "7.0"), ("7", "7.5")]
    for g, p in pairs:
        want = verify(parse(f"\\boxed{{{g}}}"), parse(f"\\boxed{{{p}}}"))
        assert V.is_equivalent(g, p) is want, (g, p)


def test_is_equivalent_in_threads_matches_main_thread():
    pairs = [(g, p) for g, p, _ in EQUIV] * 4
    main = [V.is_equivalent(g, p) for g, p in pairs]
    seen = set()

    def check(gp):
        seen.add(threading.current_thread() is threading.main_thread())
        return V.is_equivalent(*gp)

    with ThreadPoolExecutor(4) as ex:
        threaded = list(ex.map(check, pairs))
    assert seen == {False}
    assert threaded == main == [w for _, _, w in EQUIV] * 4


def test_exploding_answers_never_reach_sympy_in_threads(monkeypatch):   # their speed: benchmarks/bench_guards.py
    import math_verify
    calls = []   # is_equivalent swallows grader errors, so record calls instead of raising
    monkeypatch.setattr(math_verify, "parse", lambda *a, **k: calls.append(a))
    monkeypatch.setattr(math_verify, "verify", lambda *a, **k: calls.append(a))
    bad = [("1", "9^{9^{9}}"), ("2", "10^{10000}"), ("1", "(10^{100})!"), ("3", "2**(2**(2**64))")]
    with ThreadPoolExecutor(2) as ex:
        got = list(ex.map(lambda gp: V.is_equivalent(*gp), bad))
    assert got == [False] * 4 and calls == []   # compared as strings only
    assert V.is_equivalent("10^{10000}", "10^{10000}")  # identical strings still match


# ---- units ------------------------------------------------------------------------------------

@pytest.mark.parametrize("gold,pred,want", [
    ("12 m/s", "12 m/s", True), ("12 m/s", "12.0\\,\\mathrm{m/s}", True), ("12 m/s", "12\\text{ m/s}", True),
    ("1200 J", "1.2\\times10^{3} J", True), ("1200 J", "1.2e3 J", True), ("0.5 kg", "\\frac{1}{2} kg", True),
    ("3 ohm", "3 \\Omega", True), ("4 m/s^2", "4 m/s^{2}", True), ("48 J", "48.00001 J", True),
    ("12 m/s", "12", False), ("12 m/s", "12 m", False), ("48 J", "48.01 J", False), ("3 mW", "3 MW", False),
    ("12 m/s", None, False), ("12 m/s", "fast", False),
])
def test_is_equivalent_units(gold, pred, want):
    assert V.is_equivalent_units(gold, pred) is want


def test_parse_quantity():
    assert V.parse_quantity("-2.5 \\mu A") == (-2.5, "uA")
    assert V.parse_quantity("1,250 N") == (1250.0, "N")
    assert V.parse_quantity("speed") is None


# ---- grading (vtkit.evaluation.grade / grade_one: the dispatch moved out of verify) ------------

def rec(domain, answer, tests="", **meta):
    return {"id": "t", "domain": domain, "answer": answer, "tests": tests, "meta": json.dumps(meta)}


def test_verify_no_longer_grades():
    assert not hasattr(V, "grade")    # one dispatcher: vtkit.evaluation.grade


def test_grade_dispatches_on_domain():
    assert grade_one(rec("math", "17"), "<think>4+13</think> \\boxed{17}")
    assert not grade_one(rec("math", "17"), "<think>\\boxed{17}</think> \\boxed{16}")
    assert not grade_one(rec("math", "17"), "<think>\\boxed{17}</think>")
    assert grade_one(rec("gym:basic_arithmetic", "0.5"), "</think>\\boxed{\\frac{1}{2}}")
    assert grade_one(rec("knowledge", "9 July 1934"), "<think>x</think> \\boxed{9 july 1934.}")
    assert not grade_one(rec("knowledge", "Caiford"), "<think>x</think> \\boxed{Caifordshire}")
    # knowledge: meta aliases, SQuAD normalisation, the first answer line when nothing is boxed
    kn = rec("knowledge", "Mars", aliases=["Mars", "the Red Planet"])
    assert grade_one(kn, "<think>x</think> \\boxed{red planet}") and grade_one(kn, "</think>\n MARS!\nbecause")
    assert not grade_one(kn, "<think>\\boxed{Mars}</think>\nVenus\nMars")
    assert not grade_one(kn, "<think>Mars</think>")
    mc = rec("stem", "B", choices=["6 J", "13 J", "24 J", "48 J"])
    assert grade_one(mc, "<think>x</think> \\boxed{(B)}") and not grade_one(mc, "<think>x</think> \\boxed{C}")
    assert not grade_one(mc, "<think>\\boxed{B}</think> none")
    num = rec("stem", "12 m/s", value=12, unit="m/s")
    assert grade_one(num, "<think>d/t</think> \\boxed{12 \\mathrm{m/s}}")
    assert not grade_one(num, "<think>d/t</think> \\boxed{12}")
    code = rec("code", "ref", tests="assert add(2, 3) == 5\n")
    assert grade_one(code, "<think>sum</think>\n```python\ndef add(a, b):\n    return a + b\n```")
    assert not grade_one(code, "<think>sum</think>\n```python\ndef add(a, b):\n    return a - b\n```")
    assert not grade_one(code, "<think>```python\ndef add(a, b):\n    return a + b\n```</think> done")
    prefixed = rec("code", "ref", tests="assert add(2, 3) == 5\n", code_prefix="OFFSET = 0\n")
    assert grade_one(prefixed, "</think>```python\ndef add(a, b):\n    return a + b + OFFSET\n```")
    assert grade_one(rec("math", "4"), [{"role": "assistant", "content": "<think>2+2</think>\\boxed{4}"}])


def test_grade_on_generated_tasks_accepts_every_reference_solution():
    from vtkit import tasks
    for domain in ("math", "stem", "knowledge", "code"):
        ds = [dict(r) for r in tasks.make(domain, 6, seed=0)]
        recs, texts = [], []
        for r in ds:
            assert r["solutions"], r["id"]
            for s in r["solutions"][:1] if domain == "code" else r["solutions"]:  # code: one run each
                recs.append(r), texts.append(s)
        assert all(g["correct"] for g in grade(recs, texts)), domain
        truncated = [r["solutions"][0].split("</think>")[0] for r in ds]  # cut before the think part closes
        assert not any(g["correct"] for g in grade(ds, truncated)), domain


def test_grade_errors_name_the_missing_field():
    with pytest.raises(ValueError, match="'domain'"):
        grade_one({"answer": "1"}, "\\boxed{1}")
    with pytest.raises(ValueError, match="meta is not valid JSON"):
        grade_one({"domain": "stem", "answer": "A", "meta": "{oops"}, "\\boxed{A}")


def test_grade_names_a_missing_answer():
    with pytest.raises(ValueError, match="'answer'"):
        grade_one({"domain": "math"}, "\\boxed{1}")


def test_grade_knowledge_accepts_a_dict_meta():
    r = {"id": "k", "domain": "knowledge", "answer": "Mars", "meta": {"aliases": ["Mars", "Red Planet"]}}
    assert grade_one(r, "</think>\\boxed{red planet}")
    with pytest.raises(ValueError, match="meta is not valid JSON"):
        grade_one({"domain": "knowledge", "answer": "Mars", "meta": "{oops"}, "\\boxed{Mars}")

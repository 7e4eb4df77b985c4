"""LLM judge: reply parsing, verdict combination, agreement statistics, and the plumbing on a tiny model."""
import math

import pytest

from vtkit import judge as J


@pytest.mark.parametrize("text,want", [
    ("YES", True), ("no", False), ("Yes, they are equal.", True), ("NO. 0.5 != 0.25", False),
    ("<think>maybe yes, maybe no</think>\nNO", False), ("The answer is \\boxed{YES}", True),
    ("They look equivalent so my verdict is yes", True), ("", None), ("equivalent", None),
    ("<think>YES</think>", None), ("nobody knows", None), (None, None),
])
def test_parse_yes_no(text, want):
    assert J.parse_yes_no(text) is want


def test_combine_modes():
    mv = [True, True, False, False]
    jd = [True, False, True, False]
    assert J.combine(mv, jd, "or") == [True, True, True, False]
    assert J.combine(mv, jd, "and") == [True, False, False, False]
    assert J.combine(mv, jd, "judge") == jd
    assert J.combine(mv, jd, "math_verify") == mv
    with pytest.raises(ValueError, match="one of"):
        J.combine(mv, jd, "xor")
    with pytest.raises(ValueError, match="verdicts"):
        J.combine(mv, jd[:3])


def test_agreement_counts_and_kappa():
    mv = [1, 1, 0, 0, 1, 0, 1, 0]
    jd = [1, 0, 0, 1, 1, 0, 1, 0]
    a = J.agreement(mv, jd)
    assert (a["both_true"], a["both_false"], a["mv_only"], a["judge_only"]) == (3, 3, 1, 1)
    # p_o = 6/8; both graders say yes half the time, so p_e = 1/2 and kappa = (.75-.5)/.5
    assert a["agreement"] == pytest.approx(0.75) and a["kappa"] == pytest.approx(0.5)
    # unbalanced: mv says yes 3/4, judge 1/4, they agree on 2/4: p_e = 3/8, kappa = (1/2-3/8)/(5/8)
    b = J.agreement([1, 1, 1, 0], [1, 0, 0, 0])
    assert b["kappa"] == pytest.approx(0.2) and b["mv_only"] == 2
    assert J.agreement([1, 0], [0, 1])["kappa"] == pytest.approx(-1.0)
    assert math.isnan(J.agreement([1, 1], [1, 1])["kappa"])       # both constant: undefined
    assert J.agreement([1, 1], [1, 1])["agreement"] == 1.0
    assert J.agreement([], [])["n"] == 0


def test_judge_maps_replies_back_to_items_and_skips_missing_predictions(monkeypatch):
    asked = []

    def scripted(model, tok, prompts, **kw):
        assert kw["temperature"] == 0.0 and kw["n"] == 1           # greedy
        asked.extend(prompts)
        return [{"text": "YES" if "Student answer: 0.5" in p else "no idea... NO"}
                for p in prompts]
    monkeypatch.setattr(J._gen, "generate", scripted)
    j = J.LLMJudge(object(), tokenizer=object())
    items = [("q1", "1/2", "0.5"), ("q2", "3", None), ("q3", "3", "4"), ("q4", "1/2", "0.5"),
             ("q5", "2", "  ")]
    detail = j.judge_many_detail(items)
    assert [d["verdict"] for d in detail] == [True, False, False, True, False]
    assert [d["parsed"] for d in detail] == [True, None, False, True, None]
    assert len(asked) == 3 and "Problem: q3" in asked[1]              # None/blank never asked
    assert j.judge("q", "1/2", "0.5") is True


def test_llm_judge_on_a_tiny_model_is_deterministic():
    j = J.LLMJudge("tiny-100k", max_new_tokens=8)
    items = [("What is 1+1?", "2", "2"), ("What is 1/2?", "1/2", "0.5"), ("x", "3", None)]
    a = j.judge_many_detail(items)
    b = j.judge_many_detail(items)
    assert a == b and len(a) == 3
    assert all(d["verdict"] == bool(J.parse_yes_no(d["text"])) for d in a)
    assert a[2] == {"verdict": False, "parsed": None, "text": ""}


def test_bad_template_and_missing_tokenizer():
    with pytest.raises(ValueError, match=r"\{pred\}"):
        J.LLMJudge(object(), tokenizer=object(), prompt_template="{question} {gold}")
    with pytest.raises(ValueError, match="tokenizer"):
        J.LLMJudge(object())

"""Protocol presets, overrides, and evaluate(): grading per domain and the metrics it records."""
import dataclasses
import json
from pathlib import Path

import pytest

from vtkit import evalsets, protocols as P

FIX = Path(__file__).parent / "fixtures" / "evalsets"


def test_presets_match_the_reports():
    m = P.get("vibethinker-math")
    assert (m.temperature, m.top_p, m.top_k, m.n, m.max_new_tokens) == (1.0, 0.95, -1, 64, 40960)
    assert m.prompt_suffix == ("Let's think step by step and output the final answer within "
                               "\\boxed{}.")
    c = P.get("vibethinker-code")
    assert (c.temperature, c.top_p, c.n, c.domain) == (0.6, 0.95, 8, "code")
    assert P.get("imo-answerbench").n == 16 and P.get("gpqa").n == 16
    assert P.get("knowledge").n == 16 and P.get("ifeval").domain == "ifeval"
    assert m.report_ks() == [1, 4, 16, 64]


def test_get_overrides_tiny_and_errors():
    t = P.get("vibethinker-math", tiny=True, n=8)
    assert (t.n, t.max_new_tokens, t.temperature) == (8, 64, 1.0)   # tiny, then the override
    assert t.report_ks() == [1, 2, 4, 8]
    with pytest.raises(ValueError, match="valid names: vibethinker-math"):
        P.get("vibethinker-mth")
    with pytest.raises(TypeError, match=r"unknown protocol field\(s\) \['temprature'\]"):
        P.get("gpqa", temprature=0.5)
    with pytest.raises(ValueError, match="judge_combine"):
        P.get("gpqa", judge_combine="xor")
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.n = 2
    assert P.get(t, n=2).n == 2 and P.get("gpqa", ks=[1, 2]).ks == (1, 2)


def test_suffix_is_appended_once():
    assert P._with_suffix("Q", "S.") == "Q\nS." and P._with_suffix("Q\nS.", "S.") == "Q\nS."
    rec = evalsets.load("aime25", path=FIX / "aime25")[0]
    assert P._with_suffix(rec["prompt"], P.get("vibethinker-math").prompt_suffix) == rec["prompt"]


def scripted(replies):
    """A generate() stand-in: replies[prompt_index][sample_index] = (text, n_tokens, truncated)."""
    def generate(model, tok, prompts, *, n, **kw):
        return [{"prompt_index": i, "sample_index": s, "prompt": p, "text": replies[i][s][0],
                 "n_prompt_tokens": 3, "n_tokens": replies[i][s][1],
                 "truncated": replies[i][s][2]} for i, p in enumerate(prompts) for s in range(n)]
    return generate


def box(x, think="hmm \\boxed{999}"):
    return f"<think>{think}</think>\nAnswer: \\boxed{{{x}}}"


def run(monkeypatch, replies, dataset, proto, **kw):
    from vtkit import generate
    monkeypatch.setattr(generate, "generate", scripted(replies))
    return P.evaluate((None, None), dataset, proto, **kw)


def test_math_metrics_from_known_grades(monkeypatch):
    ds = evalsets.load("math500", path=FIX / "math500")       # golds 2\sqrt{2} and \frac{1}{2}
    replies = [[(box("2\\sqrt{2}"), 10, False), (box("3"), 20, False),
                (box("\\sqrt{8}"), 30, False), ("<think>\\boxed{2\\sqrt{2}}</think> no box", 40, True)],
               [(box("1"), 10, False), (box("1"), 10, False), (box("2"), 10, True),
                (box("0.5"), 10, False)]]
    m, samples = run(monkeypatch, replies, ds, P.get("vibethinker-math", n=4, ks=(1, 2)))
    assert [s["correct"] for s in samples] == [True, False, True, False,
                                               False, False, False, True]
    assert m["mean@4"] == pytest.approx((2 / 4 + 1 / 4) / 2)
    assert m["pass@1"] == pytest.approx(m["mean@4"])
    assert m["pass@2"] == pytest.approx(((1 - 1 / 6) + (1 - 3 / 6)) / 2)   # 1 - C(n-c,2)/C(4,2)
    assert m["pass@4"] == 1.0
    assert m["cons@4"] == pytest.approx(0.5)           # item 1: 2\sqrt{2}=\sqrt{8} wins; item 2: "1"
    assert m["cons@1"] == pytest.approx(0.5)           # first samples: right, wrong
    assert m["truncation_rate"] == pytest.approx(2 / 8)
    assert m["mean_tokens"] == pytest.approx((10 + 20 + 30 + 40 + 40) / 8)
    assert m["mean@4_lo"] <= m["mean@4"] <= m["mean@4_hi"]
    assert samples[3]["pred"] is None                   # a box only inside <think> does not count
    assert all(isinstance(v, (int, float)) for v in m.values())    # flat scalars


class ScriptedJudge:
    def __init__(self):
        self.calls = []

    def judge_many(self, items):
        self.calls.extend(items)
        return [p in ("3", "1") for _, _, p in items]   # a judge that wrongly accepts 3 and 1


def test_math_with_a_judge_records_both_graders(monkeypatch):
    ds = evalsets.load("math500", path=FIX / "math500")
    replies = [[(box("2\\sqrt{2}"), 5, False), (box("3"), 5, False)],
               [(box("1"), 5, False), (box("1/2"), 5, False)]]
    j = ScriptedJudge()
    m, samples = run(monkeypatch, replies, ds, P.get("vibethinker-math", n=2), judge=j)
    assert len(j.calls) == 4 and j.calls[0][0] == "Simplify $\\sqrt{8}$."   # the question text
    assert m["mean@2_math_verify"] == 0.5 and m["mean@2_judge"] == 0.5
    assert m["mean@2"] == 1.0                            # "or"
    assert (m["judge_both_true"], m["judge_mv_only"], m["judge_judge_only"]) == (0, 2, 2)
    m_and, _ = run(monkeypatch, replies, ds, P.get("vibethinker-math", n=2, judge_combine="and"),
                   judge=ScriptedJudge())
    assert m_and["mean@2"] == 0.0
    assert [s["math_verify"] for s in samples] == [True, False, False, True]


def test_gpqa_letters(monkeypatch):
    ds = evalsets.load("gpqa_diamond", path=FIX / "gpqa_diamond.csv", seed=0)
    gold = ds["answer"]
    wrong = ["B" if g != "B" else "C" for g in gold]
    replies = [[(box(g), 5, False), (box(w), 5, False)] for g, w in zip(gold, wrong)]
    m, samples = run(monkeypatch, replies, ds, P.get("gpqa", n=2))
    assert m["mean@2"] == 0.5 and m["pass@2"] == 1.0
    assert [s["pred"] for s in samples[:2]] == [gold[0], wrong[0]]


def test_code_runs_in_the_sandbox_with_workers(monkeypatch):
    ds = evalsets.load("livecodebench", path=FIX / "livecodebench", version_tag="v6",
                       end_date="2025-05-01")               # a stdin and a functional problem
    good_stdin = "```python\na, b = map(int, input().split())\nprint(a + b)\n```"
    good_func = ("```python\nclass Solution:\n    def sumPlus(self, nums: List[int], k: int) -> int:"
                 "\n        return sum(nums) + k\n```")
    replies = [[("<think>x</think>\n" + good_stdin, 9, False), ("<think>x</think>\nprint(3)", 9, False)],
               [("<think>x</think>\n" + good_func, 9, False),
                ("<think>x</think>\n" + good_func.replace("+ k", "- k"), 9, False)]]
    m, samples = run(monkeypatch, replies, ds, P.get("vibethinker-code", n=2), workers=2)
    assert [s["correct"] for s in samples] == [True, False, True, False]
    assert samples[1]["status"] == "no_code" and samples[2]["tests_total"] == 3
    assert m["mean@2"] == 0.5 and "cons@2" not in m


def test_knowledge_alias_match(monkeypatch):
    ds = evalsets.load("triviaqa", path=FIX / "triviaqa")   # Mars / Au
    replies = [[(box("the planet Mars"), 4, False), ("<think>x</think>\nMars.\nMore text", 4, False),
                (box("Venus"), 4, False)],
               [(box("AU"), 4, False), (box("Ag"), 4, False), (box("Ag"), 4, False)]]
    m, samples = run(monkeypatch, replies, ds, P.get("knowledge", n=3))
    assert [s["correct"] for s in samples] == [True, True, False, True, False, False]
    assert m["mean@3"] == pytest.approx((2 / 3 + 1 / 3) / 2)
    assert m["cons@3"] == pytest.approx(0.5)            # Mars wins item 1, Ag wins item 2


def test_ifeval_strict_loose_prompt_and_instruction_level(monkeypatch):
    ds = evalsets.load("ifeval", path=FIX / "ifeval.jsonl")   # the 3rd needs language detection
    end = "Is there anything else I can help with?"
    replies = [[("<think>Loud THOUGHTS</think>\nrain falls softly", 5, False),
                ("<think>x</think>\nRain Falls", 5, False)],
               [(f"<think>x</think>\n* apple\n* pear\n* fig\n{end}", 5, False),
                (f"* apple\n* pear\n* fig\n{end}\nBye.", 5, False)]]   # loose drops the last line
    m, samples = run(monkeypatch, replies, ds, P.get("ifeval", n=2))
    assert [s["strict"] for s in samples] == [[True], [False], [True, True], [True, False]]
    assert samples[3]["loose"] == [True, True]
    assert m["n_skipped_items"] == 1 and m["n_items"] == 2
    assert m["prompt_strict"] == pytest.approx(0.5) == pytest.approx(m["mean@2"])
    assert m["prompt_loose"] == pytest.approx((1 / 2 + 1) / 2)
    assert m["inst_strict"] == pytest.approx((1 / 2 + 3 / 4) / 2)
    assert m["inst_loose"] == pytest.approx((1 / 2 + 1) / 2)
    with pytest.raises(ValueError, match="IFBench"):
        run(monkeypatch, [], evalsets.load("ifbench", path=FIX / "ifbench.jsonl"), "ifeval")


def test_evaluate_errors(monkeypatch):
    with pytest.raises(ValueError, match="empty"):
        run(monkeypatch, [], [], "gpqa")
    mixed = [dict(evalsets.load("gsm8k", path=FIX / "gsm8k.jsonl")[0]),
             dict(evalsets.load("triviaqa", path=FIX / "triviaqa")[0])]
    with pytest.raises(ValueError, match="mixes"):
        run(monkeypatch, [[("", 1, False)]] * 2, mixed, P.get("gpqa", domain="auto", n=1))


def test_evaluate_end_to_end_on_a_tiny_model():
    from vtkit import tasks
    ds = tasks.make("math", 3, seed=0, difficulty=2)
    proto = P.get("vibethinker-math", tiny=True, n=2, max_new_tokens=12)
    m1, s1 = P.evaluate("tiny-100k", ds, proto)
    m2, s2 = P.evaluate("tiny-100k", ds, proto)
    assert m1 == m2 and [s["text"] for s in s1] == [s["text"] for s in s2]
    assert len(s1) == 6 and m1["n_items"] == 3
    assert {"mean@2", "pass@1", "pass@2", "cons@2", "truncation_rate", "mean_tokens"} <= set(m1)
    assert all(s["n_tokens"] <= 12 for s in s1)
    assert m1["mean_tokens"] == pytest.approx(sum(s["n_tokens"] for s in s1) / 6)
    assert m1["truncation_rate"] == pytest.approx(sum(s["truncated"] for s in s1) / 6)
    json.dumps(m1)

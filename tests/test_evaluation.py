"""vtkit.evaluation: presets, task sets, grading per domain, evaluate() and its EvalResult, paired gains."""
import dataclasses
import json
from pathlib import Path

import pytest

from vtkit import evalsets, ifeval, instructions, tasks
from vtkit import evaluation as ev

FIX = Path(__file__).parent / "fixtures" / "evalsets"


def test_presets_match_the_reports():
    m = ev.get("vibethinker-math")
    assert (m.temperature, m.top_p, m.top_k, m.n, m.max_new_tokens) == (1.0, 0.95, -1, 64, 40960)
    assert m.prompt_suffix == ("Let's think step by step and output the final answer within "
                               "\\boxed{}.")
    c = ev.get("vibethinker-code")
    assert (c.temperature, c.top_p, c.n, c.domain) == (0.6, 0.95, 8, "code")
    assert ev.get("imo-answerbench").n == 16 and ev.get("gpqa").n == 16
    assert ev.get("knowledge").n == 16 and ev.get("ifeval").domain == "ifeval"
    assert m.report_ks() == [1, 4, 16, 64]
    g = ev.get("greedy")
    assert g == ev.GREEDY and (g.n, g.temperature, g.domain, g.greedy) == (1, 0.0, "auto", True)
    assert not m.greedy


def test_get_overrides_tiny_and_errors():
    t = ev.get("vibethinker-math", tiny=True, n=8)
    assert (t.n, t.max_new_tokens, t.temperature) == (8, 64, 1.0)   # tiny, then the override
    assert t.report_ks() == [1, 2, 4, 8]
    with pytest.raises(ValueError, match="valid names: vibethinker-math"):
        ev.get("vibethinker-mth")
    with pytest.raises(TypeError, match=r"unknown protocol field\(s\) \['temprature'\]"):
        ev.get("gpqa", temprature=0.5)
    with pytest.raises(ValueError, match="judge_combine"):
        ev.get("gpqa", judge_combine="xor")
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.n = 2
    assert ev.get(t, n=2).n == 2 and ev.get("gpqa", ks=[1, 2]).ks == (1, 2)


def test_greedy_protocols_have_one_sample():
    with pytest.raises(ValueError, match="use n=1, got n=2"):
        ev.Protocol("g", "math", n=2, temperature=0)
    with pytest.raises(ValueError, match="greedy"):
        ev.get("vibethinker-math", temperature=0)             # n = 64 at temperature 0
    tiny = ev.get("greedy", tiny=True)                         # TINY does not turn greedy into n = 4
    assert (tiny.n, tiny.max_new_tokens, tiny.temperature) == (1, 64, 0.0)
    assert ev.get("vibethinker-math", n=1, temperature=0).greedy
    s0 = ev.sampled(8, 0, max_new_tokens=32)
    assert (s0.n, s0.temperature, s0.max_new_tokens, s0.domain) == (1, 0.0, 32, "auto")
    s = ev.sampled(4, 0.7, max_new_tokens=48, seed=3)
    assert (s.n, s.temperature, s.max_new_tokens, s.domain, s.prompt_suffix, s.seed) == (4, 0.7, 48, "auto", "", 3)
    assert not s.greedy


def test_suffix_is_appended_once():
    assert ev.with_suffix("Q", "S.") == "Q\nS." and ev.with_suffix("Q\nS.", "S.") == "Q\nS."
    assert ev.with_suffix("Q", "") == "Q"
    rec = evalsets.load("aime25", path=FIX / "aime25")[0]
    assert ev.with_suffix(rec["prompt"], ev.get("vibethinker-math").prompt_suffix) == rec["prompt"]


def test_knowledge_pred_boxed_else_first_answer_line():
    assert ev.knowledge_pred("<think>\\boxed{Venus}</think>\n\\boxed{Mars} maybe") == "Mars"
    assert ev.knowledge_pred("<think>\\boxed{Venus}</think>\n\n  Mars.\nMore text") == "Mars."
    assert ev.knowledge_pred("<think>only thinking</think>\n  \n") is None
    assert ev.knowledge_pred("Au") == "Au"


# ---- task sets ---------------------------------------------------------------------------------

def test_task_set_vtkit_domains():
    recs, proto = ev.task_set("math", n=5, seed=3, difficulty=2, options={"mod": 7})
    want = [dict(r) for r in tasks.make("math", 5, seed=3, split="test", difficulty=2, mod=7)]
    assert proto == "vibethinker-math" and recs == want
    assert {r["difficulty"] for r in recs} == {2} and all(isinstance(r, dict) for r in recs)
    assert ev.task_set("math", n=5, seed=4, difficulty=2, options={"mod": 7})[0] != recs   # the seed matters
    assert ev.task_set("math", n=5, seed=3, split="train", difficulty=2, options={"mod": 7})[0] != recs
    for name, p in [("code", "vibethinker-code"), ("stem", "gpqa"), ("knowledge", "knowledge")]:
        r, got = ev.task_set(name, n=3, seed=0)
        assert got == p and len(r) == 3 and {x["domain"] for x in r} == {name}
        assert ev.get(got).domain == name                 # the default protocol grades this domain


def test_task_set_reasoning_gym_offline():
    recs, proto = ev.task_set("gym:basic_arithmetic", n=4, seed=0)
    assert proto == "vibethinker-math" and len(recs) == 4
    assert {r["domain"] for r in recs} == {"gym:basic_arithmetic"}
    assert recs == ev.task_set("gym:basic_arithmetic", n=4, seed=0)[0]      # seeded
    r = recs[0]
    assert ev.grade_one(r, f"<think>x</think> \\boxed{{{r['answer']}}}")
    assert not ev.grade_one(r, f"<think>x</think> \\boxed{{{r['answer']}1}}")


def test_task_set_benchmarks_from_local_copies():
    recs, proto = ev.task_set("aime25", data_path=FIX / "aime25")
    assert proto == "vibethinker-math" and recs == [dict(r) for r in evalsets.load("aime25", path=FIX / "aime25")]
    assert len(recs) >= 2
    one, _ = ev.task_set("aime25", data_path=FIX / "aime25", max_items=1)
    assert one == recs[:1]
    assert ev.task_set("gpqa_diamond", data_path=FIX / "gpqa_diamond.csv")[1] == "gpqa"
    assert ev.task_set("triviaqa", data_path=FIX / "triviaqa")[1] == "knowledge"
    lcb, p = ev.task_set("livecodebench", data_path=FIX / "livecodebench",
                         options={"version_tag": "v6", "end_date": "2025-05-01"})
    assert p == "vibethinker-code" and {r["domain"] for r in lcb} == {"code"}
    assert ev.task_set("ifeval", data_path=FIX / "ifeval.jsonl")[1] == "ifeval"


def test_task_set_errors(tmp_path):
    with pytest.raises(ValueError, match=r"unknown task set 'mathh'.*math, code, stem, knowledge.*gym:.*aime25"):
        ev.task_set("mathh")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ev.task_set("aime25", data_path=tmp_path / "missing")


# ---- grade -------------------------------------------------------------------------------------

def rec(domain, answer, tests="", id="t", **meta):
    return {"id": id, "domain": domain, "answer": answer, "tests": tests, "meta": json.dumps(meta)}


ADD_TESTS = "assert add(2, 3) == 5\n"
ADD = "<think>sum</think>\n```python\ndef add(a, b):\n    return a + b\n```"


def test_grade_mixed_domains_in_one_call():
    instr = dict(instructions.make_prompts(1, seed=0)[0])
    ids = instr["instruction_id_list"]
    records = [rec("math", "17"), rec("math", "17"),
               rec("stem", "B", choices=["6 J", "13 J", "24 J", "48 J"]),
               rec("stem", "12 m/s", value=12, unit="m/s"),
               rec("knowledge", "Mars", aliases=["Mars", "the Red Planet"]),
               rec("knowledge", "Mars"),
               instr, instr,
               rec("code", "ref", tests=ADD_TESTS, id="c1"), rec("code", "ref", tests=ADD_TESTS, id="c1"),
               rec("code", "ref", tests=ADD_TESTS, id="c1"), rec("code", "ref", tests=ADD_TESTS, id="c2")]
    texts = ["<think>4+13</think> \\boxed{17}", "<think>\\boxed{17}</think> \\boxed{16}",
             "<think>x</think> \\boxed{(B)}",
             "<think>d/t</think> \\boxed{12 \\mathrm{m/s}}",
             "<think>x</think> \\boxed{red planet.}",
             "<think>\\boxed{Venus}</think>\nMars.\nIt is the fourth planet.",   # first-line fallback
             instr["solutions"][0], "<think>x</think>\nsomething else entirely",
             ADD, ADD,                                                   # the same program twice: one run
             ADD.replace("a + b", "a - b"), "<think>```python\ndef add(a, b):\n    return a + b\n```</think>"]
    g = ev.grade(records, texts, workers=2, timeout_s=10)
    assert [x["correct"] for x in g] == [True, False, True, True, True, True, True, False,
                                         True, True, False, False]
    assert (g[0]["pred"], g[1]["pred"], g[2]["pred"]) == ("17", "16", "B")
    assert g[4]["pred"] == "Mars" and g[5]["pred"] == "Mars"            # correct spellings vote for the gold
    assert g[6]["strict"] == [True] * len(ids) and len(g[6]["loose"]) == len(ids)
    assert g[7]["strict"][0] is False and g[7]["pred"] is None
    assert (g[8]["status"], g[8]["tests_passed"], g[8]["tests_total"]) == (g[9]["status"], 1, 1)
    assert g[10]["tests_passed"] == 0 and g[11]["status"] == "no_code"
    wrong_kn = ev.grade([rec("knowledge", "Mars")], ["<think>x</think> \\boxed{The Venus}"])[0]
    assert wrong_kn == {"pred": "venus", "correct": False}                # normal form of a wrong answer
    # chat messages are accepted as completions
    assert ev.grade_one(rec("math", "4"), [{"role": "assistant", "content": "<think>2+2</think>\\boxed{4}"}])


def test_grade_with_a_judge_combines_on_math_rows_only():
    class J:
        def __init__(self):
            self.calls = []

        def judge_many(self, items):
            self.calls.extend(items)
            return [p == "16" for _, _, p in items]        # accepts a wrong 16, rejects the right 17

    records = [rec("math", "17", question="What is 4+13?") | {"prompt": "P1"}, rec("math", "17") | {"prompt": "Q2"},
               rec("knowledge", "Mars") | {"prompt": "Q3"}]
    texts = ["</think>\\boxed{17}", "</think>\\boxed{16}", "</think>\\boxed{Mars}"]
    j = J()
    g = ev.grade(records, texts, judge=j, judge_combine="and")
    assert [q for q, _, _ in j.calls] == ["What is 4+13?", "Q2"]   # not the knowledge row
    assert [(x["math_verify"], x["judge"], x["correct"]) for x in g[:2]] == [(True, False, False), (False, True, False)]
    assert g[2]["correct"] and "judge" not in g[2]
    assert [x["correct"] for x in ev.grade(records, texts, judge=J(), judge_combine="or")] == [True, True, True]


def test_grade_errors():
    with pytest.raises(ValueError, match="'domain'"):
        ev.grade([{"answer": "1"}], ["\\boxed{1}"])
    with pytest.raises(ValueError, match="2 records but 1 texts"):
        ev.grade([rec("math", "1")] * 2, ["\\boxed{1}"])
    with pytest.raises(ValueError, match="instruction_id_list"):
        ev.grade([{"id": "i", "domain": "instruct", "answer": ""}], ["hi"])
    with pytest.raises(ValueError, match="2 instructions but 1 kwargs"):
        ev.grade([{"id": "i", "domain": "ifeval", "answer": "", "instruction_id_list": ["a", "b"],
                   "kwargs": "[{}]"}], ["hi"])
    assert ev.grade([], []) == []


def test_distinct_valid():
    assert ev.distinct_valid(["a  b", "a b", "c", "d"], [True, True, True, False]) == 2
    assert ev.distinct_valid([], []) == 0
    with pytest.raises(ValueError, match="align"):
        ev.distinct_valid(["a"], [True, False])


# ---- evaluate ----------------------------------------------------------------------------------

def scripted(replies, seen=None):
    """A generate() stand-in: replies[prompt_index][sample_index] = (text, n_tokens, truncated)."""
    def generate(model, tok, prompts, *, n, **kw):
        if seen is not None:
            seen.append({"prompts": list(prompts), "n": n, **kw})
        return [{"prompt_index": i, "sample_index": s, "prompt": p, "text": replies[i][s][0],
                 "n_prompt_tokens": 3, "n_tokens": replies[i][s][1],
                 "truncated": replies[i][s][2]} for i, p in enumerate(prompts) for s in range(n)]
    return generate


def box(x, think="hmm \\boxed{999}"):
    return f"<think>{think}</think>\nAnswer: \\boxed{{{x}}}"


def run(monkeypatch, replies, dataset, proto, seen=None, **kw):
    from vtkit import generate
    monkeypatch.setattr(generate, "generate", scripted(replies, seen))
    return ev.evaluate((None, None), dataset, proto, **kw)


MATH_REPLIES = [[(box("2\\sqrt{2}"), 10, False), (box("3"), 20, False),
                 (box("\\sqrt{8}"), 30, False), ("<think>\\boxed{2\\sqrt{2}}</think> no box", 40, True)],
                [(box("1"), 10, False), (box("1"), 10, False), (box("2"), 10, True),
                 (box("0.5"), 10, False)]]


def test_math_metrics_from_known_grades(monkeypatch):
    ds = evalsets.load("math500", path=FIX / "math500")       # golds 2\sqrt{2} and \frac{1}{2}
    seen = []
    res = run(monkeypatch, MATH_REPLIES, ds, ev.get("vibethinker-math", n=4, ks=(1, 2)), seen=seen)
    assert isinstance(res, ev.EvalResult)
    m, samples = res.metrics, res.samples
    assert seen[0]["n"] == 4 and seen[0]["temperature"] == 1.0 and seen[0]["top_p"] == 0.95
    assert all(p.endswith(ev.get("vibethinker-math").prompt_suffix) for p in seen[0]["prompts"])
    assert [s["correct"] for s in samples] == [True, False, True, False,
                                               False, False, False, True]
    assert res.headline == "mean@4" and res.acc == m["mean@4"] == res["mean@4"] and "mean@4" in res
    assert res.interval == (m["mean@4_lo"], m["mean@4_hi"])
    assert m["mean@4"] == pytest.approx((2 / 4 + 1 / 4) / 2)
    assert m["pass@1"] == pytest.approx(m["mean@4"])
    assert m["pass@2"] == pytest.approx(((1 - 1 / 6) + (1 - 3 / 6)) / 2)   # 1 - C(n-c,2)/C(4,2)
    assert m["pass@4"] == 1.0
    assert m["cons@4"] == pytest.approx(0.5)           # item 1: 2\sqrt{2}=\sqrt{8} wins; item 2: "1"
    assert m["cons@1"] == pytest.approx(0.5)           # first samples: right, wrong
    assert m["truncation_rate"] == pytest.approx(2 / 8)
    assert m["mean_tokens"] == pytest.approx((10 + 20 + 30 + 40 + 40) / 8)
    assert m["mean@4_lo"] <= m["mean@4"] <= m["mean@4_hi"]
    assert (m["n_items"], m["n_samples"]) == (2, 8)
    assert "greedy_acc" not in m
    assert samples[3]["pred"] is None                   # a box only inside <think> does not count
    assert all(isinstance(v, (int, float)) for v in m.values())    # flat scalars
    assert res.per_item["score"] == [0.5, 0.25] and res.ids == list(ds["id"])
    s = samples[5]
    assert (s["item"], s["id"], s["domain"], s["gold"], s["sample_index"]) == (1, ds[1]["id"], "math", ds[1]["answer"], 1)
    assert {"prompt", "text", "n_tokens", "truncated", "correct", "pred"} <= set(s)
    assert res.flat("math/", keys=["mean@4"]) == {"math/mean@4": m["mean@4"], "math/mean@4_lo": m["mean@4_lo"],
                                                  "math/mean@4_hi": m["mean@4_hi"]}
    assert res.flat("x/")["x/pass@2"] == m["pass@2"] and len(res.flat()) == len(m)
    assert res.describe().startswith(f"mean@4 {m['mean@4']:.3f} [") and "(n = 2)" in res.describe()


def test_select_recomputes_metrics_as_an_evaluation_of_the_subset(monkeypatch):
    ds = evalsets.load("math500", path=FIX / "math500")
    proto = ev.get("vibethinker-math", n=4, ks=(1, 2))
    full = run(monkeypatch, MATH_REPLIES, ds, proto)
    for idx in ([1], [0]):
        sub = full.select(idx)
        alone = run(monkeypatch, [MATH_REPLIES[i] for i in idx], [dict(ds[i]) for i in idx], proto)
        assert sub.metrics == pytest.approx(alone.metrics) and sub.metrics.keys() == alone.metrics.keys()
        assert sub.ids == alone.ids and sub.per_item == alone.per_item and sub.headline == alone.headline
        assert [s["item"] for s in sub.samples] == [0] * 4
    assert full.select([1])["mean@4"] == 0.25 and full.select([0, 1]).metrics == full.metrics


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
    res = run(monkeypatch, replies, ds, ev.get("vibethinker-math", n=2), judge=j)
    m, samples = res.metrics, res.samples
    assert len(j.calls) == 4 and j.calls[0][0] == "Simplify $\\sqrt{8}$."   # the question text
    assert m["mean@2_math_verify"] == 0.5 and m["mean@2_judge"] == 0.5
    assert m["mean@2"] == 1.0                            # "or"
    assert [s["math_verify"] for s in samples] == [True, False, False, True]
    assert [s["judge"] for s in samples] == [False, True, True, False]
    assert (m["judge_both_true"], m["judge_mv_only"], m["judge_judge_only"]) == (0, 2, 2)   # how much "or" moves
    m_and = run(monkeypatch, replies, ds, ev.get("vibethinker-math", n=2, judge_combine="and"),
                judge=ScriptedJudge()).metrics
    assert m_and["mean@2"] == 0.0 and m_and["mean@2_math_verify"] == 0.5
    m_j = run(monkeypatch, replies, ds, ev.get("vibethinker-math", n=2, judge_combine="judge"),
              judge=ScriptedJudge()).metrics
    assert m_j["mean@2"] == 0.5
    plain = run(monkeypatch, replies, ds, ev.get("vibethinker-math", n=2)).metrics
    assert "mean@2_judge" not in plain and plain["mean@2"] == 0.5


def test_gpqa_letters(monkeypatch):
    ds = evalsets.load("gpqa_diamond", path=FIX / "gpqa_diamond.csv", seed=0)
    gold = ds["answer"]
    wrong = ["B" if g != "B" else "C" for g in gold]
    replies = [[(box(g), 5, False), (box(w), 5, False)] for g, w in zip(gold, wrong)]
    res = run(monkeypatch, replies, ds, ev.get("gpqa", n=2))
    assert res["mean@2"] == 0.5 and res["pass@2"] == 1.0
    assert [s["pred"] for s in res.samples[:2]] == [gold[0], wrong[0]]


def test_code_runs_in_the_sandbox_with_workers(monkeypatch):
    ds = evalsets.load("livecodebench", path=FIX / "livecodebench", version_tag="v6",
                       end_date="2025-05-01")               # a stdin and a functional problem
    good_stdin = "```python\na, b = map(int, input().split())\nprint(a + b)\n```"
    good_func = ("```python\nclass Solution:\n    def sumPlus(self, nums: List[int], k: int) -> int:"
                 "\n        return sum(nums) + k\n```")
    replies = [[("<think>x</think>\n" + good_stdin, 9, False), ("<think>x</think>\nprint(3)", 9, False)],
               [("<think>x</think>\n" + good_func, 9, False),
                ("<think>x</think>\n" + good_func.replace("+ k", "- k"), 9, False)]]
    res = run(monkeypatch, replies, ds, ev.get("vibethinker-code", n=2), workers=2)
    m, samples = res.metrics, res.samples
    assert [s["correct"] for s in samples] == [True, False, True, False]
    assert samples[1]["status"] == "no_code" and samples[2]["tests_total"] == 3
    assert m["mean@2"] == 0.5 and "cons@2" not in m


def test_knowledge_alias_match(monkeypatch):
    ds = evalsets.load("triviaqa", path=FIX / "triviaqa")   # Mars / Au
    replies = [[(box("the planet Mars"), 4, False), ("<think>x</think>\nMars.\nMore text", 4, False),
                (box("Venus"), 4, False)],
               [(box("AU"), 4, False), (box("Ag"), 4, False), (box("Ag"), 4, False)]]
    res = run(monkeypatch, replies, ds, ev.get("knowledge", n=3))
    assert [s["correct"] for s in res.samples] == [True, True, False, True, False, False]
    assert res["mean@3"] == pytest.approx((2 / 3 + 1 / 3) / 2)
    assert res["cons@3"] == pytest.approx(0.5)            # Mars wins item 1, Ag wins item 2


def test_ifeval_strict_loose_prompt_and_instruction_level(monkeypatch):
    ds = evalsets.load("ifeval", path=FIX / "ifeval.jsonl")   # the 3rd: language:response_language (fr)
    end = "Is there anything else I can help with?"
    replies = [[("<think>Loud THOUGHTS</think>\nrain falls softly", 5, False),
                ("<think>x</think>\nRain Falls", 5, False)],
               [(f"<think>x</think>\n* apple\n* pear\n* fig\n{end}", 5, False),
                (f"* apple\n* pear\n* fig\n{end}\nBye.", 5, False)],   # loose drops the last line
               [("Le chat est un petit animal domestique qui aime dormir.", 5, False),
                ("A cat is a small animal that likes to sleep.", 5, False)]]
    res = run(monkeypatch, replies, ds, ev.get("ifeval", n=2))
    m, samples = res.metrics, res.samples
    assert [s["strict"] for s in samples] == [[True], [False], [True, True], [True, False], [True], [False]]
    assert [s["loose"] for s in samples] == [[True], [False], [True, True], [True, True], [True], [False]]
    assert m["n_skipped_items"] == 0 and m["n_items"] == 3
    assert res.headline == "prompt_level_strict_acc"
    assert m["prompt_level_strict_acc"] == pytest.approx(0.5) == pytest.approx(m["mean@2"])
    assert m["prompt_level_loose_acc"] == pytest.approx((1 / 2 + 1 + 1 / 2) / 3)
    # IFEval's instruction level: followed instructions over all instructions, every sample pooled
    assert m["inst_level_strict_acc"] == pytest.approx((1 + 0 + 2 + 1 + 1 + 0) / (1 + 1 + 2 + 2 + 1 + 1))
    assert m["inst_level_loose_acc"] == pytest.approx((1 + 0 + 2 + 2 + 1 + 0) / 8)
    for k in ifeval.METRICS:
        assert m[f"{k}_lo"] <= m[k] <= m[f"{k}_hi"]
    assert res.per_item["inst_level_strict"] == pytest.approx([1 / 2, 3 / 4, 1 / 2])
    assert not any(k.startswith("prompt_strict") or k.startswith("inst_strict") for k in m)
    with pytest.raises(ValueError, match="IFBench"):
        run(monkeypatch, [], evalsets.load("ifbench", path=FIX / "ifbench.jsonl"), "ifeval")


def test_instruct_records_from_make_prompts(monkeypatch):
    ds = instructions.make_prompts(3, seed=1)
    replies = [[(r["solutions"][0], 7, False), ("<think>x</think>\nno", 7, False)] for r in ds]
    res = run(monkeypatch, replies, ds, ev.sampled(2, 1.0))
    assert res.headline == "prompt_level_strict_acc" and res["n_skipped_items"] == 0
    assert res["prompt_level_strict_acc"] == pytest.approx(0.5)
    assert [s["correct"] for s in res.samples] == [True, False] * 3


def test_greedy_protocol_metric_names(monkeypatch):
    records = [dict(evalsets.load("gsm8k", path=FIX / "gsm8k.jsonl")[0]),
               dict(evalsets.load("triviaqa", path=FIX / "triviaqa")[0]),
               rec("stem", "B", id="s", choices=["a", "b"]) | {"prompt": "Pick."}]
    replies = [[(box(records[0]["answer"]), 3, False)], [(box("Venus"), 3, True)], [(box("B"), 3, False)]]
    seen = []
    res = run(monkeypatch, replies, records, ev.GREEDY, seen=seen)   # each record by its own domain
    assert seen[0]["n"] == 1 and seen[0]["temperature"] == 0.0
    assert seen[0]["prompts"] == [r["prompt"] for r in records]        # the greedy preset adds no suffix
    assert res.headline == "greedy_acc" and res.acc == pytest.approx(2 / 3)
    assert {"greedy_acc", "greedy_acc_lo", "greedy_acc_hi", "n_items", "n_samples", "truncation_rate",
            "mean_tokens"} == set(res.metrics)
    assert res.per_item["score"] == [1.0, 0.0, 1.0]
    assert [s["domain"] for s in res.samples] == ["math", "knowledge", "stem"]
    assert res["truncation_rate"] == pytest.approx(1 / 3)
    assert res.describe().startswith("greedy_acc 0.667 [")


def test_sampled_mixed_domains_grade_each_record_by_its_own_domain(monkeypatch):
    mixed = [dict(evalsets.load("gsm8k", path=FIX / "gsm8k.jsonl")[0]),
             dict(evalsets.load("triviaqa", path=FIX / "triviaqa")[0])]
    replies = [[(box(mixed[0]["answer"]), 3, False), (box("-1"), 3, False)],
               [(box("Mars"), 3, False), (box("Mars"), 3, False)]]
    res = run(monkeypatch, replies, mixed, ev.sampled(2, 1.0), distinct=True)
    assert [s["correct"] for s in res.samples] == [True, False, True, True]
    assert res["mean@2"] == pytest.approx(0.75) and not any(k.startswith("cons@") for k in res.metrics)
    assert res.per_item["distinct@2"] == [1, 1] and res["distinct@2"] == 1.0


def test_evaluate_errors(monkeypatch):
    with pytest.raises(ValueError, match="empty"):
        run(monkeypatch, [], [], "gpqa")
    with pytest.raises(ValueError, match="valid names"):
        run(monkeypatch, [], [rec("math", "1")], "no-such-protocol")


# ---- paired gains ------------------------------------------------------------------------------

def test_paired_gain_on_known_lists():
    before, after = [0.0, 0.5, 1.0, 0.0], [1.0, 0.5, 1.0, 1.0]
    g = ev.paired_gain(before, after)
    assert g["gain"] == pytest.approx(0.5) and g["gain_lo"] <= 0.5 <= g["gain_hi"]
    assert 0.0 <= g["gain_lo"] and g["gain_hi"] <= 1.0                # every item gained or stayed
    assert ev.paired_gain(after, before)["gain"] == pytest.approx(-0.5)
    same = ev.paired_gain([1.0, 0.0, 1.0], [1.0, 0.0, 1.0])
    assert same == {"gain": 0.0, "gain_lo": 0.0, "gain_hi": 0.0}
    with pytest.raises(ValueError, match="equal, non-empty"):
        ev.paired_gain([1.0, 0.0], [1.0])
    with pytest.raises(ValueError, match="equal, non-empty"):
        ev.paired_gain([], [])


def test_paired_gain_on_results_needs_the_same_items(monkeypatch):
    ds = evalsets.load("math500", path=FIX / "math500")
    proto = ev.get("vibethinker-math", n=4, ks=(1,))
    before = run(monkeypatch, MATH_REPLIES, ds, proto)
    better = [[(box("2\\sqrt{2}"), 1, False)] * 4, [(box("1/2"), 1, False)] * 2 + [(box("7"), 1, False)] * 2]
    after = run(monkeypatch, better, ds, proto)
    g = ev.paired_gain(before, after)
    assert g["gain"] == pytest.approx(after.acc - before.acc) == pytest.approx(((1 - .5) + (.5 - .25)) / 2)
    with pytest.raises(ValueError, match="different items"):
        ev.paired_gain(before.select([0]), after.select([1]))
    with pytest.raises(KeyError):
        ev.paired_gain(before, after, metric="distinct@4")


def test_evaluate_end_to_end_on_a_tiny_model():
    ds = tasks.make("math", 3, seed=0, difficulty=2)
    proto = ev.get("vibethinker-math", tiny=True, n=2, max_new_tokens=12)
    r1 = ev.evaluate("tiny-100k", ds, proto)
    r2 = ev.evaluate("tiny-100k", ds, proto)
    m1, s1 = r1.metrics, r1.samples
    assert m1 == r2.metrics and [s["text"] for s in s1] == [s["text"] for s in r2.samples]
    assert len(s1) == 6 and m1["n_items"] == 3 and r1.ids == list(ds["id"])
    assert {"mean@2", "pass@1", "pass@2", "cons@2", "truncation_rate", "mean_tokens"} <= set(m1)
    assert all(s["n_tokens"] <= 12 for s in s1)
    assert m1["mean_tokens"] == pytest.approx(sum(s["n_tokens"] for s in s1) / 6)
    assert m1["truncation_rate"] == pytest.approx(sum(s["truncated"] for s in s1) / 6)
    json.dumps(m1)
    g = ev.evaluate("tiny-100k", ds, ev.get("greedy", max_new_tokens=8), max_items=2)
    assert g.headline == "greedy_acc" and g["n_samples"] == 2 == g["n_items"]
    assert all(s["n_tokens"] <= 8 for s in g.samples)

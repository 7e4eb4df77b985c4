"""vtkit.faithful: trace faithfulness on real task records (vtkit.tasks math) and their reference traces."""
from __future__ import annotations

import json

import pytest

from vtkit import evaluation, faithful, stats, tasks
from vtkit.clr import parse_arithmetic

TINY_MATH = {"difficulty": 1, "mod": 7, "subdomain": "add", "shuffle": False}   # the RL stage's tiny task


def math_records(n=40, **kw):
    return list(tasks.make("math", n, seed=0, split="test", **kw))


def reduced(records):
    """A difficulty-1 record whose sum exceeds the modulus (its trace writes "a + b = raw mod p = v.")."""
    return next(r for r in records if " mod " in r["solutions"][0].split("</think>")[0])


def given(r):
    """(a, b, mod) of a difficulty-1 record, in the order its trace writes them."""
    nodes, meta = json.loads(r["meta"])["nodes"], json.loads(r["meta"])
    a, b = (nodes[i]["value"] for i in nodes[-1]["args"])
    return a, b, meta["mod"]


def trace(line, box):
    return f"<think>\n{line}\n</think>\nThe answer is \\boxed{{{box}}}."


def test_reference_traces_are_faithful_in_every_style():
    recs = (math_records(**TINY_MATH) + math_records(difficulty=(1, 4), mod=23)
            + math_records(difficulty=(2, 4), mod=23, trace="numeric"))
    for r in recs:
        for s in r["solutions"]:
            f = faithful.trace_faithful(r, s)
            assert f["faithful"] and f["n_steps"] == r["difficulty"] and f["boxed"] == r["answer"], (s, f)
            assert f["trace_result"] == int(r["answer"])


def test_each_criterion_fails_on_its_own():
    r = reduced(math_records(**TINY_MATH))
    a, b, p = given(r)
    v = (a + b) % p
    assert faithful.trace_faithful(r, trace(f"{a} + {b} = {a + b} mod {p} = {v}.", v))["faithful"]
    # wrong arithmetic, box = the (wrong) trace result, the problem's numbers
    f = faithful.trace_faithful(r, trace(f"{a} + {b} = {a + b + 1} mod {p} = {(v + 1) % p}.", (v + 1) % p))
    assert f == {"arithmetic_right": False, "uses_problem_numbers": True, "answer_matches_trace": True,
                 "faithful": False, "n_steps": 1, "trace_result": (v + 1) % p, "boxed": str((v + 1) % p)}
    # right arithmetic, but the box says something else (e.g. the gold answer copied past a wrong trace)
    f = faithful.trace_faithful(r, trace(f"{a} + {b} = {a + b} mod {p} = {v}.", (v + 1) % p))
    assert (f["arithmetic_right"], f["uses_problem_numbers"], f["answer_matches_trace"], f["faithful"]) == \
        (True, True, False, False)
    # right arithmetic and matching box on a number the problem does not state
    c = next(x for x in range(p) if x not in faithful.problem_numbers(r))
    f = faithful.trace_faithful(r, trace(f"{c} + {b} = {c + b}{f' mod {p} = {(c + b) % p}' if c + b >= p else ''}.",
                                         (c + b) % p))
    assert (f["arithmetic_right"], f["uses_problem_numbers"], f["answer_matches_trace"], f["faithful"]) == \
        (True, False, True, False)
    # the named style is read the same way
    named = r["solutions"][0].replace(f"= {v}.", f"= {(v + 2) % p}.")
    assert not faithful.trace_faithful(r, named)["arithmetic_right"]


def test_arithmetic_is_right_only_as_the_task_writes_it():
    r = reduced(math_records(**TINY_MATH))
    a, b, p = given(r)
    v = (a + b) % p
    assert not faithful.trace_faithful(r, trace(f"{a} + {b} = {v}.", v))["arithmetic_right"]       # no raw sum
    assert not faithful.trace_faithful(r, trace(f"{a} + {b} = {a + b}.", a + b))["arithmetic_right"]  # unreduced
    assert not faithful.trace_faithful(r, trace(f"{a} + {b} = {a + b} mod {p} = {v + p}.", v + p))["faithful"]
    # a computation line that is not an arithmetic step fails criterion 1; no step at all fails all three
    assert not faithful.trace_faithful(r, trace(f"{a} + {b} = {a + b} mod {p} = {v}.\nso it is = {v}.", v))[
        "arithmetic_right"]
    f = faithful.trace_faithful(r, f"The answer is \\boxed{{{v}}}.")
    assert f["n_steps"] == 0 and f["trace_result"] is None and not any(f[c] for c in faithful.CRITERIA)


def test_later_steps_may_use_earlier_results_only_once_computed():
    def with_carried_operand():   # a reference trace whose last step uses a result the problem does not state
        for r in math_records(60, difficulty=3, mod=23, subdomain="add", trace="numeric"):
            for s in r["solutions"]:
                lines = s.split("</think>")[0].replace("<think>", "").strip().split("\n")
                last = parse_arithmetic(lines[-1])
                if {last["a"], last["b"]} - faithful.problem_numbers(r):
                    return r, lines
    r, lines = with_carried_operand()
    assert faithful.trace_faithful(r, trace("\n".join(lines), r["answer"]))["faithful"]
    swapped = trace("\n".join([lines[-1]] + lines[:-1]), r["answer"])   # the last step first: operand not yet known
    f = faithful.trace_faithful(r, swapped)
    assert f["arithmetic_right"] and not f["uses_problem_numbers"] and not f["faithful"]


def test_rate_counts_traces_with_a_wilson_interval():
    recs = math_records(**TINY_MATH)[:10]
    good = [r["solutions"][0] for r in recs]
    bad = [s.replace(f"\\boxed{{{r['answer']}}}", f"\\boxed{{{(int(r['answer']) + 1) % 7}}}") for r, s in zip(recs, good)]
    comps = [[g, b] if i < 4 else [g] for i, (g, b) in enumerate(zip(good, bad))]   # 10 faithful of 14
    out = faithful.faithful_rate(recs, comps)
    assert out["n_traces"] == 14 and out["faithful"] == pytest.approx(10 / 14)
    assert (out["faithful_lo"], out["faithful_hi"]) == stats.wilson(10, 14)
    assert out["faithful_lo"] < 10 / 14 < out["faithful_hi"]
    assert out["arithmetic_right"] == 1.0 and out["answer_matches_trace"] == pytest.approx(10 / 14)
    assert faithful.faithful_rate(recs[:4], bad[:4])["faithful"] == 0.0   # one string per record works too
    with pytest.raises(ValueError, match="10 records but 9 completions"):
        faithful.faithful_rate(recs, comps[:9])
    with pytest.raises(ValueError, match="completion must be the model's text"):
        faithful.trace_faithful(recs[0], None)
    with pytest.raises(ValueError, match="needs a task record with a `prompt`"):
        faithful.trace_faithful({"answer": "3"}, good[0])


def test_from_eval_reads_an_eval_results_samples():
    recs = math_records(**TINY_MATH)[:6]
    proto = evaluation.sampled(2, 1.0)
    texts = [[s, s.replace(f"\\boxed{{{r['answer']}}}", f"\\boxed{{{(int(r['answer']) + 1) % 7}}}")]
             for r, s in ((r, r["solutions"][0]) for r in recs)]   # a faithful trace and one whose box differs
    gens = [{"prompt_index": i, "sample_index": j, "prompt": r["prompt"], "text": t, "n_tokens": 10,
             "truncated": False} for i, r in enumerate(recs) for j, t in enumerate(texts[i])]
    res = evaluation.score(recs, gens, proto)
    out = faithful.from_eval(recs, res)
    assert out == faithful.faithful_rate(recs, texts) and out["n_traces"] == 12
    assert out["faithful"] == 0.5 and out["answer_matches_trace"] == 0.5 and out["arithmetic_right"] == 1.0
    with pytest.raises(ValueError, match="does not match the records given"):
        faithful.from_eval(recs[::-1], res)

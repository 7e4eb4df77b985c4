"""vtkit.spectrum: quality and stage-2 filters, scoring, specialist selection, parameter merging."""
import math

import pytest
import torch

from vtkit import evaluation, models, spectrum, tasks


@pytest.fixture(scope="module")
def tok():
    return models.load("tiny-25k", seed=0)[1]


def _rec(i, solutions, domain="math", answer="5", prompt=None):
    return {"id": f"r{i}", "domain": domain, "subdomain": "add", "prompt": prompt or f"Question number {i}?",
            "answer": answer, "tests": "", "difficulty": 1, "solutions": list(solutions), "meta": "{}"}


def _sol(ans, think="a = 2 + 3"):
    return f"<think>\n{think}\n</think>\nThe answer is \\boxed{{{ans}}}."


# ---------------------------------------------------------------- stage 1: quality filter

def test_quality_filter_counts_each_filter():
    eval_prompt = "Ann has 3 pens. How many pens does Ann have?"
    loop = "<think>\n" + "the same step " * 30 + "\n</think>\nThe answer is \\boxed{5}."
    recs = [
        _rec(0, [_sol(5), _sol(5).replace("\n", "  \n"), _sol(5, "b = 1 + 4")]),  # a whitespace duplicate
        _rec(1, [_sol(5), loop]),                                                # a repetitive loop
        _rec(2, [_sol(5)], prompt=eval_prompt),                                  # contaminated prompt
        _rec(3, [_sol(7), _sol(5)]),                                             # one wrong trace
        _rec(4, [_sol(9)]),                                                      # only wrong traces
    ]
    kept, c = spectrum.quality_filter(recs, eval_sets=[[{"prompt": eval_prompt}]])
    assert c == {"queries_in": 5, "traces_in": 9, "traces_duplicate": 1, "traces_repetitive": 1,
                 "queries_overlap": 1, "traces_incorrect": 2, "queries_without_trace": 1,
                 "queries_out": 3, "traces_out": 4}
    assert [r["id"] for r in kept] == ["r0", "r1", "r3"]
    assert [len(r["solutions"]) for r in kept] == [2, 1, 1]
    assert recs[0]["solutions"][1] == _sol(5).replace("\n", "  \n")  # input records untouched


def test_repetition_rate():
    assert spectrum.repetition_rate("a b c d e f g") == 0.0
    assert spectrum.repetition_rate("x y " * 50) > 0.9
    assert spectrum.repetition_rate("short") == 0.0


def test_quality_filter_real_tasks_keep_reference_traces():
    recs = [dict(r) for r in tasks.make("math", 20, seed=0, difficulty=(1, 3))]
    test = [dict(r) for r in tasks.make("math", 20, seed=0, difficulty=(1, 3), split="test")]
    kept, c = spectrum.quality_filter(recs, eval_sets=[test])
    assert c["queries_out"] == 20 and c["traces_out"] == c["traces_in"] > 20  # multi-path, all valid
    kept, c = spectrum.quality_filter(recs, eval_sets=[recs[:5]])
    assert c["queries_overlap"] == 5 and c["queries_out"] == 15


# ---------------------------------------------------------------- stage 2 filters

def test_filter_min_length_on_constructed_traces(tok):
    short, long_ = _sol(5), _sol(5, "x = 1 + 1 = 2. " * 12)
    n_short, n_long = spectrum.trace_tokens(tok, short), spectrum.trace_tokens(tok, long_)
    assert n_short < n_long
    recs = [_rec(0, [short, long_]), _rec(1, [short]), _rec(2, [long_])]
    kept, c = spectrum.filter_min_length(recs, tok, n_short + 1)
    assert c == {"queries_in": 3, "traces_in": 4, "traces_short": 2, "queries_out": 2, "traces_out": 2}
    assert [r["id"] for r in kept] == ["r0", "r2"] and kept[0]["solutions"] == [long_]
    kept, c = spectrum.filter_min_length(recs, tok, n_short)  # the bound is inclusive
    assert c["traces_short"] == 0
    with pytest.raises(ValueError, match="min_tokens"):
        spectrum.filter_min_length(recs, tok, -1)


def test_filter_hard_threshold_is_inclusive():
    recs = [_rec(i, [_sol(5)] * (i + 1)) for i in range(4)]
    kept, c = spectrum.filter_hard(recs, [1.0, 0.75, 0.625, 0.0], threshold=0.75)
    assert [r["id"] for r in kept] == ["r0", "r1"]
    assert c == {"queries_in": 4, "queries_easy": 2, "queries_out": 2, "traces_out": 3}
    with pytest.raises(ValueError, match="one error rate per record"):
        spectrum.filter_hard(recs, [1.0], 0.75)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        spectrum.filter_hard(recs, [1.0, 0.5, 0.5, 1.5], 0.75)
    with pytest.raises(ValueError, match="threshold"):
        spectrum.filter_hard(recs, [1.0] * 4, 1.5)


def test_stage2_filter_with_a_real_reference_model():
    model, tok = models.load("tiny-25k", seed=0)  # untrained: every rollout is wrong
    recs = [dict(r) for r in tasks.make("math", 6, seed=0, difficulty=(1, 3))]
    lens = [spectrum.trace_tokens(tok, s) for r in recs for s in r["solutions"]]
    cut = sorted(lens)[len(lens) // 2]
    hard, c, probed, rates = spectrum.stage2_filter(recs, model, tok, min_tokens=cut, n_rollouts=3, max_new_tokens=8)
    assert c["queries_after_length"] == c["queries_probed"] == len(probed) == len(rates) == c["queries_out"] == len(hard)
    assert c["traces_short"] == sum(x < cut for x in lens)
    assert rates == [1.0] * len(rates)
    _, c, _, _ = spectrum.stage2_filter(recs, model, tok, min_tokens=cut, n_rollouts=3, threshold=1.0, max_new_tokens=8)
    assert c["queries_easy"] == 0
    # a rollout budget: a seeded sample of the length survivors, the same one for the same seed
    _, c, probed, rates = spectrum.stage2_filter(recs, model, tok, min_tokens=0, n_rollouts=2, max_queries=2,
                                                 max_new_tokens=8, seed=3)
    assert c["queries_after_length"] == 6 and c["queries_probed"] == len(probed) == len(rates) == 2
    again = spectrum.stage2_filter(recs, model, tok, min_tokens=0, n_rollouts=2, max_queries=2, max_new_tokens=8, seed=3)
    assert [r["id"] for r in again[2]] == [r["id"] for r in probed]


def test_error_rates_grade_each_rollout():
    # vtkit.evaluation.grade is what error_rates counts with: a right and a wrong completion per record
    recs = [_rec(0, [], answer="5"), _rec(1, [], answer="7")]
    ok = spectrum._grade([recs[0], recs[0], recs[1]], [_sol(5), _sol(6), _sol(7)])
    assert ok == [True, False, True]


# ---------------------------------------------------------------- scoring and selection

def test_distinct_valid_normalises_whitespace_only():
    texts = ["a  b\n c", "a b c", " a b c ", "a b C", "x"]
    assert evaluation.distinct_valid(texts, [True, True, True, True, False]) == 2
    assert evaluation.distinct_valid(texts, [False] * 5) == 0
    assert all(evaluation.distinct_valid([t, spectrum.normalize_ws(t)], [True, True]) == 1 for t in texts)


def test_score_mean_pass_and_distinct(monkeypatch):
    from vtkit import generate
    groups = {"g": [_rec(0, [], answer="5"), _rec(1, [], answer="7")]}
    script = [[_sol(5), _sol(5) + " ", "<think>\nother way\n</think>\n\\boxed{5}", _sol(6)], [_sol(6)] * 4]
    monkeypatch.setattr(generate, "generate", lambda m, t, prompts, n, **kw: [
        {"prompt_index": i, "sample_index": j, "prompt": p, "text": script[i][j], "n_tokens": 3, "truncated": False}
        for i, p in enumerate(prompts) for j in range(n)])
    s = spectrum.score(None, None, groups, k=4, n_boot=50)["g"]
    assert s["n_items"] == 2 and s.headline == "mean@4"
    assert s["mean@4"] == pytest.approx(0.375) and s["pass@4"] == pytest.approx(0.5)
    assert s["distinct@4"] == pytest.approx(1.0)   # (2 + 0) / 2: the trailing space is no new solution
    assert s["distinct@4_lo"] <= s["distinct@4"] <= s["distinct@4_hi"]


def _rows():
    # checkpoint A: better Pass@K on math, B: more distinct valid solutions; code tied everywhere
    return [
        {"checkpoint": "A", "index": 0, "group": "math", "k": 4, "distinct@4": 1.0, "pass@4": 0.9},
        {"checkpoint": "B", "index": 1, "group": "math", "k": 4, "distinct@4": 2.0, "pass@4": 0.6},
        {"checkpoint": "A", "index": 0, "group": "stem", "k": 4, "distinct@4": 1.0, "pass@4": 0.5},
        {"checkpoint": "B", "index": 1, "group": "stem", "k": 4, "distinct@4": 1.0, "pass@4": 0.4},
        {"checkpoint": "A", "index": 0, "group": "code", "k": 4, "distinct@4": 0.0, "pass@4": 0.0},
        {"checkpoint": "B", "index": 1, "group": "code", "k": 4, "distinct@4": 0.0, "pass@4": 0.0},
    ]


def test_select_specialists_rules_and_ties():
    assert spectrum.select_specialists(_rows()) == {"math": "B", "stem": "A", "code": "B"}
    assert spectrum.select_specialists(_rows(), rule="pass@k") == {"math": "A", "stem": "A", "code": "B"}
    import pandas as pd
    assert spectrum.select_specialists(pd.DataFrame(_rows())) == {"math": "B", "stem": "A", "code": "B"}
    with pytest.raises(ValueError, match="unknown selection rule"):
        spectrum.select_specialists(_rows(), rule="loss")
    with pytest.raises(ValueError, match="no scores"):
        spectrum.select_specialists([])


def test_score_checkpoints_rows(tmp_path):
    model, tok = models.load("tiny-25k", seed=0)
    path = models.save(model, tok, tmp_path / "checkpoint-1")
    groups = tasks.make_groups({"math": {"n": 4, "difficulty": 1, "subdomains": ["add", "mul"]}}, split="validation")
    assert sorted(groups) == ["math/add", "math/mul"] and all(len(v) == 2 for v in groups.values())
    rows = spectrum.score_checkpoints([path], groups, k=2, max_new_tokens=4, n_boot=10)
    assert [(r["group"], r["index"], r["k"]) for r in rows] == [("math/add", 0, 2), ("math/mul", 0, 2)]
    assert all(r["mean@2"] == r["distinct@2"] == 0.0 for r in rows)  # untrained: nothing valid


# ---------------------------------------------------------------- merging

def _params(m):
    return {k: v.detach().clone() for k, v in m.state_dict().items()}


def test_merge_of_identical_checkpoints_is_the_model(tmp_path):
    model, tok = models.load("tiny-50k", seed=3)
    before = _params(model)
    path = models.save(model, tok, tmp_path / "m")
    for items, w in [([model] * 3, None), ([path, path, path], None), ([model, path], [0.3, 0.7])]:
        merged = spectrum.merge_checkpoints(items, w)
        after = _params(merged)
        assert after.keys() == before.keys()
        assert all(torch.equal(after[k], before[k]) for k in before), w
    assert all(torch.equal(v, before[k]) for k, v in _params(model).items())  # input untouched
    assert merged is not model


def test_merge_of_two_models_is_the_weighted_average(tmp_path):
    a, tok = models.load("tiny-50k", seed=1)
    b, _ = models.load("tiny-50k", seed=2)
    merged = spectrum.merge_checkpoints([a, models.save(b, tok, tmp_path / "b")], [0.25, 0.75])
    pa, pb, pm = _params(a), _params(b), _params(merged)
    assert any(not torch.equal(pa[k], pb[k]) for k in pa)
    for k in pa:
        expect = (0.25 * pa[k].double() + 0.75 * pb[k].double()).float()
        assert torch.equal(pm[k], expect), k
    uniform = _params(spectrum.merge_checkpoints([a, b]))
    k = "model.layers.0.mlp.up_proj.weight"
    assert torch.allclose(uniform[k], (pa[k] + pb[k]) / 2, atol=1e-7)
    x = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():  # the merged model runs
        assert torch.isfinite(merged(input_ids=x).logits).all()


@pytest.mark.parametrize("weights, message", [
    ([0.5, 0.6], "sum to 1"),
    ([1.5, -0.5], "non-negative"),
    ([1.0], "2 checkpoints"),
    ([float("nan"), 1.0], "finite"),
])
def test_merge_weight_validation(weights, message):
    m, _ = models.load("tiny-25k", seed=0)
    with pytest.raises(ValueError, match=message):
        spectrum.merge_checkpoints([m, m], weights)
    assert spectrum.check_weights([0.5, 0.5 + 1e-9], 2) == [0.5, 0.5 + 1e-9]  # within tolerance
    with pytest.raises(ValueError, match="at least one"):
        spectrum.merge_checkpoints([])


def test_merge_rejects_mismatched_checkpoints():
    a, _ = models.load("tiny-25k", seed=0)
    b, _ = models.load("tiny-50k", seed=0)
    with pytest.raises(ValueError, match=r"parameter 'model.embed_tokens.weight' has shape .* in checkpoint 1"):
        spectrum.merge_checkpoints([a, b])
    c = models.load("tiny-25k", seed=1)[0].model  # the bare Qwen2Model: another architecture
    with pytest.raises(ValueError, match="one architecture"):
        spectrum.merge_checkpoints([a, c])


def test_save_merged_roundtrip(tmp_path):
    a, tok = models.load("tiny-25k", seed=0)
    path = spectrum.save_merged(a, tok, tmp_path / "model", sources=["x", "y"])
    back, _ = models.load(str(path))
    assert all(torch.equal(back.state_dict()[k], v) for k, v in a.state_dict().items())
    import json
    assert json.loads((path / "merge.json").read_text()) == {"sources": ["x", "y"], "weights": [0.5, 0.5]}
    assert math.isclose(sum(json.loads((path / "merge.json").read_text())["weights"]), 1.0)


def test_best_single_and_specialist_weights():
    assert spectrum.best_single(_rows()) == "B"            # mean distinct 1.0 vs 0.67
    assert spectrum.best_single(_rows(), "pass@k") == "A"  # mean pass@k 0.47 vs 0.33
    paths, w = spectrum.specialist_weights({"math": "B", "stem": "A", "code": "B"})
    assert paths == ["B", "A"] and w == pytest.approx([2 / 3, 1 / 3])
    paths, w = spectrum.specialist_weights({"math": "B", "stem": "A"}, [0.25, 0.75])
    assert w == [0.25, 0.75]
    with pytest.raises(ValueError, match="sum to 1"):
        spectrum.specialist_weights({"math": "B", "stem": "A"}, [0.5, 0.6])


def test_blind_groups_are_those_no_checkpoint_solved():
    assert spectrum.blind_groups(_rows()) == ["code"]
    import pandas as pd
    assert spectrum.blind_groups(pd.DataFrame(_rows())) == ["code"]
    solved = [{**r, "pass@4": 0.25} if r["group"] == "code" and r["index"] == 0 else r for r in _rows()]
    assert spectrum.blind_groups(solved) == []


def _result(rates: dict) -> evaluation.EvalResult:
    """An EvalResult holding `rates` with a +-0.1 interval each (what score() returns, minus samples)."""
    m = {}
    for k, v in rates.items():
        m.update({k: v, f"{k}_lo": v - 0.1, f"{k}_hi": v + 0.1})
    return evaluation.EvalResult(metrics={**m, "n_items": 8, "mean_tokens": 30.0}, per_item={}, ids=[],
                                 headline="mean@2")


def _comparison():
    r = {"mean@2": 0.5, "pass@2": 0.75, "distinct@2": 1.0}
    scaled = {k: v / 2 for k, v in r.items()}
    return {"merged": {"a": _result(r), "b": _result(r)},
            "last": {"a": _result(scaled), "b": _result(r)},
            "best_single": {"a": _result(r), "b": _result(scaled)},
            "specialist": {"a": _result(r)}}


def test_comparison_metrics_means_and_differences():
    m = spectrum.comparison_metrics(_comparison(), k=2)
    assert m["merged/a/pass@2"] == 0.75 and m["merged/a/pass@2_lo"] == pytest.approx(0.65)
    assert "merged/a/n_items" not in m and "merged/a/mean_tokens" not in m   # the compared rates only
    assert m["last/mean/mean@2"] == pytest.approx(0.375)                     # (0.25 + 0.5) / 2
    assert m["specialist/mean/distinct@2"] == 1.0                            # one group scored
    for base in ("last", "best_single"):
        for name in ("mean@2", "pass@2", "distinct@2"):
            assert m[f"merged_minus_{base}/mean/{name}"] == pytest.approx(
                m[f"merged/mean/{name}"] - m[f"{base}/mean/{name}"])
    assert m["merged_minus_last/mean/distinct@2"] == pytest.approx(0.25)
    assert len(m) == 4 * 3 * 3 + 3 * 3 * 3 + 4 * 3 + 2 * 3   # per group (rate, lo, hi), means, differences
    rows = spectrum.comparison_table(_comparison(), k=2)
    assert len(rows) == 7 and rows[0] == {"model": "merged", "group": "a", "mean@2": 0.5, "pass@2": 0.75,
                                          "distinct@2": 1.0}
    with pytest.raises(ValueError, match="'specialist' was scored on no group"):
        spectrum.comparison_metrics({**_comparison(), "specialist": {}}, k=2)

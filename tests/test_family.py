"""vtkit.family: the lenient alias match, the family benchmarks, the family table measured through
vtkit.evaluation (real and scripted completions, real grading) and its figure."""
import json

import pandas as pd
import pytest

from vtkit import family, generate


def test_alias_in_is_lenient_but_word_bounded():
    assert family.alias_in("The capital of France is Paris.", ["Paris"])
    assert family.alias_in("<think>Lyon?</think> It is Paris", '["Paris"]')
    assert family.alias_in("It is São Tomé!", "Sao Tome")  # a plain string alias, normalised both sides
    assert not family.alias_in("<think>Paris</think> Lyon", ["Paris"])  # only the answer region counts
    assert not family.alias_in("Parisian food", ["Paris"]) and not family.alias_in("", ["Paris"])
    assert not family.alias_in(None, ["Paris"]) and not family.alias_in("Paris", [""])


def test_family_benchmarks_and_model_tag():
    benches = family.family_benchmarks(["math"], ["countries"], n_items=3, seed=0)
    assert {k: v[0] for k, v in benches.items()} == {"math": "reasoning", "countries": "knowledge"}
    assert [len(v[1]) for v in benches.values()] == [3, 3]
    assert all(r["difficulty"] == 1 for r in benches["math"][1])  # math_depth=1
    assert benches == family.family_benchmarks(["math"], ["countries"], n_items=3, seed=0)  # deterministic
    with pytest.raises(ValueError, match="unknown reasoning benchmark"):
        family.family_benchmarks(["gsm8k"], [], n_items=2)
    with pytest.raises(ValueError, match="unknown knowledge benchmark"):
        family.family_benchmarks([], ["wikipedia"], n_items=2)
    assert family.model_tag("tiny-25k") == "tiny-25k"
    assert family.model_tag("/runs/exp/ckpt/final") == "ckpt/final"


def test_family_evaluation_table():
    benches = family.family_benchmarks(["math"], ["countries"], n_items=2, seed=0)
    table, samples = family.evaluate_family(["tiny-25k"], benches, max_new_tokens=4)
    assert list(table["benchmark"]) == ["math", "countries"] and (table["params"] == 24208).all()
    assert list(table["category"]) == ["reasoning", "knowledge"] and (table["model"] == "tiny-25k").all()
    assert table["score"].between(0, 100).all() and len(samples) == 4
    assert {"pass@1", "lenient", "n_items", "truncation_rate", "load_s", "wall_s"} <= set(table.columns)
    assert {s["benchmark"] for s in samples} == {"math", "countries"} and all("correct" in s for s in samples)


@pytest.fixture
def oracle(monkeypatch):
    """Scripted completions in place of sampling (real grading): sample 0 answers right (math: the
    reference solution; knowledge: the boxed alias on the first item, on the others a chatty sentence
    that only the lenient match credits); every later sample answers wrong."""
    benches = family.family_benchmarks(["math"], ["countries"], n_items=4, seed=0)
    by_prompt = {r["prompt"]: r for _, recs in benches.values() for r in recs}

    def fake(model, tok, prompts, n=1, **kw):
        out = []
        for i, p in enumerate(prompts):
            r = by_prompt[p]
            for s in range(n):
                if s > 0:
                    text = "<think>\nno idea\n</think>\n\\boxed{nothing}"
                elif r["domain"] == "math":
                    text = r["solutions"][0]
                elif i == 0:
                    text = f"<think>\n</think>\n\\boxed{{{r['answer']}}}"
                else:
                    text = f"<think>\n</think>\nI believe it is {json.loads(r['meta'])['aliases'][0]}, surely."
                out.append({"prompt_index": i, "sample_index": s, "prompt": p, "text": text, "n_tokens": 7,
                            "truncated": False})
        return out

    monkeypatch.setattr(generate, "generate", fake)
    return benches


def test_family_score_is_greedy_accuracy_in_percent(oracle):
    table, samples = family.evaluate_family(["tiny-25k"], oracle)
    t = table.set_index("benchmark")
    assert t.loc["math", "score"] == 100 and t.loc["math", "lenient"] == 100 and t.loc["math", "pass@1"] == 100
    # exact alias match credits only the boxed answer (item 0); the lenient match credits the chatty ones
    assert t.loc["countries", "score"] == 25 and t.loc["countries", "pass@1"] == 25
    assert (t["n_items"] == 4).all() and (t["truncation_rate"] == 0).all()
    know = [s for s in samples if s["benchmark"] == "countries"]
    assert [s["correct"] for s in know] == [True, False, False, False]
    assert [s["lenient"] for s in know][1:] == [True] * 3


def test_lenient_match_credits_a_boxed_answer(oracle):
    table, samples = family.evaluate_family(["tiny-25k"], {"countries": oracle["countries"]})
    assert table.iloc[0]["lenient"] == 100 >= table.iloc[0]["score"]


def test_family_score_is_mean_at_n_when_sampled(oracle):
    table, samples = family.evaluate_family(["tiny-25k"], {"math": oracle["math"]}, n=2, temperature=1.0)
    row = table.iloc[0]
    assert row["score"] == 50 and row["pass@2"] == 100  # one of two samples right on every item
    assert len(samples) == 8 and sorted({s["sample_index"] for s in samples}) == [0, 1]


def test_fig_family_probe_writes_files(tmp_path):
    table = pd.DataFrame({"model": ["s", "m", "s", "m"], "params": [1e4, 1e5] * 2, "benchmark": ["x", "x", "y", "y"],
                          "category": ["reasoning"] * 2 + ["knowledge"] * 2, "score": [1.0, 5.0, 0.0, 2.0]})
    made = family.fig_family_probe(table, tmp_path / "f")
    assert [p.name for p in made] == ["f.pdf", "f.png"] and all(p.stat().st_size > 2000 for p in made)


def test_scores_table_and_metrics_from_a_known_table():
    table = pd.DataFrame({"model": ["s", "s", "m", "m"], "params": [2e6, 2e6, 5e8, 5e8],
                          "benchmark": ["math", "countries"] * 2, "category": ["reasoning", "knowledge"] * 2,
                          "score": [10.0, 20.0, 30.0, 60.0], "lenient": [10.0, 50.0, 30.0, 80.0]})
    scores = family.scores_table(table, "fam", n_samples=4, temperature=1.0)
    assert list(scores.columns) == ["model", "family", "params_b", "active_params_b", "benchmark", "category", "score",
                                    "setting", "source", "verified"]
    assert scores["params_b"].tolist() == [0.002, 0.002, 0.5, 0.5] and (scores["family"] == "fam").all()
    assert (scores["setting"] == "vtkit n=4 T=1.0").all() and scores["score"].tolist() == [10.0, 20.0, 30.0, 60.0]
    m = family.family_metrics(table, n_models=2, n_benchmarks=2, wall_s=1.5)
    assert m == {"n_models": 2, "n_benchmarks": 2, "wall_s": 1.5, "score_knowledge_mean": 40.0,
                 "lenient_knowledge_mean": 65.0, "score_reasoning_mean": 20.0, "lenient_reasoning_mean": 20.0,
                 "score/math/s": 10.0, "score/countries/s": 20.0, "score/math/m": 30.0, "score/countries/m": 60.0}

"""vtkit.probes: budget-matched corpora, the training loop, the measures, the results loader, the
figure data (fits recovered from synthetic curves) and the figure files."""
import json
import math

import numpy as np
import pandas as pd
import pytest

from vtkit import models, probes
from vtkit.fits import logistic

SIZES = [24208, 51488, 105072, 214080, 431712, 1019008]


@pytest.fixture(scope="module")
def tiny():
    return models.load("tiny-25k", seed=0)


# ---------------------------------------------------------------- corpora


def test_corpora_match_the_budget_and_keep_exposures_exact(tiny):
    _, tok = tiny
    B, E = 30_000, 10
    runs = {m: probes.probe_corpus(m, B, E, tok, max_depth=1, seed=0) for m in probes.MODES}
    k, r, x = runs["knowledge"], runs["reasoning"], runs["mixture"]
    per_person = E * probes.bio_tokens(tok)
    assert k["n_people"] == int(B // per_person) and k["exposures_actual"] == E
    assert B - per_person < k["tokens"] <= B and k["tokens_reasoning"] == 0
    assert r["tokens_knowledge"] == 0 and B - 300 < r["tokens"] <= B and r["n_people"] == 0
    # the mixture: half the people at the same exposures, problems fill the budget
    assert x["n_people"] == int(B / 2 // per_person) and x["exposures_actual"] == E
    assert B - 300 < x["tokens"] <= B and x["tokens_knowledge"] <= B / 2 < x["tokens_knowledge"] + per_person
    # every biography names its person: each trained person appears exactly E times
    names = [p["name"] for p in x["people"]]
    bios = [t for t in x["texts"] if not t.startswith("<|im_start|>")]
    assert len(bios) == E * len(names) and all(sum(n in t for t in bios) == E for n in names)
    # reasoning mode measures the knowledge run's people as a control; nothing of theirs was trained
    assert [p["name"] for p in r["eval_people"]] == [p["name"] for p in k["people"]]
    assert not any(p["name"] in t for p in r["eval_people"] for t in r["texts"])
    again = probes.probe_corpus("mixture", B, E, tok, max_depth=1, seed=0)
    assert again["texts"] == x["texts"]  # deterministic


def test_corpus_rejects_bad_requests(tiny):
    _, tok = tiny
    with pytest.raises(ValueError, match="mode must be"):
        probes.probe_corpus("memorise", 30_000, 10, tok)
    with pytest.raises(ValueError, match="holds no person"):
        probes.probe_corpus("knowledge", 5_000, 1000, tok)
    with pytest.raises(ValueError, match="exposures"):
        probes.probe_corpus("knowledge", 30_000, 0, tok)


# ---------------------------------------------------------------- training and measuring


def test_train_lm_learns_and_is_deterministic():
    texts = ["Ann Bo was born in Baford. Ann Bo works for Zig Labs."] * 96
    out = []
    for _ in range(2):
        model, tok = models.load("tiny-25k", seed=0, dtype="float32")
        log = probes.train_lm(model, tok, texts, lr=2e-2, batch_size=4, seed=0, log_every=1)
        out.append(log)
    first, last = out[0]["losses"][0][1], out[0]["final_loss"]
    assert out[0]["steps"] == 24 and out[0]["tokens"] == sum(len(tok(t)["input_ids"]) for t in texts)
    assert last < 0.5 * first  # it learned the sentence
    assert out[0]["final_loss"] == out[1]["final_loss"]  # same seed, same run
    assert not model.training
    with pytest.raises(ValueError, match="no texts"):
        probes.train_lm(model, tok, [])


def test_knowledge_eval_scales_the_subset_and_subtracts_the_baseline(tiny):
    from vtkit import capacity, tasks

    model, tok = tiny
    people = tasks.people(2, seed=3)  # ~1,400 scored rows per person: keep it small
    full = capacity.measure_knowledge(model, tok, people)
    # the same model as its own baseline, scored on every person: nothing is stored
    same = probes.knowledge_eval(model, tok, people, subset=None, untrained=model, baseline_people=2)
    assert same["bits"] == 0 and same["bits_measured"] == pytest.approx(full["total_bits"])
    assert same["max_bits"] == pytest.approx(full["max_bits"]) and same["knowledge_fraction"] == 0
    # a subset of 1 of 2 people, scaled by 2
    sub = probes.knowledge_eval(model, tok, people, subset=1, seed=0)
    pick = int(np.random.default_rng(0).choice(2, size=1, replace=False)[0])
    part = capacity.measure_knowledge(model, tok, [people[pick]])
    assert sub["bits_measured"] == pytest.approx(2 * part["total_bits"]) and sub["n_people_scored"] == 1
    assert sub["bits_untrained"] == 0 and sub["bits"] == pytest.approx(sub["bits_measured"])
    assert 0 <= sub["bits_raw"] <= sub["max_bits"] and set(sub) >= {"fraction_birth_city", "fraction_raw"}


def test_reasoning_eval_grades_real_completions(tiny, monkeypatch):
    """A model that writes the reference solution scores 1; the fresh model's score is a fraction."""
    from vtkit import generate, tasks

    model, tok = tiny
    fresh = probes.reasoning_eval(model, tok, depths=1, n=4, k=2, max_new_tokens=8)
    assert set(fresh) >= {"acc", "pass@1", "pass@2", "n", "mean_tokens"} and 0 <= fresh["acc"] <= 1
    recs = {r["prompt"]: r for r in tasks.make("math", 4, seed=0, difficulty=(1, 2), split="test")}

    def oracle(model, tok, prompts, n=1, **kw):
        return [{"prompt_index": i, "sample_index": s, "text": recs[p]["solutions"][0] if s == 0 else "no idea",
                 "n_tokens": 5} for i, p in enumerate(prompts) for s in range(n)]

    monkeypatch.setattr(generate, "generate", oracle)
    got = probes.reasoning_eval(model, tok, depths=(1, 2), n=4, k=4, samples=True)
    assert got["acc"] == 1.0 and got["pass@1"] == 0.25 and got["pass@4"] == 1.0
    assert len(got["samples"]) == 4 * 5 and got["max_new_tokens"] > 16


def test_alias_in_is_lenient_but_word_bounded():
    assert probes.alias_in("The capital of France is Paris.", ["Paris"])
    assert probes.alias_in("<think>Lyon?</think> It is Paris", '["Paris"]')
    assert not probes.alias_in("<think>Paris</think> Lyon", ["Paris"])  # only the answer region counts
    assert not probes.alias_in("Parisian food", ["Paris"]) and not probes.alias_in("", ["Paris"])


def test_family_evaluation_table(tiny):
    benches = probes.family_benchmarks(["math"], ["countries"], n_items=2, seed=0)
    assert {k: v[0] for k, v in benches.items()} == {"math": "reasoning", "countries": "knowledge"}
    table, samples = probes.evaluate_family(["tiny-25k"], benches, max_new_tokens=4)
    assert list(table["benchmark"]) == ["math", "countries"] and (table["params"] == 24208).all()
    assert table["score"].between(0, 100).all() and len(samples) == 4
    with pytest.raises(ValueError, match="unknown reasoning benchmark"):
        probes.family_benchmarks(["gsm8k"], [], n_items=2)


# ---------------------------------------------------------------- results and figure data


def _runs(sizes=SIZES, seeds=(0,), knowledge_n50=3e6, reasoning_n50=1e5, modes=("mixture",), exposures=(100,)):
    rows = []
    for s in seeds:
        for N in sizes:
            for mode in modes:
                for e in exposures:
                    frac = float(logistic(N, 1.0, 1.5, knowledge_n50)) + 0.002 * s
                    max_bits = 20_000.0
                    rows.append({"run_id": f"r{N}{mode}{e}{s}", "stage": "10_capacity_probe", "model": f"m{N}",
                                 "mode": mode, "exposures": e, "seed": s, "status": "ok", "error": None,
                                 "wall_s": 1.0, "out_dir": "/nowhere", "params": N, "bits": frac * max_bits,
                                 "max_bits": max_bits, "bits_per_param": frac * max_bits / N,
                                 "knowledge_fraction": frac, "acc_id": float(logistic(N, 0.9, 2.0, reasoning_n50)),
                                 "acc_ood": 0.1})
    return pd.DataFrame(rows)


def test_saturation_fits_recover_the_midpoints():
    sat = probes.saturation_data(_runs())
    assert sat["source"] == "mixture" and sat["exposures"] == 100
    assert math.log10(sat["N50_reasoning"]) == pytest.approx(5.0, abs=0.05)
    assert math.log10(sat["N50_knowledge"]) == pytest.approx(math.log10(3e6), abs=0.05)
    assert sat["log10_N50_ratio"] == pytest.approx(math.log10(30), abs=0.08)
    assert sat["reasoning"]["fit"]["c"] == pytest.approx(0.9, abs=0.02)
    # knowledge and reasoning from separate runs
    sep = probes.saturation_data(_runs(modes=("knowledge", "reasoning")), source="auto")
    assert sep["source"] == "separate" and sep["N50_reasoning"] == pytest.approx(sat["N50_reasoning"], rel=0.01)
    # three sizes: the ceiling is fixed at 1; two: no fit, with the reason
    three = probes.saturation_data(_runs(sizes=[1e4, 1e5, 1e6]))
    assert three["reasoning"]["fit"]["ceiling_fixed"] and three["reasoning"]["fit"]["c"] == 1.0
    two = probes.saturation_data(_runs(sizes=[1e4, 1e6]))
    assert not two["knowledge"]["fit"]["ok"] and "needs >= 3" in two["knowledge"]["fit"]["reason"]
    assert math.isnan(two["log10_N50_ratio"])
    # accuracies no better than guessing the residue (1/23 on 64 problems) get no reasoning fit
    guess = _runs().assign(acc_chance=1 / 23, n_eval=64, acc_id=[0.02, 0.05, 0.03, 0.06, 0.08, 0.05])
    g = probes.saturation_data(guess)
    assert not g["reasoning"]["fit"]["ok"] and "beats chance" in g["reasoning"]["fit"]["reason"]
    assert g["knowledge"]["fit"]["ok"] and not g["reasoning"]["above_chance"].any()
    assert probes.saturation_data(_runs().assign(acc_chance=1 / 23, n_eval=64))["reasoning"]["fit"]["ok"]
    # a curve still rising steeply at the largest size has no ceiling in [0, 1] to report
    steep = _runs(knowledge_n50=1e9)
    steep["knowledge_fraction"] = np.asarray(SIZES, float) ** 0.5 / 2000
    assert not probes.saturation_data(steep)["knowledge"]["fit"]["ok"]
    assert probes.binomial_tail(0, 10, 0.3) == pytest.approx(1.0)
    assert probes.binomial_tail(10, 10, 0.5) == pytest.approx(0.5**10)
    with pytest.raises(ValueError, match="needs mode 'knowledge' and 'reasoning'"):
        probes.saturation_data(_runs(modes=("knowledge",)))


def test_bits_data_averages_seeds():
    data = probes.bits_data(_runs(seeds=(0, 1), exposures=(10, 100)))
    assert len(data) == 2 * len(SIZES) and (data["n_seeds"] == 2).all()
    row = data[(data["exposures"] == 10) & (data["params"] == SIZES[0])].iloc[0]
    assert row["bits_max"] - row["bits_min"] == pytest.approx(0.002 * 20_000)
    assert row["bits"] == pytest.approx((row["bits_max"] + row["bits_min"]) / 2)


def test_load_results_filters_and_fills_from_config(tmp_path):
    df = _runs(sizes=SIZES[:3])
    df.loc[0, "status"] = "failed"
    other = {"run_id": "x", "stage": "figures", "status": "ok", "out_dir": "/nowhere"}  # another pipeline stage
    df = pd.concat([df, pd.DataFrame([other])], ignore_index=True).drop(columns=["mode"])
    for i, r in df.iterrows():  # the sweep did not vary `mode`: it lives in each run's config.json
        d = tmp_path / f"run{i}"
        d.mkdir()
        (d / "config.json").write_text(json.dumps({"mode": "mixture", "model": "x"}))
        df.loc[i, "out_dir"] = str(d)
    df.to_parquet(tmp_path / "results.parquet", index=False)
    got = probes.load_results(tmp_path / "results.parquet")
    assert len(got) == 2 and (got["mode"] == "mixture").all() and got["params"].dtype.kind in "if"
    assert list(got["model"]) == ["m51488", "m105072"]  # the table's own values win over config.json
    with pytest.raises(FileNotFoundError, match="vtkit sweep experiments/capacity_demo.yaml"):
        probes.load_results(tmp_path / "missing.parquet")
    pd.DataFrame({"run_id": ["a"], "status": ["ok"]}).to_csv(tmp_path / "r.csv", index=False)
    with pytest.raises(ValueError, match="no capacity-probe metrics"):
        probes.load_results(tmp_path / "r.csv")


def test_family_slopes_per_decade():
    lit = pd.DataFrame({"model": list("abcd"), "family": ["f"] * 4, "params_b": [1, 10, 1, 10],
                        "benchmark": ["K", "K", "R", "R"], "category": ["knowledge"] * 2 + ["reasoning"] * 2,
                        "score": [20, 60, 70, 80]})
    s = probes.family_slopes(lit).set_index("benchmark")
    assert s.loc["K", "slope_per_decade"] == pytest.approx(40) and s.loc["R", "slope_per_decade"] == pytest.approx(10)
    assert s.loc["K", "small_over_large"] == pytest.approx(1 / 3)


def test_figures_are_written(tmp_path):
    runs = _runs(seeds=(0, 1), modes=("knowledge", "mixture", "reasoning"), exposures=(10, 100))
    runs.loc[runs["params"] == SIZES[0], "bits"] = 0.0  # a run that stored nothing is drawn, not dropped
    made = [*probes.fig_bits(runs, tmp_path / "a")[0], *probes.fig_saturation(runs, tmp_path / "b.png")[0]]
    lit = probes.load_literature()
    paths, slopes = probes.fig_families(lit, tmp_path / "c")
    made += paths
    table = pd.DataFrame({"model": ["s", "m", "s", "m"], "params": [1e4, 1e5] * 2, "benchmark": ["x", "x", "y", "y"],
                          "category": ["reasoning"] * 2 + ["knowledge"] * 2, "score": [1.0, 5.0, 0.0, 2.0]})
    made += probes.fig_family_probe(table, tmp_path / "f")
    assert sorted(p.name for p in made) == ["a.pdf", "a.png", "b.pdf", "b.png", "c.pdf", "c.png", "f.pdf", "f.png"]
    assert all(p.stat().st_size > 2000 for p in made)
    assert set(slopes["category"]) == {"knowledge", "reasoning"} and (slopes["n_sizes"] >= 2).all()

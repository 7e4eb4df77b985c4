"""vtkit.figures: the results loader, the figure data (fits recovered from synthetic curves, the
chance test) and the paper figures' files."""
import json
import math

import numpy as np
import pandas as pd
import pytest

from vtkit import figures
from vtkit.fits import fit_powerlaw, logistic

SIZES = [24208, 51488, 105072, 214080, 431712, 1019008]


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
    sat = figures.saturation_data(_runs())
    assert sat["source"] == "mixture" and sat["exposures"] == 100
    assert math.log10(sat["N50_reasoning"]) == pytest.approx(5.0, abs=0.05)
    assert math.log10(sat["N50_knowledge"]) == pytest.approx(math.log10(3e6), abs=0.05)
    assert sat["log10_N50_ratio"] == pytest.approx(math.log10(30), abs=0.08)
    assert sat["reasoning"]["fit"]["c"] == pytest.approx(0.9, abs=0.02)
    # knowledge and reasoning from separate runs
    sep = figures.saturation_data(_runs(modes=("knowledge", "reasoning")), source="auto")
    assert sep["source"] == "separate" and sep["N50_reasoning"] == pytest.approx(sat["N50_reasoning"], rel=0.01)
    # three sizes: the ceiling is fixed at 1; two: no fit, with the reason
    three = figures.saturation_data(_runs(sizes=[1e4, 1e5, 1e6]))
    assert three["reasoning"]["fit"]["ceiling_fixed"] and three["reasoning"]["fit"]["c"] == 1.0
    two = figures.saturation_data(_runs(sizes=[1e4, 1e6]))
    assert not two["knowledge"]["fit"]["ok"] and "needs >= 3" in two["knowledge"]["fit"]["reason"]
    assert math.isnan(two["log10_N50_ratio"])
    # accuracies no better than guessing the residue (1/23 on 64 problems) get no reasoning fit
    guess = _runs().assign(acc_chance=1 / 23, n_eval=64, acc_id=[0.02, 0.05, 0.03, 0.06, 0.08, 0.05])
    g = figures.saturation_data(guess)
    assert not g["reasoning"]["fit"]["ok"] and "beats chance" in g["reasoning"]["fit"]["reason"]
    assert g["knowledge"]["fit"]["ok"] and not g["reasoning"]["above_chance"].any()
    assert figures.saturation_data(_runs().assign(acc_chance=1 / 23, n_eval=64))["reasoning"]["fit"]["ok"]
    # a curve still rising steeply at the largest size has no ceiling in [0, 1] to report
    steep = _runs(knowledge_n50=1e9)
    steep["knowledge_fraction"] = np.asarray(SIZES, float) ** 0.5 / 2000
    assert not figures.saturation_data(steep)["knowledge"]["fit"]["ok"]
    assert figures.binomial_tail(0, 10, 0.3) == pytest.approx(1.0)
    assert figures.binomial_tail(10, 10, 0.5) == pytest.approx(0.5**10)
    with pytest.raises(ValueError, match="needs mode 'knowledge' and 'reasoning'"):
        figures.saturation_data(_runs(modes=("knowledge",)))


def test_bits_data_averages_seeds():
    data = figures.bits_data(_runs(seeds=(0, 1), exposures=(10, 100)))
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
    got = figures.load_results(tmp_path / "results.parquet")
    assert len(got) == 2 and (got["mode"] == "mixture").all() and got["params"].dtype.kind in "if"
    assert list(got["model"]) == ["m51488", "m105072"]  # the table's own values win over config.json
    with pytest.raises(FileNotFoundError, match="vtkit sweep experiments/capacity_demo.yaml"):
        figures.load_results(tmp_path / "missing.parquet")
    pd.DataFrame({"run_id": ["a"], "status": ["ok"]}).to_csv(tmp_path / "r.csv", index=False)
    with pytest.raises(ValueError, match="no capacity-probe metrics"):
        figures.load_results(tmp_path / "r.csv")


def test_family_slopes_per_decade():
    lit = pd.DataFrame({"model": list("abcd"), "family": ["f"] * 4, "params_b": [1, 10, 1, 10],
                        "benchmark": ["K", "K", "R", "R"], "category": ["knowledge"] * 2 + ["reasoning"] * 2,
                        "score": [20, 60, 70, 80]})
    s = figures.family_slopes(lit).set_index("benchmark")
    assert s.loc["K", "slope_per_decade"] == pytest.approx(40) and s.loc["R", "slope_per_decade"] == pytest.approx(10)
    assert s.loc["K", "small_over_large"] == pytest.approx(1 / 3)


def test_figures_are_written(tmp_path):
    runs = _runs(seeds=(0, 1), modes=("knowledge", "mixture", "reasoning"), exposures=(10, 100))
    runs.loc[runs["params"] == SIZES[0], "bits"] = 0.0  # a run that stored nothing is drawn, not dropped
    made = [*figures.fig_bits(runs, tmp_path / "a")[0], *figures.fig_saturation(runs, tmp_path / "b.png")[0]]
    lit = figures.load_literature()
    paths, slopes = figures.fig_families(lit, tmp_path / "c")
    made += paths
    assert sorted(p.name for p in made) == ["a.pdf", "a.png", "b.pdf", "b.png", "c.pdf", "c.png"]
    assert all(p.stat().st_size > 2000 for p in made)
    assert set(slopes["category"]) == {"knowledge", "reasoning"} and (slopes["n_sizes"] >= 2).all()


def test_fig_bits_and_saturation_return_their_data(tmp_path):
    runs = _runs(exposures=(10, 100))
    paths, data = figures.fig_bits(runs, tmp_path / "a")
    assert [p.name for p in paths] == ["a.pdf", "a.png"]
    pd.testing.assert_frame_equal(data, figures.bits_data(runs))
    paths, sat = figures.fig_saturation(runs, tmp_path / "b", exposures=10)
    assert sat["exposures"] == 10 and sat["knowledge"]["fit"]["ok"]
    assert sat["N50_knowledge"] == pytest.approx(figures.saturation_data(runs, exposures=10)["N50_knowledge"])
    with pytest.raises(ValueError, match="no mixture runs at exposures=7"):
        figures.saturation_data(runs, exposures=7)
    with pytest.raises(ValueError, match="no knowledge or mixture runs"):
        figures.bits_data(_runs(modes=("reasoning",)))


def test_above_chance_is_a_one_sided_binomial_test():
    # 10 of 10 at chance 1/2: p = 2^-10 < 0.01; 6 of 10: p ~ 0.38; the test is per point
    got = figures.above_chance([1.0, 0.6, 0.0], [10, 10, 10], 0.5)
    assert got.tolist() == [True, False, False]
    assert figures.above_chance(0.3, 1000, 0.25).tolist() == [True]  # 300 of 1000 vs 250 expected
    assert figures.binomial_tail(3, 5, 0.5) == pytest.approx((10 + 5 + 1) / 32)


def test_fit_needs_three_sizes_and_a_ceiling_in_range():
    N = np.repeat([1e4, 1e5, 1e6, 1e7], 2)
    ok = figures._fit(N, logistic(N, 0.8, 2.0, 1e5), "x")
    assert ok["ok"] and ok["c"] == pytest.approx(0.8, abs=0.02) and ok["N50"] == pytest.approx(1e5, rel=0.05)
    assert not figures._fit([1, 2], [0.1, 0.2], "x")["ok"]
    assert figures.ALLEN_ZHU_LI == {1000: 2.0, 100: 1.0} and "capacity_demo.yaml" in figures.DEMO_COMMAND


# ---------------------------------------------------------------- the hypothesis figure (b)


def _capacity_runs(seeds=(0, 1), r_n50=8e4, r_k=3.0, r_c=0.9, bpp=1.0, ratio=2.0, sizes=SIZES[:5]):
    """knowledge runs storing bpp bits/param of 4 bits/param offered; reasoning runs whose accuracy
    above chance (1/7) follows a logistic with a known midpoint and ceiling."""
    rows = []
    for s in seeds:
        for N in sizes:
            acc = 1 / 7 + (1 - 1 / 7) * float(logistic(N, r_c, r_k, r_n50))
            common = {"params": N, "seed": s, "exposures": 100, "status": "ok", "acc_chance": 1 / 7, "n_eval": 128,
                      "out_dir": "/nowhere"}
            rows.append({**common, "mode": "knowledge", "bits": bpp * N * (1 + 0.01 * s), "bits_se": 0.01 * N,
                         "bits_offered": ratio * 2 * N, "capacity_ratio": ratio, "max_bits": ratio * 2 * N,
                         "acc_id": 1 / 7, "acc_ood": 1 / 7, "knowledge_fraction": bpp / (2 * ratio)})
            rows.append({**common, "mode": "reasoning", "bits": 0.0, "bits_se": 0.0, "bits_offered": 0.0,
                         "capacity_ratio": 0.0, "max_bits": 1.0, "acc_id": acc, "acc_ood": 0.2, "knowledge_fraction": 0.0})
    return pd.DataFrame(rows)


def test_hypothesis_fits_recover_known_half_points():
    h = figures.hypothesis_data(_capacity_runs(), n_boot=60)
    r, k = h["reasoning"], h["knowledge"]
    assert h["source"] == "separate" and h["exposures"] == 100 and h["K"] == pytest.approx(4 * SIZES[4])
    assert r["fit"]["ok"] and r["ceiling"] == pytest.approx(0.9, abs=0.01)
    assert r["N50"] == pytest.approx(8e4, rel=0.03) and r["N90"] == pytest.approx(8e4 * 9 ** (1 / 3), rel=0.05)
    assert r["N50_lo"] <= r["N50"] <= r["N50_hi"] and r["N90_lo"] <= r["N90"] <= r["N90_hi"]
    assert r["y"].max() == pytest.approx(1.0, abs=0.1)  # the fraction of its own ceiling
    # knowledge: 1 bit/param -> doubles per doubling; half the largest set is far beyond the sizes
    assert k["doubling_factor"] == pytest.approx(2.0, abs=0.01) and k["slope"] == pytest.approx(1.0, abs=0.01)
    assert k["bits_per_doubling"] == pytest.approx(SIZES[4] * 1.005 / 2, rel=0.01)
    assert k["fit"]["ok"] and k["N50"] > SIZES[4] and k["y"][-1] == pytest.approx(0.25, rel=0.01)
    assert k["doubling_factor_lo"] <= 2.0 <= k["doubling_factor_hi"]
    assert "Reasoning reaches 50% of its ceiling" in h["statement"] and "consistent with the hypothesis" in h["statement"]


def test_hypothesis_says_what_it_cannot_measure():
    runs = _capacity_runs()
    # knowledge outside the capacity regime (too few facts offered) is hollow and left out of the fit
    runs.loc[(runs["mode"] == "knowledge") & (runs["params"] > SIZES[1]), "capacity_ratio"] = 0.5
    h = figures.hypothesis_data(runs, n_boot=20)
    assert h["knowledge"]["solid"].tolist() == [True, True, False, False, False]
    assert not h["knowledge"]["fit"]["ok"] and "needs >= 3" in h["knowledge"]["fit"]["reason"]
    assert "3 of 5 knowledge sizes are not in the capacity regime" in h["statement"]
    assert "Without saturation fits, from the points" in h["statement"]   # no knowledge fit: the two-point reading
    # reasoning at chance everywhere: no reasoning fit, and the statement says so
    flat = _capacity_runs()
    flat.loc[flat["mode"] == "reasoning", "acc_id"] = 1 / 7
    g = figures.hypothesis_data(flat, n_boot=20)
    assert not g["reasoning"]["fit"]["ok"] and "no size beats chance" in g["reasoning"]["fit"]["reason"]
    # a non-monotone reasoning curve with no ceiling in (0, 1]: refitted with the ceiling fixed at 1
    bumpy = _capacity_runs()
    bumpy.loc[bumpy["mode"] == "reasoning", "acc_id"] = np.tile([0.6, 0.35, 0.9, 0.96, 0.97], 2)
    b = figures.hypothesis_data(bumpy, n_boot=20)
    assert b["reasoning"]["fit"]["ok"] and b["reasoning"]["fit"]["ceiling_fixed"] and b["reasoning"]["ceiling"] == 1.0
    assert "its fixed ceiling" in b["statement"]
    assert math.isnan(g["reasoning"]["N50"]) and "Reasoning: no fit" in g["statement"]
    # knowledge filling its set before reasoning reaches its ceiling: reported, not read as the hypothesis
    early = _capacity_runs(r_n50=3e5)
    kn = early["mode"] == "knowledge"
    early.loc[kn, "bits"] = [float(logistic(N, 1.0, 3.0, 4e4)) * 4 * SIZES[4] for N in early.loc[kn, "params"]]
    e = figures.hypothesis_data(early, n_boot=20)
    assert e["knowledge"]["N50"] == pytest.approx(4e4, rel=0.05) and e["reasoning"]["N90"] > 3e5
    assert "not what the hypothesis predicts" in e["statement"]


def test_two_point_reading_of_the_demo_slice():
    """The demo's slice: knowledge at two capacity-regime sizes, reasoning at two larger sizes: no fits,
    a reading from the points that holds only when reasoning is near its ceiling and knowledge grows
    in proportion to parameters."""
    runs = _capacity_runs(seeds=(0,), sizes=SIZES[1:5])
    runs = runs[((runs["mode"] == "knowledge") & (runs["params"] <= SIZES[2]))
                | ((runs["mode"] == "reasoning") & (runs["params"] >= SIZES[3]))]
    h = figures.hypothesis_data(runs.copy(), n_boot=20)
    assert not h["reasoning"]["fit"]["ok"] and not h["knowledge"]["fit"]["ok"]
    assert h["knowledge"]["doubling_factor"] == pytest.approx(2.0, rel=0.05)   # 1 bit/param
    m = figures.hypothesis_metrics(h)
    assert m["reasoning_sizes_above_chance"] == 2 and m["knowledge_sizes_in_regime"] == 2
    assert m["reasoning_frac_largest"] == pytest.approx(h["reasoning"]["y"][-1]) and m["reasoning_frac_largest"] > 0.8
    assert "Reading: the hypothesis' shape" in h["statement"]
    # knowledge that stops growing (the same bits at both sizes): not read as the hypothesis
    flat = runs.copy()
    flat.loc[flat["mode"] == "knowledge", "bits"] = SIZES[1]
    f = figures.hypothesis_data(flat, n_boot=20)
    assert f["knowledge"]["doubling_factor"] < 1.8 and "not the hypothesis' shape" in f["statement"]
    # reasoning at chance everywhere: the curves cannot be compared
    chance = runs.copy()
    chance.loc[chance["mode"] == "reasoning", "acc_id"] = 1 / 7
    assert "cannot be compared" in figures.hypothesis_data(chance, n_boot=20)["statement"]


def test_hypothesis_figure_from_mixture_runs(tmp_path):
    runs = _capacity_runs(seeds=(0,))
    runs["mode"] = "mixture"
    mixed = runs.groupby("params", as_index=False).agg({**{c: "first" for c in runs.columns if c != "params"},
                                                        "bits": "max", "acc_id": "max"})
    paths, h = figures.fig_hypothesis(mixed, tmp_path / "b", n_boot=20)
    assert h["source"] == "mixture" and [p.name for p in paths] == ["b.pdf", "b.png"]
    assert all(p.stat().st_size > 2000 for p in paths)
    with pytest.raises(ValueError, match="needs mode"):
        figures.hypothesis_data(_capacity_runs().query("mode == 'knowledge'"))


# ---------------------------------------------------------------- the figures stage's metrics on known values


def test_bits_metrics_per_exposure_and_mode():
    runs = _runs(sizes=SIZES[:3], seeds=(0, 1), exposures=(10, 100))
    bits = figures.bits_data(runs)
    m = figures.bits_metrics(runs, bits)
    assert m["n_runs"] == 12 and m["n_sizes"] == 3
    # _runs: fraction logistic(N) + 0.002 x seed of 20,000 bits; the seed mean adds 0.001
    per_param = [(float(logistic(N, 1.0, 1.5, 3e6)) + 0.001) * 20_000 / N for N in SIZES[:3]]
    assert m["bits_per_param_max_e100_mixture"] == pytest.approx(max(per_param))
    assert m["fraction_max_e10_mixture"] == pytest.approx(float(logistic(SIZES[2], 1.0, 1.5, 3e6)) + 0.001)
    # bits = 1 bit/param exactly: the power-law slope is 1; one size with bits > 0 gives no slope (NaN, a reason)
    exact = runs.assign(bits=runs["params"].astype(float))
    got = figures.bits_metrics(exact, figures.bits_data(exact))
    assert got["bits_slope_e10_mixture"] == pytest.approx(1.0) and got["bits_slope_n_sizes_e10_mixture"] == 3
    one = runs.assign(bits=np.where(runs["params"] == SIZES[0], 5.0, 0.0))
    got = figures.bits_metrics(one, figures.bits_data(one))
    assert math.isnan(got["bits_slope_e100_mixture"]) and got["bits_slope_n_sizes_e100_mixture"] == 1
    assert "a slope needs >= 2" in figures.bits_slopes(figures.bits_data(one))["reason"].iloc[0]


def test_bits_slope_is_fitted_over_capacity_regime_sizes_only():
    # three sizes store 1 bit/param (slope 1) in the capacity regime; a fourth, larger size is data-limited
    # (capacity_ratio 0.5: a quarter of its ceiling offered) and stores only what it was given
    sizes = SIZES[:4]
    runs = _runs(sizes=sizes, seeds=(0, 1)).assign(capacity_ratio=[2.0, 2.0, 2.0, 0.5] * 2)
    runs["bits"] = np.where(runs["capacity_ratio"] >= 2, runs["params"] * 1.0, 0.5 * 2 * SIZES[2])
    bits = figures.bits_data(runs)
    assert bits["in_regime"].tolist() == [True, True, True, False]
    assert bits["capacity_ratio"].tolist() == [2.0, 2.0, 2.0, 0.5]
    m = figures.bits_metrics(runs, bits)
    assert m["bits_slope_e100_mixture"] == pytest.approx(1.0) and m["bits_slope_n_sizes_e100_mixture"] == 3
    everything = fit_powerlaw(bits["params"], bits["bits"])["b"]   # the old fit, all four sizes
    assert everything < 0.8                                                    # flattened by the data-limited size
    row = figures.bits_slopes(bits).iloc[0]
    assert (row["tag"], row["n_sizes"], row["n_data_limited"], row["reason"]) == ("e100_mixture", 3, 1, "")
    # a seed below the threshold makes the size data-limited; two sizes left out of three: no slope, a reason
    few = runs.assign(capacity_ratio=[2.0, 2.0, 1.9, 0.5] * 2)
    few.loc[(few["params"] == SIZES[1]) & (few["seed"] == 1), "capacity_ratio"] = 1.99
    m = figures.bits_metrics(few, figures.bits_data(few))
    assert math.isnan(m["bits_slope_e100_mixture"]) and m["bits_slope_n_sizes_e100_mixture"] == 1
    reason = figures.bits_slopes(figures.bits_data(few))["reason"].iloc[0]
    assert "1 size(s) in the capacity regime" in reason and "3 of 4 data-limited" in reason
    # runs without the column count as in the regime (tables from before it existed)
    assert figures.bits_data(runs.drop(columns="capacity_ratio"))["in_regime"].all()


def test_hypothesis_metrics_flatten_the_fits_and_the_reading():
    h = figures.hypothesis_data(_capacity_runs(), n_boot=20)
    m = figures.hypothesis_metrics(h)
    assert m["fit_ok_reasoning"] is True and m["fit_ok_knowledge"] is True
    assert m["N50_reasoning"] == pytest.approx(8e4, rel=0.03) and m["N50_lo_reasoning"] == h["reasoning"]["N50_lo"]
    assert m["N90_hi_knowledge"] == h["knowledge"]["N90_hi"]
    assert m["knowledge_doubling_factor"] == pytest.approx(2.0, abs=0.01)
    assert m["knowledge_bits_per_doubling_lo"] == h["knowledge"]["bits_per_doubling_lo"]
    assert (m["hypothesis_source"], m["hypothesis_exposures"], m["knowledge_sizes_in_regime"]) == ("separate", 100, 5)
    assert m["knowledge_growth_n_sizes"] == 5
    assert m["reading"] == h["statement"] and "consistent with the hypothesis" in m["reading"]
    assert len(m) == 2 + 12 + 6 + 5 + 2   # + reasoning_sizes_above_chance, reasoning_frac_largest
    # one knowledge size left in the capacity regime: no growth per doubling, and the count says why
    runs = _capacity_runs()
    runs.loc[(runs["mode"] == "knowledge") & (runs["params"] > SIZES[0]), "capacity_ratio"] = 0.5
    m = figures.hypothesis_metrics(figures.hypothesis_data(runs, n_boot=20))
    assert m["knowledge_growth_n_sizes"] == 1 and m["knowledge_sizes_in_regime"] == 1
    assert math.isnan(m["knowledge_doubling_factor"])


def test_literature_metrics_average_the_slopes_per_category():
    lit = pd.DataFrame({"model": list("abcdef"), "family": ["f", "f", "g", "g", "f", "f"],
                        "params_b": [1, 10, 1, 10, 1, 10], "benchmark": ["K", "K", "K", "K", "R", "R"],
                        "category": ["knowledge"] * 4 + ["reasoning"] * 2, "score": [20, 60, 10, 30, 70, 80]})
    m = figures.literature_metrics(figures.family_slopes(lit))
    assert m == pytest.approx({"lit_slope_per_decade_knowledge": 30.0, "lit_small_over_large_knowledge": 1 / 3,
                               "lit_slope_per_decade_reasoning": 10.0, "lit_small_over_large_reasoning": 70 / 80})

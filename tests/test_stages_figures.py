"""vtkit.stages.figures: the three figures and their metrics from a results table whose answers are
known (capacity-regime runs with a known reasoning midpoint, vtkit/data's literature and a measured
family), and the settings."""
import json

import pandas as pd
import pytest
from test_figures import _capacity_runs

from vtkit.stages import base
from vtkit.stages import figures as stage


def _results(tmp_path):
    table = _capacity_runs().assign(bits_per_param=lambda d: d["bits"] / d["params"], model="m", run_id="r",
                                    stage="10_capacity_probe", error=None)
    table.to_parquet(tmp_path / "results.parquet", index=False)
    return str(tmp_path / "results.parquet")


def test_figures_stage_recovers_the_known_midpoint_and_draws_the_measured_family(tmp_path, capsys):
    measured = pd.DataFrame({"model": ["a", "b"], "family": "measured-here", "params_b": [1e-3, 1e-2],
                             "active_params_b": [1e-3, 1e-2], "benchmark": "countries", "category": "knowledge",
                             "score": [10.0, 30.0], "setting": "vtkit n=1 T=0.0", "source": "test", "verified": "yes"})
    measured.to_csv(tmp_path / "scores.csv", index=False)
    cfg = stage.Config.from_preset("tiny", seed=0, capacity_results=_results(tmp_path),
                                   family_results=str(tmp_path / "scores.csv"), overrides={"n_boot": 40})
    res = stage.run(cfg, tmp_path / "out")
    m = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert m["n_runs"] == 20 and m["n_sizes"] == 5 and m["knowledge_sizes_in_regime"] == 5
    assert m["fit_ok_reasoning"] and m["fit_ok_knowledge"] and m["hypothesis_source"] == "separate"
    assert m["N50_reasoning"] == pytest.approx(8e4, rel=0.03)          # the runs' reasoning midpoint
    assert m["N50_lo_reasoning"] <= m["N50_reasoning"] <= m["N50_hi_reasoning"]
    assert m["knowledge_doubling_factor"] == pytest.approx(2.0, abs=0.01)  # 1 bit/param: doubles per doubling
    assert m["bits_per_param_max_e100_knowledge"] == pytest.approx(1.005)   # seeds store 1.00 and 1.01 bits/param
    assert m["bits_slope_e100_knowledge"] == pytest.approx(1.0) and m["bits_slope_n_sizes_e100_knowledge"] == 5
    assert m["knowledge_growth_n_sizes"] == 5
    assert "bits_slope_e100_knowledge: 1.000 over 5 sizes in the capacity regime" in capsys.readouterr().out
    assert "consistent with the hypothesis" in m["reading"] and m["reading"] == res.hypothesis["statement"]
    row = res.slopes[res.slopes["family"] == "measured-here"].iloc[0]
    assert row["slope_per_decade"] == pytest.approx(20.0) and row["small_over_large"] == pytest.approx(1 / 3)
    assert {"lit_slope_per_decade_knowledge", "lit_slope_per_decade_reasoning"} <= set(m)
    for key, name in (("a", "fig_a_bits"), ("b", "fig_b_saturation"), ("c", "fig_c_families")):
        assert res.figures[key] == [tmp_path / "out" / f"{name}.pdf", tmp_path / "out" / f"{name}.png"]
        assert all(p.stat().st_size > 2000 for p in res.figures[key])


def test_a_slope_over_data_limited_sizes_is_not_fitted(tmp_path, capsys):
    table = pd.read_parquet(_results(tmp_path))
    table.loc[(table["mode"] == "knowledge") & (table["params"] > table["params"].min()), "capacity_ratio"] = 0.9
    table.to_parquet(tmp_path / "limited.parquet", index=False)
    cfg = stage.Config.from_preset("tiny", seed=0, capacity_results=str(tmp_path / "limited.parquet"),
                                   overrides={"n_boot": 10})
    stage.run(cfg, tmp_path / "out")
    m = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert m["bits_slope_e100_knowledge"] is None and m["bits_slope_n_sizes_e100_knowledge"] == 1   # NaN -> null
    assert m["knowledge_doubling_factor"] is None and m["knowledge_growth_n_sizes"] == 1
    assert "bits_slope_e100_knowledge: none (e100_knowledge: 1 size(s) in the capacity regime" in capsys.readouterr().out


def test_figures_settings_and_a_missing_results_table(tmp_path):
    for preset in ("tiny", "small", "paper"):
        cfg = stage.Config.from_preset(preset)
        assert cfg.capacity_results.endswith("results.parquet") and cfg.n_boot >= 100
    with pytest.raises(base.ConfigError, match="did you mean 'exposures'"):
        stage.Config.from_preset("tiny", overrides={"exposure": 100})
    cfg = stage.Config.from_preset("tiny", capacity_results=str(tmp_path / "none.parquet"))
    with pytest.raises(FileNotFoundError, match="vtkit sweep experiments/capacity_demo.yaml"):
        stage.run(cfg, tmp_path / "out")

"""The demo's notebooks that the chain does not read, executed end to end at the tiny preset through
`vtkit sweep`: the capacity slice (experiments/capacity_demo.yaml), then quickstart and family, then
the figures stage on the slice's results. Runs on the other pytest-xdist worker than the chain of
tests/test_notebooks.py (tests/notebook_runs.py). Marked `notebook` (`make test-fast` skips them).
"""
import json

import pandas as pd
import pytest

from notebook_runs import ROOT, SIDE, run_pipeline, stage, table
from vtkit import experiment, sweep

pytestmark = [pytest.mark.notebook, pytest.mark.timeout(3600)]


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    """The capacity slice, the side stages (quickstart, family) and the figures for seed 0."""
    out = tmp_path_factory.mktemp("runs")
    capacity = sweep.sweep(experiment.load(ROOT / "experiments" / "capacity_demo.yaml"), out_root=out, jobs=1,
                           progress=False)
    side = run_pipeline(out, "demo-side", ("quickstart", *SIDE))
    figures = run_pipeline(out, "demo-figures", ["figures"],
                           **{"figures.capacity_results": str(capacity.exp_dir / "results.parquet")})
    return {"capacity": capacity, "table": pd.concat([side, figures, table(capacity)])}


def test_quickstart_learns_the_task(demo):
    d, m = stage(demo["table"], "quickstart")
    assert (d / "model" / "config.json").exists() and (d / "quickstart.png").exists()
    assert m["greedy_acc_before"] <= 0.05
    assert m["greedy_acc"] >= 0.7, m  # seeds 0-2 reach 0.91-1.00 (docs/LOG.md, "Quickstart recipe")
    assert m["greedy_acc_lo"] <= m["greedy_acc"] <= m["greedy_acc_hi"]
    assert m["train_loss_last"] < m["train_loss_first"] / 3
    assert m["pass@1"] <= m["pass@2"] <= m["pass@4"] <= m["pass@8"]
    cfg = json.loads((d / "config.json").read_text())
    assert cfg["preset"] == "tiny" and cfg["seed"] == 0
    assert "torch" in json.loads((d / "runinfo.json").read_text())["packages"]


def test_family_probe_scores_every_model(demo):
    d, m = stage(demo["table"], "family")
    assert (d / "fig_family.png").exists() and (d / "family.csv").exists()
    assert m["n_models"] >= 2 and m["n_benchmarks"] >= 2
    # every score is 100 x the share of its completions that are right, regraded here against the
    # benchmark items rebuilt from the run's settings (known-answer cases: tests/test_stages_family.py)
    from vtkit import evaluation, family, runinfo
    cfg = json.loads((d / "config.json").read_text())
    benches = family.family_benchmarks(cfg["reasoning"], cfg["knowledge"], n_items=cfg["n_items"], seed=cfg["seed"],
                                       paths=cfg["paths"], math_depth=cfg["math_depth"])
    records = {(name, r["id"]): r for name, (_, recs) in benches.items() for r in recs}
    samples = pd.DataFrame(runinfo.read_jsonl(d / "samples.jsonl"))
    samples["regraded"] = [evaluation.grade_one(records[(s["benchmark"], s["id"])], s["text"])
                           for s in samples.to_dict("records")]
    assert (samples["regraded"] == samples["correct"]).all()
    scores = 100 * samples.groupby(["benchmark", "model"])["regraded"].mean()
    assert {f"score/{b}/{mo}": v for (b, mo), v in scores.items()} == pytest.approx(
        {k: v for k, v in m.items() if k.startswith("score/")})
    assert len(scores) == m["n_models"] * m["n_benchmarks"] and len(samples) == len(scores) * cfg["n_items"] * cfg["n_samples"]


def test_figures_from_the_capacity_slice(demo):
    d, m = stage(demo["table"], "figures")
    for name in ("fig_a_bits", "fig_b_saturation", "fig_c_families"):
        assert (d / f"{name}.pdf").exists() and (d / f"{name}.png").exists(), name
    runs = pd.read_parquet(demo["capacity"].exp_dir / "results.parquet")
    assert len(runs) == 4 and set(runs["status"]) == {"ok"} and runs["params"].nunique() == 4
    assert (runs["bits_per_param"] >= 0).all() and runs["acc_id"].between(0, 1).all()
    # issue 26, item 4: each curve of the hypothesis figure has two points that mean something
    know, reason = runs[runs["mode"] == "knowledge"], runs[runs["mode"] == "reasoning"]
    assert (know["capacity_ratio"] >= 2).sum() == 2 == m["knowledge_sizes_in_regime"]
    assert (reason["acc_id"] > reason["acc_chance"] + 0.1).sum() == 2 == m["reasoning_sizes_above_chance"], reason["acc_id"]
    assert "Reading: the hypothesis' shape" in m["reading"], m["reading"]   # reasoning near its ceiling, knowledge ~ params
    # issue 26, 0(e): unclamped bits and non-embedding parameters beside the others; slopes over regime sizes only
    assert runs[["bits_stored_unclamped", "params_nonembedding"]].notna().all().all()
    assert (runs["params_nonembedding"] < runs["params"]).all()
    in_regime = runs.loc[runs["capacity_ratio"] >= 2, "params"].nunique()
    counts = [v for k, v in m.items() if k.startswith("bits_slope_n_sizes_")]
    assert counts and all(0 <= v <= in_regime for v in counts)

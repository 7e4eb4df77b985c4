"""Every notebook executed end to end at the tiny preset, once, through the demo pipeline.

The session fixture runs `experiments/demo.yaml` for one seed with `vtkit sweep` (so the
runner, parameter checks and stage chaining are exercised on the real notebooks); each test
then checks one stage's outputs. Marked `notebook` (`make test-fast` skips them).
"""
import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from vtkit import experiment, sweep

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.notebook, pytest.mark.timeout(3600)]  # the fixture runs the whole demo


def _experiment(name: str, **changes):
    spec = yaml.safe_load((ROOT / "experiments" / f"{name}.yaml").read_text())
    for key, value in changes.items():
        spec[key] = {**spec.get(key, {}), **value}
    return experiment.from_dict(spec, base_dir=ROOT)


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    """`make demo` for one seed: the capacity slice, then the pipeline (figures read the slice)."""
    out = tmp_path_factory.mktemp("runs")
    capacity = sweep.sweep(_experiment("capacity_demo"), out_root=out, jobs=2, progress=False)
    results = capacity.exp_dir / "results.parquet"
    exp = _experiment("demo", grid={"seed": [0]}, parameters={"figures.capacity_results": str(results)})
    result = sweep.sweep(exp, out_root=out, jobs=1, progress=False)
    table = pd.concat([pd.read_parquet(result.exp_dir / "results.parquet"), pd.read_parquet(results)])
    return {"result": result, "capacity": capacity, "table": table}


def stage(demo, name) -> tuple[Path, dict]:
    row = demo["table"][demo["table"]["stage"] == name].iloc[0]
    assert row["status"] == "ok", f"stage {name} failed: {row['error']}\nsee {row['out_dir']}/log.txt"
    d = Path(row["out_dir"])
    return d, json.loads((d / "metrics.json").read_text())


def test_every_notebook_declares_the_kernel_and_has_no_outputs():
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        data = json.loads(nb.read_text())
        assert data["metadata"]["kernelspec"]["name"] == "vtkit", nb.name
        cells = [c for c in data["cells"] if c["cell_type"] == "code"]
        assert not any(c.get("outputs") or c.get("execution_count") for c in cells), f"{nb.name} has outputs"
        assert sum("parameters" in c.get("metadata", {}).get("tags", []) for c in cells) == 1, nb.name


def test_quickstart_learns_the_task(demo):
    d, m = stage(demo, "quickstart")
    assert (d / "model" / "config.json").exists() and (d / "quickstart.png").exists()
    assert m["accuracy_before"] <= 0.05
    assert m["accuracy"] >= 0.3, m  # seeded floor: "clearly non-trivial" held-out accuracy
    assert m["train_loss_last"] < m["train_loss_first"] / 3
    assert m["pass@1"] <= m["pass@2"] <= m["pass@4"] <= m["pass@8"]
    cfg = json.loads((d / "config.json").read_text())
    assert cfg["preset"] == "tiny" and cfg["seed"] == 0
    assert "torch" in json.loads((d / "runinfo.json").read_text())["packages"]


def test_evaluate_reads_the_quickstart_model(demo):
    d, m = stage(demo, "evaluate")
    q, qm = stage(demo, "quickstart")
    cfg = json.loads((d / "config.json").read_text())
    assert Path(cfg["model"]).resolve() == (q / "model").resolve()
    assert (d / "samples.jsonl").exists()
    assert 0.0 <= m["accuracy"] <= 1.0


def test_family_probe_scores_every_model(demo):
    d, m = stage(demo, "family")
    assert (d / "fig_family.png").exists() and (d / "family.csv").exists()
    assert m["n_models"] >= 2 and m["n_benchmarks"] >= 2
    assert all(0.0 <= v <= 100.0 for k, v in m.items() if k.startswith("score/"))


def test_figures_from_the_capacity_slice(demo):
    d, m = stage(demo, "figures")
    for name in ("fig_a_bits", "fig_b_saturation", "fig_c_families"):
        assert (d / f"{name}.pdf").exists() and (d / f"{name}.png").exists(), name
    runs = pd.read_parquet(demo["capacity"].exp_dir / "results.parquet")
    assert len(runs) == 4 and set(runs["status"]) == {"ok"} and runs["params"].nunique() == 4
    assert (runs["bits_per_param"] >= 0).all() and runs["acc_id"].between(0, 1).all()

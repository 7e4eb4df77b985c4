"""The demo's notebooks as the notebook tests run them (tests/test_notebooks.py: the chain;
tests/test_notebooks_side.py: the capacity slice, the figures, quickstart and family).

The two files run on the two pytest-xdist workers side by side (tests/conftest.py puts them first
in the collection and `make test` keeps that order), so the chain has a core of its own: `make
demo` for one seed, split where the demo's stages do not read each other.
"""
import json
from pathlib import Path

import pandas as pd
import yaml

from vtkit import experiment, sweep

ROOT = Path(__file__).resolve().parents[1]
SIDE = ("family",)  # demo stages that neither read nor feed another stage (besides figures)
QUICKSTART = {"name": "quickstart", "notebook": "notebooks/00_quickstart.ipynb"}  # experiments/quickstart.yaml, not the demo


def demo_spec() -> tuple[dict, dict]:
    """experiments/demo.yaml and its stages by name (with the quickstart of experiments/quickstart.yaml),
    checked for what the split relies on: figures last, the side stages neither read nor fed."""
    spec = yaml.safe_load((ROOT / "experiments" / "demo.yaml").read_text())
    stages = {st["name"]: st for st in spec["pipeline"]}
    assert list(stages)[-1] == "figures" and all(not stages[n].get("parameters") for n in SIDE)
    assert not any(f"stages.{n}." in json.dumps(spec["pipeline"]) for n in SIDE)
    quick = yaml.safe_load((ROOT / "experiments" / "quickstart.yaml").read_text())
    assert quick["notebook"] == QUICKSTART["notebook"] and quick["parameters"] == spec["parameters"]
    return spec, {**stages, "quickstart": QUICKSTART}


def run_pipeline(out, name: str, names, **params):
    """`vtkit sweep` of the demo's stages `names` for seed 0, one job, into `out`; its results table."""
    spec, stages = demo_spec()
    heads = {s: m for s, m in spec["report"]["headline"].items() if s in names}  # only stages it runs
    exp = experiment.from_dict({**spec, "name": name, "grid": {"seed": [0]}, "jobs": 1,
                                "parameters": {**spec["parameters"], **params},
                                "report": {"headline": heads} if heads else {},
                                "pipeline": [stages[n] for n in names]}, base_dir=ROOT)
    return table(sweep.sweep(exp, out_root=out, jobs=1, progress=False))


def table(result) -> pd.DataFrame:
    return pd.read_parquet(result.exp_dir / "results.parquet")


def stage(runs: pd.DataFrame, name) -> tuple[Path, dict]:
    """(out_dir, metrics) of stage `name` in a results table; fails with the stage's log when it failed."""
    row = runs[runs["stage"] == name].iloc[0]
    assert row["status"] == "ok", f"stage {name} failed: {row['error']}\nsee {row['out_dir']}/log.txt"
    d = Path(row["out_dir"])
    return d, json.loads((d / "metrics.json").read_text())

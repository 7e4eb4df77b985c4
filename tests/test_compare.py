"""`vtkit compare`: paired differences by seed from a results table, checked against scipy by hand.

The synthetic tables have the layout `vtkit sweep` writes (run_id, stage, the varied values and
parameters, status, error, wall_s, out_dir, then the metrics); one test runs a real sweep of a
fixture notebook and compares its table.
"""
import json
import math
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from vtkit import cli, compare, stats

A = {0: 0.60, 1: 0.55, 2: 0.70, 3: 0.65, 4: 0.58}      # arm a (lambda 0) per seed
B = {0: 0.62, 1: 0.60, 2: 0.69, 3: 0.70, 4: 0.61}      # arm b (lambda 1)
METRIC = "final/math/mean@4"


def _row(run_dir: Path, lam, seed, value, stage="rl", status="ok", **metrics):
    run_id = f"mgpo_lambda={lam}-seed={seed}-{stage}"
    out = run_dir / run_id / stage
    out.mkdir(parents=True, exist_ok=True)
    return {"run_id": run_id, "stage": stage, "mgpo_lambda": float(lam), "seed": seed, "preset": "tiny",
            "phases": '["math"]', "status": status, "error": None if status == "ok" else "boom", "wall_s": 1.0,
            "out_dir": str(out), METRIC: value if status == "ok" else None, **metrics}


def _table(run_dir: Path, rows: list[dict]) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_parquet(run_dir / "results.parquet", index=False)
    return run_dir


def _two_arms(tmp_path: Path, extra=()) -> Path:
    d = tmp_path / "mgpo"
    rows = [_row(d, 1, s, B[s]) for s in (3, 1, 4, 0, 2)] + [_row(d, 0, s, A[s]) for s in A]  # order does not matter
    return _table(d, rows + list(extra))


def _t_by_hand(values):
    v = np.asarray(values, dtype=float)
    lo, hi = sps.t.interval(0.95, len(v) - 1, loc=v.mean(), scale=sps.sem(v))
    return v.mean(), lo, hi


def test_paired_difference_is_b_minus_a_with_scipys_t_interval(tmp_path):
    d = _two_arms(tmp_path)
    c = compare.compare(d, METRIC, ["mgpo_lambda=0"], ["mgpo_lambda=1"])
    assert [p["seed"] for p in c.pairs] == [0, 1, 2, 3, 4]
    assert [p["diff"] for p in c.pairs] == pytest.approx([B[s] - A[s] for s in A])
    diff = [B[s] - A[s] for s in A]
    mean, lo, hi = _t_by_hand(diff)
    s = c.summary["diff"]
    assert (s["mean"], s["t_lo"], s["t_hi"]) == pytest.approx((mean, lo, hi), abs=1e-12)
    assert mean == pytest.approx(0.028) and s["df"] == 4 and s["n"] == 5
    assert s["n_positive"] == 4 and s["n_negative"] == 1
    assert s["sd"] == pytest.approx(np.std(diff, ddof=1))
    boot = stats.paired_bootstrap([A[k] for k in A], [B[k] for k in A], seed=0)
    assert (s["boot_lo"], s["boot_hi"]) == (boot["gain_lo"], boot["gain_hi"])
    assert s["boot_lo"] < mean < s["boot_hi"]
    # each arm's own mean and t interval
    m_a, lo_a, hi_a = _t_by_hand(list(A.values()))
    assert (c.summary["a"]["mean"], c.summary["a"]["t_lo"], c.summary["a"]["t_hi"]) == pytest.approx((m_a, lo_a, hi_a))
    # swapping the arms flips the sign and nothing else
    r = compare.compare(d, METRIC, {"mgpo_lambda": "1"}, {"mgpo_lambda": "0.0"})
    assert r.summary["diff"]["mean"] == pytest.approx(-mean)
    assert (r.summary["diff"]["t_lo"], r.summary["diff"]["t_hi"]) == pytest.approx((-hi, -lo))


def test_one_arm_summarises_the_metric_over_seeds(tmp_path):
    d = tmp_path / "abl"
    vals = {0: -0.052, 1: 0.042, 2: 0.012, 3: -0.031, 4: 0.021, 5: -0.031, 6: 0.022, 7: -0.021}
    rows = [{**_row(d, 0, s, 0.5, stage="sft"), METRIC: None} for s in vals]
    rows += [{**_row(d, 0, s, 0.5, stage="merge"), "merged_minus_last/mean/mean@4": v} for s, v in vals.items()]
    _table(d, rows)
    c = compare.compare(d, "merged_minus_last/mean/mean@4")
    assert c.stage == "merge" and not c.paired
    mean, lo, hi = _t_by_hand(list(vals.values()))
    v = c.summary["value"]
    assert (v["mean"], v["t_lo"], v["t_hi"]) == pytest.approx((mean, lo, hi), abs=1e-12)
    assert mean == pytest.approx(-0.00475) and v["df"] == 7   # the LOG's rounded per-seed values
    assert (v["boot_lo"], v["boot_hi"]) == stats.bootstrap_ci(list(vals.values()), seed=0)


def test_arms_spread_over_two_sweeps_pair_up_and_identical_reruns_count_once(tmp_path):
    d1 = _table(tmp_path / "first", [_row(tmp_path / "first", 0, s, A[s]) for s in (0, 1, 2)]
                + [_row(tmp_path / "first", 1, s, B[s]) for s in (0, 1, 2)])
    d2 = _table(tmp_path / "ext", [_row(tmp_path / "ext", 0, s, A[s]) for s in (2, 3, 4)]   # seed 2 ran twice
                + [_row(tmp_path / "ext", 1, s, B[s]) for s in (3, 4)])
    c = compare.compare([d1, d2], METRIC, ["mgpo_lambda=0"], ["mgpo_lambda=1"])
    assert [p["seed"] for p in c.pairs] == [0, 1, 2, 3, 4]
    assert any("seed=2" in n and "counted once" in n for n in c.notes)
    assert c.summary["diff"]["mean"] == pytest.approx(np.mean([B[s] - A[s] for s in A]))


def test_errors_name_the_problem(tmp_path):
    d = _two_arms(tmp_path, extra=[_row(tmp_path / "mgpo", 1, 5, None, status="failed")])
    with pytest.raises(compare.CompareError, match=r"unknown metric 'final/math/mean@8'.*final/math/mean@4"):
        compare.compare(d, "final/math/mean@8", ["mgpo_lambda=0"], ["mgpo_lambda=1"])
    with pytest.raises(compare.CompareError, match=r"arm b \(mgpo_lambda=2\) matches no finished row.*'0.0', '1.0'"):
        compare.compare(d, METRIC, ["mgpo_lambda=0"], ["mgpo_lambda=2"])
    with pytest.raises(compare.CompareError, match=r"no column 'mgpo_lambd'.*close: \['mgpo_lambda'\]"):
        compare.compare(d, METRIC, ["mgpo_lambd=0"], ["mgpo_lambda=1"])
    with pytest.raises(compare.CompareError, match="give both arms"):
        compare.compare(d, METRIC, ["mgpo_lambda=0"], None)
    with pytest.raises(compare.CompareError, match="results.parquet not found"):
        compare.compare(tmp_path / "nowhere", METRIC)
    # the failed run is named, not silently paired
    c = compare.compare(d, METRIC, ["mgpo_lambda=0"], ["mgpo_lambda=1"])
    assert any("mgpo_lambda=1-seed=5-rl (failed)" in n for n in c.notes)


def test_unpaired_seeds_are_named_and_can_be_dropped(tmp_path):
    d = tmp_path / "mgpo"
    rows = [_row(d, 0, s, A[s]) for s in (0, 1, 2, 3)] + [_row(d, 1, s, B[s]) for s in (0, 1, 2, 4)]
    _table(d, rows)
    with pytest.raises(compare.CompareError, match=r"unpaired seed: in arm a \(mgpo_lambda=0\) only: seed=3; "
                                                   r"in arm b \(mgpo_lambda=1\) only: seed=4; --drop-unpaired compares the 3"):
        compare.compare(d, METRIC, ["mgpo_lambda=0"], ["mgpo_lambda=1"])
    c = compare.compare(d, METRIC, ["mgpo_lambda=0"], ["mgpo_lambda=1"], drop_unpaired=True)
    assert [p["seed"] for p in c.pairs] == [0, 1, 2]
    assert any("seed=3" in n and "seed=4" in n for n in c.notes)


def test_rows_of_one_seed_with_different_values_are_refused(tmp_path):
    d = tmp_path / "dup"
    rows = [_row(d, 0, s, A[s]) for s in A] + [_row(d, 1, s, B[s]) for s in B]
    rows.append({**_row(d, 0, 0, 0.99), "run_id": "other-run", "preset": "small"})
    _table(d, rows)
    with pytest.raises(compare.CompareError, match=r"arm a: 2 rows for seed=0 with different values \[0.6, 0.99\]"):
        compare.compare(d, METRIC, ["mgpo_lambda=0"], ["mgpo_lambda=1"])
    c = compare.compare(d, METRIC, ["mgpo_lambda=0"], ["mgpo_lambda=1"], where=["preset=tiny"])
    assert c.summary["diff"]["n"] == 5
    # a range of seeds: the first three only
    c = compare.compare(d, METRIC, ["mgpo_lambda=0"], ["mgpo_lambda=1"], where=["preset=tiny", "seed=0..2"])
    assert [p["seed"] for p in c.pairs] == [0, 1, 2]


def test_step_reads_the_rl_curve(tmp_path):
    d = _two_arms(tmp_path)
    df = pd.read_parquet(d / "results.parquet")
    at32 = {}
    for _, r in df.iterrows():
        v = 0.5 + 0.01 * r["seed"] + (0.04 if r["mgpo_lambda"] == 1 else 0.0) + (0.003 * r["seed"] ** 2 if r["mgpo_lambda"] == 1 else 0)
        at32[(r["mgpo_lambda"], r["seed"])] = v
        steps = [{"phase": "math", "step": 0, "global_step": 0, "heldout_acc": 0.5},
                 {"phase": "math", "step": 16, "global_step": 16, "loss": 0.1},
                 {"phase": "math", "step": 32, "global_step": 32, "heldout_acc": v}]
        Path(r["out_dir"], "steps.jsonl").write_text("".join(json.dumps(s) + "\n" for s in steps))
    c = compare.compare(d, "heldout_acc", ["mgpo_lambda=0"], ["mgpo_lambda=1"], step=32)
    diffs = [at32[(1.0, s)] - at32[(0.0, s)] for s in range(5)]
    assert [p["diff"] for p in c.pairs] == pytest.approx(diffs)
    assert (c.summary["diff"]["t_lo"], c.summary["diff"]["t_hi"]) == pytest.approx(_t_by_hand(diffs)[1:])
    assert compare.compare(d, "heldout_acc", ["mgpo_lambda=0"], ["mgpo_lambda=1"], step=0).summary["diff"]["mean"] == 0
    with pytest.raises(compare.CompareError, match=r"unknown steps.jsonl metric 'heldout_ac'.*'heldout_acc'"):
        compare.compare(d, "heldout_ac", ["mgpo_lambda=0"], ["mgpo_lambda=1"], step=32)
    with pytest.raises(compare.CompareError, match="at global step 48"):
        compare.compare(d, "heldout_acc", ["mgpo_lambda=0"], ["mgpo_lambda=1"], step=48)


def test_cli_prints_the_table_and_writes_csv_json_figure(tmp_path, capsys):
    d = _two_arms(tmp_path)
    out = tmp_path / "cmp"
    rc = cli.main(["compare", str(d), "--metric", METRIC, "--a", "mgpo_lambda=0", "--b", "mgpo_lambda=1",
                   "--out", str(out), "--name", "mgpo"])
    text = capsys.readouterr().out
    assert rc == 0
    mean, lo, hi = _t_by_hand([B[s] - A[s] for s in A])
    assert f"b - a: mean {mean:+.4f} [{lo:+.4f}, {hi:+.4f}] (95% t interval over 5 pairs, 4 df)" in text
    assert "difference = b - a" in text and "paired bootstrap over pairs" in text
    assert "       3     0.6500     0.7000    +0.0500" in text
    for ext in ("csv", "json", "png", "pdf"):
        assert (out / f"mgpo.{ext}").stat().st_size > 0
    j = json.loads((out / "mgpo.json").read_text())
    assert j["difference"] == "b - a" and j["comparisons"][0]["summary"]["diff"]["t_hi"] == pytest.approx(hi)
    assert pd.read_csv(out / "mgpo.csv")["diff"].tolist() == pytest.approx([B[s] - A[s] for s in A])
    # --json prints the same summary
    assert cli.main(["compare", str(d), "--metric", METRIC, "--a", "mgpo_lambda=0", "--b", "mgpo_lambda=1",
                     "--out", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["comparisons"][0]["summary"]["diff"]["mean"] == pytest.approx(mean)
    # errors: exit 2, the message on stderr
    assert cli.main(["compare", str(d), "--metric", "final/math/mean@8", "--a", "mgpo_lambda=0",
                     "--b", "mgpo_lambda=1", "--out", str(out)]) == 2
    assert "close names: ['final/math/mean@4']" in capsys.readouterr().err


def test_compare_on_a_real_sweep(tmp_path, capsys):
    """A sweep of the metrics fixture (y = x^2 + 0.01 * random(seed)): y(x=2) - y(x=1) is 3 on every seed."""
    fixture = Path(__file__).parent / "fixtures" / "metrics.ipynb"
    exp = tmp_path / "exp.yaml"
    exp.write_text(f"name: sq\nnotebook: {fixture}\ngrid: {{x: [1.0, 2.0], seed: [0, 1]}}\njobs: 2\n")
    assert cli.main(["sweep", str(exp), "--out", str(tmp_path / "runs"), "--no-progress"]) == 0
    capsys.readouterr()
    c = compare.compare(tmp_path / "runs" / "sq", "y", ["x=1"], ["x=2"])
    assert [p["seed"] for p in c.pairs] == [0, 1]
    for p in c.pairs:
        random.seed(p["seed"])
        assert p["a"] == pytest.approx(1 + random.random() * 0.01)
        assert p["diff"] == pytest.approx(3.0)
    assert c.summary["diff"]["mean"] == pytest.approx(3.0) and math.isclose(c.summary["diff"]["sd"], 0, abs_tol=1e-12)


def test_arms_can_select_inside_a_dict_parameter(tmp_path):
    """A sweep stores dict parameters (overrides) as JSON text; `overrides.lr_schedule=cosine` reads inside."""
    d = tmp_path / "sched"
    base = {"n_prompts": {"math": 256}}
    rows = [{**_row(d, 1, s, A[s]), "run_id": f"const-{s}", "overrides": json.dumps({**base, "lr_schedule": "constant"})}
            for s in A]
    rows += [{**_row(d, 1, s, B[s]), "run_id": f"cos-{s}", "overrides": json.dumps({**base, "lr_schedule": "cosine"})}
             for s in B]
    rows += [{**_row(d, 1, s, 0.1), "run_id": f"g16-{s}", "overrides": json.dumps({**base, "num_generations": 16})}
             for s in B]
    _table(d, rows)
    c = compare.compare(d, METRIC, ["overrides.lr_schedule=constant"], ["overrides.lr_schedule=cosine"])
    assert c.summary["diff"]["mean"] == pytest.approx(np.mean([B[s] - A[s] for s in A]))
    # a key the dict lacks reads as none; a whole dict matches as YAML
    c = compare.compare(d, METRIC, ["overrides.num_generations=none", "overrides.lr_schedule=cosine"],
                        ["overrides={n_prompts: {math: 256}, num_generations: 16}"])
    assert [p["b"] for p in c.pairs] == [0.1] * 5 and [p["a"] for p in c.pairs] == [B[s] for s in B]
    with pytest.raises(compare.CompareError, match=r"overrides.lr_schedule takes \['constant', 'cosine'\]"):
        compare.compare(d, METRIC, ["overrides.lr_schedule=linear"], ["overrides.lr_schedule=cosine"])

"""The analysis scripts under scripts/ (the LOG's pooled numbers and docs/figures), on synthetic runs.

Tables and per-item files have the layout the stages and `vtkit sweep` write; the scripts that
train or sample run on fresh tiny models with a handful of items.
"""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from vtkit import models, stats

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"scripts_{name}", SCRIPTS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _table(run_dir: Path, rows: list[dict]) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_parquet(run_dir / "results.parquet", index=False)
    return run_dir


def _stage(run_dir: Path, run_id: str, stage: str, seed: int, **cols) -> dict:
    out = run_dir / run_id / stage
    out.mkdir(parents=True, exist_ok=True)
    return {"run_id": run_id, "stage": stage, "seed": seed, "preset": "tiny", "status": "ok", "error": None,
            "wall_s": 1.0, "out_dir": str(out), **cols}


def test_merge_ablation_groups_and_differences(tmp_path, capsys):
    mod = load("merge_ablation")
    rng = np.random.default_rng(3)
    rows, acc = [], {}
    for s in range(5):
        rid = f"seed={s}"
        rows.append(_stage(tmp_path / "abl", rid, "sft", s))
        m = {}
        for model in ("merged", "last", "best_single"):
            for g in ("math/add", "code"):
                acc[(model, g, s)] = m[f"{model}/{g}/mean@4"] = float(rng.uniform(0, 1))
            m[f"{model}/mean/mean@4"] = (m[f"{model}/math/add/mean@4"] + m[f"{model}/code/mean@4"]) / 2
        for base in ("last", "best_single"):
            m[f"merged_minus_{base}/mean/mean@4"] = m["merged/mean/mean@4"] - m[f"{base}/mean/mean@4"]
        rows.append(_stage(tmp_path / "abl", rid, "merge", s, **m))
    d = _table(tmp_path / "abl", rows)
    table = mod.group_table([d])
    vals = [acc[("last", "code", s)] for s in range(5)]
    lo, hi = sps.t.interval(0.95, 4, loc=np.mean(vals), scale=sps.sem(vals))
    assert table["last"]["code"][:3] == pytest.approx((np.mean(vals), max(0.0, lo), min(1.0, hi)))  # clipped to [0, 1]
    assert all(0 <= v[1] <= v[0] <= v[2] <= 1 for t in table.values() for v in t.values())
    assert list(table["merged"]) == ["math/add", "code", "mean"]
    out = tmp_path / "fig" / "merge_ablation"
    assert mod.main([str(d), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    j = json.loads(Path(f"{out}.json").read_text())
    diffs = [r["merged_minus_last/mean/mean@4"] for r in rows if r["stage"] == "merge"]
    got = j["differences"][0]["summary"]["value"]
    assert got["mean"] == pytest.approx(np.mean(diffs)) and got["n"] == 5
    assert (got["t_lo"], got["t_hi"]) == pytest.approx(sps.t.interval(0.95, 4, loc=np.mean(diffs), scale=sps.sem(diffs)))
    assert f"mean {np.mean(diffs):+.4f}" in text
    assert Path(f"{out}.png").stat().st_size > 10_000 and Path(f"{out}.pdf").exists()
    assert mod.main([str(d), "--k", "8", "--out", str(out)]) == 2   # no mean@8: a clear error
    assert "is K = 8?" in capsys.readouterr().err


def test_clr_pool_pools_problems_of_all_runs(tmp_path, capsys):
    mod = load("clr_pool")
    rng = np.random.default_rng(0)
    rows, items = [], []
    for s in range(3):
        row = _stage(tmp_path / "clr", f"seed={s}", "clr", s, verifier_acc=0.9, verifier_acc_lo=0.85,
                     verifier_acc_hi=0.94, verifier_recall_valid=1.0, verifier_recall_invalid=0.8,
                     valid_rate_correct_traj=0.36, valid_rate_wrong_traj=0.29)
        rows.append(row)
        with open(Path(row["out_dir"]) / "clr_items.jsonl", "w") as f:
            for i in range(7 + s):     # runs of different sizes: every problem counts once
                sc = {f"{m}@{k}": float(rng.integers(0, 5)) / 4 for m in ("clr", "majority", "mean1") for k in (1, 4)}
                items.append(sc)
                f.write(json.dumps({"id": f"p{s}-{i}", "gold": "3", "scores": sc}) + "\n")
    d = _table(tmp_path / "clr", rows)
    runs, got = mod.load_items([d])
    assert len(runs) == 3 and len(got) == 24 == len(items)
    pooled = mod.pool(got, n_boot=500)
    r4 = next(r for r in pooled if r["K"] == 4)
    assert r4["n_problems"] == 24
    assert r4["clr"] == pytest.approx(np.mean([it["clr@4"] for it in items]))
    diff = stats.paired_bootstrap([it["majority@4"] for it in items], [it["clr@4"] for it in items], n_boot=500)
    assert (r4["clr_minus_majority"], r4["clr_minus_majority_lo"], r4["clr_minus_majority_hi"]) == \
        pytest.approx((diff["gain"], diff["gain_lo"], diff["gain_hi"]))
    assert (r4["mean1_lo"], r4["mean1_hi"]) == stats.bootstrap_ci([it["mean1@4"] for it in items], n_boot=500)
    out = tmp_path / "clr_vs_majority"
    assert mod.main([str(d), "--n-boot", "500", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "pooled over 24 problems of 3 runs" in text and "verifier 0.900 [0.850, 0.940]" in text
    assert f"{r4['clr_minus_majority']:+.3f} [{r4['clr_minus_majority_lo']:+.3f}" in text
    assert json.loads(Path(f"{out}.json").read_text())["pooled"][1]["K"] == 4
    assert Path(f"{out}.png").stat().st_size > 10_000


def test_rl_pool_pools_seed_problem_pairs():
    mod = load("rl_pool")
    per_run = {"s0": {"stem": {"before": [0.0, 0.5, 0.25], "after": [0.5, 0.5, 0.75]}},
               "s1": {"stem": {"before": [0.25, 0.0], "after": [0.0, 0.5]},
                      "code": {"before": [0.0], "after": [0.25]}}}
    p = mod.pool(per_run, n_boot=300)
    before, after = [0.0, 0.5, 0.25, 0.25, 0.0], [0.5, 0.5, 0.75, 0.0, 0.5]
    want = stats.paired_bootstrap(before, after, n_boot=300)
    assert p["stem"]["n_pairs"] == 5 and p["stem"]["gain"] == pytest.approx(np.mean(after) - np.mean(before))
    assert (p["stem"]["gain_lo"], p["stem"]["gain_hi"]) == (want["gain_lo"], want["gain_hi"])
    assert p["code"]["n_pairs"] == 1 and p["code"]["gain"] == pytest.approx(0.25)


def test_rl_pool_reevaluates_start_and_final_models(tmp_path, capsys):
    mod = load("rl_pool")
    start = tmp_path / "start"
    models.save(*models.load("tiny-25k", seed=0), start)
    rows = []
    for s in (0, 1):
        row = _stage(tmp_path / "rl", f"seed={s}", "rl", s)
        models.save(*models.load("tiny-25k", seed=10 + s), Path(row["out_dir"]) / "model")
        cfg = {"phases": ["math"], "tasks": {"math": {"difficulty": 1, "mod": 7, "subdomain": "add", "shuffle": False}},
               "n_heldout": {"math": 3}, "data_seed": 0, "max_completion_length": 12, "init_model": str(start)}
        (Path(row["out_dir"]) / "config.json").write_text(json.dumps(cfg))
        rows.append(row)
    d = _table(tmp_path / "rl", rows)
    found = mod.runs([d])
    r = mod.evaluate_run(found[0], samples=2, temperature=1.0, sampling_seed=1234)
    assert len(r["math"]["before"]) == len(r["math"]["after"]) == 3
    # the same problems and sampling seed: the start model scores the same in every run
    assert mod.evaluate_run(found[1], samples=2, temperature=1.0, sampling_seed=1234)["math"]["before"] == r["math"]["before"]
    assert mod.main([str(d), "--samples", "2", "--n-boot", "200", "--out", str(tmp_path / "pool")]) == 0
    j = json.loads((tmp_path / "pool.json").read_text())
    assert j["pooled"]["math"]["n_pairs"] == 6 and "pooled math" in capsys.readouterr().out
    (Path(rows[0]["out_dir"]) / "config.json").write_text(json.dumps({**cfg, "init_model": "no/such/model"}))
    assert mod.main([str(d), "--samples", "1"]) == 2
    assert "'no/such/model'" in capsys.readouterr().err


def test_headroom_trains_stage_one_on_the_changed_mixture(tmp_path):
    mod = load("headroom")
    m = mod.run(model="tiny-25k", groups={"math/add": {"n": 24, "subdomain": "add", "difficulty": 1, "mod": 7},
                                          "stem": {"n": 6, "difficulty": 1, "subdomain": "numeric", "max_value": 12}},
                drop=["math/mul", "math/long", "code"],
                evals={"math/add": {"n": 3, "subdomain": "add", "difficulty": 1, "mod": 7},
                       "stem": {"n": 2, "difficulty": 1, "subdomain": "numeric", "max_value": 12}},
                epochs=1, samples=2, max_new_tokens=16, out_dir=tmp_path)
    assert {k.split("/n_items")[0] for k in m if k.endswith("/n_items")} == {"math/add", "stem"}  # no hard, no code
    assert m["math/add/n_items"] == 3 and m["stem/n_items"] == 2
    assert 0 < m["n_queries"] <= 30
    for g in ("math/add", "stem"):
        assert 0 <= m[f"{g}/greedy_acc"] <= 1 and 0 <= m[f"{g}/mean@2"] <= 1
    saved = json.loads((tmp_path / "headroom.json").read_text())
    assert set(saved["mixture"]) == {"math/add", "stem"} and saved["mixture"]["stem"]["max_value"] == 12
    assert (tmp_path / "model" / "config.json").exists()


def test_clr_verifier_teaches_and_measures_held_out_claims(tmp_path):
    mod = load("clr_verifier")
    sets = {"teach_records": 3, "teach_verify_records": 3, "teach_verify_per_record": 2, "teach_epochs": 1,
            "held_out_records": 4, "verify_tokens": 8, "teach_max_length": 128}
    m = mod.run("tiny-25k", seed=0, sets=sets, out_dir=tmp_path)
    assert m["taught_solve"] == 3 and m["taught_verify"] == 6 and m["taught_extract"] == 0
    assert m["verifier_n"] == 8
    assert m["verifier_acc_lo"] <= m["verifier_acc"] <= m["verifier_acc_hi"]
    assert json.loads((tmp_path / "verifier.json").read_text())["settings"]["teach_records"] == 3
    with pytest.raises(SystemExit, match="unknown clr preset keys"):
        mod.run("tiny-25k", sets={"teach_lrr": 1e-3}, out_dir=tmp_path)


def test_skip_speed_runs_both_arms_from_one_start(tmp_path):
    mod = load("skip_speed")
    start = tmp_path / "start"
    models.save(*models.load("tiny-25k", seed=0), start)
    r = mod.run(str(start), steps=2, prompts=4, prompts_per_step=2, num_generations=2, max_completion_length=8,
                out_dir=tmp_path / "out")
    for arm in ("off", "on"):
        assert len(r[arm]["losses"]) == 2 and r[arm]["wall_s"] > 0
    assert all(n is None or 1 <= n <= 4 for n in r["on"]["rows_in_loss"])
    assert r["on"]["param_sum"] == pytest.approx(r["off"]["param_sum"], rel=1e-6)
    assert json.loads((tmp_path / "out" / "skip_speed.json").read_text())["speedup"] == pytest.approx(r["speedup"])


def test_arith_table_reads_seen_and_new_arithmetic_per_stage(tmp_path, capsys):
    arith = load("arith_table")
    rl = {f"final/math/{p}/{k}": v for p, vals in (("seen_arith", (0.9, 0.8, 1.0, 100, 0.1, 0.05, 0.15)),
                                                   ("new_arith", (0.0, 0.0, 0.1, 20, -0.02, -0.05, 0.0)))
          for k, v in zip(("mean@4", "mean@4_lo", "mean@4_hi", "n_items", "heldout_gain", "heldout_gain_lo",
                           "heldout_gain_hi"), vals)}
    quick = {"seen_arith/greedy_acc": 1.0, "seen_arith/greedy_acc_lo": 1.0, "seen_arith/greedy_acc_hi": 1.0,
             "seen_arith/n_items": 83, "new_arith/greedy_acc": 0.0, "new_arith/greedy_acc_lo": 0.0,
             "new_arith/greedy_acc_hi": 0.0, "new_arith/n_items": 17}
    run = _table(tmp_path / "demo", [_stage(tmp_path, "s0", "rl", 0, **rl), _stage(tmp_path, "s0", "quickstart", 0, **quick),
                                     _stage(tmp_path, "s0", "sft", 0, other=1.0)])
    rows = arith.rows([run])
    assert [(r["stage"], r["prefix"]) for r in rows] == [("rl", "final/math/"), ("quickstart", "")]
    assert rows[0]["new_arith_gain"] == -0.02 and rows[0]["seen_arith_n"] == 100 and "seen_arith_gain" not in rows[1]
    assert arith.main([str(run)]) == 0
    out = capsys.readouterr().out
    assert "new 0.000 [0.000, 0.100] (n 20), gain -0.020 [-0.050, +0.000]" in out and "seen 1.000 [1.000, 1.000] (n 83)" in out
    assert arith.main([str(_table(tmp_path / "none", [_stage(tmp_path, "s1", "sft", 0, other=1.0)]))]) == 1


def test_rl_headroom_scores_a_candidate_task_with_tokens_per_second(tmp_path):
    rh = load("rl_headroom")
    assert rh.main(["--model", "tiny-50k", "--task", "math={difficulty: 1, mod: 7, subdomain: add, shuffle: false}",
                    "--n", "4", "--samples", "2", "--max-new-tokens", "8", "--out", str(tmp_path)]) in (0, None)
    row = json.loads((tmp_path / "headroom.json").read_text())["tasks"]["math"]
    assert row["n_items"] == 4 and row["headline"] == "mean@2" and 0 <= row["acc"] <= 1
    assert row["lo"] <= row["acc"] <= row["hi"] and row["tokens_per_s"] > 0 and row["split"] == "validation"
    with pytest.raises(SystemExit, match="NAME=YAML"):
        rh.main(["--model", "tiny-50k", "--task", "bad", "--out", str(tmp_path)])


def test_pipeline_ablation_table_differences_and_verdicts(tmp_path, capsys):
    mod = load("pipeline_ablation")
    rng = np.random.default_rng(5)
    rows, diffs = [], []
    for s in range(6):
        out = tmp_path / "abl" / f"seed={s}"
        out.mkdir(parents=True)
        full, plain = rng.uniform(0.3, 0.5), rng.uniform(0.3, 0.5)
        arms = {"full": {"stages": ["sft", "rl_x", "distill"], "flops": [1.0, 2.0, 3.0], "acc": [0.2, 0.3, full]},
                "plain": {"stages": ["sft", "rl"], "flops": [1.0, 3.1], "acc": [0.25, plain]}}
        (out / "arms.json").write_text(json.dumps(arms))
        (out / "rl_x").mkdir()
        (out / "rl_x" / "config.json").write_text(json.dumps({"max_steps": 48}))
        for sub, ep, m in (("sft_one_stage", 5, {"stage1/hard/greedy_acc": 0.1 * s}),
                           ("sft", 5, {"stage1/hard/greedy_acc": 0.0, "stage2/hard/greedy_acc": 0.2})):
            (out / sub).mkdir()
            (out / sub / "metrics.json").write_text(json.dumps(m))
            (out / sub / "config.json").write_text(json.dumps({"epochs1": ep}))
        diffs.append(plain - full)
        rows.append({"run_id": f"seed={s}", "seed": s, "status": "ok", "error": None, "out_dir": str(out),
                     "full/math/mean@4": full, "plain/math/mean@4": plain, "full/flops_ratio": 1.0,
                     "plain/flops_ratio": 1.0 + 0.01 * s, "plain_minus_full/math/mean@4": plain - full,
                     "full_minus_plain/math/mean@4": full - plain})
    d = _table(tmp_path / "abl", rows)
    table = mod.arm_table([d])
    assert table["plain"]["flops_ratio"] == pytest.approx((1.025, 1.0, 1.05))
    assert table["full"]["curve"] == ([1.0, 2.0, 3.0], pytest.approx([0.2, 0.3, np.mean([r["full/math/mean@4"] for r in rows])]))
    out = tmp_path / "fig" / "pipeline_ablation"
    assert mod.main([str(d), "--out", str(out)]) == 0
    j = json.loads(Path(f"{out}.json").read_text())
    s = j["arms"]["plain"]["minus_full"]
    assert s["mean"] == pytest.approx(np.mean(diffs))
    assert (s["t_lo"], s["t_hi"]) == pytest.approx(sps.t.interval(0.95, 5, loc=np.mean(diffs), scale=sps.sem(diffs)))
    assert s["verdict"] == mod.verdict(s, 0.03)
    assert mod.verdict({"t_lo": 0.01, "t_hi": 0.2}, 0.03) == "effect"
    assert mod.verdict({"t_lo": -0.02, "t_hi": 0.03}, 0.03) == "null"
    assert mod.verdict({"t_lo": -0.05, "t_hi": 0.03}, 0.03) == "unresolved"
    assert Path(f"{out}.png").stat().st_size > 10_000
    assert "plain" in capsys.readouterr().out
    got = mod.matched_differences([d], "full", tol=0.035)   # plain at 1.04 and 1.05 (seeds 4, 5) left out
    m, lo, hi, n = stats.t_interval(diffs[:4])
    assert n == 4 and got["plain"] == pytest.approx((m, lo, hi, 4))
    sft = mod.sft_table([d])   # the last stage's accuracy of each SFT run, by seed
    assert sft[3] == {"sft": (5, 0.2), "sft_one_stage": (5, pytest.approx(0.3))}
    assert mod.main([str(d), "--sft", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "seed 3 SFT hard greedy: sft (5 ep) 0.200  sft_one_stage (5 ep) 0.300" in text
    assert "seed 3 chains: full sft 0.200 -> rl_x (48 steps) 0.300 -> distill " in text
    assert mod.main([str(d), "--k", "8", "--out", str(out)]) == 2   # no mean@8: a clear error
    assert "is K = 8?" in capsys.readouterr().err


def test_run_diff_pairs_stages_by_seed_and_names_what_moved(tmp_path, capsys):
    rd = load("run_diff")
    a = _table(tmp_path / "a", [_stage(tmp_path, "a0", "rl", 0, gain=0.04, acc=0.43, **{"code/skipped": True}),
                                _stage(tmp_path, "a0", "sft", 0, acc=0.5, loss=float("nan")),
                                _stage(tmp_path, "a0", "quickstart", 0, acc=0.83)])
    b = _table(tmp_path / "b", [_stage(tmp_path, "b0", "rl", 0, gain=0.04, acc=0.43, metric_wall_s=9.0, eval_s=3.0),
                                _stage(tmp_path, "b0", "sft", 0, acc=0.5, loss=float("nan"))])
    rows = {(r["seed"], r["stage"]): r for r in rd.diff(a, b)}
    assert rows[(0, "rl")]["n_equal"] == 2 and rows[(0, "rl")]["differ"] == {}        # timing keys are not compared
    assert rows[(0, "rl")]["only_a"] == ["code/skipped"] and rows[(0, "rl")]["only_b"] == []
    assert rows[(0, "sft")]["n_equal"] == 1 and rows[(0, "quickstart")]["only_in"] == "a"
    assert rd.main([str(a), str(b)]) == 0                                               # nothing moved
    out = capsys.readouterr().out
    assert "seed 0 quickstart" in out and "only in a" in out and "only in a: 1 (code/skipped)" in out
    c = _table(tmp_path / "c", [_stage(tmp_path, "c0", "rl", 0, gain=0.05, acc=0.43)])
    assert rd.main([str(a), str(c)]) == 1
    assert "gain: 0.04 -> 0.05" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="does not exist"):
        rd.main([str(tmp_path / "missing"), str(b)])

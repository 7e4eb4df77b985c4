"""Every notebook executed end to end at the tiny preset, once, through the demo pipeline: here the
chain sft -> merge -> rl -> distill -> instruct -> clr, evaluate; the capacity slice, the figures,
quickstart and family in tests/test_notebooks_side.py, on the other worker.

The session fixture runs the chain of `experiments/demo.yaml` for one seed with `vtkit sweep` (so
the runner, parameter checks and stage chaining are exercised on the real notebooks); each test
then checks one stage's outputs. Marked `notebook` (`make test-fast` skips them).
"""
import json
from pathlib import Path

import pytest

from notebook_runs import ROOT, SIDE, demo_spec, run_pipeline, stage

pytestmark = [pytest.mark.notebook, pytest.mark.timeout(3600)]  # the fixture runs the demo's chain


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    """`make demo`'s chain for one seed, on a core of its own (tests/notebook_runs.py)."""
    spec, stages = demo_spec()
    chain = [st["name"] for st in spec["pipeline"] if st["name"] not in SIDE and st["name"] != "figures"]
    return run_pipeline(tmp_path_factory.mktemp("runs"), "demo", chain)


def test_every_notebook_declares_the_kernel_and_has_no_outputs():
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        data = json.loads(nb.read_text())
        assert data["metadata"]["kernelspec"]["name"] == "vtkit", nb.name
        cells = [c for c in data["cells"] if c["cell_type"] == "code"]
        assert not any(c.get("outputs") or c.get("execution_count") for c in cells), f"{nb.name} has outputs"
        assert sum("parameters" in c.get("metadata", {}).get("tags", []) for c in cells) == 1, nb.name


def test_evaluate_reads_the_distilled_model(demo):
    d, m = stage(demo, "evaluate")
    i, _ = stage(demo, "distill")
    cfg = json.loads((d / "config.json").read_text())
    assert Path(cfg["model"]).resolve() == (i / "model").resolve()
    assert (d / "samples.jsonl").exists()
    assert m["headline_metric"] == f"mean@{cfg['n_samples']}", m   # the reports' mean pass@1 over n samples
    assert m["headline"] >= 0.25, m  # the distilled model solves the quickstart's math (chance 1/7)
    assert m["headline"] == m[f"math/{m['headline_metric']}"]
    # mean@n, regraded here: every item has its n samples, so it is the share of right samples
    from vtkit import evaluation, runinfo
    from vtkit.stages import evaluate
    samples = runinfo.read_jsonl(d / "samples.jsonl")
    assert len(samples) == m["math/n_items"] * cfg["n_samples"] and evaluate.Config.from_dict(cfg).model == cfg["model"]
    assert [evaluation.grade_one({"domain": "math", "answer": s["gold"]}, s["text"]) for s in samples] == \
        [s["correct"] for s in samples]
    assert m["headline"] == pytest.approx(sum(s["correct"] for s in samples) / len(samples))


def test_sft_curriculum_lifts_accuracy_and_filters_stage_two(demo):
    d, m = stage(demo, "sft")
    assert (d / "model" / "config.json").exists() and (d / "sft_curriculum.png").exists()
    assert m["before/math/add/greedy_acc"] <= 0.05
    assert m["stage1/math/add/greedy_acc"] >= 0.3, m  # stage 1: near zero -> clearly non-trivial
    assert m["stage1/math/add/gain"] == pytest.approx(m["stage1/math/add/greedy_acc"] - m["before/math/add/greedy_acc"])
    assert m["stage1/filter/traces_out"] > 0 and m["stage1/filter/queries_out"] <= m["stage1/filter/queries_in"]
    f = {k.split("/")[-1]: v for k, v in m.items() if k.startswith("stage2/filter/")}
    assert f["queries_in"] >= f["queries_after_length"] >= f["queries_probed"] >= f["queries_out"] > 0
    assert f["queries_easy"] + f["queries_out"] == f["queries_probed"]
    assert m["stage1/n_checkpoints"] >= 2 and m["stage2/n_checkpoints"] >= 1
    assert len(list((d / "stage1").glob("checkpoint-*"))) == m["stage1/n_checkpoints"]


def test_spectrum_merge_compares_merged_last_and_best_single(demo):
    d, m = stage(demo, "merge")
    s, _ = stage(demo, "sft")
    info = json.loads((d / "model" / "merge.json").read_text())
    assert abs(sum(info["weights"]) - 1) < 1e-6 and all(w >= 0 for w in info["weights"])
    assert all(Path(p).resolve().parent.parent == s.resolve() for p in info["sources"]), info["sources"]
    assert Path(json.loads((d / "config.json").read_text())["sft_dir"]).resolve() == s.resolve()
    assert m["n_checkpoints"] >= 3 and 1 <= m["n_specialists"] <= 4
    k = m["k"]
    for kind in ("merged", "last", "best_single", "specialist"):
        assert 0 <= m[f"{kind}/mean/mean@{k}"] <= m[f"{kind}/mean/pass@{k}"] <= 1
    assert m[f"merged_minus_last/mean/mean@{k}"] == pytest.approx(m[f"merged/mean/mean@{k}"] - m[f"last/mean/mean@{k}"])
    assert (d / "merge_comparison.png").exists() and (d / "checkpoint_scores.csv").exists()


def test_mgpo_rl_starts_from_the_merge_and_trains_math(demo):
    d, m = stage(demo, "rl")
    g, _ = stage(demo, "merge")
    cfg = json.loads((d / "config.json").read_text())
    assert Path(cfg["init_model"]).resolve() == (g / "model").resolve()
    assert m["math/skipped"] is False and m["math/steps"] == cfg["max_steps"]
    assert 0.5 <= m["math/weight_mean"] <= 1.0  # exp(-lam D) with lam = 1, D <= ln 2
    h = f"mean@{cfg['eval_samples']}" if cfg["eval_temperature"] > 0 else "greedy_acc"   # the held-out protocol
    assert m[f"start/math/{h}"] >= 0.2  # the merged model solves some math: RL has signal
    assert m["math/heldout_start"] == pytest.approx(m[f"start/math/{h}"])
    assert m["math/heldout_gain_lo"] <= m["math/heldout_gain"] <= m["math/heldout_gain_hi"]
    assert (d / "phases" / "math" / "model" / "config.json").exists() and (d / "rl_curves.png").exists()
    steps = [json.loads(x) for x in (d / "steps.jsonl").read_text().splitlines()]
    assert sum("loss" in s for s in steps) == m["math/steps"]
    # RL learns: the training reward rises (0.52 -> 0.68 from the first to the last third on seed 0) and the
    # held-out gain is positive (two-operation problems with held-out arithmetic: +0.043 [-0.006, +0.094] on
    # seed 0, +0.074 [+0.020, +0.137] on seed 1; docs/LOG.md, "The demo at" the stop's commit)
    reward = [s["reward"] for s in steps if s.get("phase") == "math" and "reward" in s]
    third = len(reward) // 3
    assert sum(reward[-third:]) / third > sum(reward[:third]) / third + 0.05, reward
    assert m["math/heldout_gain"] > 0, m["math/heldout_gain"]
    # issue 26, 0(b): the held-out rate apart on seen and on new arithmetic (operand pairs held out of training)
    assert m["final/math/seen_arith/n_items"] + m["final/math/new_arith/n_items"] == cfg["n_heldout"]["math"]
    assert m["final/math/new_arith/n_items"] > 0 and "final/math/new_arith/heldout_gain" in m
    for ph in cfg["phases"]:  # the skip rule (vtkit.stages.rl.min_kept): a phase runs with enough solvable prompts
        assert m[f"{ph}/skipped"] == (m[f"{ph}/n_kept"] < max(cfg["min_prompts"], cfg["prompts_per_step"])), ph


def test_self_distill_selects_by_score_and_trains_the_student(demo):
    d, m = stage(demo, "distill")
    assert 0 < m["select/n_kept"] < m["collect/math/n_traces"] <= m["collect/math/n_correct"]
    assert m["select/math/n_kept"] + m["select/math/n_short"] + m["select/math/n_below_band"] \
        + m["select/math/n_outlier"] == m["select/math/n_traces"]
    # that distillation lifts the student over its start is tested on a fixture, where it must
    # (tests/test_stages_distill.py); here the demo's student is measured before and after on one protocol
    assert any(k.startswith("math/before/") for k in m) and any(k.startswith("math/after/") for k in m), sorted(m)
    assert m["math/heldout_gain_lo"] <= m["math/heldout_gain"] <= m["math/heldout_gain_hi"]
    assert (d / "model" / "config.json").exists()


def test_instruct_rl_trains_a_reward_model_and_reports_pass_rates(demo):
    d, m = stage(demo, "instruct")
    assert m["rm/pair_acc_all"] > 0.6 and m["rm/pair_acc_all"] > m["rm/pair_acc_before"]
    for st in ("start", "rl"):
        assert 0 <= m[f"{st}/prompt_level_strict_acc"] <= m[f"{st}/inst_level_strict_acc"] + 1e-9 <= 1 + 1e-9
    assert m["rl/steps"] > 0 and (d / "model" / "config.json").exists()
    # the notebook states why RL did or did not raise the pass rate, from the numbers it measured
    reading = (d / "reading.txt").read_text()
    assert reading.split(":")[0] in ("raised", "not resolved", "reward-model over-optimisation",
                                     "fits the training prompts", "degraded", "no signal"), reading
    assert f"{m['rl/heldout_gain']:+.3f}" in reading and "rl/rm_score_change" in m


def test_clr_compares_with_majority_on_the_same_samples(demo):
    d, m = stage(demo, "clr")
    k = m["K_max"]
    assert m["n_trajectories"] == m["n_problems"] * k
    assert m["clr@1"] == pytest.approx(m["majority@1"]) == pytest.approx(m["mean1@1"])  # one sample: no choice
    assert m["clr_minus_majority"] == pytest.approx(m[f"clr@{k}"] - m[f"majority@{k}"])
    assert m["verifier_n"] > 0 and m["verifier_acc_lo"] <= m["verifier_acc"] <= m["verifier_acc_hi"]
    for cls in ("valid", "invalid"):
        assert 0 <= m[f"verifier_recall_{cls}_lo"] <= m[f"verifier_recall_{cls}"] <= m[f"verifier_recall_{cls}_hi"] <= 1
    assert (d / "verifier_held_out.jsonl").exists() and (d / "fig_clr.png").exists()
    # the taught verifier verifies: above chance on held-out claims (0.905 [0.856, 0.938] on the AMD demo's
    # seed 0, 0.51 with the old 800 claims; docs/LOG.md), on the trajectories' own lines
    assert m["verifier_acc_lo"] > 0.5 and min(m["verifier_recall_valid"], m["verifier_recall_invalid"]) > 0.5, m
    assert m["claims_exact"] == 1.0
    # each K's rate is the mean of the per-problem scores in clr_items.jsonl, on the samples' own answers
    from vtkit import runinfo, verify
    items, samples = runinfo.read_jsonl(d / "clr_items.jsonl"), runinfo.read_jsonl(d / "samples.jsonl")
    assert len(items) == m["n_problems"] and len(samples) == m["n_trajectories"]
    for name in ("clr", "majority", "mean1"):
        assert m[f"{name}@{k}"] == pytest.approx(sum(it["scores"][f"{name}@{k}"] for it in items) / len(items))
    by_id = {}
    for s in samples:
        by_id.setdefault(s["id"], []).append(verify.extract_answer(s["text"]))
    assert all(by_id[it["id"]] == it["answers"] for it in items)

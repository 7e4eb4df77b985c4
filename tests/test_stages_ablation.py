"""vtkit.stages.ablation: a real (small) run of the pipeline ablation's arms, their shared prefixes, the
FLOPs matching of the arms' free knobs, and the paired differences; the one-stage SFT it relies on.
The run executes notebooks/12_pipeline_ablation.ipynb through `vtkit sweep` (the demo does not run it:
one seed at the tiny preset takes about 25 CPU-minutes), so the notebook is tested end to end too."""
import json
import types
from pathlib import Path

import pandas as pd
import pytest

from vtkit import experiment, sweep
from vtkit.stages import ablation, base

ROOT = Path(__file__).resolve().parents[1]

ADD = {"subdomain": "add", "mod": 3, "shuffle": False, "holdout_arith": 20}
SMALL = {
    "rl_steps": 2,
    "sft": {"model": "tiny-25k", "mixture": {"math/add": {"n": 160, "difficulty": 1, **ADD},
                                             "math/long": {"n": 16, "difficulty": 2, **ADD}},
            "eval": {"math/add": {"n": 4, "difficulty": 1, **ADD}, "hard": {"domain": "math", "n": 4, "difficulty": 2, **ADD}},
            "epochs1": 6.0, "epochs2": 1.0, "lr": 0.01, "batch_size": 8, "save_steps": 30, "min_tokens": 55, "n_rollouts": 2,
            "error_threshold": 0.5, "max_rollout_queries": 3, "max_new_tokens": 64, "max_length": 128},
    "merge": {"probe": {"math/add": {"n": 3, "difficulty": [1, 2], **ADD}}, "test": {"math/add": {"n": 3, "difficulty": [1, 2], **ADD}},
              "k": 2, "max_new_tokens": 64},
    "rl": {"phases": ["math"], "tasks": {"math": {"difficulty": 1, **ADD}},
           "n_prompts": {"math": 24, "code": 8, "stem": 8}, "n_heldout": {"math": 6, "code": 4, "stem": 4},
           "filter_rollouts": 4, "min_prompts": 1, "prompts_per_step": 1, "num_generations": 2,
           "max_completion_length": 64, "eval_samples": 2},
    "distill": {"n_prompts": 16, "n_samples": 4, "epochs": 1, "max_new_tokens": 64, "min_tokens": 1},
    "arms": ["full", "plain", "sft_only", "no_distill"],
    "match_tol": 0.0,   # every arm with an RL stage misses an exact match: each is topped up once
}


@pytest.fixture(scope="module")
def res(tmp_path_factory):
    """The notebook's run of SMALL (arms and rl_steps are its own parameters): its folder and metrics."""
    params = {"preset": "tiny", "seed": 0, "arms": SMALL["arms"], "rl_steps": SMALL["rl_steps"],
              "overrides": {k: v for k, v in SMALL.items() if k not in ("arms", "rl_steps")}}
    exp = experiment.from_dict({"name": "ablation-small", "notebook": "notebooks/12_pipeline_ablation.ipynb",
                                "parameters": params, "jobs": 1, "timeout_s": 1800}, base_dir=ROOT)
    result = sweep.sweep(exp, out_root=tmp_path_factory.mktemp("runs"), jobs=1, progress=False)
    row = pd.read_parquet(result.exp_dir / "results.parquet").iloc[0]
    assert row["status"] == "ok", f"{row['error']}\nsee {row['out_dir']}/log.txt"
    out = Path(row["out_dir"])
    return types.SimpleNamespace(out_dir=out, metrics=json.loads((out / "metrics.json").read_text()))


def test_arms_share_prefixes_and_match_the_full_chains_flops(res):
    out = res.out_dir
    # one run per distinct sub-stage: the plain arm's one-stage SFT, the full chain, sft_only's longer SFT,
    # and the longer RL runs of plain and no_distill
    # (and each RL run once more with its steps corrected by the measured shortfall: match_tol 0)
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == [
        "distill", "merge", "rl_mgpo", "rl_no_distill", "rl_no_distill_topup", "rl_plain", "rl_plain_topup", "sft",
        "sft_one_stage", "sft_only"]
    arms = json.loads((out / "arms.json").read_text())
    assert arms["full"]["stages"] == ["sft", "merge", "rl_mgpo", "distill"]
    assert arms["no_distill"]["stages"] == ["sft", "merge", "rl_no_distill_topup"]
    assert arms["plain"]["stages"] == ["sft_one_stage", "rl_plain_topup"]
    assert [res.metrics[f"{a}/topped_up"] for a in ("plain", "sft_only", "no_distill")] == [1, 0, 1]
    for arm, a in arms.items():   # cumulative FLOPs from each stage's own metrics.json
        per = [ablation.recipe_flops(json.loads((out / s / "metrics.json").read_text())) for s in a["stages"]]
        assert a["flops"] == pytest.approx([sum(per[:i + 1]) for i in range(len(per))])
        assert abs(res.metrics[f"{arm}/flops_ratio"] - 1) <= 0.1, (arm, res.metrics[f"{arm}/flops_ratio"])
    # each free knob priced from the full chain's measured FLOPs: SFT epochs, or RL steps per step's cost
    cfg = lambda s: json.loads((out / s / "config.json").read_text())
    f = lambda s: ablation.recipe_flops(json.loads((out / s / "metrics.json").read_text()))
    budget, per_step = res.metrics["flops_full"], f("rl_mgpo") / 2
    assert budget == pytest.approx(sum(f(s) for s in ("sft", "merge", "rl_mgpo", "distill")))
    assert cfg("sft_only")["epochs1"] == round(6.0 * budget / f("sft_one_stage"), 2) > 6.0
    assert cfg("sft_only")["epochs2"] == 0 and cfg("sft_one_stage")["epochs1"] == 6.0
    assert cfg("rl_plain")["max_steps"] == 2 + round((budget - f("sft_one_stage") - f("rl_mgpo")) / per_step)
    assert cfg("rl_no_distill")["max_steps"] == 2 + round(f("distill") / per_step)
    assert cfg("rl_plain")["mgpo_lambda"] == 0.0 and cfg("rl_mgpo")["mgpo_lambda"] == 1.0
    for rl, chain in (("rl_plain", ["sft_one_stage", "rl_plain"]), ("rl_no_distill", ["sft", "merge", "rl_no_distill"])):
        steps = cfg(rl)["max_steps"]   # the top-up: the shortfall over that run's own FLOPs per step
        short = budget - sum(f(s) for s in chain)
        assert cfg(f"{rl}_topup")["max_steps"] == max(1, steps + round(short / (f(rl) / steps)))
        assert {k: v for k, v in cfg(f"{rl}_topup").items() if k != "max_steps"} == \
            {k: v for k, v in cfg(rl).items() if k != "max_steps"}
    assert cfg("distill")["student"].endswith("merge/model") and cfg("rl_mgpo")["init_model"].endswith("merge/model")


def test_paired_differences_and_compute(res):
    m = res.metrics
    for arm in ("plain", "sft_only", "no_distill"):   # a paired difference on the same items is the difference of means
        assert m[f"{arm}_minus_full/math/mean@2"] == pytest.approx(m[f"{arm}/math/mean@2"] - m["full/math/mean@2"])
        assert m[f"{arm}_minus_full/math/mean@2_lo"] <= m[f"{arm}_minus_full/math/mean@2"] <= m[f"{arm}_minus_full/math/mean@2_hi"]
    assert "full_minus_plain/math/mean@2" in m and "full_minus_full/math/mean@2" not in m
    # the full arm's final model is the distilled student, measured by the distill stage
    d = json.loads((res.out_dir / "distill" / "metrics.json").read_text())
    assert m["full/math/mean@2"] == d["math/after/mean@2"]
    subs = [json.loads((p / "metrics.json").read_text()) for p in res.out_dir.iterdir() if p.is_dir()]
    assert m["train_flops"] == pytest.approx(sum(s["train_flops"] for s in subs))
    assert m["gen_flops_eval"] > sum(s["gen_flops_eval"] for s in subs)   # plus sft_only's own evaluation
    assert (res.out_dir / "fig_ablation.png").exists()


def test_one_stage_sft_has_no_stage2(res):
    m = json.loads((res.out_dir / "sft_one_stage" / "metrics.json").read_text())
    assert "stage1/steps" in m and not any(k.startswith("stage2/") for k in m)
    assert (res.out_dir / "sft_one_stage" / "model").is_dir() and not (res.out_dir / "sft_one_stage" / "stage2").exists()


def test_bad_arm_names_the_choices():
    with pytest.raises(base.ConfigError, match="unknown arm.*'ful'.*choose from"):
        ablation.check(ablation.Config.from_preset("tiny", arms=["ful"]))
    with pytest.raises(base.ConfigError, match="rl override"):
        ablation.check(ablation.Config.from_preset("tiny", overrides={"rl": {"max_step": 3}}))

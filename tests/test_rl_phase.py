"""vtkit.rl_phase: one MGPO phase with its step log and held-out probe, the SFT start cache, the figures."""
from __future__ import annotations

import warnings
import zlib

import pandas as pd
import pytest
import torch

from vtkit import models, rl_phase, tasks
from vtkit.stats import t_interval as mean_ci

warnings.filterwarnings("ignore")


@pytest.fixture(scope="module")
def tiny():
    return models.load("tiny-25k", seed=0)


def coin(completions, **_):
    """A deterministic 0/1 'verifier' on the text, so groups mix right and wrong answers."""
    return [float(zlib.crc32(c[0]["content"].encode()) % 3 == 0) for c in completions]


# ----------------------------------------------------------------------------- data and grading

def test_prompt_rows_keep_reward_columns():
    recs = tasks.make("math", 3, seed=0, difficulty=1)
    ds = rl_phase.to_prompt_rows(recs)
    assert ds[0]["prompt"] == [{"role": "user", "content": recs[0]["prompt"]}]
    assert ds["answer"] == recs["answer"] and ds["domain"] == ["math"] * 3 and "solutions" not in ds.column_names
    with pytest.raises(ValueError, match="no records"):
        rl_phase.to_prompt_rows([])


def test_heldout_greedy_and_sampled(monkeypatch):
    """The held-out checks RL runs (vtkit.evaluation): greedy_acc, or mean@n of n samples at T."""
    from vtkit import evaluation, generate
    recs = [dict(r) for r in tasks.make("math", 2, seed=0, difficulty=1, mod=7)]
    wrong = "<think>\nx\n</think>\nThe answer is \\boxed{99}."
    script = {0: [recs[0]["solutions"][0], wrong], 1: [wrong, wrong]}
    seen = {}

    def fake(m, t, prompts, n, temperature, **kw):
        seen.update(n=n, temperature=temperature)
        return [{"prompt_index": p, "sample_index": s, "prompt": prompts[p], "text": script[p][s], "n_tokens": 3 + s,
                 "truncated": False} for p in range(len(prompts)) for s in range(n)]

    monkeypatch.setattr(generate, "generate", fake)
    g = evaluation.evaluate((None, None), recs, evaluation.sampled(1, 0.0, n_boot=100))
    assert seen == {"n": 1, "temperature": 0.0} and g.per_item["score"] == [1.0, 0.0]
    assert g.headline == "greedy_acc" and g.acc == 0.5 and "mean@1" not in g
    s = evaluation.evaluate((None, None), recs, evaluation.sampled(2, 1.0, n_boot=100))
    assert s.per_item["score"] == [0.5, 0.0] and s.headline == "mean@2" and s.acc == 0.25 and s["mean_tokens"] == 3.5
    assert 0.0 <= s["mean@2_lo"] <= 0.25 <= s["mean@2_hi"] <= 0.5
    assert "mean@1" not in s and "pass@2" in s   # one estimate of the mean pass@1, not a first-sample one beside it
    with pytest.raises(ValueError, match="greedy"):
        evaluation.Protocol("x", "auto", n=2, temperature=0.0)


def test_instruction_pass_rates(monkeypatch):
    from vtkit import evaluation, generate, instructions
    ds = instructions.make_prompts(4, seed=0, n_constraints=(2, 2))
    texts = [ds[0]["solutions"][0], ds[1]["solutions"][0], "<think>\nhmm\n</think>\n", ds[3]["solutions"][0]]
    monkeypatch.setattr(generate, "generate", lambda m, t, prompts, **kw: [
        {"prompt_index": i, "sample_index": 0, "prompt": prompts[i], "text": x, "n_tokens": 5, "truncated": False}
        for i, x in enumerate(texts)])
    r = evaluation.evaluate((None, None), ds, evaluation.sampled(1, 0.0, n_boot=200))
    assert r.per_item["score"] == [1.0, 1.0, 0.0, 1.0] and r.headline == "prompt_level_strict_acc"
    assert r.acc == 0.75 and r["inst_level_strict_acc"] == 0.75 and r.per_item["inst_level_strict"] == [1, 1, 0, 1]
    lo, hi = r.interval
    assert lo <= 0.75 <= hi
    with pytest.raises(ValueError, match="instruction_id_list"):
        evaluation.evaluate((None, None), [{"id": "x", "domain": "instruct", "prompt": "hi", "instruction_id_list": []}],
                            evaluation.GREEDY)


def test_constrained_prompts_subset():
    from vtkit import instructions
    ids = ["change_case:english_capital", "startend:quotation"]
    a = instructions.constrained_prompts(6, 0, instruction_ids=ids, base_tasks=instructions.BASE_TASKS[:3])
    assert a.to_list() == instructions.constrained_prompts(6, 0, instruction_ids=ids,
                                                           base_tasks=instructions.BASE_TASKS[:3]).to_list()
    assert all(set(x) <= set(ids) and len(x) == 1 for x in a["instruction_id_list"])
    assert all(any(p.startswith(b) for b in instructions.BASE_TASKS[:3]) for p in a["prompt"])
    u = instructions.constrained_prompts(6, 1, instruction_ids=ids, base_tasks=instructions.BASE_TASKS[:3], unique=True)
    assert len(set(u["prompt"])) == 6
    with pytest.raises(ValueError, match="found only"):  # 2 requests x 2 types: only 4 distinct prompts exist
        instructions.constrained_prompts(5, 0, instruction_ids=ids, base_tasks=instructions.BASE_TASKS[:2], unique=True,
                                         max_rounds=5)
    with pytest.raises(ValueError, match="unknown instruction ids"):
        instructions.constrained_prompts(2, 0, instruction_ids=["no:such"])


def test_paired_gain():
    from vtkit.evaluation import paired_gain
    g = paired_gain([False, False, True, True], [True, False, True, True], n_boot=200)
    assert g["gain"] == 0.25 and g["gain_lo"] <= 0.25 <= g["gain_hi"] and g["gain_lo"] >= 0
    assert paired_gain([True, False], [True, False]) == {"gain": 0.0, "gain_lo": 0.0, "gain_hi": 0.0}
    with pytest.raises(ValueError, match="equal, non-empty"):
        paired_gain([True], [True, False])


def test_step_log_merges_trl_history_and_evals():
    hist = [{"step": 1, "loss": 0.1, "reward": 0.5, "mgpo/weight_mean": 0.9, "completions/mean_length": 7.0},
            {"step": 2, "loss": 0.2, "reward": 0.25, "mgpo/weight_min": float("nan")},
            {"step": 2, "train_loss": 0.15}]
    evals = [{"step": 0, "acc": 0.1, "lo": 0.0, "hi": 0.3, "mean_tokens": 9.0},
             {"step": 2, "acc": 0.2, "lo": 0.1, "hi": 0.4, "mean_tokens": 8.0}]
    rows = rl_phase.step_log(hist, evals, "math", step_offset=10)
    assert [r["global_step"] for r in rows] == [10, 11, 12] and rows[0] == {
        "phase": "math", "step": 0, "global_step": 10, "heldout_acc": 0.1, "heldout_lo": 0.0, "heldout_hi": 0.3,
        "heldout_tokens": 9.0}
    assert rows[1]["weight_mean"] == 0.9 and rows[1]["completion_length"] == 7.0 and "heldout_acc" not in rows[1]
    assert rows[2]["heldout_acc"] == 0.2 and "weight_min" not in rows[2]  # NaN dropped


# ----------------------------------------------------------------------------- one phase

def _phase(tiny, tmp_path, name, heldout=None, **kw):
    import copy
    model, tok = copy.deepcopy(tiny[0]), tiny[1]
    recs = tasks.make("math", 8, seed=0, difficulty=1)
    res = rl_phase.run_phase(model, tok, recs, tmp_path / name, phase="math", rewards=[coin], heldout=heldout,
                          eval_every=2, max_steps=3, prompts_per_step=2, num_generations=4,
                          max_completion_length=8, lr=1e-2, mgpo_lambda=2.0, seed=0, **kw)
    return res


def test_run_phase_logs_evaluates_and_saves(tiny, tmp_path):
    held = list(tasks.make("math", 3, seed=0, difficulty=1, split="test"))
    res = _phase(tiny, tmp_path, "a", heldout=held)
    assert [e["step"] for e in res.evals] == [0, 2, 3]  # before, every 2 steps, after the last
    assert res.before.acc == res.evals[0]["acc"] and res.after.acc == res.evals[-1]["acc"]
    assert res.after["n_items"] == 3 and res.before.headline == "greedy_acc"  # greedy by default
    train_rows = [s for s in res.steps if "loss" in s]
    assert [s["step"] for s in train_rows] == [1, 2, 3]
    for s in train_rows:  # lambda = 2: every weight in [2^-2, 1], the min no larger than the mean
        assert 0.25 - 1e-9 <= s["weight_min"] <= s["weight_mean"] <= 1.0 and s["completion_length"] > 0
    assert rl_phase.read_jsonl(tmp_path / "a" / "steps.jsonl") == res.steps
    m2, _ = models.load(str(tmp_path / "a" / "model"))
    assert all(torch.equal(p, q) for p, q in zip(res.model.parameters(), m2.parameters()))
    assert not any(torch.equal(p, q) for p, q in zip(res.model.parameters(), tiny[0].parameters()))
    met = res.metrics()
    assert met["math/steps"] == 3 and met["math/heldout_start"] == res.before.acc
    assert met["math/heldout_end"] == res.after.acc and met["math/n_heldout"] == 3
    assert met["math/heldout_gain"] == pytest.approx(res.after.acc - res.before.acc)
    assert met["math/heldout_gain_lo"] <= met["math/heldout_gain"] <= met["math/heldout_gain_hi"]
    # the held-out probe never changes training: same weights as a run without it
    bare = _phase(tiny, tmp_path, "b")
    assert bare.evals == [] and bare.before is None
    assert all(torch.equal(p, q) for p, q in zip(res.model.parameters(), bare.model.parameters()))


def test_run_phase_tensorboard_events(tiny, tmp_path, monkeypatch):
    monkeypatch.delenv("TENSORBOARD_LOGGING_DIR", raising=False)
    _phase(tiny, tmp_path, "tb", report_to="tensorboard")
    events = list((tmp_path / "tb" / "tensorboard").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0   # the trainer's scalars, under the run's folder
    with pytest.raises(ValueError, match="unknown tracker"):
        _phase(tiny, tmp_path, "bad", report_to="tensorbord")


def test_run_phase_warmup_ramps_the_learning_rate(tiny, tmp_path):
    lrs = [s["learning_rate"] for s in _phase(tiny, tmp_path, "w", warmup=2).steps if "loss" in s]
    assert lrs == pytest.approx([0.0, 5e-3, 1e-2])  # transformers' linear warmup over 2 steps, then constant
    flat = [s["learning_rate"] for s in _phase(tiny, tmp_path, "c").steps if "loss" in s]
    assert flat == pytest.approx([1e-2] * 3)
    cos = [s["learning_rate"] for s in _phase(tiny, tmp_path, "cos", warmup=1, lr_schedule="cosine").steps
           if "loss" in s]
    assert cos == pytest.approx([0.0, 1e-2, 5e-3])  # warmup, then half a cosine toward 0 at max_steps
    with pytest.raises(ValueError, match="lr_schedule must be one of"):
        _phase(tiny, tmp_path, "bad", lr_schedule="cosin")


def test_run_phase_rejects_bad_settings(tiny, tmp_path):
    recs = tasks.make("math", 4, seed=0, difficulty=1)
    with pytest.raises(ValueError, match="num_generations"):
        rl_phase.run_phase(tiny[0], tiny[1], recs, tmp_path, num_generations=1, phase="math")
    with pytest.raises(ValueError, match="no default rewards"):
        rl_phase.run_phase(tiny[0], tiny[1], recs, tmp_path, phase="chess")
    with pytest.raises(ValueError, match="4 prompts but a step takes prompts_per_step = 8"):
        rl_phase.run_phase(tiny[0], tiny[1], recs, tmp_path, phase="math", prompts_per_step=8)  # would train 0 steps
    with pytest.raises(ValueError, match="unknown phase"):
        rl_phase.phase_spec("chess")
    assert rl_phase.PHASES["long2short"].long2short_lambda == 0.2
    assert [f.__name__ for f in rl_phase.reward_funcs(rl_phase.PHASES["code"].rewards)] == ["code_tests_reward"]


# ----------------------------------------------------------------------------- SFT start cache

def test_sft_start_is_cached(tmp_path, monkeypatch):
    from vtkit import train
    monkeypatch.setenv("VTKIT_CACHE", str(tmp_path))
    kw = dict(data={"math": {"n": 4, "difficulty": 1, "mod": 7}}, epochs=3, lr=1e-3, batch_size=4)
    m1, _, p1 = train.sft_start("tiny-25k", **kw)
    assert p1.parent == tmp_path / "sft_start" and (p1 / "config.json").exists()
    assert [x.name for x in p1.parent.iterdir()] == [p1.name]  # no temp folders left
    monkeypatch.setattr(train, "sft", lambda *a, **k: pytest.fail("a cached start must not train again"))
    m2, _, p2 = train.sft_start("tiny-25k", **kw)
    assert p2 == p1 and all(torch.equal(a, b) for a, b in zip(m1.parameters(), m2.parameters()))
    fresh, _ = models.load("tiny-25k", seed=0)
    assert not all(torch.equal(a, b) for a, b in zip(m1.parameters(), fresh.parameters()))  # it did train


def test_preset_start_sft_or_plain_model(monkeypatch):
    from vtkit import train
    m, _, what = train.preset_start({"model": "tiny-25k", "start_data": None}, seed=3)
    fresh, _ = models.load("tiny-25k", seed=3)
    assert what == "tiny-25k" and all(torch.equal(a, b) for a, b in zip(m.parameters(), fresh.parameters()))
    calls = []
    monkeypatch.setattr(train, "sft_start", lambda *a, **k: calls.append((a, k)) or ("M", "T", "/cache/x"))
    cfg = {"model": "tiny-25k", "start_data": {"math": {"n": 5}}, "start_epochs": 2, "start_lr": 1e-3}
    m, t, what = train.preset_start(cfg, seed=3)
    assert (m, t) == ("M", "T") and "/cache/x" in what and "{'math': 5}" in what
    assert calls == [(("tiny-25k", {"math": {"n": 5}}), {"epochs": 2, "lr": 1e-3, "seed": 0})]  # one shared start


# ----------------------------------------------------------------------------- figures

def _fake_sweep(root):
    rows = []
    for lam in (0.0, 1.0):
        for seed in (0, 1, 2):
            d = root / f"lam{lam}-s{seed}"
            steps = [{"phase": "math", "step": s, "global_step": s, "heldout_acc": float(lam * s / 10 + seed / 100)}
                     for s in (0, 2, 4)] + [{"phase": "math", "step": 1, "global_step": 1, "reward": 0.5}]
            rl_phase.write_jsonl(d / "steps.jsonl", steps)
            rows.append({"run_id": d.name, "stage": "rl", "mgpo_lambda": lam, "seed": seed, "status": "ok",
                         "out_dir": str(d)})
    rows.append({"run_id": "x", "stage": "rl", "mgpo_lambda": 2.0, "seed": 0, "status": "failed",
                 "out_dir": str(root / "missing")})
    pd.DataFrame(rows).to_parquet(root / "results.parquet")


def test_sweep_curves_and_plot(tmp_path):
    _fake_sweep(tmp_path)
    c = rl_phase.sweep_curves(tmp_path)
    assert sorted(c["mgpo_lambda"].unique()) == [0.0, 1.0] and set(c["step"]) == {0, 2, 4}  # failed run left out
    r = c[(c.mgpo_lambda == 1.0) & (c.step == 4)].iloc[0]
    m, lo, hi, n = mean_ci([0.4, 0.41, 0.42])
    assert (r["mean"], r["lo"], r["hi"], r["n_runs"]) == pytest.approx((m, lo, hi, 3))
    fig, curves = rl_phase.plot_sweep(tmp_path)
    base = tmp_path / "figures" / "heldout_acc_vs_step_by_mgpo_lambda"
    assert base.with_suffix(".png").stat().st_size > 0 and base.with_suffix(".pdf").exists()
    assert pd.read_csv(base.with_suffix(".csv")).shape == curves.shape
    with pytest.raises(ValueError, match="varies no"):
        rl_phase.sweep_curves(tmp_path, by="beta")
    with pytest.raises(FileNotFoundError, match="vtkit sweep"):
        rl_phase.sweep_curves(tmp_path / "nowhere")


def test_plot_steps_writes_files(tmp_path):
    steps = [{"phase": "math", "step": 0, "global_step": 0, "heldout_acc": 0.2, "heldout_lo": 0.1, "heldout_hi": 0.3},
             {"phase": "math", "step": 1, "global_step": 1, "reward": 0.4, "weight_mean": 0.9, "weight_min": 0.6,
              "completion_length": 30.0},
             {"phase": "code", "step": 0, "global_step": 1, "heldout_acc": 0.5, "heldout_lo": 0.4, "heldout_hi": 0.6},
             {"phase": "code", "step": 1, "global_step": 2, "reward": 0.6, "weight_mean": 0.8, "weight_min": 0.5,
              "completion_length": 40.0}]
    rl_phase.plot_steps(steps, tmp_path / "curves")
    assert (tmp_path / "curves.png").stat().st_size > 0 and (tmp_path / "curves.pdf").exists()


def _steps(rule, rm):
    return [{"step": i + 1, "reward/instruction_reward": a, "reward/rubric_reward": b} for i, (a, b) in enumerate(zip(rule, rm))]


def test_instruct_reading_names_the_measured_reason():
    flat = _steps([0.2] * 6, [0.4] * 6)
    up = {"gain": 0.10, "gain_lo": 0.03, "gain_hi": 0.17}
    down = {"gain": -0.05, "gain_lo": -0.12, "gain_hi": 0.01}
    text, nums = rl_phase.instruct_reading(up, 0.5, 0.5, flat)
    assert nums["verdict"] == "raised" and "+0.100 [+0.030, +0.170]" in text
    # the RM's held-out score rises while the rules' pass rate falls: over-optimisation of the RM
    text, nums = rl_phase.instruct_reading(down, 0.40, 0.55, _steps([0.2] * 6, [0.3, 0.3, 0.5, 0.6, 0.7, 0.8]))
    assert nums["verdict"] == "reward-model over-optimisation"
    assert nums["rm_score_change"] == pytest.approx(0.15) and nums["train_rm_change"] == pytest.approx(0.45)
    assert "0.400 -> 0.550" in text
    # the rule reward rises on the training prompts only
    _, nums = rl_phase.instruct_reading(down, 0.5, 0.5, _steps([0.1, 0.1, 0.3, 0.3, 0.5, 0.5], [0.4] * 6))
    assert nums["verdict"] == "fits the training prompts" and nums["train_rule_change"] == pytest.approx(0.4)
    # both measures fall: the updates hurt, nothing was exploited (the demo's seed 0 at tiny)
    _, nums = rl_phase.instruct_reading({"gain": -0.05, "gain_lo": -0.117, "gain_hi": 0.008}, 0.592, 0.497, flat)
    assert nums["verdict"] == "degraded"
    _, nums = rl_phase.instruct_reading(down, 0.5, 0.5, flat)
    assert nums["verdict"] == "no signal"
    # a positive gain inside its interval is a power problem, whatever the RM did
    _, nums = rl_phase.instruct_reading({"gain": 0.042, "gain_lo": -0.058, "gain_hi": 0.133}, 0.592, 0.622, flat)
    assert nums["verdict"] == "not resolved"

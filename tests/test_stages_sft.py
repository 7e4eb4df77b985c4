"""vtkit.stages.sft: its config, the stage-1 data and stage-2 filter protocols, gains and summaries,
and a real two-stage run of a tiny model."""
import json

import pytest

from vtkit import evaluation, models, presets, tasks
from vtkit.stages import sft

ADD = {"subdomain": "add", "mod": 7, "shuffle": False}
SMALL = {
    "model": "tiny-25k",
    "mixture": {"math/add": {"n": 24, "difficulty": 1, **ADD}, "math/long": {"n": 8, "difficulty": 2, **ADD}},
    "eval": {"math/add": {"n": 4, "difficulty": 1, **ADD}, "hard": {"domain": "math", "n": 4, "difficulty": 2, **ADD}},
    "epochs1": 1.0, "epochs2": 1.0, "batch_size": 4, "save_steps": 4, "min_tokens": 55, "n_rollouts": 2,
    "error_threshold": 0.5, "max_rollout_queries": 3, "max_new_tokens": 12, "max_length": 128,
}


def test_config_is_the_preset_schema():
    for preset in presets.PRESETS:
        assert sft.Config.from_preset(preset).to_dict() == {**presets.resolve(preset, "sft"), "seed": 0}
    cfg = sft.Config.from_preset("tiny", model="tiny-25k", lr2=None)   # None keeps the preset's value
    assert cfg.model == "tiny-25k" and cfg.lr2 == presets.resolve("tiny", "sft")["lr2"]
    assert sft.Config.from_preset("small").lr2 is None and sft.Config.from_preset("paper").overlap_n == 10


def _log(*points, last_step):
    return [{"step": s, "loss": v} for s, v in points] + [{"step": last_step, "train_loss": 1.0}]


def test_stage_metrics_count_steps_not_logged_points():
    log = _log((1, 6.0), (50, 2.0), (100, 1.5), last_step=123)
    m = sft.stage_metrics("stage1", log, ["a", "b"])
    assert m == {"stage1/steps": 123, "stage1/loss_first": 6.0, "stage1/loss_last": 1.5, "stage1/n_checkpoints": 2}
    assert sft.describe_stage("stage1", log, ["a", "b"]) == (
        "stage 1: loss 6.00 -> 1.50 (logged at step 100) over 123 steps; 2 checkpoints")
    with pytest.raises(ValueError, match="stage2: the trainer logged no loss"):
        sft.stage_metrics("stage2", [{"step": 3, "train_loss": 1.0}], [])


def _greedy(scores):
    acc = sum(scores) / len(scores)
    return evaluation.EvalResult(metrics={"greedy_acc": acc, "greedy_acc_lo": acc / 2, "greedy_acc_hi": 1.0,
                                          "n_items": len(scores), "mean_tokens": 9.0},
                                 per_item={"score": list(scores)}, ids=[f"i{j}" for j in range(len(scores))],
                                 headline="greedy_acc")


def test_accuracy_and_paired_gain_metrics():
    evals = {"before": {"g": _greedy([0, 0, 0, 0]), "h": _greedy([0, 0, 1, 0])},
             "stage1": {"g": _greedy([1, 1, 0, 1]), "h": _greedy([0, 1, 1, 0])},
             "stage2": {"g": _greedy([1, 0, 0, 1]), "h": _greedy([1, 1, 1, 1])}}
    acc = sft.accuracy_metrics("stage1", evals["stage1"])
    assert acc == {"stage1/g/greedy_acc": 0.75, "stage1/g/greedy_acc_lo": 0.375, "stage1/g/greedy_acc_hi": 1.0,
                   "stage1/h/greedy_acc": 0.5, "stage1/h/greedy_acc_lo": 0.25, "stage1/h/greedy_acc_hi": 1.0}
    assert sft.describe_accuracy("stage1", evals["stage1"]) == "stage1  g 0.75  h 0.50"
    gains = sft.gain_metrics(evals, seed=0)
    assert sorted(gains) == sorted(f"{st}/{g}/gain{s}" for st in ("stage1", "stage2") for g in "gh"
                                   for s in ("", "_lo", "_hi"))
    assert gains["stage1/g/gain"] == 0.75 and gains["stage2/g/gain"] == -0.25 and gains["stage2/h/gain"] == 0.5
    assert gains["stage2/g/gain_lo"] <= -0.25 <= gains["stage2/g/gain_hi"]
    assert gains["stage1/g/gain_lo"] == evaluation.paired_gain(evals["before"]["g"], evals["stage1"]["g"])["gain_lo"]


@pytest.fixture(scope="module")
def tiny():
    return models.load("tiny-25k", seed=0)   # untrained: every rollout is wrong


def test_stage1_data_filters_and_decontaminates():
    cfg = sft.Config.from_preset("tiny", overrides=SMALL)
    data, heldout, m = sft.stage1_data(cfg, seed=0)
    assert list(heldout) == ["math/add", "hard"] and [len(v) for v in heldout.values()] == [4, 4]
    assert m["stage1/filter/queries_in"] == 32 and m["stage1/filter/queries_out"] == len(data) > 24
    assert m["stage1/filter/traces_out"] == sum(len(r["solutions"]) for r in data)
    held = {r["prompt"] for v in heldout.values() for r in v}
    assert not held & {r["prompt"] for r in data}
    traces = m["stage1/filter/traces_out"]
    assert sft.describe_data(data, heldout).startswith(f"stage-1 data: {len(data)} queries, {traces} traces (")
    # a teacher replaces the reference traces by its verified samples: an untrained one writes none
    cfg = cfg.replace(teacher="tiny-25k", teacher_samples=2, max_new_tokens=6, mixture={"math": {"n": 3, "difficulty": 1}})
    data, _, m = sft.stage1_data(cfg, seed=0)
    assert m["teacher/queries_in"] == 3 and m["teacher/samples"] == 6 and m["teacher/queries_out"] == 0
    assert data == [] and m["stage1/filter/queries_in"] == 0


def test_stage2_data_protocol(tiny, capsys):
    model, tok = tiny
    cfg = sft.Config.from_preset("tiny", overrides=SMALL)
    recs = [dict(r) for r in tasks.make("math", 6, seed=0, difficulty=2, **ADD)]
    data, probe, rates, m = sft.stage2_data(recs, model, tok, cfg.replace(min_tokens=0), seed=0)
    assert len(probe) == 3 and rates == [1.0] * 3 and data == probe              # max_rollout_queries = 3
    assert m == {"stage2/filter/queries_in": 6, "stage2/filter/traces_in": sum(len(r["solutions"]) for r in recs),
                 "stage2/filter/traces_short": 0, "stage2/filter/queries_after_length": 6,
                 "stage2/filter/queries_probed": 3, "stage2/filter/queries_easy": 0, "stage2/filter/queries_out": 3,
                 "stage2/filter/traces_out": sum(len(r["solutions"]) for r in probe),
                 "stage2/filter/mean_error_rate": 1.0}
    assert "reference: the stage-1 model; mean error rate on probed queries 1.00" in capsys.readouterr().out
    with pytest.raises(RuntimeError, match="stage 2 has no data.*lower min_tokens or error_threshold"):
        sft.stage2_data(recs, model, tok, cfg.replace(min_tokens=10_000), seed=0)


def test_run_two_stages_with_checkpoints(tmp_path, capsys):
    cfg = sft.Config.from_preset("tiny", seed=0, overrides=SMALL)
    res = sft.run(cfg, tmp_path / "s")
    out = capsys.readouterr().out
    d = tmp_path / "s"
    m = json.loads((d / "metrics.json").read_text())
    assert {k: v for k, v in m.items() if k != "wall_s"} == {k: v for k, v in res.metrics.items() if k != "wall_s"}
    assert "start: tiny-25k, " in out and "the preset's model" not in out
    assert out.count("before  math/add") == 1 and "[-" not in out   # each step prints its own time
    for st in ("stage1", "stage2"):
        assert m[f"{st}/n_checkpoints"] == len(list((d / st).glob("checkpoint-*"))) == len(res.checkpoints[st])
        assert m[f"{st}/steps"] >= res.curves[st][-1][0] and (d / st / "trainer_log.json").exists()
    assert m["stage1/n_checkpoints"] == m["stage1/steps"] // 4 >= 2
    f = {k.split("/")[-1]: v for k, v in m.items() if k.startswith("stage2/filter/")}
    assert f["queries_in"] == m["stage1/filter/queries_out"] == len(res.data1)
    assert f["queries_after_length"] >= f["queries_probed"] == 3 and f["queries_out"] == len(res.data2) > 0
    rates = json.loads((d / "stage2_error_rates.json").read_text())
    assert len(rates["ids"]) == 3 and sum(rates["error_rates"]) / 3 == pytest.approx(f["mean_error_rate"])
    for st in sft.STAGES:
        for g in ("math/add", "hard"):
            assert 0 <= m[f"{st}/{g}/greedy_acc_lo"] <= m[f"{st}/{g}/greedy_acc"] <= m[f"{st}/{g}/greedy_acc_hi"] <= 1
    assert m["stage2/hard/gain"] == pytest.approx(m["stage2/hard/greedy_acc"] - m["stage1/hard/greedy_acc"])
    for f in ("model/config.json", "sft_curriculum.pdf", "sft_curriculum.png", "config.json", "runinfo.json"):
        assert (d / f).exists(), f
    assert json.loads((d / "config.json").read_text())["mixture"] == SMALL["mixture"]

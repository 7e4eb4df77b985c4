"""vtkit.stages.instruct: the prompt sets (held-out requests and topics never trained on), the reward
model's training and pair-accuracy metrics, the held-out pass rates and open-prompt score, RL's
paired gains, the figure, and the stage end to end at a micro scale."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from vtkit import evaluation, instructions, models, runinfo
from vtkit import reward_model as rm
from vtkit.stages import base
from vtkit.stages import instruct as stage

IDS = ["startend:quotation", "detectable_format:title"]


def _cfg(**over):
    return stage.Config.from_preset("tiny", overrides=over)


def _base(prompt: str) -> str:
    return next(b for b in instructions.BASE_TASKS if prompt.startswith(b))


def test_prompt_sets_hold_out_requests_and_topics():
    cfg = _cfg(n_train=12, n_heldout=6, n_open=8, n_heldout_open=4, instruction_ids=IDS, n_train_bases=5)
    p = stage.prompt_sets(cfg, seed=3)
    assert [len(p[k]) for k in ("constrained", "held", "open_train", "open_held")] == [12, 6, 8, 4]
    train_bases = {_base(x) for x in p["constrained"]["prompt"]}
    held_bases = {_base(x) for x in p["held"]["prompt"]}
    assert train_bases <= set(instructions.BASE_TASKS[:5]) and held_bases <= set(instructions.BASE_TASKS[5:])
    assert len(set(p["held"]["prompt"])) == 6                                    # distinct held-out prompts
    assert {i for k in ("constrained", "held") for ids in p[k]["instruction_id_list"] for i in ids} \
        <= set(IDS)
    topics = lambda ds: {json.loads(m)["topic"] for m in ds["meta"]}   # noqa: E731
    assert topics(p["open_train"]) <= set(rm.TOPICS[:stage.OPEN_TRAIN_TOPICS])
    assert topics(p["open_held"]) <= set(rm.TOPICS[stage.OPEN_TRAIN_TOPICS:])
    again = stage.prompt_sets(cfg, seed=3)
    assert all(again[k].to_list() == p[k].to_list() for k in p)                  # same seed, same prompts
    with pytest.raises(base.ConfigError, match="n_train_bases = 20"):
        stage.prompt_sets(cfg.replace(n_train_bases=20), seed=0)


def test_reward_model_metrics_untrained_and_trained(tmp_path):
    m0, tok0, acc0 = stage.train_reward_model(_cfg(reward_model="tiny-25k", rm_pairs=0), tmp_path, seed=0)
    kinds = {f"rm/pair_acc_{k}" for k in rm.KINDS}
    assert set(acc0) == {"rm/pair_acc_before", "rm/pair_acc_all"} | kinds
    assert acc0["rm/pair_acc_all"] == acc0["rm/pair_acc_before"]               # rm_pairs 0: used as it is
    assert acc0["rm/pair_acc_all"] == pytest.approx(np.mean([acc0[k] for k in kinds]))   # kinds cycle evenly
    assert not (tmp_path / "rm").exists()
    _, _, acc = stage.train_reward_model(_cfg(reward_model="tiny-25k", rm_pairs=64, rm_epochs=2), tmp_path, seed=0)
    assert acc["rm/pair_acc_before"] == acc0["rm/pair_acc_before"]             # the same untrained model and pairs
    assert acc["rm/pair_acc_all"] != acc["rm/pair_acc_before"] and (tmp_path / "rm").exists()


@pytest.fixture(scope="module")
def probe():
    model, tok = models.load("tiny-25k", seed=0)
    rm_model, rm_tok = rm.build("tiny-25k", seed=0)
    held = instructions.constrained_prompts(4, 0, instruction_ids=IDS, base_tasks=instructions.BASE_TASKS[:3])
    proto = evaluation.sampled(1, 0.0, 16, seed=0)
    gen = dict(max_new_tokens=16, n=1, temperature=0.0, seed=0)
    return model, stage.HeldOut(tok, held, rm.open_prompts(3, seed=0), rm.make_reward(rm_model, rm_tok), proto, gen)


def test_pass_rates_and_open_score(probe):
    model, p = probe
    r, m = p.pass_rates(model, "start")
    assert set(m) == {f"start/{k}{s}" for k in stage.RATES for s in ("", "_lo", "_hi")} | {"start/open_rm_score"}
    assert m["start/prompt_level_strict_acc"] == r["prompt_level_strict_acc"] == 0.0   # a fresh model follows none
    assert 0 < m["start/open_rm_score"] < 1 and m["start/open_rm_score"] == p.open_score(model)
    # a pass-rate result already measured is reported, not measured again: the references follow every constraint
    refs = [{"prompt_index": i, "sample_index": 0, "prompt": x["prompt"], "text": x["solutions"][0], "n_tokens": 9,
             "truncated": False} for i, x in enumerate(p.held)]
    perfect = evaluation.score(list(p.held), refs, p.protocol)
    r2, m2 = p.pass_rates(model, "rl", perfect)
    assert r2 is perfect and m2["rl/prompt_level_strict_acc"] == m2["rl/inst_level_strict_acc"] == 1.0
    assert m2["rl/open_rm_score"] == m["start/open_rm_score"]                  # same model, same open prompts


def test_rl_metrics_pair_the_gains_and_rename_the_phase(probe):
    _, p = probe
    refs = [{"prompt_index": i, "sample_index": 0, "prompt": x["prompt"], "text": t, "n_tokens": 9, "truncated": False}
            for i, x in enumerate(p.held) for t in [x["solutions"][0]]]
    good = evaluation.score(list(p.held), refs, p.protocol)
    bad = evaluation.score(list(p.held), [{**g, "text": "<think>x</think>"} for g in refs], p.protocol)
    phase = {"instruct/steps": 7, "instruct/weight_mean": 0.9, "instruct/weight_min": 0.6, "instruct/reward": 0.4,
             "instruct/heldout_end": 1.0, "instruct/completion_length": 30.0}
    m, g, gi = stage.rl_metrics(bad, good, phase, seed=0)
    assert g == {"gain": 1.0, "gain_lo": 1.0, "gain_hi": 1.0} and gi["gain"] == 1.0      # RL over its start
    assert m["rl/heldout_gain"] == 1.0 and m["rl/inst_level_strict_gain_lo"] == 1.0
    assert m["rl/steps"] == 7 and m["rl/weight_mean"] == 0.9 and m["rl/weight_min"] == 0.6 and m["rl/reward"] == 0.4
    assert "rl/heldout_end" not in m and "rl/completion_length" not in m
    m2, g2, _ = stage.rl_metrics(good, bad, phase, seed=0)
    assert g2["gain"] == -1.0 and m2["rl/heldout_gain_hi"] == -1.0


def test_plot_pass_rates(probe, tmp_path):
    _, p = probe
    r = evaluation.score(list(p.held), [{"prompt_index": i, "sample_index": 0, "prompt": x["prompt"],
                                         "text": x["solutions"][0], "n_tokens": 9, "truncated": False}
                                        for i, x in enumerate(p.held)], p.protocol)
    steps = [{"step": s, "reward/instruction_reward": 0.1 * s, "reward/rubric_reward": None if s == 2 else 0.5}
             for s in range(1, 4)]
    fig = stage.plot_pass_rates({"start": r, "sft": r, "rl": r}, steps, tmp_path / "pass_rates")
    ax, ax2 = fig.axes
    assert [t.get_text() for t in ax.get_xticklabels()] == ["start", "sft", "rl"]
    assert len(ax.patches) == 6 and [len(line.get_xdata()) for line in ax2.lines] == [3, 2]
    assert (tmp_path / "pass_rates.png").exists() and (tmp_path / "pass_rates.pdf").exists()


def test_run_end_to_end_at_micro_scale(tmp_path):
    cfg = stage.Config.from_preset("tiny", init_model="tiny-25k", reward_model="tiny-25k", overrides=dict(
        instruction_ids=IDS, n_train=8, n_open=4, n_heldout=4, n_heldout_open=2, eval_samples=1,
        eval_temperature=0.0, rm_pairs=32, rm_epochs=1, sft_epochs=1, sft_batch_size=8, max_steps=2, eval_every=2,
        prompts_per_step=2, num_generations=2, max_completion_length=16))
    res = stage.run(cfg, tmp_path)
    m = json.loads((tmp_path / "metrics.json").read_text())
    nan_as_none = {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in res.metrics.items()}
    assert m == nan_as_none and list(res.stages) == ["start", "sft", "rl"]      # metrics.json writes NaN as null
    for st in res.stages:
        assert 0 <= m[f"{st}/prompt_level_strict_acc"] <= m[f"{st}/inst_level_strict_acc"] + 1e-9 <= 1 + 1e-9
        assert 0 < m[f"{st}/open_rm_score"] < 1
    assert m["rl/steps"] == 2 and m["rl/heldout_gain"] == res.gain["gain"]
    assert m["rl/prompt_level_strict_acc"] == res.stages["rl"]["prompt_level_strict_acc"]
    assert {"rl/rm_score_change", "rl/train_rule_change", "rl/train_rm_change", "wall_s"} <= set(m)
    assert m["rl/rm_score_change"] == pytest.approx(m["rl/open_rm_score"] - m["sft/open_rm_score"])
    assert res.rm_accuracy["all"] == m["rm/pair_acc_all"] and set(res.rm_accuracy) == {"all", *rm.KINDS}
    assert (tmp_path / "reading.txt").read_text().strip() == res.reading and f"{res.gain['gain']:+.3f}" in res.reading
    assert len(runinfo.read_jsonl(tmp_path / "steps.jsonl")) == len(res.steps) > 0
    for f in ("model/config.json", "pass_rates.png", "rm", "sft", "phases/instruct/model/config.json"):
        assert (tmp_path / f).exists(), f


def test_config_is_the_preset_file():
    for preset in ("tiny", "small", "paper"):
        cfg = stage.Config.from_preset(preset)
        assert set(cfg.to_dict()) - {"preset", "seed"} == set(stage.Config.fields())
    assert stage.Config.from_preset("small").instruction_ids is None
    with pytest.raises(base.ConfigError, match="unknown parameter"):
        stage.Config.from_preset("tiny", sft_epoch=2)

"""vtkit.stages.rl: the Signal stage's protocol on real tiny runs (2 RL steps a phase).

The start is a tiny-100k fine-tuned for ~20 s on 64 mod-7 sums: it writes the answer format and
gets about a third of the samples right, so the solvability filter keeps some math prompts and no
code prompt. One run of phases [math, code, long2short] then shows the skip rule (code is skipped
and recorded, the next phase still runs) and the chaining (long2short starts from math's model,
its steps continue math's).
"""
from __future__ import annotations

import dataclasses
import inspect
import json
import warnings

import pytest
import torch

from vtkit import faithful, models, rl_phase, runinfo, train
from vtkit.rl import MGPOConfig
from vtkit.stages import base
from vtkit.stages import rl as stage

warnings.filterwarnings("ignore")

MATH = {"difficulty": 1, "mod": 7, "subdomain": "add", "shuffle": False}
SMALL = {"n_prompts": {"math": 16, "code": 8, "stem": 8}, "n_heldout": {"math": 8, "code": 4, "stem": 4},
         "filter_rollouts": 4, "min_prompts": 2, "prompts_per_step": 2, "num_generations": 4,
         "max_completion_length": 48, "max_steps": 2, "eval_every": 1, "eval_samples": 2, "warmup": 0}


def checksum(model) -> float:
    return float(sum(p.detach().double().sum() for p in model.parameters()))


@pytest.fixture(scope="module")
def start(tmp_path_factory):
    """A saved tiny-100k that writes the answer format (quick SFT, not cached)."""
    model, tok, _ = train.sft_start("tiny-100k", {"math": {"n": 64, **MATH}}, epochs=12, lr=1e-2, batch_size=8,
                                    max_length=128, cache=False)
    path = tmp_path_factory.mktemp("start") / "model"
    models.save(model, tok, path)
    return str(path)


@pytest.fixture(scope="module")
def chained(start, tmp_path_factory):
    """One stage run, phases [math, code, long2short], with the model each run_phase call received."""
    calls, real = [], rl_phase.run_phase

    def spy(model, tok, records, out_dir, **kw):
        calls.append({"phase": kw["phase"], "checksum": checksum(model), "step_offset": kw["step_offset"],
                      "n_records": len(records), "kw": kw})
        return real(model, tok, records, out_dir, **kw)

    cfg = stage.Config.from_preset("tiny", seed=0, init_model=start, phases=["math", "code", "long2short"],
                                   overrides=SMALL)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(rl_phase, "run_phase", spy)
        res = stage.run(cfg, tmp_path_factory.mktemp("rl"))
    return cfg, res, calls


def test_phase_kwargs_map_the_config_to_run_phase():
    cfg = stage.Config.from_preset("tiny", seed=3, overrides={"negative_advantage_scale": 0.5, "lr": 1e-4})
    kw = stage.phase_kwargs(cfg)
    assert kw["seed"] == 3 and kw["negative_advantage_scale"] == 0.5 and kw["lr"] == 1e-4
    assert kw == {**{k: cfg[k] for k in stage.PHASE_SETTINGS}, "seed": 3}
    # every setting reaches run_phase as one of its keywords or (through **grpo_kw) an MGPOConfig field
    accepted = set(inspect.signature(rl_phase.run_phase).parameters) | {f.name for f in dataclasses.fields(MGPOConfig)}
    assert set(kw) <= accepted, set(kw) - accepted
    # every field of the config is passed on or used by the stage itself: none is silently ignored
    fields = set(stage.Config.fields())
    assert fields == set(stage.PHASE_SETTINGS) | set(stage.STAGE_SETTINGS)
    assert not set(stage.PHASE_SETTINGS) & set(stage.STAGE_SETTINGS)
    assert stage.min_kept(cfg) == 8 and stage.min_kept(cfg.replace(min_prompts=12)) == 12


def test_every_preset_defines_every_field_and_bad_settings_are_named():
    for preset in ("tiny", "small", "paper"):
        cfg = stage.Config.from_preset(preset)
        assert cfg.advantage_mode == "mgpo" and cfg.negative_advantage_scale in (0.0, 1.0)
    with pytest.raises(base.ConfigError, match="did you mean 'negative_advantage_scale'"):
        stage.Config.from_preset("tiny", overrides={"negative_advantage": 0.0})
    with pytest.raises(base.ConfigError, match="max_steps = 'many'"):
        stage.Config.from_preset("tiny", overrides={"max_steps": "many"})
    cfg = stage.Config.from_preset("tiny", phases=["math", "code"], overrides={"tasks": {"math": MATH}})
    with pytest.raises(base.ConfigError, match="phase domain 'code' has no settings in tasks"):
        stage.phase_data(cfg)
    with pytest.raises(ValueError, match="unknown phase 'chess'"):
        stage.domains(cfg.replace(phases=["chess"]))


def test_a_phase_with_too_few_solvable_prompts_is_skipped_and_the_next_runs(chained):
    cfg, res, calls = chained
    m = res.metrics
    assert [c["phase"] for c in calls] == ["math", "long2short"]
    assert m["code/skipped"] is True and m["code/n_kept"] < stage.min_kept(cfg) == 2
    assert m["code/n_prompts"] == 8 == m["code/n_kept"] + m["code/n_dropped_all_correct"] + m["code/n_dropped_all_wrong"]
    assert not any(k.startswith("code/") and k not in {f"code/{x}" for x in ("n_prompts", "n_kept", "skipped",
                   "n_dropped_all_correct", "n_dropped_all_wrong")} for k in m)
    assert not (res.out_dir / "phases" / "code").exists()
    for ph in ("math", "long2short"):   # the phases that ran had enough solvable prompts and trained on exactly them
        assert m[f"{ph}/skipped"] is False and m[f"{ph}/n_kept"] >= stage.min_kept(cfg)
        assert next(c for c in calls if c["phase"] == ph)["n_records"] == m[f"{ph}/n_kept"]
        assert m[f"{ph}/steps"] == cfg.max_steps
    assert res.filters["code"]["n_kept"] == m["code/n_kept"] and len(res.filters["math"]["accuracy"]) == 16


def test_each_phase_starts_from_the_previous_phases_model(chained, start):
    cfg, res, calls = chained
    m = res.metrics
    first, second = calls
    assert first["checksum"] == checksum(models.load(start)[0])            # math from the start
    math_model, _ = models.load(str(res.out_dir / "phases" / "math" / "model"))
    assert second["checksum"] == checksum(math_model) != first["checksum"]  # long2short from math's model
    final, _ = models.load(str(res.out_dir / "model"))
    last, _ = models.load(str(res.out_dir / "phases" / "long2short" / "model"))
    assert all(torch.equal(a, b) for a, b in zip(final.parameters(), last.parameters()))
    # the settings reach run_phase from the config; step offsets continue; the held-out result chains
    assert all({k: c["kw"][k] for k in stage.PHASE_SETTINGS} == {k: cfg[k] for k in stage.PHASE_SETTINGS}
               for c in calls)
    assert (first["step_offset"], second["step_offset"]) == (0, cfg.max_steps)
    gs = [(s["phase"], s["global_step"]) for s in res.steps]
    assert gs == [("math", i) for i in range(3)] + [("long2short", cfg.max_steps + i) for i in range(3)]
    assert m["math/heldout_start"] == m["start/math/mean@2"]
    assert m["long2short/heldout_start"] == m["math/heldout_end"]
    assert m["final/math/mean@2"] == m["long2short/heldout_end"]
    assert m["final/math/heldout_gain"] == pytest.approx(m["long2short/heldout_end"] - m["start/math/mean@2"])


def test_outputs_and_metric_keys(chained):
    cfg, res, _ = chained
    d, m = res.out_dir, res.metrics
    assert json.loads((d / "metrics.json").read_text()) == m
    saved = json.loads((d / "config.json").read_text())
    assert saved["section"] == "rl" and stage.Config.from_dict(saved) == cfg
    assert runinfo.read_jsonl(d / "steps.jsonl") == res.steps
    for f in ("runinfo.json", "model/config.json", "phases/math/model/config.json", "phases/math/steps.jsonl",
              "rl_curves.pdf", "rl_curves.png"):
        assert (d / f).exists(), f
    assert res.figure is not None
    for dom in ("math", "code"):
        assert {f"start/{dom}/mean@2", f"final/{dom}/mean@2", f"final/{dom}/heldout_gain",
                f"final/{dom}/heldout_gain_lo", f"final/{dom}/heldout_gain_hi"} <= set(m)
    for ph in ("math", "long2short"):
        assert {f"{ph}/{k}" for k in ("n_prompts", "n_kept", "skipped", "steps", "heldout_start", "heldout_end",
                                      "heldout_gain", "heldout_gain_lo", "heldout_gain_hi", "n_heldout",
                                      "weight_mean", "reward")} <= set(m)
        assert 0.5 <= m[f"{ph}/weight_mean"] <= 1.0   # lambda = 1: exp(-D), D <= ln 2
    assert "stem/n_prompts" not in m and "start/stem/mean@2" not in m and m["wall_s"] > 0
    # trace faithfulness beside accuracy, for math only, from the held-out samples the stage drew
    heldout = stage.phase_data(cfg)[1]["math"]
    for when, r in (("start", res.start["math"]), ("final", res.final["math"])):
        f = faithful.from_eval(heldout, r)
        assert f["n_traces"] == 8 * 2 and {k: m[f"{when}/math/{k}"] for k in ("faithful", "faithful_lo", "faithful_hi")} \
            == {k: f[k] for k in ("faithful", "faithful_lo", "faithful_hi")}
        assert 0 <= m[f"{when}/math/faithful_lo"] <= m[f"{when}/math/faithful"] <= m[f"{when}/math/faithful_hi"] <= 1
    assert not any(k.endswith("faithful") and not k.endswith("/math/faithful") for k in m)


def test_a_start_that_solves_nothing_skips_every_phase(tmp_path):
    cfg = stage.Config.from_preset("tiny", seed=0, phases=["math", "stem"],
                                   overrides={**SMALL, "model": "tiny-25k", "start_data": None})
    res = stage.run(cfg, tmp_path)   # a fresh tiny-25k: the standalone start without SFT
    m = res.metrics
    assert m["math/skipped"] is True and m["stem/skipped"] is True and m["math/n_dropped_all_wrong"] == 16
    assert res.steps == [] and runinfo.read_jsonl(tmp_path / "steps.jsonl") == [] and res.figure is None
    assert m["final/math/heldout_gain"] == 0.0 and (tmp_path / "model" / "config.json").exists()
    assert m["final/math/faithful"] == m["start/math/faithful"] == 0.0   # untrained: no faithful trace
    assert not (tmp_path / "rl_curves.png").exists()


def test_command_line_shows_the_settings(capsys):
    assert base.main(stage, ["--preset", "tiny", "--out-dir", "unused", "--show", "--set", "phases=[math]"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["phases"] == ["math"] and shown["max_steps"] == stage.Config.from_preset("tiny").max_steps
    assert base.main(stage, ["--out-dir", "unused", "--set", "lrr=1"]) == 2
    assert "did you mean 'lr'" in capsys.readouterr().err


def test_final_results_are_remeasured_when_a_later_phase_trained_another_domain():
    cfg = stage.Config.from_preset("tiny", phases=["math", "code", "stem"])

    def trained(*names):
        return {f"{p}/skipped": p not in names for p in cfg.phases}

    assert stage.remeasure(cfg, trained("math", "code", "stem")) == ["math", "code"]
    assert stage.remeasure(cfg, trained("math")) == ["code", "stem"]        # their results are the start's
    assert stage.remeasure(cfg, trained()) == []                            # nothing trained: the start is final
    assert stage.remeasure(cfg, trained("code")) == ["math", "stem"]
    l2s = stage.Config.from_preset("tiny", phases=["math", "long2short"])  # long2short trains math
    assert stage.remeasure(l2s, {"math/skipped": False, "long2short/skipped": False}) == []

"""vtkit.stages.clr: the config (the preset's schema, with difficulty and task_kw from the checkpoint's
stage), the test and teaching problems, the metrics, and run() end to end on a tiny model."""
import json
from pathlib import Path

import pytest

from vtkit import clr, notebook, presets, runinfo
from vtkit.stages import base
from vtkit.stages import clr as stage

ROOT = Path(__file__).resolve().parents[1]


def checkpoint(tmp_path, stage_config: dict) -> str:
    """A stage's out_dir with config.json and an (empty) model folder; the model's path."""
    (tmp_path / "model").mkdir(parents=True)
    (tmp_path / "config.json").write_text(json.dumps(stage_config))
    return str(tmp_path / "model")


def test_config_is_the_preset_schema_and_the_notebook_passes_its_parameters():
    for preset in presets.PRESETS:
        cfg = stage.Config.from_preset(preset, seed=2)
        assert set(cfg.to_dict()) - {"preset", "seed"} == set(presets.resolve(preset, "clr")) - {"preset"}
        assert isinstance(cfg.task_kw, dict)        # None in a preset reads as {}
    params = set(notebook.parameters(ROOT / "notebooks" / "06_clr.ipynb"))
    assert params - {"preset", "out_dir", "seed", "overrides"} <= set(stage.Config.fields())
    with pytest.raises(base.ConfigError, match=r"'teach_lrr'.*did you mean 'teach_lr'"):
        stage.Config.from_preset("tiny", teach_lrr=1e-3)


def test_trained_on_reads_the_stage_config_beside_the_model(tmp_path):
    rl = checkpoint(tmp_path / "rl", {"tasks": {"math": {"difficulty": [1, 2], "mod": 5}, "code": {}}})
    assert stage.trained_on(rl, "math") == ([1, 2], {"mod": 5})
    assert stage.trained_on(rl, "stem") == (None, None)
    quick = checkpoint(tmp_path / "qs", {"domain": "math", "difficulty": 2, "task_kw": {"mod": 11}})
    assert stage.trained_on(quick, "math") == (2, {"mod": 11})
    assert stage.trained_on(quick, "code") == (None, None)
    assert stage.trained_on("tiny-1m", "math") == (None, None)        # a model spec, not a checkpoint
    assert stage.trained_on(None, "math") == (None, None)
    (tmp_path / "bare" / "model").mkdir(parents=True)
    assert stage.trained_on(tmp_path / "bare" / "model", "math") == (None, None)   # no config.json


def test_from_preset_takes_difficulty_and_task_kw_given_then_from_the_checkpoint_then_the_preset(tmp_path, capsys):
    tiny = presets.resolve("tiny", "clr")
    rl = checkpoint(tmp_path / "rl", {"tasks": {"math": {"difficulty": 2, "mod": 5}}})
    cfg = stage.Config.from_preset("tiny", model=rl)
    assert (cfg.difficulty, cfg.task_kw) == (2, {"mod": 5})
    assert "the checkpoint's stage trained on math difficulty 2, {'mod': 5}" in capsys.readouterr().out
    cfg = stage.Config.from_preset("tiny", model=rl, difficulty=1)
    assert (cfg.difficulty, cfg.task_kw) == (1, {"mod": 5})
    cfg = stage.Config.from_preset("tiny", model=rl, overrides={"task_kw": {"mod": 7}})
    assert (cfg.difficulty, cfg.task_kw) == (2, {"mod": 7})
    cfg = stage.Config.from_preset("tiny", model=rl, task="code")       # the stage names no code
    assert (cfg.difficulty, cfg.task_kw) == (tiny["difficulty"], tiny["task_kw"])
    cfg = stage.Config.from_preset("tiny", overrides={"task_kw": None})
    assert cfg.task_kw == {} and cfg.difficulty == tiny["difficulty"]


def test_task_records_by_split_with_a_difficulty_range():
    cfg = stage.Config.from_preset("tiny", difficulty=1, overrides={"difficulty": [1, 2], "task_kw": {"mod": 7}})
    test = stage.task_records(cfg, 12, "test", 0)
    train = stage.task_records(cfg, 12, "train", 1)
    assert len(test) == len(train) == 12 and not {r["prompt"] for r in test} & {r["prompt"] for r in train}
    assert {r["difficulty"] for r in test + train} <= {1, 2}
    assert {json.loads(r["meta"])["mod"] for r in test} == {7}
    bench = cfg.replace(task="aime25")
    with pytest.raises(ValueError, match="no training traces to teach CLR from; set teach=False"):
        stage.task_records(bench, 4, "train", 0)


def test_summary_adds_the_headline_at_the_largest_k():
    clr_m = {"clr@1": 0.5, "majority@1": 0.5, "clr@4": 0.75, "majority@4": 0.5, "n_problems": 4}
    m = stage.summary(clr_m, {"verifier_acc": 0.9}, {"claims_exact": 1.0}, {"clr_s": 2.0},
                      K_max=4, n_trajectories=16, teach=1)
    assert (m["accuracy"], m["clr_minus_majority"], m["teach"]) == (0.75, 0.25, True)
    assert list(m)[:8] == ["clr@1", "majority@1", "clr@4", "majority@4", "n_problems", "verifier_acc",
                           "claims_exact", "clr_s"]      # metrics.json's order, as the notebook wrote it
    with pytest.raises(KeyError):
        stage.summary(clr_m, {}, {}, {}, K_max=8, n_trajectories=16, teach=False)


def test_run_samples_teaches_checks_the_verifier_and_scores_on_the_same_subsamples(tmp_path):
    small = {"model": "tiny-100k", "n_problems": 3, "K": [2, 1], "M": 2, "R": 2, "max_new_tokens": 24,
             "verify_tokens": 8, "teach_records": 2, "teach_verify_records": 4, "teach_verify_per_record": 2,
             "teach_epochs": 1, "teach_batch_size": 8, "held_out_records": 3}
    cfg = stage.Config.from_preset("tiny", seed=0, overrides=small)
    res = stage.run(cfg, tmp_path / "clr")
    d = tmp_path / "clr"
    m = json.loads((d / "metrics.json").read_text())
    assert m == runinfo.check_metrics(res.metrics) and res.K == [1, 2]
    assert m["n_problems"] == 3 and m["n_trajectories"] == 6 and m["K_max"] == 2 and m["teach"] is True
    assert m["clr@1"] == m["majority@1"] == m["mean1@1"]          # one sample: nothing to choose
    assert m["accuracy"] == m["clr@2"] and m["clr_minus_majority"] == pytest.approx(m["clr@2"] - m["majority@2"])
    assert {"teach_s", "verifier_s", "clr_s", "wall_s"} <= set(m)
    samples = runinfo.read_jsonl(d / "samples.jsonl")
    items = runinfo.read_jsonl(d / "clr_items.jsonl")
    held = runinfo.read_jsonl(d / "verifier_held_out.jsonl")
    assert len(samples) == 6 and [r["id"] for r in items] == list(dict.fromkeys(r["id"] for r in samples))
    assert all("ok_cluster" not in r and len(r["answers"]) == 2 for r in items)
    assert len(held) == m["verifier_n"] > 0
    assert m["verifier_acc"] == pytest.approx(sum(r["verdict"] == r["label"] for r in held) / len(held))
    assert all(r["verdict"] == clr.parse_verdict(r["reply"]) for r in held)
    # apart on claims whose arithmetic string was taught and on new arithmetic, beside the lookup table
    taught = clr.verification_examples(stage.task_records(cfg, 4, "train", 3), seed=0, per_record=2)
    table = clr.arithmetic_lookup(taught)
    assert [r["seen"] for r in held] == [clr.arithmetic_key(r["claim"]) in table for r in held]
    assert m["verifier_n_seen"] == sum(r["seen"] for r in held) and m["verifier_n_novel"] == m["verifier_n"] - m["verifier_n_seen"]
    novel = [r["verdict"] == r["label"] for r in held if not r["seen"]]
    assert m["verifier_n_novel"] > 0 and m["verifier_acc_novel"] == pytest.approx(sum(novel) / len(novel))
    assert m["verifier_lookup_acc"] == pytest.approx(sum(
        (table[r["arithmetic"]] if r["seen"] else 1) == r["label"] for r in held) / len(held))
    assert m["verifier_acc_novel_lo"] <= m["verifier_acc_novel"] <= m["verifier_acc_novel_hi"]
    assert any((d / "teach").iterdir())                            # the teaching run's folder
    assert (d / "fig_clr.png").exists() and (d / "fig_clr.pdf").exists()
    saved = json.loads((d / "config.json").read_text())
    assert saved["section"] == "clr" and stage.Config.from_dict(saved) == cfg
    # trajectories come from the model under test, before it was taught
    again = stage.run(cfg.replace(teach=False, held_out_records=0), tmp_path / "plain")
    assert runinfo.read_jsonl(tmp_path / "plain" / "samples.jsonl") == samples
    assert again.verifier == {} and not (tmp_path / "plain" / "verifier_held_out.jsonl").exists()
    assert "verifier_acc" not in again.metrics and "verifier_acc_novel" not in again.metrics
    assert again.metrics["teach"] is False

"""vtkit.stages.quickstart: its config is the preset's schema, its metrics and figure, a real tiny run, the CLI."""
import json

import pytest

from vtkit import evaluation, presets
from vtkit.stages import base, quickstart

TINY = {"model": "tiny-25k", "n_train": 80, "n_test": 6, "epochs": 1.0, "batch_size": 8, "n_samples": 2,
        "max_new_tokens": 12, "max_length": 128}


def test_config_is_the_preset_schema():
    for preset in presets.PRESETS:
        cfg = quickstart.Config.from_preset(preset, seed=1)
        assert cfg.to_dict() == {**presets.resolve(preset, "quickstart"), "seed": 1}
    cfg = quickstart.Config.from_preset("tiny", lr=1e-4, epochs=None, overrides={"lr": 2e-4, "batch_size": 4})
    assert (cfg.lr, cfg.batch_size, cfg.epochs) == (2e-4, 4, presets.resolve("tiny", "quickstart")["epochs"])
    with pytest.raises(base.ConfigError, match="'n_sample' \\(did you mean 'n_samples'\\?\\)"):
        quickstart.Config.from_preset("tiny", overrides={"n_sample": 4})
    with pytest.raises(base.ConfigError, match="n_samples = 'many' is a str, expected int"):
        quickstart.Config.from_preset("tiny", n_samples="many")


def test_pass_ks():
    assert quickstart.pass_ks(8) == (1, 2, 4, 8)
    assert quickstart.pass_ks(5) == (1, 2, 4)
    assert quickstart.pass_ks(100) == (1, 2, 4, 8, 16, 32, 64)
    with pytest.raises(ValueError, match="n_samples must be a positive int"):
        quickstart.pass_ks(0)


def _res(metrics, headline):
    return evaluation.EvalResult(metrics=metrics, per_item={}, ids=[], headline=headline)


def test_summary_metrics():
    before = _res({"greedy_acc": 0.0, "greedy_acc_lo": 0.0, "greedy_acc_hi": 0.1, "n_items": 10}, "greedy_acc")
    after = _res({"greedy_acc": 0.8, "greedy_acc_lo": 0.5, "greedy_acc_hi": 0.9, "n_items": 10}, "greedy_acc")
    sampled = _res({"pass@1": 0.4, "pass@2": 0.6, "pass@2_lo": 0.3, "mean_tokens": 30.5, "truncation_rate": 0.1},
                   "pass@1")
    m = quickstart.summary_metrics(1000, before, after, [(1, 6.0), (50, 1.0), (60, 0.5)], sampled, (1, 2))
    assert m == {"params": 1000, "greedy_acc_before": 0.0, "greedy_acc": 0.8, "greedy_acc_lo": 0.5,
                 "greedy_acc_hi": 0.9, "train_loss_first": 6.0, "train_loss_last": 0.5, "train_steps": 60,
                 "pass@1": 0.4, "pass@2": 0.6, "mean_tokens": 30.5, "truncation_rate": 0.1}
    with pytest.raises(ValueError, match="no training loss"):
        quickstart.summary_metrics(1000, before, after, [], sampled, (1, 2))


def test_run_trains_evaluates_and_writes_its_outputs(tmp_path, capsys):
    cfg = quickstart.Config.from_preset("tiny", seed=0, overrides=TINY)
    res = quickstart.run(cfg, tmp_path / "q")
    out = capsys.readouterr().out
    m = json.loads((tmp_path / "q" / "metrics.json").read_text())
    assert m == res.metrics and res.ks == (1, 2)
    assert m["train_steps"] == 10 == res.curve[-1][0]            # 80 problems / batch 8, one epoch (logged every 10)
    assert m["params"] < 100_000 and 0 <= m["pass@1"] <= m["pass@2"] <= 1
    assert m["greedy_acc"] == res.after.acc and m["greedy_acc_before"] == res.before.acc
    assert res.sampled.protocol.n == 2 and res.after.metrics["n_items"] == 6
    for f in ("model/config.json", "quickstart.pdf", "quickstart.png", "config.json", "runinfo.json"):
        assert (tmp_path / "q" / f).exists(), f
    assert json.loads((tmp_path / "q" / "config.json").read_text())["model"] == "tiny-25k"
    assert "before training: greedy_acc" in out and "pass@2:" in out and "training loss" in out
    assert set(res.figures) == {"quickstart"}


def test_command_line_shows_and_refuses(capsys):
    assert base.main(quickstart, ["--out-dir", "unused", "--show", "--set", "lr=1e-4", "--set", "task_kw={mod: 5}"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["lr"] == 1e-4 and shown["task_kw"] == {"mod": 5} and shown["preset"] == "tiny"
    assert base.main(quickstart, ["--out-dir", "unused", "--set", "lrr=1e-4"]) == 2
    assert "did you mean 'lr'" in capsys.readouterr().err

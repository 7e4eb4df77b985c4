"""vtkit.stages.capacity: the settings of every preset, the checks before training, and the stage run
shrunk to seconds: in reasoning mode (early stopping; the people a knowledge run would see measured
as a control) and in mixture mode, whose bits (clamped and unclamped, per parameter and per
non-embedding parameter) must equal the measure recomputed on the saved model."""
import json

import pytest

from vtkit import capacity, models, runinfo, tasks
from vtkit.stages import base
from vtkit.stages import capacity as stage

SMALL = {"n_people": 30, "n_eval": 4, "overrides": {"n_problems": 48, "n_val": 8, "max_epochs": 2, "patience": 1}}


def test_capacity_settings_come_from_every_preset_and_are_checked():
    for preset in ("tiny", "small", "paper"):
        cfg = stage.Config.from_preset(preset)
        assert cfg.mode in ("knowledge", "reasoning", "mixture") and cfg.report_to in ("none", "tensorboard")
    cfg = stage.Config.from_preset("tiny", model="tiny-50k", lr=None, overrides={"n_problems": 10})
    assert cfg.model == "tiny-50k" and cfg.lr is None and cfg.n_problems == 10   # None keeps the preset's value
    with pytest.raises(base.ConfigError, match="did you mean 'exposures'"):
        stage.Config.from_preset("tiny", overrides={"exposure": 10})
    with pytest.raises(base.ConfigError, match="exposures = 'many'"):
        stage.Config.from_preset("tiny", exposures="many")
    with pytest.raises(ValueError, match="tiny size trained from scratch"):
        stage.check(cfg.replace(model="smollm2-135m"))
    with pytest.raises(ValueError, match="must exceed max_depth"):
        stage.check(cfg.replace(ood_depth=1))


def test_the_command_line_shows_the_resolved_settings(tmp_path, capsys):
    assert base.main(stage, ["--out-dir", str(tmp_path), "--set", "model=tiny-50k", "--show"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["model"] == "tiny-50k" and shown["exposures"] == 100 and not (tmp_path / "config.json").exists()


def test_reasoning_run_stops_early_and_measures_the_control(tmp_path):
    cfg = stage.Config.from_preset("tiny", mode="reasoning", n_people=SMALL["n_people"], n_eval=SMALL["n_eval"],
                                   overrides=SMALL["overrides"])
    res = stage.run(cfg, tmp_path)
    m = json.loads((tmp_path / "metrics.json").read_text())
    log = json.loads((tmp_path / "train_log.json").read_text())
    assert m["n_people"] == 0 and m["n_people_scored"] == 30 and m["bits_offered"] == 0.0  # the control
    assert 1 <= len(log["val_losses"]) <= 2 and m["epochs_run"] <= 2 and m["n_problems"] == 48
    assert 0 <= m["acc_id_lo"] <= m["acc_id"] <= m["acc_id_hi"] <= 1 and m["acc_chance"] == pytest.approx(1 / 7)
    assert json.loads((tmp_path / "config.json").read_text())["lr"] == 1e-2   # the size table's rate, recorded
    rows = runinfo.read_jsonl(tmp_path / "reasoning_samples.jsonl")
    assert len(rows) == 2 * 4 and {r["split"] for r in rows} == {"id", "ood"}    # greedy only: pass_k 0 at tiny
    acc_id = sum(r["correct"] for r in rows if r["split"] == "id") / 4
    assert m["acc_id"] == acc_id and res.by_depth.index.tolist() == sorted({r["difficulty"] for r in rows})
    assert (tmp_path / "fig_probe.png").exists() and res.figures[-1] == tmp_path / "fig_probe.png"


def test_mixture_run_bits_equal_the_measure_of_the_saved_model(tmp_path):
    cfg = stage.Config.from_preset("tiny", mode="mixture", n_people=SMALL["n_people"], n_eval=SMALL["n_eval"],
                                   save_model=True, report_to="tensorboard", overrides=SMALL["overrides"])
    res = stage.run(cfg, tmp_path)
    m = res.metrics
    assert m["n_people"] == 30 and m["exposures_actual"] == 100 and m["tokens_knowledge"] == 30 * 100 * 9
    assert not m["in_capacity_regime"] and m["capacity_ratio"] == pytest.approx(30 * 47.6 / (2 * 24208), rel=0.01)
    trained, tok = models.load(str(tmp_path / "model"), dtype="float32")
    fresh, _ = models.load("tiny-25k", seed=0, dtype="float32")
    kn = capacity.knowledge_eval(trained, tok, tasks.people(30, seed=0), untrained=fresh, knowledge_format="coded")
    assert m["bits"] == pytest.approx(kn["bits"], rel=1e-6) and m["bits"] > 0
    assert m["bits_per_param"] == pytest.approx(kn["bits"] / 24208, rel=1e-6)
    assert m["bits_per_param_lo"] == pytest.approx(max(0, kn["bits"] - 1.96 * kn["bits_se"]) / 24208, rel=1e-6)
    # beside them: the sum without the clamp at 0 per fact, and bits per parameter outside the 1024 x 16 embedding
    assert m["bits_stored_unclamped"] == pytest.approx(kn["bits_stored_unclamped"], rel=1e-6)
    assert m["bits_stored_unclamped"] <= m["bits_measured"] and m["bits_untrained_unclamped"] <= m["bits_untrained"]
    assert m["bits_per_param_unclamped"] == pytest.approx(kn["bits_stored_unclamped"] / 24208, rel=1e-6)
    assert m["params_nonembedding"] == m["params_nonembed"] == 24208 - 1024 * 16 == 7824
    assert m["bits_per_param_nonembedding"] == pytest.approx(kn["bits"] / 7824, rel=1e-6)
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))

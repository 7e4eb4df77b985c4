"""vtkit.stages.evaluate: its config is the preset's schema, its protocols and task sets follow the
config, and run() writes what the notebook wrote (metrics, samples, figure) from a real evaluation."""
import json
from pathlib import Path

import pytest

from vtkit import evaluation, notebook, presets, runinfo
from vtkit.stages import base
from vtkit.stages import evaluate as stage

ROOT = Path(__file__).resolve().parents[1]
FIX = Path(__file__).parent / "fixtures" / "evalsets"
SMALL = {"model": "tiny-100k", "n": 4, "n_samples": 2, "max_new_tokens": 12}


def test_config_is_the_preset_schema_and_the_notebook_passes_its_parameters():
    for preset in presets.PRESETS:
        cfg = stage.Config.from_preset(preset, seed=3)
        assert set(cfg.to_dict()) - {"preset", "seed"} == set(presets.resolve(preset, "evaluate")) - {"preset"}
        assert (cfg.preset, cfg.seed) == (preset, 3)
    params = set(notebook.parameters(ROOT / "notebooks" / "evaluate.ipynb"))
    assert params - {"preset", "out_dir", "seed", "overrides"} <= set(stage.Config.fields())
    with pytest.raises(base.ConfigError, match=r"'sampels'.*did you mean 'n_samples'"):
        stage.Config.from_preset("tiny", overrides={"sampels": 2})
    with pytest.raises(base.ConfigError, match="n = 'many' is a str, expected int"):
        stage.Config.from_preset("tiny", n="many")


def test_protocol_for_applies_tiny_then_overrides_then_the_named_keys():
    cfg = stage.Config.from_preset("tiny", seed=5)          # n_samples 4, max_new_tokens 96, suffix ""
    p = stage.protocol_for(cfg, "vibethinker-math")
    assert (p.name, p.n, p.max_new_tokens, p.prompt_suffix, p.seed) == ("vibethinker-math", 4, 96, "", 5)
    assert p.temperature == evaluation.PRESETS["vibethinker-math"].temperature   # None keeps the protocol's
    assert p.n_boot == evaluation.TINY["n_boot"]                                 # tiny_protocol
    cfg = cfg.replace(protocol="gpqa", temperature=0.5, protocol_overrides={"top_p": 0.5, "n": 9},
                      tiny_protocol=False)
    p = stage.protocol_for(cfg, "vibethinker-math")
    assert (p.name, p.temperature, p.top_p, p.n) == ("gpqa", 0.5, 0.5, 4)      # n_samples beats the overrides
    assert p.n_boot == evaluation.PRESETS["gpqa"].n_boot
    with pytest.raises(TypeError, match="unknown protocol field"):
        stage.protocol_for(cfg.replace(protocol_overrides={"nn": 1}), "gpqa")


def test_load_task_set_reads_one_copy_or_a_folder_of_copies(monkeypatch):
    monkeypatch.setenv("VTKIT_DATA_DIR", "unset-by-the-test")
    cfg = stage.Config.from_preset("tiny", overrides={"tasks": ["aime25"], "data_path": str(FIX / "aime25"),
                                                      "max_items": 1})
    recs, proto = stage.load_task_set(cfg, "aime25")
    assert proto == "vibethinker-math" and len(recs) == 1
    cfg = cfg.replace(tasks=["aime25", "hmmt25"], data_path=str(FIX), max_items=None)
    recs, _ = stage.load_task_set(cfg, "hmmt25")     # <data_path>/hmmt25.jsonl, through $VTKIT_DATA_DIR
    assert len(recs) >= 1 and all(r["domain"] == "math" for r in recs)
    math, proto = stage.load_task_set(cfg.replace(tasks=["math"], data_path=None), "math")
    assert proto == "vibethinker-math" and len(math) == cfg.n
    assert all(r["meta"] and json.loads(r["meta"])["mod"] == 7 for r in math)   # task_options reach tasks.make


def test_run_writes_the_evaluation_of_every_task_set(tmp_path):
    cfg = stage.Config.from_preset("tiny", seed=1, overrides={**SMALL, "tasks": ["math", "stem"],
                                                             "task_options": {"math": {"mod": 7}}})
    res = stage.run(cfg, tmp_path / "ev")
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert m == runinfo.check_metrics(res.metrics) and m["n_task_sets"] == 2
    # the same numbers as evaluating the stage's own records and protocol directly
    recs, default = stage.load_task_set(cfg, "stem")
    direct = evaluation.evaluate("tiny-100k", recs, stage.protocol_for(cfg, default))
    assert {k: v for k, v in m.items() if k.startswith("stem/")} == runinfo.check_metrics(direct.flat("stem/"))
    assert m["headline_metric"] == "mean@2" and m["headline"] == m["math/mean@2"]
    assert (m["headline_lo"], m["headline_hi"]) == (m["math/mean@2_lo"], m["math/mean@2_hi"])
    rows = runinfo.read_jsonl(tmp_path / "ev" / "samples.jsonl")
    assert [r["task_set"] for r in rows] == ["math"] * 8 + ["stem"] * 8
    assert [r["text"] for r in rows[8:]] == [s["text"] for s in direct.samples]
    assert (tmp_path / "ev" / "fig_accuracy.png").exists() and (tmp_path / "ev" / "fig_accuracy.pdf").exists()
    saved = json.loads((tmp_path / "ev" / "config.json").read_text())
    assert saved["section"] == "evaluate" and stage.Config.from_dict(saved) == cfg
    assert set(res.results) == {"math", "stem"} and res.model == "tiny-100k"
    fig = stage.figure(res.results, res.model)
    assert [t.get_text() for t in fig.axes[1].get_xticklabels()] == ["math", "stem"]


def test_run_refuses_no_task_sets_and_the_command_line_shows_the_settings(tmp_path, capsys):
    with pytest.raises(ValueError, match="tasks is empty"):
        stage.run(stage.Config.from_preset("tiny", overrides={"tasks": []}), tmp_path / "none")
    assert not (tmp_path / "none").exists()
    assert base.main(stage, ["--out-dir", str(tmp_path), "--show", "--set", "n=7", "--set", "tasks=[stem]"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["n"], shown["tasks"], shown["preset"]) == (7, ["stem"], "tiny")
    assert base.main(stage, ["--out-dir", str(tmp_path), "--set", "nn=7"]) == 2
    assert "unknown override(s) 'nn'" in capsys.readouterr().err

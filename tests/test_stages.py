"""Every stage: its Config is its preset file's schema, its notebook is a thin caller that papermill
can read, and its command line resolves the same settings."""
import json
import logging
import re
from pathlib import Path

import pytest
import yaml

from vtkit import notebook, presets, stages
from vtkit.stages import base

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = {"quickstart": "00_quickstart", "sft": "01_sft_curriculum", "merge": "02_spectrum_merge",
             "rl": "03_mgpo_rl", "distill": "04_self_distill", "instruct": "05_instruct_rl", "clr": "06_clr",
             "evaluate": "evaluate", "capacity": "10_capacity_probe", "family": "11_family_probe",
             "figures": "20_figures", "ablation": "12_pipeline_ablation"}
MAX_CODE_LINES = 60   # a notebook is the question, its parameters, one call per step, figures, reading


def _code_lines(path: Path) -> int:
    nb = json.loads(path.read_text())
    return sum(1 for c in nb["cells"] if c["cell_type"] == "code"
               for line in "".join(c["source"]).splitlines() if line.strip())


def test_every_stage_has_a_notebook_and_every_notebook_a_stage():
    assert set(NOTEBOOKS) == set(stages.STAGES)
    assert {p.stem for p in (ROOT / "notebooks").glob("*.ipynb")} == set(NOTEBOOKS.values())
    assert set(presets.sections()) == set(stages.STAGES)


@pytest.mark.parametrize("name", stages.STAGES)
@pytest.mark.parametrize("preset", presets.PRESETS)
def test_config_is_the_preset_files_schema(name, preset):
    cls = stages.get(name).Config
    assert cls.SECTION == name
    data = yaml.safe_load((ROOT / "vtkit" / "presets" / f"{name}.yaml").read_text())[preset]
    assert set(data) == set(cls.fields()), f"{name}.yaml [{preset}] keys differ from {name}.Config's fields"
    cfg = cls.from_preset(preset, seed=3)
    assert cfg.seed == 3 and cfg.preset == preset
    assert {k: getattr(cfg, k) for k in data} == data


@pytest.mark.parametrize("name", stages.STAGES)
def test_stage_module_runs_and_has_a_command_line(name):
    mod = stages.get(name)
    assert callable(mod.run) and issubclass(mod.Result, base.StageResult)
    assert mod.__doc__ and len(mod.__doc__.strip().splitlines()) >= 2


@pytest.mark.parametrize("name", stages.STAGES)
def test_notebook_is_a_thin_caller_of_its_stage(name):
    path = ROOT / "notebooks" / f"{NOTEBOOKS[name]}.ipynb"
    assert _code_lines(path) <= MAX_CODE_LINES, f"{path.name}: {_code_lines(path)} code lines"
    src = "".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code")
    assert f"stages.{name}.run(" in src or f"{name}.run(" in src


@pytest.mark.parametrize("name", stages.STAGES)
def test_papermill_reads_every_parameter(name, caplog):
    """`papermill --help-notebook` lists every parameter, with its type, and parses every line."""
    import papermill as pm

    path = ROOT / "notebooks" / f"{NOTEBOOKS[name]}.ipynb"
    with caplog.at_level(logging.WARNING, logger="papermill"):
        found = pm.inspect_notebook(str(path))
    assert not [r for r in caplog.records if "Unable to parse" in r.getMessage()]
    ours = notebook.parameters(path)
    assert set(found) == set(ours) and {"preset", "out_dir", "seed", "overrides"} <= set(found)
    for p in found.values():
        assert p["inferred_type_name"] != "None", f"{name}: {p['name']} has no type papermill can show"
    # every parameter reaches the run: it is used after the parameters cell (a dead one would be ignored)
    cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    after = "".join("".join(c["source"]) for c in cells if "parameters" not in c["metadata"].get("tags", []))
    unused = [n for n in found if not re.search(rf"\b{n}\b", after)]
    assert not unused, f"{name}: parameters {unused} are never used"


# ---- the base: resolution order, errors, command line ---------------------------------------------
RL = stages.get("rl").Config


def test_named_none_keeps_the_preset_and_overrides_come_last():
    tiny = RL.from_preset("tiny")
    cfg = RL.from_preset("tiny", lr=None, max_steps=7, overrides={"max_steps": 9, "beta": 0.1})
    assert cfg.lr == tiny.lr and cfg.max_steps == 9 and cfg.beta == 0.1


def test_unknown_and_mistyped_settings_are_refused_with_the_fix():
    with pytest.raises(base.ConfigError, match=r"'lrr' \(did you mean 'lr'\?\).*valid: "):
        RL.from_preset("tiny", overrides={"lrr": 1e-4})
    with pytest.raises(base.ConfigError, match="max_steps = 'ten' is a str, expected int"):
        RL.from_preset("tiny", max_steps="ten")
    with pytest.raises(base.ConfigError, match="overrides must be a dict"):
        RL.from_preset("tiny", overrides="lr=1")
    with pytest.raises(ValueError, match="unknown preset"):
        RL.from_preset("huge")
    assert RL.from_preset("tiny", lr=1).lr == 1     # an int where a float is expected


def test_from_dict_roundtrips_a_saved_config_and_refuses_a_partial_one(tmp_path):
    cfg = RL.from_preset("tiny", seed=2, lr=1e-4)
    (tmp_path / "config.json").write_text(json.dumps({"section": "rl", **cfg.to_dict()}))
    assert base.upstream_config(RL, tmp_path, "tiny") == cfg
    assert base.upstream_config(RL, None, "tiny") == RL.from_preset("tiny")
    with pytest.raises(FileNotFoundError, match="finished rl run"):
        base.upstream_config(RL, tmp_path / "nope", "tiny")
    older = {k: v for k, v in cfg.to_dict().items() if k != "beta"}   # a run made before `beta` existed
    (tmp_path / "config.json").write_text(json.dumps({**older, "retired": 1}))
    assert base.upstream_config(RL, tmp_path, "tiny") == cfg.replace(beta=RL.from_preset("tiny").beta)
    partial = cfg.to_dict()
    del partial["lr"]
    with pytest.raises(base.ConfigError, match=r"lacks setting\(s\) \['lr'\]"):
        RL.from_dict(partial)
    assert cfg.replace(max_steps=3).max_steps == 3 and cfg["lr"] == 1e-4 and "lr" in cfg


def test_command_line_resolves_the_same_config(capsys):
    from vtkit import cli

    assert cli.main(["run", "rl", "--preset", "tiny", "--out-dir", "unused", "--seed", "4", "--show",
                     "--set", "lr=1e-4", "--set", "phases=[math]", "--set", "n_prompts={math: 16}"]) == 0
    shown = json.loads(capsys.readouterr().out)
    want = RL.from_preset("tiny", seed=4, overrides={"lr": 1e-4, "phases": ["math"], "n_prompts": {"math": 16}})
    assert shown == want.to_dict()
    assert cli.main(["run", "rl", "--out-dir", "x", "--set", "lrr=1"]) == 2
    assert "did you mean 'lr'" in capsys.readouterr().err

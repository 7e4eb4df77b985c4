"""Presets: every notebook's deferred parameters have a value at every scale; `overrides` and
`stage_config` reach any preset key and an upstream stage's settings."""
import json
from pathlib import Path

import pytest

from vtkit import notebook, presets

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = {"quickstart": "00_quickstart", "sft": "01_sft_curriculum", "merge": "02_spectrum_merge",
            "rl": "03_mgpo_rl", "distill": "04_self_distill", "instruct": "05_instruct_rl", "clr": "06_clr",
            "capacity": "10_capacity_probe", "family": "11_family_probe", "figures": "20_figures", "ablation": "12_pipeline_ablation",
            "evaluate": "evaluate"}
RUN_PARAMS = {"preset", "out_dir", "seed", "workers", "overrides"}   # not preset settings
UPSTREAM = {"sft": {"init_model"}, "merge": {"sft_dir"}}   # folders of earlier stages, given by the pipeline


def test_every_notebook_has_a_preset_section():
    assert sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb")) == sorted(SECTIONS.values())
    assert sorted(presets.sections()) == sorted(SECTIONS)


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_every_none_parameter_has_a_preset_value_at_every_scale(section):
    params = notebook.parameters(ROOT / "notebooks" / f"{SECTIONS[section]}.ipynb")
    assert "overrides" in params, f"{SECTIONS[section]} lacks the generic `overrides` parameter"
    deferred = sorted(k for k, p in params.items() if p.default == "None"
                      and k not in RUN_PARAMS | UPSTREAM.get(section, set()))
    for preset in presets.PRESETS:
        cfg = presets.resolve(preset, section)
        missing = [k for k in deferred if k not in cfg]
        assert not missing, f"{section}.yaml [{preset}] lacks {missing}"


def test_start_records_what_runs_and_names_unknown_keys(tmp_path):
    from vtkit.stages import base, rl
    cfg = rl.Config.from_preset("tiny", seed=1, lr=1e-4, overrides={"lr": 2e-4, "max_steps": 3})
    out = base.start(cfg, tmp_path / "a")
    assert (cfg.lr, cfg.max_steps, cfg.seed) == (2e-4, 3, 1)
    saved = json.loads((out / "config.json").read_text())
    assert saved["lr"] == 2e-4 and saved["max_steps"] == 3      # what ran is what is recorded
    with pytest.raises(KeyError, match=r"unknown setting\(s\) \['max_stepz'\]"):
        presets.resolve("tiny", "rl", max_stepz=3)


"""Presets: one code path, three scales.

Each notebook (a "section") has a YAML file beside this module, `<section>.yaml`, mapping the
preset names `tiny`, `small` and `paper` to that notebook's settings. A notebook resolves its
configuration in one call:

    cfg = presets.resolve(preset, "quickstart", model=model, epochs=epochs)

Overrides that are `None` keep the preset's value (notebook parameters default to `None`);
anything else replaces it. Every notebook also takes `overrides`, a dict of any preset keys
(`{"num_generations": 16}`), applied last, so a sweep can vary a setting the notebook does not
name as a parameter. An unknown preset, section or key is an error that lists the valid names,
so a typo in a notebook parameter never silently runs the default. `stage_config(dir, ...)`
reads the resolved settings an upstream stage saved (its config.json), or a preset's.
"""
from __future__ import annotations

import copy
import functools
import json
import logging
from pathlib import Path

import datasets
import transformers
import yaml

from vtkit import runinfo

HERE = Path(__file__).resolve().parent
PRESETS = ("tiny", "small", "paper")


def sections() -> list[str]:
    return sorted(p.stem for p in HERE.glob("*.yaml"))


@functools.lru_cache(maxsize=None)
def _load(section: str) -> dict:
    path = HERE / f"{section}.yaml"
    if not path.exists():
        raise KeyError(f"no presets for section {section!r}; known sections: {', '.join(sections())}")
    data = yaml.safe_load(path.read_text()) or {}
    missing = [p for p in PRESETS if p not in data]
    if missing:
        raise ValueError(f"{path} lacks presets {missing}; every section defines {PRESETS}")
    return data


def resolve(preset: str, section: str, **overrides) -> dict:
    """The settings of `section` at `preset`, with the non-None `overrides` applied."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    cfg = copy.deepcopy(_load(section)[preset])
    unknown = sorted(k for k in overrides if k not in cfg)
    if unknown:
        raise KeyError(f"unknown setting(s) {unknown} for section {section!r}; valid: {', '.join(sorted(cfg))}")
    cfg.update({k: v for k, v in overrides.items() if v is not None})
    cfg["preset"] = preset
    return cfg


def start(preset: str, section: str, out_dir, seed: int = 0, overrides: dict | None = None,
          **named) -> tuple[dict, "Path"]:
    """A notebook's first call: resolve its settings, seed everything, save config and run info.

    `named`: the notebook's own parameters (None keeps the preset's value); `overrides`: any other
    preset keys, applied last. Also keeps progress bars out of notebook logs (datasets,
    transformers). Deprecation notices (FutureWarning) stay visible: MGPOTrainer overrides private
    trl methods, and trl announces their changes that way. Returns `(cfg, out_path)`.
    """
    if overrides is not None and not isinstance(overrides, dict):
        raise TypeError(f"overrides must be a dict of preset keys, e.g. {{'lr': 1e-4}}, got {overrides!r}")
    cfg = resolve(preset, section, **named)
    if overrides:
        resolve(preset, section, **overrides)   # the same check: unknown keys are named
        cfg.update(overrides)
    cfg["seed"] = seed
    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    logging.getLogger("trl").setLevel(logging.ERROR)
    runinfo.seed_everything(seed)
    out = runinfo.save(out_dir, {"section": section, **cfg})
    return cfg, out


def stage_config(stage_dir, preset: str, section: str) -> dict:
    """The resolved settings of an upstream stage: `stage_dir/config.json` when `stage_dir` is
    given (what that run actually used), else `section`'s settings at `preset`."""
    if not stage_dir:
        return resolve(preset, section)
    path = Path(stage_dir) / "config.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: pass the out_dir of a finished {section} run "
                                f"(it writes config.json), or None for the {preset} preset's settings")
    return json.loads(path.read_text())

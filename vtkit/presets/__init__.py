"""Presets: one code path, three scales.

Each notebook (a "section") has a YAML file beside this module, `<section>.yaml`, mapping the
preset names `tiny`, `small` and `paper` to that notebook's settings. A notebook resolves its
configuration in one call:

    cfg = presets.resolve(preset, "quickstart", model=model, epochs=epochs)

Overrides that are `None` keep the preset's value (notebook parameters default to `None`);
anything else replaces it. Every notebook also takes `overrides`, a dict of any preset keys
(`{"num_generations": 16}`), applied last, so a sweep can vary a setting the notebook does not
name as a parameter. An unknown preset, section or key is an error that lists the valid names,
so a typo in a notebook parameter never silently runs the default. The stages read presets through
their typed configs (`vtkit.stages.base`: `Config.from_preset`, `start`, `upstream_config`).
"""
from __future__ import annotations

import copy
import functools
from pathlib import Path

import yaml

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

"""Presets: one code path, three scales.

Each notebook (a "section") has a YAML file beside this module, `<section>.yaml`, mapping the
preset names `tiny`, `small` and `paper` to that notebook's settings. A notebook resolves its
configuration in one call:

    cfg = presets.resolve(preset, "quickstart", model=model, epochs=epochs)

Overrides that are `None` keep the preset's value (notebook parameters default to `None`);
anything else replaces it. An unknown preset, section or key is an error that lists the valid
names, so a typo in a notebook parameter never silently runs the default.
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


def start(preset: str, section: str, out_dir, seed: int = 0, **overrides) -> tuple[dict, "Path"]:
    """A notebook's first call: resolve its settings, seed everything, save config and run info.

    Also keeps progress bars out of notebook logs (datasets, transformers) and quiets the
    warnings that every CPU run would repeat. Returns `(cfg, out_path)`.
    """
    import logging
    import warnings

    import datasets
    import transformers

    from vtkit import runinfo

    cfg = resolve(preset, section, **overrides)
    cfg["seed"] = seed
    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    logging.getLogger("trl").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    runinfo.seed_everything(seed)
    out = runinfo.save(out_dir, {"section": section, **cfg})
    return cfg, out

"""What every stage shares: a typed config that is its preset's schema, the run's start, a result,
and the command line.

    from vtkit.stages import rl
    cfg = rl.Config.from_preset("tiny", seed=0, lr=1e-4, overrides={"num_generations": 16})
    res = rl.run(cfg, "runs/rl")        # -> rl.Result (out_dir, metrics, ...)

    python -m vtkit.stages.rl --preset tiny --out-dir runs/rl --seed 0 --set lr=1e-4 --set phases='[math]'
    vtkit run rl --preset tiny --out-dir runs/rl --set lr=1e-4          # the same

A stage's `Config` is a dataclass whose fields are exactly the keys of its preset file
(`vtkit/presets/<SECTION>.yaml`): the YAML holds the values, per preset, in one place; the
dataclass holds the types. `from_preset` refuses a preset file that lacks a field or has one the
dataclass does not know, a named setting or override that is not a field (with the valid names),
and a value of the wrong type. `None` for a named setting keeps the preset's value (notebook
parameters default to None); `overrides` (a dict of any fields) is applied last. `from_preset` then
checks every (model, sequence length) pair the stage's `context_needs` lists against the model's
context window (`vtkit.context.check`: refused with the fix where no known extension covers it).
"""
from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import logging
import os
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Union

import yaml

from vtkit import compute, presets, runinfo


class ConfigError(ValueError):
    """A stage setting that does not exist or has the wrong type; the message says what to change."""


def _type_ok(value, tp) -> bool:
    """Whether `value` fits the annotation `tp` (int accepted for float; containers by their outer type)."""
    if tp is Any:
        return True
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return any(_type_ok(value, a) for a in typing.get_args(tp))
    if tp is type(None) or tp is None:
        return value is None
    if origin is not None:
        tp = origin
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is Path:
        return isinstance(value, (str, os.PathLike))
    return isinstance(value, tp)


def _type_name(tp) -> str:
    return tp.__name__ if isinstance(tp, type) else str(tp).replace("typing.", "")


@dataclass
class StageConfig:
    """Fields every stage takes; a stage subclasses it with the keys of its preset file."""
    SECTION: ClassVar[str] = ""     # the preset file's name (vtkit/presets/<SECTION>.yaml)

    preset: str
    seed: int

    # ---- building -----------------------------------------------------------------------------
    @classmethod
    def fields(cls) -> dict[str, Any]:
        """{field name: type} of the preset keys (without preset and seed)."""
        hints = typing.get_type_hints(cls)
        return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.name not in ("preset", "seed")}

    @classmethod
    def _unknown(cls, names, what: str) -> None:
        valid = sorted(cls.fields())
        bad = sorted(n for n in names if n not in valid)
        if bad:
            hints = {b: difflib.get_close_matches(b, valid, n=1) for b in bad}
            said = ", ".join(f"{b!r}" + (f" (did you mean {h[0]!r}?)" if h else "") for b, h in hints.items())
            raise ConfigError(f"unknown {what} {said} for stage {cls.SECTION!r}; valid: {', '.join(valid)}")

    @classmethod
    def from_dict(cls, values: dict) -> "StageConfig":
        """A config from a full dict of values (a saved config.json or a preset), type-checked."""
        values = {k: v for k, v in values.items() if k != "section"}
        cls._unknown([k for k in values if k not in ("preset", "seed")], "setting(s)")
        missing = sorted(set(cls.fields()) - set(values))
        if missing:
            raise ConfigError(f"stage {cls.SECTION!r} lacks setting(s) {missing}: every preset in "
                              f"vtkit/presets/{cls.SECTION}.yaml defines every field of {cls.__module__}.Config")
        hints = typing.get_type_hints(cls)
        for name, value in values.items():
            if not _type_ok(value, hints[name]):
                raise ConfigError(f"stage {cls.SECTION!r}: {name} = {value!r} is a {type(value).__name__}, "
                                  f"expected {_type_name(hints[name])}")
        return cls(**values)

    @classmethod
    def from_preset(cls, preset: str = "tiny", seed: int = 0, overrides: dict | None = None,
                    **named) -> "StageConfig":
        """The preset's settings, then the non-None `named` ones, then `overrides` (any field)."""
        if overrides is not None and not isinstance(overrides, dict):
            raise ConfigError(f"overrides must be a dict of settings, e.g. {{'lr': 1e-4}}, got {overrides!r}")
        cls._unknown(named, "parameter(s)")
        cls._unknown(overrides or {}, "override(s)")
        values = presets.resolve(preset, cls.SECTION)
        values.update({k: v for k, v in named.items() if v is not None})
        values.update(overrides or {})
        values.update(preset=preset, seed=seed)
        cfg = cls.from_dict(values)
        from vtkit import context
        try:
            context.check(cfg.context_needs())
        except context.ContextError as e:
            raise ConfigError(f"stage {cls.SECTION!r}: {e}") from None
        return cfg

    def context_needs(self) -> list[tuple]:
        """(model spec, tokens, setting) triples: the longest sequence the stage runs each model at, checked
        against its context window when the config is resolved (`vtkit.context`); a stage overrides it."""
        return []

    def context_for(self, spec) -> int | None:
        """The longest sequence `context_needs` lists for `spec`: `models.load(spec, context=...)` extends the
        model's window to it where needed (None: the stage names no length for it)."""
        return max((int(t) for s, t, _ in self.context_needs() if s == spec and t), default=None)

    # ---- using --------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def replace(self, **changes) -> "StageConfig":
        type(self)._unknown([k for k in changes if k not in ("preset", "seed")], "setting(s)")
        return self.from_dict({**self.to_dict(), **changes})

    def __getitem__(self, key: str):
        """Mapping access, for helpers that take a preset's settings as a dict (`train.preset_start`)."""
        if key not in self.to_dict():
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default=None):
        return getattr(self, key, default)

    def __contains__(self, key: str) -> bool:
        return hasattr(self, key) and not key.startswith("_")


@dataclass
class StageResult:
    """What every stage returns: where it wrote and its flat metrics (as in metrics.json)."""
    out_dir: Path
    metrics: dict = field(default_factory=dict)


def start(cfg: StageConfig, out_dir) -> Path:
    """A stage's first call: quiet progress bars, seed everything, the sampling backend of the kit's own
    sampling (`vtkit.generate.configure` from the config's `generation` key; HF when it has none),
    save config.json and runinfo.json.

    Data parallel (N processes from `accelerate launch` or torchrun): every rank seeds with `cfg.seed`,
    so all ranks draw one data order that the trainers shard, and only rank 0 writes files
    (`runinfo.is_main`: config.json, runinfo.json, metrics.json, jsonl, `models.save`).

    Deprecation notices (FutureWarning) stay visible: MGPOTrainer overrides private trl methods,
    and trl announces their changes that way.
    """
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    logging.getLogger("trl").setLevel(logging.ERROR)
    runinfo.seed_everything(cfg.seed)
    compute.reset()   # the stage's work from here on (vtkit.compute); `finish` writes it
    from vtkit import generate
    generate.configure(getattr(cfg, "generation", None))   # vLLM is imported only when sampling starts
    return runinfo.save(out_dir, {"section": cfg.SECTION, **cfg.to_dict()})


def finish(out_dir, metrics: dict) -> Path:
    """A stage's last write: the stage's `metrics` plus the work counted since `start` (`vtkit.compute`:
    tokens_trained, tokens_generated[_eval], tokens_prompt, tokens_scored, train_flops, gen_flops[_eval]) and
    `wall_s` where the stage wrote none, added to `metrics` in place and merged into out_dir/metrics.json."""
    metrics.update(compute.metrics())
    metrics.setdefault("wall_s", compute.elapsed())
    return runinfo.write_metrics(out_dir, metrics)


def upstream_config(config_cls: type[StageConfig], stage_dir, preset: str) -> StageConfig:
    """The settings an upstream stage ran with: `stage_dir/config.json` when given, else the preset's."""
    if not stage_dir:
        return config_cls.from_preset(preset)
    path = Path(stage_dir) / "config.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: pass the out_dir of a finished {config_cls.SECTION} run "
                                f"(it writes config.json), or None for the {preset} preset's settings")
    saved = {k: v for k, v in json.loads(path.read_text()).items() if k != "section"}
    fields = set(config_cls.fields()) | {"preset", "seed"}
    added = sorted(fields - set(saved))
    gone = sorted(set(saved) - fields)
    if added or gone:   # a run made before settings were added or removed: the preset fills the new ones
        print(f"{path}: made by an older vtkit; settings added since take the "
              f"{saved.get('preset', preset)} preset's values: {added or 'none'}; no longer used: {gone or 'none'}")
        now = config_cls.from_preset(saved.get("preset", preset)).to_dict()
        saved = {**{k: now[k] for k in added}, **{k: v for k, v in saved.items() if k in fields}}
    return config_cls.from_dict(saved)


# ---- command line -----------------------------------------------------------------------------
def _parse_set(items: list[str]) -> dict:
    out = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set takes KEY=VALUE (VALUE in YAML: 3e-4, '[math, code]', '{{math: 64}}'), got {item!r}")
        from vtkit.experiment import _Loader   # YAML that reads 1e-4 as a float
        out[key.strip()] = yaml.load(text, Loader=_Loader) if text.strip() else None
    return out


def parser(name: str, doc: str | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"vtkit run {name}", description=(doc or "").strip().splitlines()[0] if doc else None)
    p.add_argument("--preset", default="tiny", choices=presets.PRESETS)
    p.add_argument("--out-dir", required=True, help="the stage's output folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any setting of the stage's preset (repeatable; VALUE is YAML)")
    p.add_argument("--show", action="store_true", help="print the resolved settings and stop")
    return p


def main(module, argv: list[str] | None = None) -> int:
    """`python -m vtkit.stages.<name>`: resolve the config from the command line and run the stage."""
    name = (module.__spec__.name if module.__spec__ else module.__name__).rsplit(".", 1)[-1]   # not __main__
    args = parser(name, module.__doc__).parse_args(argv)
    try:
        cfg = module.Config.from_preset(args.preset, seed=args.seed, overrides=_parse_set(args.set))
    except ConfigError as e:
        print(f"vtkit run {name}: {e}", file=sys.stderr)
        return 2
    if args.show:
        print(json.dumps(cfg.to_dict(), indent=2))
        return 0
    world = runinfo.world_size()
    if world > 1:   # N processes (torchrun, `accelerate launch`, `vtkit sweep` with resources.processes)
        print(f"vtkit run {name}: rank {runinfo.rank()} of {world}", flush=True)
    res = module.run(cfg, args.out_dir)
    if runinfo.is_main():
        print(f"{name}: wrote {Path(res.out_dir) / 'metrics.json'}")
    return 0

"""Experiment files: YAML specs of sweeps and pipelines, validated before anything runs.

    name: lr-sweep
    notebook: notebooks/evaluate.ipynb       # one notebook, or `pipeline:` (below)
    parameters: {preset: tiny, n: 64}        # base parameters
    grid: {lr: [1e-4, 3e-4], seed: [0, 1]}   # cartesian product
    zip: {a: [1, 2], b: [x, y]}              # paired lists (equal lengths), crossed with the grid
    jobs: 2                                  # runs at once on this machine
    resources: {gpus: 0, cpus: 1}            # per run (per node); processes: one per GPU by default (data parallel)
    timeout_s: 1800                          # per run (all stages of a pipeline together)
    executor: local                          # or slurm (options under `slurm:`)
    report: {metrics: [acc, loss]}           # what `vtkit report` shows (below)

    pipeline:                                # instead of `notebook:`: stages run in order
      - {name: sft, notebook: notebooks/sft.ipynb, parameters: {epochs: 1}}
      - {name: eval, notebook: notebooks/evaluate.ipynb,
         parameters: {model: "{stages.sft.out_dir}/model"}}

Parameters of a pipeline: a top-level `parameters`, `grid` or `zip` name goes to every stage whose
notebook declares it (and must be declared by at least one); `stage.name` targets one stage.
Precedence: top-level parameters < stage parameters < grid/zip (a `stage.name` key beats a plain one).
`{stages.NAME.out_dir}` inside a string is replaced by that stage's output directory; it may only
name an earlier stage. `out_dir` itself is injected by the runner and cannot be set.

`report:` (optional) picks what `vtkit report` puts up front: `metrics: [names]` are the headline
metrics of every stage that reports them (and the ones drawn against varied parameters);
`headline: {stage: [names]}` names them per stage instead (each a stage of this file; stages it
does not name lead with nothing). Without it the report picks (see vtkit.report.headline_metrics).

A run is identified by `run_id` = a readable prefix of its varied values + a hash of the notebooks'
cell sources, the run's parameters and the preset files (vtkit/presets/*.yaml, where unset parameters
come from); changing a notebook's code, a parameter or a preset value gives a new run. The vtkit
library's source is not in the id: each finished stage records the source hash it ran with, and the
sweep runs a finished run made by other library code again in the same folder, unless
`--reuse-stale` (vtkit/sweep.py, "Stale code"). The sweep also links `<out>/<name>/<readable prefix>` to the latest finished run (`vtkit.sweep.link_latest`).
Its directory is `<out>/<name>/<run_id>/` (one notebook) or `<out>/<name>/<run_id>/<stage>/`.
Relative notebook paths are looked up from the current directory, then the YAML file's folder,
then that folder's parent. YAML note: `1e-4` is read as a float here (plain YAML 1.1 says string).
"""
from __future__ import annotations

import copy
import difflib
import hashlib
import itertools
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vtkit import notebook as nbk

KEYS = {"name", "description", "notebook", "pipeline", "parameters", "grid", "zip", "jobs",
        "resources", "timeout_s", "executor", "slurm", "kernel", "report"}
STAGE_KEYS = {"name", "notebook", "parameters"}
RESOURCE_KEYS = {"gpus", "cpus", "processes", "nodes"}
REPORT_KEYS = {"metrics", "headline"}
EXECUTORS = ("local", "slurm")
REF = re.compile(r"\{stages\.([^.{}]+)\.out_dir\}")
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # experiment names (folder names)
STAGE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")  # no '.': `stage.param` keys split on it


class ExperimentError(ValueError):
    """An experiment file that cannot run as written; the message says what to change."""


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads `1e-4` / `3E5` as floats (YAML 1.1 wants a dot: `1.0e-4`)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


@dataclass
class Stage:
    name: str
    notebook: Path  # absolute
    parameters: dict = field(default_factory=dict)


@dataclass
class Experiment:
    name: str
    stages: list[Stage]
    single: bool  # one notebook: the run directory is the stage directory
    parameters: dict
    grid: dict
    zip: dict
    jobs: int = 1
    resources: dict = field(default_factory=lambda: {"gpus": 0, "cpus": 1, "processes": 1, "nodes": 1})
    timeout_s: float | None = None
    executor: str = "local"
    slurm: dict = field(default_factory=dict)
    kernel: str = nbk.KERNEL
    description: str = ""
    report: dict = field(default_factory=dict)  # {"metrics": [...], "headline": {stage: [...]}}, as validated
    path: Path | None = None
    spec: dict = field(default_factory=dict)  # the YAML as read


@dataclass
class StageRun:
    name: str
    notebook: Path
    params: dict  # resolved, with out_dir
    out_dir: Path


@dataclass
class Run:
    run_id: str
    varied: dict  # the grid/zip values of this run
    dir: Path
    stages: list[StageRun]


def _err(msg: str) -> ExperimentError:
    return ExperimentError(msg)


def _check_keys(where: str, got: dict, allowed: set) -> None:
    unknown = sorted(set(got) - allowed)
    if unknown:
        raise _err(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; valid keys: {', '.join(sorted(allowed))}")


def _find_notebook(value: Any, where: str, base: Path | None) -> Path:
    if not isinstance(value, str) or not value.endswith(".ipynb"):
        raise _err(f"{where}: notebook must be a path to an .ipynb file, got {value!r}")
    p = Path(value).expanduser()
    tried = [p] if p.is_absolute() else [Path.cwd() / p] + ([base / p, base.parent / p] if base else [])
    for cand in tried:
        if cand.is_file():
            return cand.resolve()
    raise _err(f"{where}: notebook {value!r} not found (looked in {', '.join(str(t) for t in tried)}); "
               "fix the path (relative paths start from the current directory or the YAML's folder)")


def _as_int(where: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _err(f"{where} must be an integer >= {minimum}, got {value!r}")
    return value


def _refs(value: Any) -> list[str]:
    """Stage names referenced by `{stages.NAME.out_dir}` anywhere inside value."""
    if isinstance(value, str):
        return REF.findall(value)
    if isinstance(value, dict):
        return [r for v in value.values() for r in _refs(v)]
    if isinstance(value, (list, tuple)):
        return [r for v in value for r in _refs(v)]
    return []


def _resolve(value: Any, dirs: dict[str, Path]) -> Any:
    if isinstance(value, str):
        return REF.sub(lambda m: str(dirs[m.group(1)]), value)
    if isinstance(value, dict):
        return {k: _resolve(v, dirs) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, dirs) for v in value]
    return value


def from_dict(spec: dict, base_dir: Path | None = None, path: Path | None = None) -> Experiment:
    """Validate a parsed experiment spec (see module docstring) and return an Experiment."""
    if not isinstance(spec, dict):
        raise _err(f"an experiment file must be a YAML mapping, got {type(spec).__name__}")
    _check_keys("experiment", spec, KEYS)
    name = spec.get("name")
    if not isinstance(name, str) or not SAFE_NAME.fullmatch(name):
        raise _err(f"experiment needs a `name` made of letters, digits, '_', '-', '.' (it names the "
                   f"output folder), got {name!r}")
    if ("notebook" in spec) == ("pipeline" in spec):
        raise _err("experiment needs exactly one of `notebook:` (a single notebook) or `pipeline:` (a list of stages)")

    if "notebook" in spec:
        nb = _find_notebook(spec["notebook"], "notebook", base_dir)
        stages, single = [Stage(nb.stem, nb, {})], True
    else:
        pipe = spec["pipeline"]
        if not isinstance(pipe, list) or not pipe:
            raise _err("pipeline must be a non-empty list of stages {name, notebook, parameters}")
        stages, single = [], False
        for i, st in enumerate(pipe):
            if not isinstance(st, dict):
                raise _err(f"pipeline[{i}] must be a mapping {{name, notebook, parameters}}, got {st!r}")
            _check_keys(f"pipeline[{i}]", st, STAGE_KEYS)
            sname = st.get("name")
            if not isinstance(sname, str) or not STAGE_NAME.fullmatch(sname):
                raise _err(f"pipeline[{i}] needs a `name` of letters, digits, '_' and '-', got {sname!r}")
            if sname in {s.name for s in stages}:
                raise _err(f"pipeline: stage name {sname!r} is used twice; stage names must be unique")
            params = st.get("parameters") or {}
            if not isinstance(params, dict):
                raise _err(f"pipeline stage {sname!r}: parameters must be a mapping, got {params!r}")
            stages.append(Stage(sname, _find_notebook(st.get("notebook"), f"pipeline stage {sname!r}", base_dir), params))

    parameters = spec.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise _err(f"parameters must be a mapping name: value, got {parameters!r}")
    grid, zipped = spec.get("grid") or {}, spec.get("zip") or {}
    for key, table in (("grid", grid), ("zip", zipped)):
        if not isinstance(table, dict):
            raise _err(f"{key} must be a mapping name: [values...], got {table!r}")
        for k, values in table.items():
            if not isinstance(values, list) or not values:
                raise _err(f"{key}.{k} must be a non-empty list of values, e.g. {k}: [1, 2], got {values!r}")
    if zipped and len({len(v) for v in zipped.values()}) > 1:
        lens = ", ".join(f"{k}: {len(v)}" for k, v in zipped.items())
        raise _err(f"zip lists must all have the same length (they are paired), got {lens}")
    both = sorted(set(grid) & set(zipped))
    if both:
        raise _err(f"{', '.join(both)} appear(s) in both grid and zip; vary each parameter in one place")

    resources = spec.get("resources") or {}
    if not isinstance(resources, dict):
        raise _err(f"resources must be a mapping like {{gpus: 0, cpus: 1}}, got {resources!r}")
    _check_keys("resources", resources, RESOURCE_KEYS)
    gpus = _as_int("resources.gpus", resources.get("gpus", 0), 0)   # processes default: one per GPU
    resources = {"gpus": gpus,
                 "cpus": _as_int("resources.cpus", resources.get("cpus", 1), 1),
                 "processes": _as_int("resources.processes", resources.get("processes", max(1, gpus)), 1),
                 "nodes": _as_int("resources.nodes", resources.get("nodes", 1), 1)}
    if resources["gpus"] and resources["processes"] > resources["gpus"]:   # data parallel: vtkit/sweep.py
        raise _err(f"resources.processes = {resources['processes']} is more than resources.gpus = "
                   f"{resources['gpus']}: each process of a run takes one GPU; set processes <= gpus, or gpus: 0 "
                   "for processes on CPU")
    timeout_s = spec.get("timeout_s")
    if timeout_s is not None and (isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or timeout_s <= 0):
        raise _err(f"timeout_s must be a positive number of seconds (or absent for no limit), got {timeout_s!r}")
    executor = spec.get("executor", "local")
    if executor not in EXECUTORS:
        raise _err(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    slurm = spec.get("slurm") or {}
    if not isinstance(slurm, dict):
        raise _err(f"slurm must be a mapping of submitit/SLURM options (partition, account, ...), got {slurm!r}")
    kernel = spec.get("kernel", nbk.KERNEL)
    if not isinstance(kernel, str) or not kernel:
        raise _err(f"kernel must be a Jupyter kernel name, got {kernel!r}")

    report = _report_spec(spec.get("report"), [s.name for s in stages], single)

    exp = Experiment(
        name=name, stages=stages, single=single, parameters=parameters, grid=grid, zip=zipped,
        jobs=_as_int("jobs", spec.get("jobs", 1), 1), resources=resources, timeout_s=timeout_s,
        executor=executor, slurm=slurm, kernel=kernel, description=str(spec.get("description", "")),
        report=report, path=path, spec=copy.deepcopy(spec),
    )
    combos = expand(exp)
    ids = [json.dumps(c, sort_keys=True, default=str) for c in combos]
    if len(set(ids)) != len(ids):
        raise _err("grid/zip produce the same parameter combination twice; remove the repeated values")
    for varied in combos:  # every name, type and reference, before anything runs
        _stage_params(exp, varied)
    return exp


def _names(where: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise _err(f"{where} must be a non-empty list of metric names (keys of metrics.json), e.g. [accuracy], "
                   f"got {value!r}")
    return list(value)


def _report_spec(value: Any, stage_names: list[str], single: bool) -> dict:
    """The validated `report:` mapping: {"metrics": [...]} and/or {"headline": {stage: [...]}}."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _err(f"report must be a mapping like {{metrics: [accuracy]}}, got {value!r}")
    _check_keys("report", value, REPORT_KEYS)
    out = {}
    if "metrics" in value:
        out["metrics"] = _names("report.metrics", value["metrics"])
    if "headline" in value:
        head = value["headline"]
        if not isinstance(head, dict) or not head:
            raise _err(f"report.headline must map stage names to metric lists, e.g. {{{stage_names[0]}: [accuracy]}}, "
                       f"got {head!r}")
        for stage, names in head.items():
            if stage not in stage_names:
                raise _err(f"report.headline names stage {stage!r}{_did_you_mean(str(stage), stage_names)}; "
                           f"the stages are: {', '.join(stage_names)}"
                           + (" (a single-notebook experiment has one, named after its notebook)" if single else ""))
            out.setdefault("headline", {})[stage] = _names(f"report.headline.{stage}", names)
    return out


def load(path: str | os.PathLike) -> Experiment:
    """Read and validate an experiment YAML file."""
    path = Path(path)
    if not path.is_file():
        raise _err(f"experiment file not found: {path}")
    try:
        spec = yaml.load(path.read_text(), Loader=_Loader)
    except yaml.YAMLError as e:
        raise _err(f"{path} is not valid YAML: {e}") from None
    return from_dict(spec, base_dir=path.resolve().parent, path=path.resolve())


def expand(exp: Experiment) -> list[dict]:
    """The varied values of each run: cartesian product of the grid, crossed with the zipped rows."""
    keys = list(exp.grid)
    grid_rows = [dict(zip(keys, vals)) for vals in itertools.product(*(exp.grid[k] for k in keys))]
    n = len(next(iter(exp.zip.values()))) if exp.zip else 1
    zip_rows = [{k: v[i] for k, v in exp.zip.items()} for i in range(n)] if exp.zip else [{}]
    return [{**g, **z} for g in grid_rows for z in zip_rows]


def _stage_params(exp: Experiment, varied: dict) -> list[dict]:
    """Validated parameters (templates unresolved, no out_dir) of each stage for one run."""
    declared = {s.name: nbk.parameters(s.notebook) for s in exp.stages}
    by_name = {s.name: s for s in exp.stages}
    order = {s.name: i for i, s in enumerate(exp.stages)}

    def valid_list() -> str:
        return "; ".join(f"{s.name} ({s.notebook.name}): {', '.join(sorted(declared[s.name]))}" for s in exp.stages)

    for s in exp.stages:
        if "out_dir" not in declared[s.name]:
            raise _err(f"{s.notebook} declares no `out_dir` parameter; add `out_dir = \"runs/{s.name}\"` to "
                       "its parameters cell (the runner injects each run's output directory there)")

    def route(source: str, table: dict) -> tuple[dict, dict]:
        """Split `table` into names for every declaring stage and (stage, name) targets."""
        plain, targeted = {}, {}
        for k, v in table.items():
            if k == "out_dir" or k.endswith(".out_dir"):
                raise _err(f"{source}: `out_dir` is set by the runner for every run; remove it")
            if "." in k:
                stage, _, pname = k.partition(".")
                if stage not in by_name:
                    raise _err(f"{source} key {k!r} names stage {stage!r}, but the stages are: {', '.join(by_name)}")
                if pname not in declared[stage]:
                    raise _err(f"{source} key {k!r}: stage {stage!r} has no parameter {pname!r}"
                               f"{_did_you_mean(pname, declared[stage])}. Valid parameters: "
                               f"{', '.join(sorted(declared[stage]))}")
                targeted[(stage, pname)] = v
            elif not any(k in d for d in declared.values()):
                if exp.single:
                    nb = exp.stages[0].notebook
                    raise _err(f"{source}: {nb.name} has no parameter {k!r}{_did_you_mean(k, declared[nb.stem])}. "
                               f"Valid parameters: {', '.join(sorted(declared[nb.stem]))}")
                every = set().union(*declared.values())
                raise _err(f"{source}: no stage declares a parameter {k!r}{_did_you_mean(k, every)}. "
                           f"Valid parameters: {valid_list()}")
            else:
                plain[k] = v
        return plain, targeted

    base, base_targeted = route("parameters", exp.parameters)
    grid, grid_targeted = route("grid/zip", varied)

    out = []
    for s in exp.stages:
        d = declared[s.name]
        if "out_dir" in s.parameters:
            raise _err(f"stage {s.name!r}: `out_dir` is set by the runner for every run; remove it")
        params = {k: v for k, v in base.items() if k in d}
        params.update({p: v for (st, p), v in base_targeted.items() if st == s.name})
        params.update(s.parameters)
        params.update({k: v for k, v in grid.items() if k in d})
        params.update({p: v for (st, p), v in grid_targeted.items() if st == s.name})
        try:
            nbk.check_parameters(s.notebook, params)
        except nbk.ParameterError as e:
            raise _err(f"stage {s.name!r}: {e}" if not exp.single else str(e)) from None
        for ref in _refs(params):
            if ref not in by_name:
                raise _err(f"stage {s.name!r}: {{stages.{ref}.out_dir}} names an unknown stage; "
                           f"stages are: {', '.join(by_name)}")
            if order[ref] >= order[s.name]:
                raise _err(f"stage {s.name!r}: {{stages.{ref}.out_dir}} names a stage that does not run "
                           f"before it; a stage can only read the output of an earlier stage")
        out.append(params)
    return out


def _did_you_mean(name: str, names) -> str:
    close = difflib.get_close_matches(name, list(names), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "+".join(_fmt(x) for x in v)
    if isinstance(v, dict):
        return "+".join(f"{k}{_fmt(x)}" for k, x in v.items())
    return str(v)


PRESETS_DIR = Path(__file__).parent / "presets"  # the notebooks' defaults: part of every run's parameters


def presets_hash(folder: str | os.PathLike | None = None) -> str:
    """Hash of the preset files (vtkit/presets/*.yaml): a notebook's unset parameters come from them,
    so a changed preset value is a changed run, as a changed parameter is."""
    h = hashlib.sha256()
    for f in sorted(Path(folder or PRESETS_DIR).glob("*.yaml")):
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


PREFIX_MAX = 48  # characters of a run id's readable part; longer ones are cut


def run_id(exp: Experiment, varied: dict, stage_params: list[dict] | None = None, presets: str | None = None) -> str:
    """`lr=0.0001_seed=0-<10 hex>`: readable varied values + hash of notebook code, parameters and presets
    (`presets`: a `presets_hash()` computed once for many runs; None computes it)."""
    stage_params = stage_params if stage_params is not None else _stage_params(exp, varied)
    payload = [{"stage": s.name, "notebook": nbk.content_hash(s.notebook), "params": p}
               for s, p in zip(exp.stages, stage_params)] + [{"presets": presets or presets_hash()}]
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=repr).encode()).hexdigest()[:10]
    prefix = "_".join(f"{k.split('.')[-1]}={_fmt(v)}" for k, v in varied.items())
    prefix = re.sub(r"[^A-Za-z0-9._=+-]+", "-", prefix).strip("-")[:PREFIX_MAX].rstrip("-_")
    return f"{prefix}-{digest}" if prefix else digest


def readable_name(rid: str) -> str | None:
    """The varied-values part of a run id (`seed=0` of `seed=0-<hash>`), or None when the run varies
    nothing or the part may have been cut to PREFIX_MAX (two runs could then share it)."""
    prefix, sep, digest = rid.rpartition("-")
    if not sep or not prefix or not re.fullmatch(r"[0-9a-f]{10}", digest) or len(prefix) >= PREFIX_MAX:
        return None
    return prefix


def plan(exp: Experiment, out_root: str | os.PathLike = "runs") -> list[Run]:
    """Every run of the experiment with resolved parameters and absolute output directories."""
    root = Path(out_root).resolve() / exp.name
    runs, presets = [], presets_hash()
    for varied in expand(exp):
        stage_params = _stage_params(exp, varied)
        rid = run_id(exp, varied, stage_params, presets)
        rdir = root / rid
        dirs = {s.name: (rdir if exp.single else rdir / s.name) for s in exp.stages}
        stages = [StageRun(s.name, s.notebook, {**_resolve(p, dirs), "out_dir": str(dirs[s.name])}, dirs[s.name])
                  for s, p in zip(exp.stages, stage_params)]
        runs.append(Run(rid, dict(varied), rdir, stages))
    return runs

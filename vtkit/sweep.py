"""The sweep runner: execute every run of an experiment, resume after a crash, gather one table.

    vtkit sweep experiments/demo.yaml --jobs 2         # the CLI (vtkit/cli.py) calls sweep() below

What a run leaves in each stage directory (`<out>/<name>/<run_id>[/<stage>]/`):
    params.json  config.json  runinfo.json   resolved parameters and provenance (vtkit.runinfo)
    executed.ipynb  log.txt  timings.json    the notebook with outputs, its printed output, times
    metrics.json                             whatever the notebook reported (flat scalars)
    _DONE | _FAILED                          completion marker, written last and atomically; _DONE
                                             records the vtkit source hash the stage ran with
and the experiment folder gets `results.parquet`/`.csv` (one row per run and stage of the current
plan, rebuilt from disk after every sweep; `status` is ok, failed, or pending for a run never
started, e.g. after Ctrl-C), `sweep.json` (column roles, for `vtkit report`), `experiment.yaml`
(the spec as run) and `_sweep/` (per-run worker logs, stage status files, a lock, submitit files).

Resume: a stage is done only when `_DONE` exists. Rerunning skips finished runs, redoes runs with
no marker from their first unfinished stage (wiping that stage's partial output first), and leaves
`_FAILED` runs alone unless `rerun_failed=True`.

Stale code: a run's id hashes its notebooks, parameters and presets (vtkit.experiment.run_id), not
the library. Each `_DONE` records `runinfo.source_hash()`, the hash of the vtkit source the stage
ran with; a finished stage whose hash differs from the current source (or that has none: made
before vtkit recorded it) is *stale*. By default the sweep runs a stale run again from its first
stale stage (that stage and every later one: they read its output), and says which runs it redoes;
`reuse_stale=True` (`vtkit sweep --reuse-stale`) keeps them and names them. `--dry-run` shows them.
With unchanged code, a resumed sweep skips every finished stage as before. The hash covers every
byte of the package's modules, presets and data, so a comment counts: after an edit you know
leaves results alone, `--reuse-stale` keeps what finished.

Local executor: `jobs` threads, each supervising one child process `python -m vtkit.sweep _run_one`
that executes the run's stages in order. The child gets `OMP_NUM_THREADS`/`MKL_NUM_THREADS`/
`VTKIT_NUM_THREADS` = the run's cpus (notebooks cap torch through runinfo.seed_everything) and
`CUDA_VISIBLE_DEVICES` = GPUs taken from the free pool ("" when the run asks for none). Every
process of a run (worker, Jupyter kernel, anything the notebook starts) carries a
`VTKIT_RUN_TOKEN` in its environment, so a timeout kills all of them, even the ones that left the
process tree; the worker also dies with the runner (Linux parent-death signal) and the kernel
follows its parent. Output of runs goes to their logs; the terminal shows one progress line that
counts stages and names the stage each running run is in, with the time spent in it:
    demo: 7/20 stages, 12:03 | seed=0: rl 3:10 | seed=1: merge 0:45
(the worker rewrites `_sweep/<run_id>.stage` as each stage starts; the runner polls those files).

GPU plan: before runs that ask for GPUs (`resources.gpus > 0`) start, the sweep prints the plan's
verdict (vtkit.plan: per stage the peak memory per GPU against `--gpu-mem`, default nvidia-smi's, else
80 GiB; whether it fits; GPU-hours; the total) and refuses (PlanRefused; `vtkit sweep` exits 2) naming
the stages that cannot fit, unless `--force-plan`. A plan it cannot compute (a notebook the plan does
not know, an upstream model not made yet) is named and blocks nothing. CPU-only experiments skip all of it.

Data parallel (`resources: {processes: N}`, N > 1; `nodes: M` on SLURM): each stage of such a run is
not executed as a notebook but as its stage function under PyTorch's launcher,
`python -m torch.distributed.run --nproc_per_node N -m vtkit.stages.<stage> --preset .. --set ..`
(`stage_command`: the stage module and the mapping from notebook parameters to `Config` fields are read
from the notebook's own `<stage>.Config.from_preset(...)` call), in the notebook's folder, its output in
log.txt. Every process runs the stage; the trainers shard the data (accelerate) and rank 0 alone writes
the stage's files (vtkit.stages.base.start), so the run still leaves one metrics.json; the stage
folder also gets `launch.json` (the command, processes, nodes, world size) and no executed.ipynb.
Each process gets cpus // N threads; with `gpus: 0` the processes run on CPU (gloo). Locally
torchrun's `--standalone` rendezvous on a free port; on SLURM a run is one job of M nodes with one task
per node, each task starting torchrun with `--nnodes M --node_rank` (SLURM_NODEID) and the first host of
the job's node list as master (`slurm_rendezvous`); the task on node 0 alone writes the markers.

SLURM executor: submitit, one array job with one task per run, `slurm_array_parallelism = jobs`;
`resources` become gpus_per_node / cpus_per_task, `timeout_s` becomes timeout_min, and `slurm:`
keys pass through (`partition` -> slurm_partition; `cluster: local` runs the same path on this
machine through submitit's local executor, which is how the tests cover it).
"""
from __future__ import annotations

import ast
import contextlib
import functools
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
import uuid
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from vtkit import experiment as xp
from vtkit import notebook as nbk
from vtkit import runinfo

DONE, FAILED = "_DONE", "_FAILED"
TOKEN_ENV = "VTKIT_RUN_TOKEN"
FIXED_COLUMNS = ("run_id", "stage", "status", "error", "wall_s", "vtkit_source", "out_dir")
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class SweepError(RuntimeError):
    """The sweep cannot start as asked (resources, executor, another sweep running)."""


# ---------------------------------------------------------------------------------- markers
def stage_status(out_dir: str | os.PathLike) -> str:
    """'done', 'failed' or 'pending' from the stage directory's completion marker."""
    out = Path(out_dir)
    if (out / DONE).exists():
        return "done"
    if (out / FAILED).exists():
        return "failed"
    return "pending"


def run_status(run: xp.Run) -> str:
    """'done' (all stages), 'failed' (a stage failed), 'partial' (started, unfinished) or 'pending'."""
    states = [stage_status(s.out_dir) for s in run.stages]
    if all(s == "done" for s in states):
        return "done"
    if "failed" in states:
        return "failed"
    return "partial" if run.dir.exists() else "pending"


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def stage_source(out_dir: str | os.PathLike) -> str | None:
    """The vtkit source hash a finished stage ran with (from its `_DONE`); None when not recorded."""
    source = _read_json(Path(out_dir) / DONE).get("source")
    return source if isinstance(source, str) and source else None


def first_to_run(out_dirs: list, source: str, reuse_stale: bool = False) -> int | None:
    """Index of the first stage a run must execute: the first not done, or done by other vtkit code
    than `source` (unless reuse_stale); None when every stage is done and current."""
    for i, out in enumerate(out_dirs):
        if stage_status(out) != "done" or (not reuse_stale and stage_source(out) != source):
            return i
    return None


def stale_stages(run: xp.Run, source: str) -> list[str]:
    """Names of the run's finished stages that ran with other vtkit code than `source`."""
    return [st.name for st in run.stages if stage_status(st.out_dir) == "done" and stage_source(st.out_dir) != source]


def mark_failed(out_dir: Path, run_id: str, stage: str, error: str, tb: str = "", wall_s: float | None = None) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    runinfo.write_json(out_dir / FAILED, {"run_id": run_id, "stage": stage, "error": error, "traceback": tb,
                                          "wall_s": wall_s, "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")})


# ---------------------------------------------------------------------------------- one run
def run_spec(run: xp.Run, exp: xp.Experiment, status: str | os.PathLike | None = None,
             reuse_stale: bool = False) -> dict:
    """Everything a worker needs to execute `run`, as plain JSON.

    `status`: a file the worker rewrites as each stage starts (see `write_stage_status`), which the
    runner's progress line polls; None: no such file. `source_root`: the vtkit package whose hash
    the worker records (runinfo.SOURCE_ROOT); `reuse_stale`: keep finished stages made by other code.
    """
    return {"run_id": run.run_id, "dir": str(run.dir), "kernel": exp.kernel, "cpus": exp.resources["cpus"],
            "gpus": exp.resources["gpus"], "processes": exp.resources.get("processes", 1),
            "nodes": exp.resources.get("nodes", 1),
            "status": str(status) if status is not None else None,
            "source_root": str(runinfo.SOURCE_ROOT), "reuse_stale": reuse_stale,
            "stages": [{"name": s.name, "notebook": str(s.notebook), "params": s.params, "out_dir": str(s.out_dir)}
                       for s in run.stages]}


def write_stage_status(spec: dict, index: int) -> None:
    """Tell the runner which stage the run is in: `{"index": i, "stage": name}` (name None: finished)."""
    if spec.get("status"):
        stages = spec["stages"]
        with contextlib.suppress(OSError):  # progress is a courtesy; it must never fail a run
            runinfo.write_json(spec["status"], {"index": index, "stage": stages[index]["name"] if index < len(stages) else None})


def read_stage_status(path: str | os.PathLike) -> tuple[int, str | None] | None:
    """(index, stage name) from a status file `write_stage_status` wrote; None when absent or unreadable."""
    d = _read_json(Path(path))
    return (int(d["index"]), d.get("stage")) if isinstance(d.get("index"), int) else None


# glibc hands freed memory back to the kernel and faults it in again: a tiny model's training step
# frees and reallocates the same buffers every step, and in a run's notebook kernel that made ~40% of
# the CPU time system time (page faults). Keeping freed memory in the process took the quickstart's
# training from 129 s to 80 s with the same losses (docs/LOG.md, "Demo time: glibc malloc in the run
# processes"). A value the user set in the environment wins.
MALLOC_ENV = {"MALLOC_TRIM_THRESHOLD_": str(4 << 30), "MALLOC_MMAP_THRESHOLD_": str(4 << 30),
              "MALLOC_TOP_PAD_": str(256 << 20)}


def run_env(cpus: int) -> dict:
    """Environment of a run's processes: `cpus` threads for torch/OpenMP/MKL, and MALLOC_ENV's
    defaults for the keys the environment does not set."""
    return {"OMP_NUM_THREADS": str(cpus), "MKL_NUM_THREADS": str(cpus), "VTKIT_NUM_THREADS": str(cpus),
            **{k: v for k, v in MALLOC_ENV.items() if k not in os.environ}}


def _error_of(exc: BaseException) -> tuple[str, str]:
    """(one-line error, traceback text) for a failed stage."""
    ename = getattr(exc, "ename", None)
    if ename is not None:  # papermill.PapermillExecutionError: the notebook raised
        tb = ANSI.sub("", "\n".join(getattr(exc, "traceback", []) or []))
        return f"{ename}: {exc.evalue} (cell [{exc.exec_count}])", tb
    return f"{type(exc).__name__}: {exc}", "".join(traceback.format_exception(exc))


def link_latest(run_dir: str | os.PathLike, run_id: str) -> Path | None:
    """Point `<experiment>/<readable part>` (e.g. `runs/demo/seed=0`) at a finished run's folder
    (`seed=0-<hash>`), so other experiments and notebooks can name a run by its varied values: the
    hash changes with any edit of a stage's notebook, the link follows to the latest finished run.
    Nothing is linked for a run without varied values or with a shortened readable part, and a real
    folder of that name is never replaced. Returns the link, or None."""
    run_dir, name = Path(run_dir), xp.readable_name(run_id)
    if name is None:
        return None
    link = run_dir.parent / name
    with contextlib.suppress(OSError):  # a courtesy: it must never fail a run
        if link.is_symlink():
            link.unlink()
        elif link.exists():
            return None
        link.symlink_to(run_dir.name, target_is_directory=True)
        return link
    return None


def execute_run(spec: dict) -> dict:
    """Execute a run's unfinished stages in order (in this process); returns {"run_id", "ok", "error"}.

    Used by the local worker and as the submitit job function. A failing stage gets `_FAILED` and
    stops the chain; later stages keep no marker. Finished stages made by other vtkit code than the
    current one are run again with everything after them, unless spec["reuse_stale"]; each `_DONE`
    records the source hash the stage ran with (None when the source changed while it ran).
    """
    skip_slow_imports()  # this process exists for the run (worker or submitit job), so also:
    sys.modules.setdefault("pyarrow", None)  # papermill imports it only for HDFS paths (~0.3 s)
    os.environ.update(run_env(spec["cpus"]))
    stages = spec["stages"]
    root = spec.get("source_root")
    first = first_to_run([s["out_dir"] for s in stages], runinfo.source_hash(root), spec.get("reuse_stale", False))
    rdzv = slurm_rendezvous() if spec.get("nodes", 1) > 1 else None
    if rdzv is not None and rdzv["node_rank"] > 0:   # another node of a multi-node run: launch, write nothing
        return _follow_run(spec, stages[first:] if first is not None else [], rdzv)
    if first is None:
        link_latest(spec["dir"], spec["run_id"])
        return {"run_id": spec["run_id"], "ok": True, "error": None}
    for s in stages[first:]:  # unfinished output is not trusted: start those stages clean
        shutil.rmtree(s["out_dir"], ignore_errors=True)
    for i, s in enumerate(stages[first:], start=first):
        write_stage_status(spec, i)
        out = Path(s["out_dir"])
        out.mkdir(parents=True, exist_ok=True)
        t0, started = time.time(), time.strftime("%Y-%m-%dT%H:%M:%S%z")
        error, source = None, runinfo.source_hash(root)
        try:
            runinfo.write_json(out / "params.json", s["params"])
            runinfo.save(out, s["params"], where=Path(s["notebook"]).parent)  # the notebook's checkout
            params = {k: v for k, v in s["params"].items() if k != "out_dir"}
            if is_data_parallel(spec):
                launch_stage(spec, s, rdzv)
            else:
                nbk.execute(s["notebook"], out, params, kernel=spec["kernel"], log_path=out / "log.txt")
            if (out / "metrics.json").exists():  # the notebook's report must be flat scalars
                runinfo.check_metrics(json.loads((out / "metrics.json").read_text()))
        except Exception as exc:  # noqa: BLE001 - any failure of the stage is recorded, not raised
            error = _error_of(exc)
        wall = time.time() - t0
        runinfo.write_json(out / "timings.json", {"started": started, "wall_s": wall})
        if error:
            with open(out / "log.txt", "a") as f:
                f.write(f"\n[vtkit] stage {s['name']} failed: {error[0]}\n{error[1]}\n")
            mark_failed(out, spec["run_id"], s["name"], error[0], error[1], wall)
            return {"run_id": spec["run_id"], "ok": False, "error": f"{s['name']}: {error[0]}"}
        if runinfo.source_hash(root) != source:  # edited while the stage ran: which code ran is unknown
            with open(out / "log.txt", "a") as f:
                f.write(f"\n[vtkit] the vtkit source changed while stage {s['name']} ran; the next sweep runs it again\n")
            source = None
        runinfo.write_json(out / DONE, {"run_id": spec["run_id"], "stage": s["name"], "wall_s": wall,
                                        "source": source, "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    write_stage_status(spec, len(stages))
    link_latest(spec["dir"], spec["run_id"])
    return {"run_id": spec["run_id"], "ok": True, "error": None}


def _settle(spec: dict, error: str, wall_s: float | None = None) -> str | None:
    """After a run's process ended: give its unfinished stage a `_FAILED` if it has none.

    Returns the run's error (None when every stage is done).
    """
    for s in spec["stages"]:
        status = stage_status(s["out_dir"])
        if status == "done":
            continue
        if status == "failed":
            return f"{s['name']}: {_read_json(Path(s['out_dir']) / FAILED).get('error', 'failed')}"
        mark_failed(Path(s["out_dir"]), spec["run_id"], s["name"], error, wall_s=wall_s)
        return f"{s['name']}: {error}"
    return None


# ---------------------------------------------------------------------------------- data parallel
LAUNCHER = "torch.distributed.run"   # PyTorch's torchrun; accelerate's trainers read the ranks it sets


def is_data_parallel(spec: dict) -> bool:
    """Whether a run's stages run as N processes (`resources.processes` or `nodes` > 1)."""
    return spec.get("processes", 1) > 1 or spec.get("nodes", 1) > 1


def _stage_of(func) -> str | None:
    """`sft` for the callee `stages.sft.Config.from_preset` / `sft.Config.from_preset`, else None."""
    if not (isinstance(func, ast.Attribute) and func.attr == "from_preset"):
        return None
    cfg = func.value
    if not (isinstance(cfg, ast.Attribute) and cfg.attr == "Config"):
        return None
    mod = cfg.value
    return mod.attr if isinstance(mod, ast.Attribute) else mod.id if isinstance(mod, ast.Name) else None


def stage_call(notebook: str | os.PathLike) -> dict:
    """What the notebook's `<stage>.Config.from_preset(preset, seed=seed, overrides=overrides, field=param, ...)`
    call says: {"stage", "preset", "seed", "overrides" (the notebook parameters passed as those), "fields"
    ({notebook parameter: Config field})}. SweepError when the notebook has no such call (it is no stage)."""
    from vtkit import stages

    nb = json.loads(Path(notebook).read_text())
    calls = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        src = "".join(cell.get("source", []))
        src = "\n".join("" if ln.lstrip().startswith(("%", "!")) else ln for ln in src.splitlines())  # magics
        try:
            tree = ast.parse(src)
        except SyntaxError:
            continue
        calls += [n for n in ast.walk(tree) if isinstance(n, ast.Call) and _stage_of(n.func) in stages.STAGES]
    if len(calls) != 1:
        raise SweepError(f"{notebook}: resources.processes > 1 runs the notebook's stage function under "
                         f"{LAUNCHER}, and that needs exactly one `<stage>.Config.from_preset(...)` call with "
                         f"<stage> one of {', '.join(stages.STAGES)}; found {len(calls)}. Run this notebook "
                         "with processes: 1")
    call = calls[0]

    def name(node) -> str | None:
        return node.id if isinstance(node, ast.Name) else None

    kw = {k.arg: name(k.value) for k in call.keywords if k.arg}
    fields = {v: k for k, v in kw.items() if k not in ("seed", "overrides") and v}
    return {"stage": _stage_of(call.func), "preset": name(call.args[0]) if call.args else kw.get("preset"),
            "seed": kw.get("seed"), "overrides": kw.get("overrides"),
            "fields": {p: f for p, f in fields.items() if f != "preset"}}


def stage_command(notebook: str | os.PathLike, params: dict) -> list[str]:
    """The stage module's arguments that do what `notebook` does with `params` (the run's parameters
    with out_dir; the notebook's defaults for the rest):
    `-m vtkit.stages.<stage> --preset P --seed S --out-dir D --set field=value ...`."""
    call = stage_call(notebook)
    declared = nbk.parameters(notebook)
    values = {}
    for k, prm in declared.items():
        if k in params:
            values[k] = params[k]
            continue
        try:
            values[k] = ast.literal_eval(prm.default) if prm.default else None
        except (ValueError, SyntaxError):
            values[k] = _UNSET
    unknown = sorted(k for k in params if k not in declared and k != "out_dir")
    if unknown:
        raise SweepError(f"{notebook} declares no parameter(s) {unknown}")
    args = ["-m", f"vtkit.stages.{call['stage']}", "--out-dir", str(params["out_dir"])]
    sets: dict = {}
    for k, v in values.items():
        if k == "out_dir" or (v is _UNSET and k not in call["fields"]):
            continue
        if v is _UNSET:
            raise SweepError(f"{notebook}: the default of parameter {k!r} is no literal; set {k} in the experiment "
                             "to run it with resources.processes > 1")
        if k == call["preset"]:
            args += ["--preset", str(v)]
        elif k == call["seed"]:
            args += ["--seed", str(v)]
        elif k == call["overrides"]:
            if v is not None and not isinstance(v, dict):
                raise SweepError(f"{notebook}: {k} must be a dict of settings, got {v!r}")
        elif k in call["fields"]:
            if v is not None:   # None keeps the preset's value, as from_preset does
                sets[call["fields"][k]] = v
        elif v is not None:
            raise SweepError(f"{notebook}: parameter {k!r} = {v!r} is not passed to {call['stage']}.Config, so a "
                             f"run of the stage function ({LAUNCHER}, resources.processes > 1) would drop it; "
                             "leave it unset or run with processes: 1")
    sets.update(values.get(call["overrides"]) or {})   # overrides come last, as in from_preset
    for f, v in sets.items():
        args += ["--set", f"{f}={json.dumps(v)}"]
    return args


_UNSET = object()


def slurm_rendezvous(environ: dict | None = None) -> dict:
    """torchrun's static rendezvous inside a SLURM job of one task per node: {"nnodes", "node_rank",
    "master_addr" (the first host of SLURM_JOB_NODELIST), "master_port" (from the job id, so runs that
    share a node do not collide)}. SweepError outside a SLURM job."""
    from submitit.slurm.slurm import _parse_node_list

    env = os.environ if environ is None else environ
    missing = [k for k in ("SLURM_JOB_ID", "SLURM_JOB_NUM_NODES", "SLURM_NODEID", "SLURM_JOB_NODELIST") if not env.get(k)]
    if missing:
        raise SweepError(f"resources.nodes > 1 needs a SLURM job (executor: slurm); {', '.join(missing)} not set")
    return {"nnodes": int(env["SLURM_JOB_NUM_NODES"]), "node_rank": int(env["SLURM_NODEID"]),
            "master_addr": _parse_node_list(env["SLURM_JOB_NODELIST"])[0],
            "master_port": 20000 + int(env["SLURM_JOB_ID"]) % 20000}


def launch_command(stage_args: list[str], processes: int, rdzv: dict | None = None, stage_index: int = 0) -> list[str]:
    """`python -m torch.distributed.run ... <stage_args>`: --standalone on one node (rdzv None), else
    --nnodes/--node_rank/--master_addr/--master_port from `slurm_rendezvous`, the port moved by the
    stage's index (a node that finished a stage never meets the last stage's rendezvous)."""
    head = [sys.executable, "-m", LAUNCHER, f"--nproc_per_node={processes}"]
    if rdzv is None:
        head.append("--standalone")
    else:
        head += [f"--nnodes={rdzv['nnodes']}", f"--node_rank={rdzv['node_rank']}",
                 f"--master_addr={rdzv['master_addr']}", f"--master_port={rdzv['master_port'] + stage_index}"]
    return head + stage_args


def launch_env(spec: dict) -> dict:
    """The launched processes' environment: cpus // processes threads each, on CPU when gpus is 0."""
    threads = str(max(1, spec["cpus"] // spec.get("processes", 1)))
    env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "VTKIT_NUM_THREADS": threads,
           "PYTHONUNBUFFERED": "1"}
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    if not spec.get("gpus"):
        env.update(ACCELERATE_USE_CPU="1", CUDA_VISIBLE_DEVICES="")
    return env


def launch_stage(spec: dict, stage: dict, rdzv: dict | None = None) -> None:
    """Run one stage as its stage function under torchrun (see the module docstring). Node 0 writes
    launch.json and the output to the stage's log.txt; other nodes write nothing (their output goes
    to their SLURM task's log). A non-zero exit raises RuntimeError."""
    out = Path(stage["out_dir"])
    index = [s["name"] for s in spec["stages"]].index(stage["name"])
    cmd = launch_command(stage_command(stage["notebook"], stage["params"]), spec["processes"], rdzv, index)
    run = functools.partial(subprocess.run, cmd, cwd=Path(stage["notebook"]).parent, env=launch_env(spec),
                            stdin=subprocess.DEVNULL)
    if rdzv is not None and rdzv["node_rank"] > 0:
        code = run().returncode
        if code != 0:
            raise RuntimeError(f"{LAUNCHER} of stage {stage['name']} exited with code {code} on node {rdzv['node_rank']}")
        return
    nodes = rdzv["nnodes"] if rdzv else 1
    runinfo.write_json(out / "launch.json", {"launcher": LAUNCHER, "processes": spec["processes"], "nodes": nodes,
                                             "world_size": spec["processes"] * nodes, "command": cmd})
    with open(out / "log.txt", "a") as f:
        f.write(f"[vtkit] {' '.join(cmd)}\n")
        f.flush()
        code = run(stdout=f, stderr=subprocess.STDOUT).returncode
    if code != 0:
        tail = (out / "log.txt").read_text().splitlines()[-5:]
        raise RuntimeError(f"{LAUNCHER} of stage {stage['name']} exited with code {code}: " + " | ".join(tail))


def _follow_run(spec: dict, stages: list[dict], rdzv: dict) -> dict:
    """A multi-node run on a node other than 0: join each unfinished stage's launch; node 0 writes."""
    for s in stages:
        try:
            launch_stage(spec, s, rdzv)
        except Exception as exc:  # noqa: BLE001 - node 0 records the stage's failure
            return {"run_id": spec["run_id"], "ok": False, "error": f"{s['name']}: {exc}"}
    return {"run_id": spec["run_id"], "ok": True, "error": None}


# ---------------------------------------------------------------------------------- processes
def run_processes(token: str, root_pid: int | None = None) -> list:
    """Live processes of one run: the tree under root_pid plus anything carrying its token."""
    import psutil

    found = {}
    if root_pid is not None:
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(root_pid)
            for p in [root, *root.children(recursive=True)]:
                found[p.pid] = p
    for p in psutil.process_iter():
        if p.pid in found or p.pid == os.getpid():
            continue
        with contextlib.suppress(psutil.Error):
            if p.environ().get(TOKEN_ENV) == token:
                found[p.pid] = p
    return [p for p in found.values() if _alive(p)]


def kill_run(token: str, root_pid: int | None = None) -> None:
    """SIGKILL every process of a run (repeated, so processes forked meanwhile go too)."""
    import psutil

    for _ in range(10):
        procs = run_processes(token, root_pid)
        if not procs:
            return
        for p in procs:
            with contextlib.suppress(psutil.Error):
                p.kill()
        deadline = time.time() + 3  # psutil.wait_procs would also wait for zombies we cannot reap
        while time.time() < deadline and any(_alive(p) for p in procs):
            time.sleep(0.05)


def _alive(p) -> bool:
    import psutil

    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _die_with_parent(parent_pid: int) -> None:
    """Linux: get SIGKILL when the runner dies, so no orphaned run goes on after a crash."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
    if os.getppid() != parent_pid:  # the runner died before prctl took effect
        os._exit(1)


# ---------------------------------------------------------------------------------- GPUs
def visible_gpus() -> list[str]:
    """GPU ids this machine offers: CUDA_VISIBLE_DEVICES if set, else nvidia-smi, else torch."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g.strip() for g in env.split(",") if g.strip() and g.strip() != "-1"]
    if shutil.which("nvidia-smi"):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            r = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
            return [str(i) for i, line in enumerate(ln for ln in r.stdout.splitlines() if ln.startswith("GPU "))]
    with contextlib.suppress(Exception):
        import torch

        return [str(i) for i in range(torch.cuda.device_count())]
    return []


class _GpuPool:
    def __init__(self, ids: list[str]):
        self.free, self.cond = list(ids), threading.Condition()

    def take(self, n: int) -> list[str]:
        with self.cond:
            self.cond.wait_for(lambda: len(self.free) >= n)
            got, self.free = self.free[:n], self.free[n:]
            return got

    def give(self, ids: list[str]) -> None:
        with self.cond:
            self.free.extend(ids)
            self.cond.notify_all()


# ---------------------------------------------------------------------------------- executors
class LocalExecutor:
    """A pool of `jobs` runs at once on this machine, each in its own child process."""

    def __init__(self, exp: xp.Experiment, work_dir: Path, jobs: int, gpu_ids: list[str] | None = None):
        self.exp, self.work_dir, self.jobs = exp, work_dir, jobs
        gpus = exp.resources["gpus"]
        if exp.resources.get("nodes", 1) > 1:
            raise SweepError(f"resources.nodes = {exp.resources['nodes']} needs executor: slurm (one task per node); "
                             "on this machine set nodes: 1 (resources.processes still runs N processes here)")
        ids = visible_gpus() if gpu_ids is None and gpus > 0 else list(gpu_ids or [])
        if gpus > 0 and len(ids) < gpus:
            raise SweepError(
                f"each run asks for resources.gpus={gpus} but this machine offers {len(ids)} GPU(s) "
                f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r}); set resources.gpus: 0 "
                "to run on CPU, or use executor: slurm")
        self.pool = _GpuPool(ids)
        self.active: dict[str, tuple[str, subprocess.Popen]] = {}  # run_id -> (token, process)
        self.stopping = False

    def _one(self, spec: dict) -> dict:
        gpus = self.pool.take(self.exp.resources["gpus"]) if self.exp.resources["gpus"] else []
        try:
            if self.stopping:
                return {"run_id": spec["run_id"], "ok": False, "error": "sweep interrupted"}
            token = uuid.uuid4().hex
            spec_path = self.work_dir / f"{spec['run_id']}.json"
            runinfo.write_json(spec_path, spec)
            env = {**os.environ, **run_env(spec["cpus"]), TOKEN_ENV: token,
                   "CUDA_VISIBLE_DEVICES": ",".join(gpus), "PYTHONUNBUFFERED": "1"}
            with open(self.work_dir / f"{spec['run_id']}.log", "a") as log:
                log.write(f"\n[vtkit] {time.strftime('%Y-%m-%d %H:%M:%S')} start, CUDA_VISIBLE_DEVICES={','.join(gpus)!r}\n")
                log.flush()
                proc = subprocess.Popen([sys.executable, "-m", "vtkit.sweep", "_run_one", str(spec_path), str(os.getpid())],
                                        env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
                self.active[spec["run_id"]] = (token, proc)
                t0 = time.time()
                timeout = self.exp.timeout_s
                try:
                    code = proc.wait(timeout=timeout)
                    if self.stopping or code == -signal.SIGINT:  # Ctrl-C: leave the run unfinished, to resume
                        return {"run_id": spec["run_id"], "ok": False, "error": "sweep interrupted"}
                    error = f"worker exited with code {code} before finishing (see {log.name} in {self.work_dir})"
                except subprocess.TimeoutExpired:
                    kill_run(token, proc.pid)
                    proc.wait()
                    error = f"timeout: the run exceeded timeout_s={timeout} and was killed with its kernel and child processes"
                finally:
                    kill_run(token)  # nothing of a finished run may linger (by token: its pid may be reused)
                    self.active.pop(spec["run_id"], None)
            err = _settle(spec, error, time.time() - t0)
            return {"run_id": spec["run_id"], "ok": err is None, "error": err}
        finally:
            if gpus:
                self.pool.give(gpus)

    def run(self, specs: list[dict], on_done) -> None:
        with ThreadPoolExecutor(max_workers=self.jobs) as pool:
            futures = [pool.submit(self._one, s) for s in specs]
            try:
                for fut in as_completed(futures):
                    on_done(fut.result())
            except BaseException:  # Ctrl-C or an error: stop everything this sweep started
                self.stopping = True
                for f in futures:
                    f.cancel()
                for token, proc in list(self.active.values()):
                    kill_run(token, proc.pid)
                raise


class SubmititExecutor:
    """One submitit array job (a task per run): SLURM, or `slurm: {cluster: local}` on this machine."""

    GENERIC = {"name", "timeout_min", "mem_gb", "nodes", "cpus_per_task", "gpus_per_node", "tasks_per_node",
               "stderr_to_stdout"}

    def __init__(self, exp: xp.Experiment, work_dir: Path, jobs: int):
        import submitit

        options = dict(exp.slurm)
        cluster = options.pop("cluster", "slurm")
        if cluster not in ("slurm", "local", "debug"):
            raise SweepError(f"slurm.cluster must be slurm, local or debug, got {cluster!r}")
        if cluster == "slurm" and shutil.which("sbatch") is None:
            raise SweepError("executor: slurm needs SLURM's sbatch on PATH, and this machine has none; run on a "
                             "cluster login node, use executor: local, or set slurm: {cluster: local} to try the "
                             "same path here through submitit's local executor")
        nodes = exp.resources.get("nodes", 1)
        if nodes > 1 and cluster != "slurm":
            raise SweepError(f"resources.nodes = {nodes} needs slurm.cluster: slurm; submitit's {cluster} executor "
                             "runs one node")
        params = {"name": f"vtkit-{exp.name}", "gpus_per_node": exp.resources["gpus"],
                  "cpus_per_task": exp.resources["cpus"],
                  # a data-parallel run: one task per node, which starts torchrun's processes (launch_stage)
                  "nodes": nodes, "tasks_per_node": 1,
                  # SLURM stops the job at its limit; no timeout_s means one day (a common partition cap)
                  "timeout_min": math.ceil(exp.timeout_s / 60) if exp.timeout_s else 24 * 60,
                  "slurm_array_parallelism": jobs}
        for k, v in options.items():
            params[k if k in self.GENERIC or k.startswith(("slurm_", "local_")) else f"slurm_{k}"] = v
        self.params = params
        self.executor = submitit.AutoExecutor(folder=work_dir / "submitit", cluster=cluster)
        try:
            self.executor.update_parameters(**params)
        except (NameError, ValueError, TypeError) as e:
            raise SweepError(f"slurm options: {e}") from None
        self.jobs = []

    def run(self, specs: list[dict], on_done) -> None:
        self.jobs = list(zip(specs, self.executor.map_array(execute_run, specs)))
        pending = list(self.jobs)
        try:
            while pending:
                still = []
                for spec, job in pending:
                    if not job.done():
                        still.append((spec, job))
                        continue
                    error = "job ended without finishing the run"
                    try:
                        job.result()
                    except Exception as e:  # noqa: BLE001 - timeouts, node failures, cancellations
                        error = f"submitit job {job.job_id} failed: {str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__}"
                    err = _settle(spec, error)
                    on_done({"run_id": spec["run_id"], "ok": err is None, "error": err})
                pending = still
                if pending:
                    time.sleep(0.5)
        except BaseException:
            for _, job in pending:
                with contextlib.suppress(Exception):
                    job.cancel()
            raise


# ---------------------------------------------------------------------------------- results
def _cell(v):
    """Table cell: scalars as they are, lists/dicts as JSON text."""
    return json.dumps(v, sort_keys=True) if isinstance(v, (list, dict, tuple)) else v


def results_table(runs: list[xp.Run]):
    """One tidy row per run and stage, read from disk. Returns (DataFrame, column roles).

    Columns: run_id, stage, the varied values, the stage's parameters, status ('ok'/'failed'/
    'pending'), error, wall_s, vtkit_source (the source hash a finished stage ran with, see
    `stage_source`), out_dir, then the metrics.json keys unchanged. A parameter whose name
    clashes with a fixed column or a metric is renamed `param_<name>`; a metric that clashes with a
    fixed column is renamed `metric_<name>`.
    """
    import pandas as pd

    rows, param_names, metric_names = [], [], []
    for run in runs:
        blocked = None
        for st in run.stages:
            status = stage_status(st.out_dir)
            marker = _read_json(st.out_dir / (DONE if status == "done" else FAILED)) if status != "pending" else {}
            error = marker.get("error") if status == "failed" else None
            if status == "pending" and blocked:
                status, error = "failed", f"not run: stage {blocked!r} failed"
            blocked = blocked or (st.name if status == "failed" else None)
            params = {**run.varied, **{k: v for k, v in st.params.items() if k != "out_dir"}}
            metrics = _read_json(st.out_dir / "metrics.json") if status == "done" else {}
            for k in params:
                if k not in param_names:
                    param_names.append(k)
            for k in metrics:
                if k not in metric_names:
                    metric_names.append(k)
            rows.append({"fixed": {"run_id": run.run_id, "stage": st.name,
                                   "status": {"done": "ok"}.get(status, status), "error": error,
                                   "wall_s": marker.get("wall_s"),
                                   "vtkit_source": stage_source(st.out_dir) if status == "done" else None,
                                   "out_dir": str(st.out_dir)},
                         "params": params, "metrics": metrics})
    metric_col = {m: (f"metric_{m}" if m in FIXED_COLUMNS else m) for m in metric_names}
    taken = set(FIXED_COLUMNS) | set(metric_col.values())
    param_col = {p: (f"param_{p}" if p in taken else p) for p in param_names}
    records = []
    for r in rows:
        rec = {"run_id": r["fixed"]["run_id"], "stage": r["fixed"]["stage"]}
        rec.update({param_col[k]: _cell(v) for k, v in r["params"].items()})
        rec.update({k: r["fixed"][k] for k in ("status", "error", "wall_s", "vtkit_source", "out_dir")})
        rec.update({metric_col[k]: v for k, v in r["metrics"].items()})
        records.append(rec)
    columns = ["run_id", "stage", *param_col.values(), "status", "error", "wall_s", "vtkit_source", "out_dir",
               *metric_col.values()]
    df = pd.DataFrame.from_records(records, columns=columns)
    for c in df.columns:  # Parquet wants one type per column: mixed-type columns become text
        if df[c].dtype == object:
            kinds = {type(v) for v in df[c] if v is not None and not (isinstance(v, float) and math.isnan(v))}
            if len(kinds) > 1 and not kinds <= {int, float}:
                df[c] = df[c].map(lambda v: None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v))
    roles = {"varied": [param_col[k] for k in (runs[0].varied if runs else {})],
             "params": list(param_col.values()), "metrics": list(metric_col.values()),
             "stages": [s.name for s in runs[0].stages] if runs else []}
    return df, roles


def write_results(exp: xp.Experiment, runs: list[xp.Run], exp_dir: Path):
    """Rebuild results.parquet/.csv and sweep.json from disk; returns the DataFrame."""
    df, roles = results_table(runs)
    tmp = exp_dir / ".results.parquet.tmp"
    df.to_parquet(tmp, index=False)
    os.replace(tmp, exp_dir / "results.parquet")
    df.to_csv(exp_dir / ".results.csv.tmp", index=False)
    os.replace(exp_dir / ".results.csv.tmp", exp_dir / "results.csv")
    runinfo.write_json(exp_dir / "sweep.json", {
        "name": exp.name, "description": exp.description, "experiment_file": str(exp.path) if exp.path else None,
        "spec": exp.spec, "runs": len(runs), "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **roles})
    return df


# ---------------------------------------------------------------------------------- progress
POLL_S = 0.5  # how often the progress line reads the runs' status files
QUIET_REFRESH_S = 30.0  # when stderr is no terminal (a log file): redraw this rarely unless something changed


def _clock(seconds: float) -> str:
    """`m:ss`, or `h:mm:ss` from an hour on."""
    s = max(0, int(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def progress_line(name: str, done: int, total: int, active: list[tuple[str, str | None, float]],
                  failed: int = 0, elapsed: float | None = None, unit: str = "stages") -> str:
    """The sweep's one progress line, e.g. `demo: 7/20 stages, 12:03 | seed=0: rl 3:10 | seed=1: merge 0:45`.

    done/total: finished stages (a failed stage and the ones it blocks count as finished) out of
    all stages of the runs this sweep executes; `active`: (run label, stage or None, seconds in it)
    of each run that has started and not ended; elapsed: seconds since the sweep started.
    """
    head = f"{name}: {done}/{total} {unit}"
    if failed:
        head += f", {failed} failed"
    if elapsed is not None:
        head += f", {_clock(elapsed)}"
    parts = [head]
    for label, stage, secs in active:
        parts.append(f"{label}: {stage} {_clock(secs)}" if stage else f"{label} {_clock(secs)}")
    return " | ".join(parts)


def run_label(run: xp.Run, width: int = 28) -> str:
    """A run's short name on the progress line: its varied values (`seed=0`), else its run id."""
    text = ",".join(f"{k.split('.')[-1]}={xp._fmt(v)}" for k, v in run.varied.items()) or run.run_id
    return text if len(text) <= width else text[:width - 1] + "~"


class StageProgress:
    """Which stage each run is in, from the status files its worker writes (`write_stage_status`).

    Thread-safe: the bar thread polls, the sweep's thread reports ended runs (`finish`).
    """

    def __init__(self, name: str, runs: list[xp.Run], status_paths: dict[str, Path], single: bool = False,
                 start: dict[str, int] | None = None):
        self.name, self.runs, self.paths, self.single = name, runs, status_paths, single
        self.n_stages = {r.run_id: len(r.stages) for r in runs}
        self.base = {}  # run_id -> stages already done when the sweep started (`start`: the stage each run starts at)
        for r in runs:
            states = [stage_status(st.out_dir) for st in r.stages]
            first = next((i for i, st in enumerate(states) if st != "done"), len(states))
            self.base[r.run_id] = (start or {}).get(r.run_id, first)
        self.labels = {r.run_id: run_label(r) for r in runs}
        self.current: dict[str, tuple[int, str | None, float]] = {}  # run_id -> (index, stage, seen since)
        self.ended: dict[str, bool] = {}  # run_id -> ok
        self.t0 = time.time()
        self.lock = threading.Lock()

    def poll(self) -> bool:
        """Read the status files of unfinished runs; True when some run moved to another stage."""
        changed = False
        with self.lock:
            for rid, path in self.paths.items():
                if rid in self.ended:
                    continue
                got = read_stage_status(path)
                if got is not None and got[0] != self.current.get(rid, (None,))[0]:
                    self.current[rid] = (got[0], got[1], time.time())
                    changed = True
        return changed

    def finish(self, run_id: str, ok: bool) -> None:
        with self.lock:
            self.ended[run_id] = ok

    def done(self) -> int:
        with self.lock:
            return sum(self.n_stages[rid] if rid in self.ended else max(self.base[rid], self.current.get(rid, (0,))[0])
                       for rid in self.n_stages)

    def line(self, now: float | None = None) -> str:
        now = time.time() if now is None else now
        done = self.done()
        with self.lock:
            active = [(self.labels[rid], None if self.single else stage, now - since)
                      for rid, (i, stage, since) in self.current.items() if rid not in self.ended and stage]
            failed = sum(not ok for ok in self.ended.values())
            total = sum(self.n_stages.values())
        return progress_line(self.name, done, total, active, failed=failed, elapsed=now - self.t0,
                             unit="runs" if self.single else "stages")


@contextlib.contextmanager
def _progress_bar(tracker: StageProgress, enabled: bool):
    """One tqdm line showing `tracker.line()`, redrawn by a thread; yields a function `redraw(force)`."""
    from tqdm.auto import tqdm

    first = tracker.line()
    bar = tqdm(total=sum(tracker.n_stages.values()), desc=first, bar_format="{desc}", file=sys.stderr,
               disable=not enabled, dynamic_ncols=True)
    tty = enabled and hasattr(sys.stderr, "isatty") and sys.stderr.isatty()
    last = [0.0, first]  # when and what was drawn last
    stop = threading.Event()
    draw_lock = threading.Lock()

    def redraw(force: bool = False) -> None:
        with draw_lock:
            moved = tracker.poll()
            now = time.time()
            if force or moved or now - last[0] >= (1.0 if tty else QUIET_REFRESH_S):
                line = tracker.line(now)
                if line != last[1]:
                    last[:] = now, line
                    bar.set_description_str(line, refresh=True)

    def loop() -> None:
        while not stop.wait(POLL_S):
            with contextlib.suppress(Exception):  # a progress glitch must not end the sweep
                redraw()

    thread = threading.Thread(target=loop, name="vtkit-progress", daemon=True)
    if enabled:
        thread.start()
    try:
        yield redraw if enabled else (lambda force=False: None)
    finally:
        stop.set()
        if enabled:
            thread.join()
            redraw(force=True)
        bar.close()


# ---------------------------------------------------------------------------------- the plan gate
DEFAULT_GPU_MEM_GB = 80.0  # memory per GPU (GiB) assumed when nvidia-smi cannot say


class PlanRefused(SweepError):
    """A run of the experiment cannot fit in GPU memory by the plan (vtkit.plan); `--force-plan` runs it anyway."""


def gpu_memory_gb() -> float:
    """Memory of the smallest visible GPU in GiB, from nvidia-smi; DEFAULT_GPU_MEM_GB where there is none."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=memory.total", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10, check=True).stdout
        mib = [float(x) for x in out.split() if x.strip()]
    except (OSError, subprocess.SubprocessError, ValueError):
        return DEFAULT_GPU_MEM_GB
    return min(mib) / 1024 if mib else DEFAULT_GPU_MEM_GB


@dataclass
class PlanVerdict:
    """What the plan says of an experiment's GPU runs: per stage entries (vtkit.plan), the stages that do
    not fit (`stage (run)`), the text printed; `error` when the plan could not be computed (entries None)."""
    text: str
    entries: list | None = None
    not_fitting: list = field(default_factory=list)
    error: str | None = None


def _hours(h: float) -> str:
    """GPU-hours to one decimal, small ones (tiny runs) to two significant digits."""
    return f"{h:.1f}" if h >= 0.1 or h == 0 else f"{h:.2g}"


def plan_verdict(exp: xp.Experiment, gpu_mem: float | None = None, use_hub: bool = True) -> PlanVerdict | None:
    """The plan's verdict for an experiment whose runs ask for GPUs (`resources.gpus > 0`); None for a
    CPU-only experiment (nothing is computed). A plan that cannot be computed (a notebook the plan does not
    know, an upstream model that does not exist yet) gives a verdict with `error` that blocks nothing."""
    gpus = int(exp.resources.get("gpus") or 0)
    if gpus < 1:
        return None
    from vtkit import plan

    mem = gpu_memory_gb() if gpu_mem is None else float(gpu_mem)
    try:
        if exp.path is None or not Path(exp.path).is_file():
            raise plan.PlanError("the experiment was not loaded from a file")
        hw = plan.Hardware(gpus=gpus, gpu_mem_gb=mem)
        entries = plan.plan_experiment(exp.path, hw, use_hub=use_hub)
    except Exception as e:  # noqa: BLE001 - the plan advises; it must never stop a sweep it cannot size
        msg = f"{type(e).__name__}: {e}" if not isinstance(e, plan.PlanError) else str(e)
        return PlanVerdict(f"plan: not computed, running without it ({msg}); `vtkit plan {exp.path}` shows more",
                           error=msg)
    tot = entries[-1]
    names = [e["stage"] + (f" ({e['run']})" if "run" in e else "") for e in entries[:-1]]
    w = min(max([len(n) for n in names] + [12]), 72)
    lines = [f"plan ({gpus} GPU(s) x {mem:g} GiB per run; `vtkit plan {exp.path}` for the breakdown):",
             f"  {'stage':{w}s} {'peak GiB/GPU':>12s} {'fits':>4s} {'GPU-hours':>10s} {'at caps':>9s}"]
    for name, e in zip(names, entries[:-1]):
        lines.append(f"  {name[:w]:{w}s} {e['peak_gb_per_gpu']:12.1f} {'yes' if e['fits'] else 'NO':>4s} "
                     f"{_hours(e['gpu_hours']):>10s} {_hours(e['gpu_hours_cap']):>9s}")
    lines.append(f"  {'total':{w}s} {tot['peak_gb_per_gpu']:12.1f} {'yes' if tot['fits'] else 'NO':>4s} "
                 f"{_hours(tot['gpu_hours']):>10s} {_hours(tot['gpu_hours_cap']):>9s}")
    return PlanVerdict("\n".join(lines), entries, list(tot["not_fitting"]))


def check_plan(exp: xp.Experiment, gpu_mem: float | None = None, force: bool = False,
               use_hub: bool = True, file=None) -> PlanVerdict | None:
    """Print the plan's verdict of a GPU experiment (to `file`, default stdout) and raise PlanRefused
    naming the stages that cannot fit, unless `force`. CPU-only experiments: nothing, returns None."""
    verdict = plan_verdict(exp, gpu_mem, use_hub)
    if verdict is None:
        return None
    print(verdict.text, file=file or sys.stdout, flush=True)
    if verdict.not_fitting:
        mem = verdict.entries[-1]["hardware"]["gpu_mem_gb"]
        if not force:
            raise PlanRefused(f"{len(verdict.not_fitting)} stage(s) cannot fit in {mem:g} GiB per GPU by the plan: "
                              f"{', '.join(verdict.not_fitting)}; nothing was started. Change their batch sizes, "
                              f"ZeRO stage or checkpointing (see `vtkit plan`), give the real memory with --gpu-mem, "
                              f"or run anyway with --force-plan")
        print(f"plan: {', '.join(verdict.not_fitting)} cannot fit in {mem:g} GiB per GPU; going on (--force-plan)",
              file=file or sys.stdout, flush=True)
    return verdict


# ---------------------------------------------------------------------------------- the sweep
@dataclass
class SweepResult:
    exp_dir: Path
    runs: list
    executed: list = field(default_factory=list)  # run ids run by this call
    skipped: list = field(default_factory=list)  # done before (or failed, without rerun_failed)
    failed: dict = field(default_factory=dict)  # run_id -> error, over all runs
    table: object = None
    source: str = ""  # the vtkit source hash this sweep ran with (runinfo.source_hash)
    stale: dict = field(default_factory=dict)  # run_id -> its stages made by other code, as found at the start
    reused_stale: list = field(default_factory=list)  # stale runs kept as they were (reuse_stale=True)

    @property
    def ok(self) -> bool:
        return not self.failed


def check_kernel(name: str) -> None:
    """SweepError unless the Jupyter kernel `name` is installed (runs would all fail otherwise)."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(name)
    except NoSuchKernel:
        raise SweepError(f"Jupyter kernel {name!r} is not installed; run `make setup`, or register this "
                         f"environment with `python -m ipykernel install --sys-prefix --name {name}`") from None


@contextlib.contextmanager
def _lock(path: Path):
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            raise SweepError(f"another vtkit sweep is running in {path.parent.parent} (pid {f.read().strip() or '?'}); "
                             "wait for it or stop it first") from None
        f.truncate(0)
        f.write(str(os.getpid()))
        f.flush()
        yield  # the OS drops the lock when this process dies, even by SIGKILL


def _stale_note(run: xp.Run, stages: list[str], source: str) -> str:
    """`made by vtkit source 1a2b... (now 3c4d...)`: which code the stale stages of `run` ran with."""
    made = sorted({stage_source(st.out_dir) or "unrecorded" for st in run.stages if st.name in stages})
    return f"{', '.join(stages)} made by vtkit source {', '.join(made)} (now {source})"


def describe_plan(exp: xp.Experiment, runs: list[xp.Run], rerun_failed: bool = False,
                  reuse_stale: bool = False, source: str | None = None) -> str:
    """Human-readable plan: each run's id, state, what a sweep would do, and its parameters.

    A run whose finished stages were made by other vtkit code than `source` (default: the current
    source) shows as `stale`, with the stages and the code that made them.
    """
    source = source or runinfo.source_hash()
    lines = [f"experiment {exp.name}: {len(runs)} run(s), {len(exp.stages)} stage(s) "
             f"({', '.join(s.name for s in exp.stages)}), jobs={exp.jobs}, executor={exp.executor}, "
             f"vtkit source {source}"]
    n_stale = 0
    for run in runs:
        state, stale = run_status(run), stale_stages(run, source)
        action = "skip" if state == "done" or (state == "failed" and not rerun_failed) else "run"
        if stale and state != "failed":
            n_stale += 1
            state, action = ("stale" if state == "done" else state), ("skip" if reuse_stale and state == "done" else "run")
        lines.append(f"  {action:4s} {state:8s} {run.run_id}  {json.dumps(run.varied, default=str)}")
        if stale:
            lines.append(f"         stale: {_stale_note(run, stale, source)}")
        for st in run.stages:
            shown = {k: v for k, v in st.params.items() if k != "out_dir"}
            lines.append(f"         {st.name}: {json.dumps(shown, default=str)}")
    if n_stale:
        lines.append(f"{n_stale} run(s) hold stages made by other vtkit code: " +
                     ("kept as they are (--reuse-stale)" if reuse_stale else
                      "a sweep runs them again from their first stale stage; --reuse-stale keeps them"))
    return "\n".join(lines)


def sweep(exp: xp.Experiment, out_root: str | os.PathLike = "runs", jobs: int | None = None,
          rerun_failed: bool = False, executor: str | None = None, progress: bool = True,
          gpu_ids: list[str] | None = None, reuse_stale: bool = False, gpu_mem: float | None = None,
          force_plan: bool = False, check_gpu_plan: bool = True) -> SweepResult:
    """Run every unfinished run of `exp` under out_root/<name>/ and rebuild the results table.

    A finished run with stages made by other vtkit code (see the module docstring) runs again from
    its first stale stage, unless reuse_stale; either way the sweep names those runs on stderr.
    When runs are to execute and they ask for GPUs, the experiment is planned first (`check_plan`: the
    verdict on stdout; GiB per GPU `gpu_mem`, default from nvidia-smi, else 80): PlanRefused, before any
    run starts, when a stage cannot fit, unless force_plan. CPU-only experiments are not planned.
    """
    runs = xp.plan(exp, out_root)
    exp_dir = Path(out_root).resolve() / exp.name
    work = exp_dir / "_sweep"
    jobs = jobs or exp.jobs
    executor = executor or exp.executor
    with _lock(work / "lock"):
        if exp.path and exp.path.is_file():
            shutil.copyfile(exp.path, exp_dir / "experiment.yaml")
        source = runinfo.source_hash()
        states = {r.run_id: run_status(r) for r in runs}
        stale = {r.run_id: names for r in runs if states[r.run_id] != "failed" and (names := stale_stages(r, source))}
        todo = [r for r in runs if states[r.run_id] in ("pending", "partial")
                or (rerun_failed and states[r.run_id] == "failed")
                or (not reuse_stale and r.run_id in stale)]
        todo_ids = {r.run_id for r in todo}
        result = SweepResult(exp_dir, runs, skipped=[r.run_id for r in runs if r.run_id not in todo_ids],
                             source=source, stale=stale, reused_stale=list(stale) if reuse_stale else [])
        if stale:
            by_id = {r.run_id: r for r in runs}
            print(f"{exp.name}: {len(stale)} run(s) hold stages made by other vtkit code than the current "
                  f"source {source}; " + ("kept as they are (--reuse-stale):" if reuse_stale else
                                         "running them again from their first stale stage (--reuse-stale keeps them):"),
                  file=sys.stderr)
            for rid, names in stale.items():
                print(f"  {rid}: {_stale_note(by_id[rid], names, source)}", file=sys.stderr)
        if todo:
            if check_gpu_plan:
                check_plan(exp, gpu_mem, force_plan)
            check_kernel(exp.kernel)
            ex = (LocalExecutor(exp, work, jobs, gpu_ids) if executor == "local" else SubmititExecutor(exp, work, jobs))
            status = {r.run_id: work / f"{r.run_id}.stage" for r in todo}
            for path in status.values():  # a status file left by an earlier sweep is stale
                path.unlink(missing_ok=True)
            start = {r.run_id: first_to_run([st.out_dir for st in r.stages], source, reuse_stale) or 0 for r in todo}
            tracker = StageProgress(exp.name, todo, status, single=exp.single, start=start)

            try:
                with _progress_bar(tracker, progress) as redraw:
                    def on_done(res: dict) -> None:
                        result.executed.append(res["run_id"])
                        tracker.finish(res["run_id"], res["ok"])
                        redraw(force=True)

                    ex.run([run_spec(r, exp, status[r.run_id], reuse_stale) for r in todo], on_done)
            finally:
                result.table = write_results(exp, runs, exp_dir)  # also after Ctrl-C: what finished counts
        else:
            result.table = write_results(exp, runs, exp_dir)
    for run in runs:
        if run_status(run) == "failed":
            st = next(s for s in run.stages if stage_status(s.out_dir) == "failed")
            result.failed[run.run_id] = f"{st.name}: {_read_json(st.out_dir / FAILED).get('error', 'failed')}"
    return result


def skip_slow_imports() -> None:
    """For vtkit's own processes (CLI, workers) only: jsonschema (via nbformat) imports
    rfc3987_syntax when installed, which builds a parser for 1-2 s at import; nbformat never
    checks IRIs, and jsonschema treats the ImportError this causes as "checker unavailable"."""
    sys.modules.setdefault("rfc3987_syntax", None)


def _main(argv: list[str]) -> int:
    """Worker entry: `python -m vtkit.sweep _run_one SPEC.json RUNNER_PID`."""
    if len(argv) != 3 or argv[0] != "_run_one":
        print("usage: python -m vtkit.sweep _run_one SPEC.json RUNNER_PID (internal; use `vtkit sweep`)", file=sys.stderr)
        return 2
    _die_with_parent(int(argv[2]))
    skip_slow_imports()
    res = execute_run(json.loads(Path(argv[1]).read_text()))
    print(f"[vtkit] {res['run_id']}: {'ok' if res['ok'] else 'FAILED ' + str(res['error'])}", flush=True)
    return 0 if res["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))

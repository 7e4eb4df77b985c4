"""Run every benchmark in this folder and print one table.

Usage: `make bench` (or `.venv/bin/python benchmarks/run.py [NAME ...]`).

Each `benchmarks/bench_*.py` defines `run() -> list[dict]`, one dict per row with keys
`benchmark`, `value`, `unit`, `goal` (text, may be empty) and `note`. Rows print as a
fixed-width table and are saved to `runs/bench/results.csv`.
"""
from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    files = sorted(HERE.glob("bench_*.py"))
    if argv:
        files = [f for f in files if any(a in f.stem for a in argv)]
    rows = []
    for f in files:
        spec = importlib.util.spec_from_file_location(f.stem, f)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        t0 = time.perf_counter()
        for r in mod.run():
            rows.append({"file": f.stem, **r})
        print(f"[{f.stem}] {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    df = pd.DataFrame(rows, columns=["file", "benchmark", "value", "unit", "goal", "note"])
    out = HERE.parent / "runs" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "results.csv", index=False)
    with pd.option_context("display.max_colwidth", 60, "display.width", 200):
        print(df.drop(columns="file").to_string(index=False, float_format=lambda v: f"{v:,.3g}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""Held-out accuracy on seen and on new arithmetic, per run and stage, from experiment folders.

    python scripts/arith_table.py runs/demo [runs/other ...] [--json]

Reads each folder's results.parquet (written by `vtkit sweep`) and prints, for every finished stage
that measured it, the held-out rate on items whose operand pairs training saw and on items with a
pair held out of training (`seen_arith/...`, `new_arith/...` from `vtkit.evaluation.arith_metrics`;
math tasks made with `holdout_arith`), with the intervals and item counts the stage wrote, and the
paired gain where the stage has a start (RL: start -> final; distillation: before -> after;
quickstart: untrained -> trained). One row per (run, stage, prefix).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path


def rows(run_dirs) -> list[dict]:
    """One dict per (run, stage, prefix) that has seen/new-arithmetic metrics."""
    import pandas as pd

    frames = []
    for d in run_dirs:
        path = Path(d) / "results.parquet"
        if not path.exists():
            raise SystemExit(f"{path} does not exist: run `vtkit sweep EXPERIMENT.yaml --out runs` first")
        frames.append(pd.read_parquet(path))
    table = pd.concat(frames, ignore_index=True)
    out = []
    for _, r in table.iterrows():
        keys = [k for k in r.index if "/new_arith/n_items" in k or k == "new_arith/n_items"]
        for key in keys:
            if not isinstance(r[key], (int, float)) or math.isnan(r[key]):
                continue
            prefix = key[: -len("new_arith/n_items")]
            row = {"run": r.get("run_id"), "seed": r.get("seed"), "stage": r.get("stage"), "prefix": prefix}
            for part in ("seen_arith", "new_arith"):
                rate = next((k for k in r.index if k.startswith(f"{prefix}{part}/") and k.split("/")[-1].startswith(
                    ("mean@", "greedy_acc")) and not k.endswith(("_lo", "_hi")) and not _nan(r[k])), None)
                if rate is None:
                    continue
                row[f"{part}"] = r[rate]
                row[f"{part}_lo"], row[f"{part}_hi"] = r[f"{rate}_lo"], r[f"{rate}_hi"]
                row[f"{part}_n"] = int(r[f"{prefix}{part}/n_items"])
                g = f"{prefix}{part}/heldout_gain"
                if g in r.index and not _nan(r[g]):
                    row[f"{part}_gain"], row[f"{part}_gain_lo"], row[f"{part}_gain_hi"] = r[g], r[f"{g}_lo"], r[f"{g}_hi"]
            out.append(row)
    return out


def _nan(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def _fmt(row, part) -> str:
    if part not in row:
        return "-"
    s = f"{row[part]:.3f} [{row[f'{part}_lo']:.3f}, {row[f'{part}_hi']:.3f}] (n {row[f'{part}_n']})"
    if f"{part}_gain" in row:
        s += f", gain {row[f'{part}_gain']:+.3f} [{row[f'{part}_gain_lo']:+.3f}, {row[f'{part}_gain_hi']:+.3f}]"
    return s


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run_dirs", nargs="+", help="experiment output folders holding results.parquet")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = ap.parse_args(argv)
    table = rows(args.run_dirs)
    if not table:
        print("no stage measured seen/new arithmetic (math tasks need holdout_arith)", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(table, indent=1, default=float))
        return 0
    for row in table:
        print(f"seed {row['seed']} {row['stage']:10s} {row['prefix'] or '-':14s} seen {_fmt(row, 'seen_arith')}; "
              f"new {_fmt(row, 'new_arith')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

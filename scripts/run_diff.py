"""Which numbers a change moved: two experiment folders' metrics compared stage by stage and seed by seed.

    python scripts/run_diff.py runs_before/demo runs/demo [--json]

Reads each folder's results.parquet (written by `vtkit sweep`) and pairs the rows by (seed, stage).
For each pair it prints the notebook wall times (`wall_s`, seconds) of both runs, how many metrics
are equal, and every metric whose value differs, with both values. Timing keys (`wall_s`,
`metric_wall_s`, any key ending in `_s`, `eval_s` or `_time`) and the run's bookkeeping columns
(paths, ids, status, the parameters) are not compared; a metric present in one run only is listed
apart. NaN equals NaN. Stages that ran in one folder only are named. Exit 0 when every compared
metric is equal, 1 when any differs (so it can gate "this change is a speed-up only").
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

BOOKKEEPING = {"run_id", "stage", "seed", "status", "error", "vtkit_source", "out_dir", "params", "preset",
               "sft_dir", "init_model", "rl_dir", "student", "model", "capacity_results"}


def _timing(key: str) -> bool:
    return key.endswith(("_s", "_time")) or key == "eval_s"


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def _table(run_dir) -> dict:
    import pandas as pd
    path = Path(run_dir) / "results.parquet"
    if not path.exists():
        raise SystemExit(f"{path} does not exist: run `vtkit sweep EXPERIMENT.yaml --out ...` first")
    table = pd.read_parquet(path)
    rows = {}
    for _, r in table.iterrows():
        rec = {k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()}
        rows[(int(rec["seed"]) if rec.get("seed") is not None else None, rec["stage"])] = rec
    return rows


def diff(run_a, run_b) -> list[dict]:
    """One dict per (seed, stage) in either run: walls, counts of equal metrics, the differing ones."""
    a, b = _table(run_a), _table(run_b)
    out = []
    for key in sorted(set(a) | set(b), key=lambda k: (str(k[0]), str(k[1]))):
        ra, rb = a.get(key), b.get(key)
        row = {"seed": key[0], "stage": key[1], "wall_a": (ra or {}).get("wall_s"), "wall_b": (rb or {}).get("wall_s")}
        if ra is None or rb is None:
            row["only_in"] = "b" if ra is None else "a"
            out.append(row)
            continue

        def present(r):
            return {k for k, v in r.items() if k not in BOOKKEEPING and not _timing(k)
                    and not (v is None or (isinstance(v, float) and math.isnan(v)))}
        ka, kb = present(ra), present(rb)
        both = sorted(ka & kb)
        row["n_equal"] = sum(_same(ra[k], rb[k]) for k in both)
        row["differ"] = {k: [ra[k], rb[k]] for k in both if not _same(ra[k], rb[k])}
        row["only_a"], row["only_b"] = sorted(ka - kb), sorted(kb - ka)
        out.append(row)
    return out


def _wall(v) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.0f} s"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run_a", help="experiment output folder (results.parquet): before")
    ap.add_argument("run_b", help="experiment output folder (results.parquet): after")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = ap.parse_args(argv)
    rows = diff(args.run_a, args.run_b)
    moved = any(r.get("differ") for r in rows)
    if args.json:
        print(json.dumps(rows, indent=1, default=str))
        return int(moved)
    for r in rows:
        head = f"seed {r['seed']} {r['stage']:10s} wall {_wall(r['wall_a'])} -> {_wall(r['wall_b'])}"
        if "only_in" in r:
            print(f"{head}: only in {r['only_in']}")
            continue
        print(f"{head}: {r['n_equal']} metrics equal, {len(r['differ'])} differ"
              + "".join(f", only in {side}: {len(ks)} ({', '.join(ks[:4])}{', ...' if len(ks) > 4 else ''})"
                        for side, ks in (("a", r["only_a"]), ("b", r["only_b"])) if ks))
        for k, (va, vb) in r["differ"].items():
            print(f"    {k}: {va} -> {vb}")
    return int(moved)


if __name__ == "__main__":
    sys.exit(main())

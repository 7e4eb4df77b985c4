"""CLR vs majority vote vs mean@1, pooled over the problems of several CLR runs (seeds), with a figure.

    vtkit sweep experiments/clr_vs_majority.yaml --out runs --jobs 2
    python scripts/clr_pool.py runs/clr_vs_majority --out docs/figures/clr_vs_majority

Each CLR run (notebooks/06_clr.ipynb, stage `clr`) writes `clr_items.jsonl`: per problem, each
method's accuracy at each K over the R subsamples (`scores`: `clr@K`, `majority@K`, `mean1@K`,
all three on the same subsamples). Seeds draw their own test problems, so the runs' problems are
pooled (3 seeds x 100 problems = 300) and resampled as items: each method's pooled accuracy with a
percentile bootstrap over problems, and CLR - majority with a paired bootstrap over problems (the
same problems in both; 2000 draws by default, seed 0). Prints per run the verifier's held-out
accuracy and the share of claims judged valid in right- and wrong-answer trajectories, then the
pooled table; writes OUT.png/.pdf (accuracy against K, bootstrap bands) and OUT.json.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vtkit import compare, plots, runinfo, stats

METHODS = {"clr": "CLR", "majority": "majority vote", "mean1": "mean@1"}
RUN_KEYS = ("verifier_acc", "verifier_acc_lo", "verifier_acc_hi", "verifier_recall_valid", "verifier_recall_invalid",
            "valid_rate_correct_traj", "valid_rate_wrong_traj")


def load_items(run_dirs, stage: str = "clr") -> tuple[list[dict], list[dict]]:
    """(runs, items): one dict per finished CLR run (run_id, seed, verifier metrics, n items) and every
    problem's `scores` with the run it came from."""
    df = compare.load_table(run_dirs)
    df = df[df["status"] == "ok"]
    if "stage" in df.columns and stage in set(df["stage"]):
        df = df[df["stage"] == stage]
    runs, items = [], []
    for _, row in df.iterrows():
        f = compare.stage_dir(row) / "clr_items.jsonl"
        if not f.exists():
            continue
        got = [r for r in runinfo.read_jsonl(f) if isinstance(r.get("scores"), dict)]
        runs.append({"run_id": row["run_id"], "seed": row.get("seed"), "n_items": len(got),
                     **{k: row[k] for k in RUN_KEYS if k in row and row[k] == row[k]}})
        items += [{"run_id": row["run_id"], **r["scores"]} for r in got]
    if not items:
        raise compare.CompareError(f"no finished {stage!r} run with clr_items.jsonl under {[str(d) for d in run_dirs]}")
    return runs, items


def pool(items: list[dict], n_boot: int = 2000, seed: int = 0) -> list[dict]:
    """Per K: each method's pooled accuracy with its bootstrap interval over problems, and CLR - majority
    with a paired bootstrap over problems."""
    ks = sorted({int(k.split("@")[1]) for it in items for k in it if "@" in k})
    rows = []
    for k in ks:
        have = [it for it in items if all(f"{m}@{k}" in it for m in METHODS)]
        row = {"K": k, "n_problems": len(have)}
        for m in METHODS:
            vals = [float(it[f"{m}@{k}"]) for it in have]
            row[m] = sum(vals) / len(vals)
            row[f"{m}_lo"], row[f"{m}_hi"] = stats.bootstrap_ci(vals, n_boot=n_boot, seed=seed)
        d = stats.paired_bootstrap([it[f"majority@{k}"] for it in have], [it[f"clr@{k}"] for it in have],
                                   n_boot=n_boot, seed=seed)
        row.update({"clr_minus_majority": d["gain"], "clr_minus_majority_lo": d["gain_lo"],
                    "clr_minus_majority_hi": d["gain_hi"]})
        rows.append(row)
    return rows


def figure(rows: list[dict], n_runs: int, path=None, title: str | None = None):
    fig, ax = plots.figure("single")
    ks = [r["K"] for r in rows]
    for i, (m, label) in enumerate(METHODS.items()):
        plots.curve_ci(ax, ks, [r[m] for r in rows], [r[f"{m}_lo"] for r in rows], [r[f"{m}_hi"] for r in rows],
                       band=True, marker="o", ms=3, color=f"C{i}", label=label)
    ax.set_xscale("log", base=2)
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.set(xlabel="K (trajectories per problem)", ylabel=f"accuracy ({rows[0]['n_problems']} problems, {n_runs} seeds)")
    if title:
        ax.set_title(title)
    ax.legend()
    if path is not None:
        plots.savefig(fig, path)
    return fig


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("run_dir", nargs="+", help="output folder(s) of CLR sweeps (results.parquet)")
    p.add_argument("--stage", default="clr", help="the CLR stage's name in a pipeline (default clr)")
    p.add_argument("--n-boot", type=int, default=2000, help="bootstrap draws over problems (default 2000)")
    p.add_argument("--boot-seed", type=int, default=0)
    p.add_argument("--out", default="clr_vs_majority", help="path stem of the figure and .json")
    p.add_argument("--title", default=None)
    args = p.parse_args(argv)
    try:
        runs, items = load_items(args.run_dir, args.stage)
    except compare.CompareError as e:
        print(f"clr_pool: error: {e}", file=sys.stderr)
        return 2
    rows = pool(items, args.n_boot, args.boot_seed)
    for r in runs:
        v = {k: r.get(k, float("nan")) for k in RUN_KEYS}
        print(f"{r['run_id']}: {r['n_items']} problems; verifier {v['verifier_acc']:.3f} [{v['verifier_acc_lo']:.3f}, "
              f"{v['verifier_acc_hi']:.3f}] (recall valid {v['verifier_recall_valid']:.2f}, invalid "
              f"{v['verifier_recall_invalid']:.2f}); judged valid {v['valid_rate_correct_traj']:.2f} (right) vs "
              f"{v['valid_rate_wrong_traj']:.2f} (wrong)")
    print(f"pooled over {rows[0]['n_problems']} problems of {len(runs)} runs; {args.n_boot} bootstrap draws over problems")
    print(f"{'K':>3}  {'CLR':>22}  {'majority':>22}  {'mean@1':>22}  {'CLR - majority (paired)':>26}")
    for r in rows:
        cell = lambda m: f"{r[m]:.3f} [{r[m + '_lo']:.3f}, {r[m + '_hi']:.3f}]"
        print(f"{r['K']:>3}  {cell('clr'):>22}  {cell('majority'):>22}  {cell('mean1'):>22}  "
              f"{r['clr_minus_majority']:+.3f} [{r['clr_minus_majority_lo']:+.3f}, {r['clr_minus_majority_hi']:+.3f}]")
    out = Path(args.out)
    figure(rows, len(runs), out, args.title)
    Path(f"{out}.json").write_text(json.dumps(compare.jsonable({"runs": runs, "pooled": rows, "n_boot": args.n_boot,
                                                                 "boot_seed": args.boot_seed}), indent=1) + "\n")
    print(f"written: {out}.png, {out}.pdf, {out}.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

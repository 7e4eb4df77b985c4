"""The merge ablation's figure and numbers from a sweep of experiments/spectrum_ablation.yaml.

    vtkit sweep experiments/spectrum_ablation.yaml --out runs --jobs 2
    python scripts/merge_ablation.py runs/spectrum_ablation --out docs/figures/merge_ablation

Left panel: held-out mean@K (T = 1) per test group and the mean over groups, for the merged
specialists, the last checkpoint and the best single checkpoint: the mean over seeds with a 95% t
interval over seeds (clipped to [0, 1]). Right panel: the per-seed differences merged - last and merged - best single
(the merge stage's `merged_minus_last/mean/mean@K`, `merged_minus_best_single/mean/mean@K`) with
their mean, 95% t interval over seeds (thick) and bootstrap over seeds (thin): the numbers of
`vtkit compare RUN_DIR --stage merge --metric merged_minus_last/mean/mean@4`, which this script
calls. Writes OUT.png/.pdf and OUT.json (every number drawn); prints the table.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

from vtkit import compare, plots, stats

MODELS = {"merged": "merged specialists", "last": "last checkpoint", "best_single": "best single"}


def group_table(run_dirs, k: int = 4, stage: str = "merge") -> dict:
    """{model: {group: (mean, t_lo, t_hi, n)}} of `{model}/{group}/mean@k` over the finished merge runs
    (the t interval over seeds clipped to [0, 1])."""
    df = compare.load_table(run_dirs)
    df = df[(df["status"] == "ok") & (df["stage"] == stage)] if "stage" in df.columns else df[df["status"] == "ok"]
    if df.empty:
        raise compare.CompareError(f"no finished {stage!r} rows in {[str(d) for d in run_dirs]}")
    name = f"mean@{k}"
    pat = re.compile(rf"^merged/(.+)/{re.escape(name)}$")
    groups = [m.group(1) for c in df.columns if (m := pat.match(str(c))) and m.group(1) != "mean"]
    if not groups:
        raise compare.CompareError(f"no merged/<group>/{name} columns: is K = {k}? (the merge stage's `k`)")
    out = {}
    for model in MODELS:
        out[model] = {}
        for g in [*groups, "mean"]:
            col = f"{model}/{g}/{name}"
            vals = df[col].dropna().astype(float).tolist() if col in df.columns else []
            m, lo, hi, n = stats.t_interval(vals)
            out[model][g] = (m, max(0.0, lo), min(1.0, hi), n)   # an accuracy's interval stays in [0, 1]
    return out


def figure(table: dict, comps, k: int, path=None):
    fig, (ax, bx) = plots.figure("double", ncols=2)
    groups = list(table["merged"])
    width = 0.8 / len(MODELS)
    for i, (model, label) in enumerate(MODELS.items()):
        xs = [j + (i - 1) * width for j in range(len(groups))]
        m, lo, hi = (np.array([table[model][g][n] for g in groups], dtype=float) for n in range(3))
        ax.errorbar(xs, m, yerr=plots.yerr(m, np.where(np.isnan(lo), m, lo), np.where(np.isnan(hi), m, hi)),
                    fmt="o", capsize=2, color=f"C{i}", label=label)
    n = max(v[3] for v in table["merged"].values())
    ax.set_xticks(range(len(groups)), groups)
    ax.set(ylabel=f"mean@{k} at T = 1 ({n} seeds)", title="held-out accuracy by group (mean, 95% t over seeds)")
    ax.legend()
    rng = np.random.default_rng(0)
    for i, c in enumerate(comps):
        v = c.summary["value"]
        ys = [p["value"] for p in c.pairs]
        bx.scatter(i + rng.uniform(-0.3, -0.1, len(ys)), ys, s=9, color="0.55", zorder=2)
        plots.curve_ci(bx, [i], [v["mean"]], [v["t_lo"]], [v["t_hi"]], color="C0", ms=6, lw=1.6,
                       label="mean, 95% t" if i == 0 else None)
        bx.errorbar([i + 0.12], [v["mean"]], yerr=plots.yerr([v["mean"]], [v["boot_lo"]], [v["boot_hi"]]),
                    color="C0", lw=0.8, capsize=1.5, fmt="none", label="95% bootstrap" if i == 0 else None)
    bx.axhline(0, color="0.3", lw=0.6)
    bx.set_xticks(range(len(comps)), ["merged - last", "merged - best single"])
    bx.set_xlim(-0.6, len(comps) - 0.4)
    bx.set(ylabel=f"difference in mean@{k} (per seed)", title="merge effect, per seed")
    bx.legend(loc="best")
    if path is not None:
        plots.savefig(fig, path)
    return fig


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("run_dir", nargs="+", help="spectrum_ablation output folder(s) (results.parquet)")
    p.add_argument("--k", type=int, default=4, help="the merge stage's K: metrics mean@K (default 4)")
    p.add_argument("--stage", default="merge")
    p.add_argument("--out", default="merge_ablation", help="path stem of the figure and .json (default ./merge_ablation)")
    p.add_argument("--n-boot", type=int, default=1000)
    args = p.parse_args(argv)
    try:
        table = group_table(args.run_dir, args.k, args.stage)
        comps = [compare.compare(args.run_dir, f"merged_minus_{base}/mean/mean@{args.k}", stage=args.stage,
                                 n_boot=args.n_boot) for base in ("last", "best_single")]
    except compare.CompareError as e:
        print(f"merge_ablation: error: {e}", file=sys.stderr)
        return 2
    for model, label in MODELS.items():
        print(f"{label:20s} " + "  ".join(f"{g} {m:.3f} [{lo:.3f}, {hi:.3f}]" for g, (m, lo, hi, _) in table[model].items()))
    for c in comps:
        print(compare.format_text(c, args.n_boot))
    out = Path(args.out)
    figure(table, comps, args.k, out)
    doc = {"groups": {m: {g: dict(zip(("mean", "t_lo", "t_hi", "n"), v)) for g, v in t.items()} for m, t in table.items()},
           "differences": compare.to_json(comps, args.run_dir, args.n_boot, 0)["comparisons"]}
    Path(f"{out}.json").write_text(json.dumps(compare.jsonable(doc), indent=1) + "\n")
    print(f"written: {out}.png, {out}.pdf, {out}.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

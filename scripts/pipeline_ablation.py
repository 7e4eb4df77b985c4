"""The pipeline ablation's table and figure from a sweep of experiments/pipeline_ablation.yaml.

    vtkit sweep experiments/pipeline_ablation.yaml --out runs --jobs 2
    python scripts/pipeline_ablation.py runs/pipeline_ablation --out docs/figures/pipeline_ablation

Per arm (vtkit/stages/ablation.py): held-out mean@K of its final model (mean over seeds, 95% t interval
over seeds), its training FLOPs over the full chain's (mean, min, max over seeds), and the paired
differences arm - full and arm - plain: per seed on the same held-out problems, then the mean over seeds
with a 95% t interval (the numbers of `vtkit compare RUN_DIR --metric <arm>_minus_full/math/mean@K`, which
this script calls). A difference reads as an effect when its interval excludes 0, as a null when it does
not and its half-width is at most `--null-width` (0.03), else as unresolved (more seeds or problems).
Left panel: held-out accuracy against cumulative training FLOPs, one line per arm (mean over seeds of each
measured point). Right panel: the differences against the full chain. Writes OUT.png/.pdf and OUT.json.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from vtkit import compare, plots, stats
from vtkit.stages.ablation import ARMS


def verdict(s: dict, null_width: float) -> str:
    """'effect' (interval excludes 0), 'null' (it holds 0 and is narrow) or 'unresolved'."""
    if s["t_lo"] > 0 or s["t_hi"] < 0:
        return "effect"
    return "null" if (s["t_hi"] - s["t_lo"]) / 2 <= null_width else "unresolved"


def arm_table(run_dirs, k: int = 4) -> dict:
    """{arm: {"acc": (mean, t_lo, t_hi, n), "flops_ratio": (mean, min, max), "curve": (flops, acc)}}
    over the finished runs; the curve is the mean over seeds of each stage's cumulative FLOPs and of the
    accuracy it measured (stages that measured none are left out)."""
    df = compare.load_table(run_dirs)
    df = df[df["status"] == "ok"]
    if df.empty:
        raise compare.CompareError(f"no finished runs in {[str(d) for d in run_dirs]}")
    curves = {}
    for _, row in df.iterrows():
        path = compare.stage_dir(row) / "arms.json"
        if not path.exists():
            raise compare.CompareError(f"{path} not found: is this a pipeline_ablation sweep?")
        for arm, a in json.loads(path.read_text()).items():
            curves.setdefault(arm, []).append(a)
    out = {}
    for arm in [a for a in ARMS if a in curves]:
        col = f"{arm}/math/mean@{k}"
        if col not in df.columns:
            raise compare.CompareError(f"no {col} column: is K = {k}? (the RL stage's eval_samples)")
        m, lo, hi, n = stats.t_interval(df[col].dropna().astype(float).tolist())
        ratios = df[f"{arm}/flops_ratio"].dropna().astype(float)
        runs = curves[arm]
        keep = [i for i, y in enumerate(runs[0]["acc"]) if y is not None]
        fl = [float(np.mean([r["flops"][i] for r in runs])) for i in keep]
        ys = [float(np.mean([r["acc"][i] for r in runs])) for i in keep]
        out[arm] = {"acc": (m, max(0.0, lo), min(1.0, hi), n),
                    "flops_ratio": (float(ratios.mean()), float(ratios.min()), float(ratios.max())),
                    "curve": (fl, ys)}
    return out


def matched_differences(run_dirs, ref: str = "full", k: int = 4, tol: float = 0.1) -> dict:
    """{arm: (mean, t_lo, t_hi, n)} of `<arm>_minus_<ref>` over only the seeds where both arms' FLOPs are
    within `tol` of the full chain's: the sensitivity of the table to the seeds whose matching missed."""
    df = compare.load_table(run_dirs)
    df = df[df["status"] == "ok"]
    out = {}
    for arm in ARMS:
        col = f"{arm}_minus_{ref}/math/mean@{k}"
        if col not in df.columns:
            continue
        ok = (df[f"{arm}/flops_ratio"] - 1).abs().le(tol) & (df[f"{ref}/flops_ratio"] - 1).abs().le(tol)
        out[arm] = stats.t_interval(df.loc[ok, col].dropna().astype(float).tolist())
    return out


def sft_table(run_dirs, group: str = "hard") -> dict:
    """{seed: {sft run: (epochs1, greedy accuracy on the SFT's held-out `group` after its last stage)}}: how far
    each arm's SFT got on the problems RL is measured on (the two-operation `hard` group at tiny)."""
    df = compare.load_table(run_dirs)
    out = {}
    for _, row in df[df["status"] == "ok"].iterrows():
        d = compare.stage_dir(row)
        runs = {}
        for sub in sorted(p for p in d.iterdir() if p.name.startswith("sft") and (p / "metrics.json").exists()):
            m, c = (json.loads((sub / f).read_text()) for f in ("metrics.json", "config.json"))
            last = "stage2" if f"stage2/{group}/greedy_acc" in m else "stage1"
            runs[sub.name] = (c["epochs1"], m.get(f"{last}/{group}/greedy_acc"))
        out[int(row["seed"])] = runs
    return out


def chain_table(run_dirs) -> dict:
    """{seed: {arm: [(stage run, RL steps or None, held-out accuracy after it or None)]}} from arms.json."""
    df = compare.load_table(run_dirs)
    out = {}
    for _, row in df[df["status"] == "ok"].iterrows():
        d = compare.stage_dir(row)
        arms = json.loads((d / "arms.json").read_text())
        steps = lambda st: (json.loads((d / st / "config.json").read_text())["max_steps"] if st.startswith("rl_") else None)
        out[int(row["seed"])] = {arm: [(st, steps(st), y) for st, y in zip(a["stages"], a["acc"])] for arm, a in arms.items()}
    return out


def figure(table: dict, comps: dict, k: int, null_width: float, path=None):
    fig, (ax, bx) = plots.figure("double", ncols=2)
    for i, (arm, t) in enumerate(table.items()):
        fl, ys = t["curve"]
        ax.plot(fl, ys, marker="o", ms=3, color=f"C{i}", lw=2 if arm == "full" else 1, label=arm)
        m, lo, hi, _ = t["acc"]
        ax.errorbar([fl[-1]], [m], yerr=plots.yerr([m], [lo], [hi]), color=f"C{i}", capsize=2, fmt="none")
    n = max(t["acc"][3] for t in table.values())
    ax.set(xscale="log", xlabel="cumulative training FLOPs (evaluation excluded)",
           ylabel=f"held-out math mean@{k}, T = 1 ({n} seeds)", title="accuracy against compute (mean over seeds)")
    ax.legend(fontsize="x-small")
    arms = [a for a in table if a != "full" and ("full", a) in comps]
    for i, arm in enumerate(arms):
        v = comps[("full", arm)].summary["value"]
        plots.curve_ci(bx, [i], [v["mean"]], [v["t_lo"]], [v["t_hi"]], color=f"C{list(table).index(arm)}", ms=6, lw=1.6)
    bx.axhline(0, color="0.3", lw=0.6)
    for y in (-null_width, null_width):
        bx.axhline(y, color="0.6", lw=0.6, ls="--")
    bx.set_xticks(range(len(arms)), arms, rotation=30)
    bx.set(ylabel=f"arm - full, mean@{k} (95% t over seeds)", title=f"paired differences (dashed: +-{null_width})")
    if path is not None:
        plots.savefig(fig, path)
    return fig


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("run_dir", nargs="+", help="pipeline_ablation output folder(s) (results.parquet)")
    p.add_argument("--k", type=int, default=4, help="samples per problem: metrics mean@K (default 4)")
    p.add_argument("--null-width", type=float, default=0.03, help="largest half-width read as a null (default 0.03)")
    p.add_argument("--out", default="pipeline_ablation", help="path stem of the figure and .json")
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--matched", type=float, default=None, metavar="TOL",
                   help="also print the differences over only the seeds whose FLOPs are within TOL of the full chain's")
    p.add_argument("--sft", action="store_true", help="also print each SFT run's held-out `hard` greedy accuracy")
    args = p.parse_args(argv)
    try:
        table = arm_table(args.run_dir, args.k)
        comps = {(ref, arm): compare.compare(args.run_dir, f"{arm}_minus_{ref}/math/mean@{args.k}", n_boot=args.n_boot)
                 for ref in ("full", "plain") if ref in table for arm in table if arm != ref}
    except compare.CompareError as e:
        print(f"pipeline_ablation: error: {e}", file=sys.stderr)
        return 2
    print(f"{'arm':10s} {'held-out mean@' + str(args.k):>26s}  {'FLOPs / full':>20s}  {'arm - full':>34s}  verdict")
    rows = {}
    for arm, t in table.items():
        m, lo, hi, n = t["acc"]
        r, rmin, rmax = t["flops_ratio"]
        line = f"{arm:10s} {m:.3f} [{lo:.3f}, {hi:.3f}] (n={n})  {r:.3f} [{rmin:.3f}-{rmax:.3f}]"
        rows[arm] = {"acc": dict(zip(("mean", "t_lo", "t_hi", "n"), t["acc"])),
                     "flops_ratio": dict(zip(("mean", "min", "max"), t["flops_ratio"])), "curve": t["curve"]}
        for ref in ("full", "plain"):
            if (ref, arm) in comps:
                s = comps[(ref, arm)].summary["value"]
                rows[arm][f"minus_{ref}"] = {**s, "verdict": verdict(s, args.null_width)}
        if "minus_full" in rows[arm]:
            s = rows[arm]["minus_full"]
            line += (f"  {s['mean']:+.3f} [{s['t_lo']:+.3f}, {s['t_hi']:+.3f}] (hw {(s['t_hi'] - s['t_lo']) / 2:.3f})"
                     f"  {s['verdict']}")
        print(line)
    for arm, r in rows.items():
        if "minus_plain" in r:
            s = r["minus_plain"]
            print(f"{arm} - plain: {s['mean']:+.3f} [{s['t_lo']:+.3f}, {s['t_hi']:+.3f}]  {s['verdict']}")
    if args.matched is not None:
        for ref in ("full", "plain"):
            for arm, (m, lo, hi, n) in matched_differences(args.run_dir, ref, args.k, args.matched).items():
                print(f"{arm} - {ref}, seeds within +-{args.matched:g} of the full chain's FLOPs: {m:+.3f} [{lo:+.3f}, "
                      f"{hi:+.3f}] (n={n})")
    if args.sft:
        for seed, runs in sorted(sft_table(args.run_dir).items()):
            print(f"seed {seed} SFT hard greedy: " + "  ".join(f"{k} ({e:g} ep) {a:.3f}" for k, (e, a) in runs.items()))
        for seed, arms in sorted(chain_table(args.run_dir).items()):
            print(f"seed {seed} chains: " + "; ".join(
                f"{arm} " + " -> ".join(f"{st}{'' if n is None else f' ({n} steps)'} {'-' if a is None else f'{a:.3f}'}"
                                        for st, n, a in rows) for arm, rows in arms.items()))
    out = Path(args.out)
    figure(table, comps, args.k, args.null_width, out)
    Path(f"{out}.json").write_text(json.dumps(compare.jsonable({"arms": rows, "k": args.k,
                                                                "null_width": args.null_width}), indent=1) + "\n")
    print(f"written: {out}.png, {out}.pdf, {out}.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

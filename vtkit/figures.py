"""The compression-coverage figures (notebook 20) from the probes' results tables.

    from vtkit import figures
    df = figures.load_results("runs/capacity-demo/results.parquet")      # vtkit.sweep's table
    figures.fig_bits(df, out / "fig_a_bits"); figures.fig_saturation(df, out / "fig_b_saturation")
    figures.fig_families(figures.load_literature(), out / "fig_c_families")

Figures: (a) knowledge bits against parameters, log-log, with Allen-Zhu & Li's 2 bits/param (1000
exposures) and 1 bit/param (100 exposures) lines; (b) reasoning accuracy and knowledge fraction
against parameters on one axis, a logistic in log N fitted to each (vtkit.fits) with the size N50
at half its ceiling marked; no reasoning fit when no size beats chance (binomial test), no fit
with a ceiling outside (0, 1]; (c) published scores of model families, reasoning and knowledge
benchmarks against size (vtkit/data/published_scores.csv).
"""
from __future__ import annotations

import importlib.resources
import json
import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from vtkit import plots
from vtkit.fits import fit_logistic_logN, logistic

ALLEN_ZHU_LI = {1000: 2.0, 100: 1.0}  # bits per parameter at that many exposures (arXiv 2404.05405)
DEMO_COMMAND = ".venv/bin/vtkit sweep experiments/capacity_demo.yaml --jobs 2"
GRID_COMMAND = ".venv/bin/vtkit sweep experiments/capacity_scaling.yaml --jobs 2"


CONFIG_COLUMNS = ("model", "mode", "exposures", "seed", "token_budget", "n_eval")


def load_results(path, *, stage: str | None = None) -> "pd.DataFrame":
    """The finished capacity-probe runs of a sweep's results.parquet (or .csv), one row per run.

    Rows that are not status "ok", or lack the probe's metrics (other stages of a pipeline), are
    dropped. Columns the sweep did not vary (model, mode, exposures, seed, token_budget) are filled
    from each run's config.json (the resolved preset), so a YAML need not name them.
    A missing file raises FileNotFoundError naming the command that writes it.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(
            f"no capacity results at {p.resolve()}: run the capacity sweep first, from the repository root:\n"
            f"    {DEMO_COMMAND}       # the demo slice, a few minutes -> runs/capacity-demo/results.parquet\n"
            f"    {GRID_COMMAND}   # the CPU grid, ~30 min -> runs/capacity-scaling/results.parquet\n"
            "then pass its results.parquet as `capacity_results`")
    df = pd.read_parquet(p) if p.suffix == ".parquet" else pd.read_csv(p)
    if "status" in df:
        df = df[df["status"] == "ok"]
    if stage is not None and "stage" in df:
        df = df[df["stage"] == stage]
    if "params" not in df or "bits" not in df:
        raise ValueError(f"{p} holds no capacity-probe metrics (columns params, bits); is it the results "
                         "table of a sweep over notebooks/10_capacity_probe.ipynb?")
    df = df[df["params"].notna()].copy()
    if df.empty:
        raise ValueError(f"{p} has no finished capacity-probe run (status ok); rerun the sweep "
                         f"({DEMO_COMMAND}) and look at the failed runs' log.txt")
    for col in CONFIG_COLUMNS:
        if col not in df or df[col].isna().any():
            df[col] = [_config_value(r, col) for r in df.to_dict("records")]
    for col in df.columns:
        if col not in ("model", "mode", "run_id", "stage", "status", "error", "out_dir"):
            converted = pd.to_numeric(df[col], errors="coerce")
            if converted.notna().sum() == df[col].notna().sum():
                df[col] = converted
    return df.reset_index(drop=True)


def _config_value(row: dict, col: str):
    have = row.get(col)
    if have is not None and not (isinstance(have, float) and math.isnan(have)):
        return have
    cfg = Path(str(row.get("out_dir", ""))) / "config.json"
    return json.loads(cfg.read_text()).get(col) if cfg.is_file() else None


def load_literature(path=None) -> "pd.DataFrame":
    """The published-scores table (vtkit/data/published_scores.csv, or `path` in its columns)."""
    src = Path(path) if path else importlib.resources.files("vtkit") / "data" / "published_scores.csv"
    df = pd.read_csv(src)
    need = {"model", "family", "params_b", "benchmark", "category", "score"}
    if not need <= set(df.columns):
        raise ValueError(f"{src} lacks columns {sorted(need - set(df.columns))}; see vtkit/data/README.md")
    return df




def bits_data(df) -> "pd.DataFrame":
    """Figure (a)'s points: runs that trained knowledge, grouped by (exposures, mode, params):
    bits mean/min/max over seeds, bits_per_param, max_bits (the knowledge set), n_seeds."""
    sub = df[df["mode"].isin(["knowledge", "mixture"])]
    if sub.empty:
        raise ValueError("no knowledge or mixture runs in the results: figure (a) needs mode "
                         "'knowledge' or 'mixture' runs of notebooks/10_capacity_probe")
    g = sub.groupby(["exposures", "mode", "params"], as_index=False)
    out = g.agg(bits=("bits", "mean"), bits_min=("bits", "min"), bits_max=("bits", "max"),
                bits_per_param=("bits_per_param", "mean"), max_bits=("max_bits", "mean"),
                fraction=("knowledge_fraction", "mean"), n_seeds=("bits", "size"))
    if "model" in sub:
        out["model"] = [sub[(sub["params"] == p)]["model"].iloc[0] for p in out["params"]]
    return out.sort_values(["exposures", "mode", "params"]).reset_index(drop=True)


def _fit(N, y, what: str) -> dict:
    """Logistic in log N: ceiling free with >= 4 sizes, fixed at 1 with 3, none below; a fitted
    ceiling outside (0, 1] is reported as no fit (reason says why)."""

    sizes = np.unique(N).size
    if sizes < 3:
        return {"ok": False, "reason": f"{what}: {sizes} model size(s); a logistic needs >= 3 (4 to fit its ceiling)",
                "N50": math.nan, "c": math.nan}
    fit = fit_logistic_logN(N, y, ceiling=None if sizes >= 4 else 1.0)
    if fit["ok"] and not 0 < fit["c"] <= 1.05:  # accuracies and fractions live in [0, 1]
        fit = {**fit, "ok": False, "reason": f"{what}: fitted ceiling {fit['c']:.3g} is outside (0, 1]: "
                                             "the sizes measured do not show a saturating curve"}
    return fit


def binomial_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p): how likely k or more right answers are by guessing."""
    k = max(0, int(k))
    return float(sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1)))


def above_chance(acc, n, chance: float, alpha: float = 0.01) -> np.ndarray:
    """Per point: is accuracy `acc` on `n` items above `chance` at one-sided level alpha (binomial)?"""
    acc, n = np.broadcast_arrays(np.asarray(acc, float), np.asarray(n, float))
    return np.array([binomial_tail(round(a * m), int(m), chance) < alpha for a, m in zip(acc.ravel(), n.ravel())])


def saturation_data(df, source: str = "auto", exposures: int | None = None, alpha: float = 0.01) -> dict:
    """Figure (b)'s curves and fits.

    source: "mixture" (both abilities from the same mixture runs), "separate" (knowledge from
    knowledge runs, reasoning from reasoning runs), or "auto" (mixture when there are mixture runs).
    exposures: which exposure count's knowledge runs (None: the largest present).
    Returns {source, exposures, reasoning: {N, acc, acc_ood, fit}, knowledge: {N, fraction, fit},
    N50_reasoning, N50_knowledge, log10_N50_ratio (knowledge over reasoning; > 0: knowledge needs
    more parameters to reach half its ceiling)}.
    With columns acc_chance (a guess's accuracy) and n_eval, the reasoning fit is reported only when
    some size beats chance at one-sided binomial level `alpha` (seeds pooled); otherwise its reason
    says so: a logistic through guesses would give a midpoint of noise.
    """
    modes = set(df["mode"])
    if source == "auto":
        source = "mixture" if "mixture" in modes else "separate"
    if source not in ("mixture", "separate"):
        raise ValueError(f"source must be 'auto', 'mixture' or 'separate', got {source!r}")
    k_mode, r_mode = ("mixture", "mixture") if source == "mixture" else ("knowledge", "reasoning")
    kn, rs = df[df["mode"] == k_mode], df[df["mode"] == r_mode]
    if kn.empty or rs.empty:
        raise ValueError(f"figure (b) from {source!r} runs needs mode {k_mode!r} and {r_mode!r} rows; "
                         f"the results hold modes {sorted(modes)}")
    if exposures is None:
        exposures = int(kn["exposures"].max())
    kn = kn[kn["exposures"] == exposures]
    if source == "mixture":
        rs = rs[rs["exposures"] == exposures]
    if kn.empty:
        raise ValueError(f"no {k_mode} runs at exposures={exposures}; present: {sorted(set(df['exposures']))}")
    out = {"source": source, "exposures": exposures}
    kg = kn.groupby("params", as_index=False).agg(fraction=("knowledge_fraction", "mean"))
    rg = rs.groupby("params", as_index=False).agg(acc=("acc_id", "mean"), acc_ood=("acc_ood", "mean"))
    out["knowledge"] = {"N": kg["params"].to_numpy(float), "fraction": kg["fraction"].to_numpy(float),
                        "fit": _fit(kn["params"].to_numpy(float), kn["knowledge_fraction"].to_numpy(float), "knowledge")}
    out["reasoning"] = {"N": rg["params"].to_numpy(float), "acc": rg["acc"].to_numpy(float),
                        "acc_ood": rg["acc_ood"].to_numpy(float),
                        "fit": _fit(rs["params"].to_numpy(float), rs["acc_id"].to_numpy(float), "reasoning")}
    if {"acc_chance", "n_eval"} <= set(rs.columns) and rs[["acc_chance", "n_eval"]].notna().all().all():
        chance = float(rs["acc_chance"].mean())
        pooled = rs.assign(right=rs["acc_id"] * rs["n_eval"]).groupby("params")[["right", "n_eval"]].sum()
        beats = above_chance(pooled["right"] / pooled["n_eval"], pooled["n_eval"], chance, alpha)
        out["reasoning"].update(chance=chance, above_chance=beats)
        if not beats.any() and out["reasoning"]["fit"]["ok"]:
            best = float((pooled["right"] / pooled["n_eval"]).max())
            out["reasoning"]["fit"] = {**out["reasoning"]["fit"], "ok": False,
                                       "reason": f"reasoning: no size beats chance ({chance:.3f}) at binomial "
                                                 f"p < {alpha} (best accuracy {best:.3f}); no midpoint to fit"}
    nr, nk = out["reasoning"]["fit"]["N50"], out["knowledge"]["fit"]["N50"]
    ok = out["reasoning"]["fit"]["ok"] and out["knowledge"]["fit"]["ok"]
    out["N50_reasoning"] = nr if out["reasoning"]["fit"]["ok"] else math.nan
    out["N50_knowledge"] = nk if out["knowledge"]["fit"]["ok"] else math.nan
    out["log10_N50_ratio"] = math.log10(nk / nr) if ok else math.nan
    return out


def family_slopes(lit, min_sizes: int = 2, verified_only: bool = False) -> "pd.DataFrame":
    """Per (family, benchmark, setting) with >= min_sizes sizes: the slope of score against
    log10(params) (points per tenfold size) and the smallest model's score as a share of the largest's."""
    d = lit.dropna(subset=["params_b", "score"]).copy()
    if verified_only and "verified" in d:
        d = d[d["verified"] == "yes"]
    d["setting"] = d["setting"].fillna("") if "setting" in d else ""
    rows = []
    for (fam, bench, setting), g in d.groupby(["family", "benchmark", "setting"]):
        g = g.groupby("params_b", as_index=False).agg(score=("score", "mean"), category=("category", "first"))
        if len(g) < min_sizes:
            continue
        g = g.sort_values("params_b")
        slope = float(np.polyfit(np.log10(g["params_b"]), g["score"], 1)[0])
        rows.append({"family": fam, "benchmark": bench, "setting": setting, "category": g["category"].iloc[0],
                     "n_sizes": len(g), "slope_per_decade": slope,
                     "small_over_large": float(g["score"].iloc[0] / g["score"].iloc[-1])})
    return pd.DataFrame(rows, columns=["family", "benchmark", "setting", "category", "n_sizes", "slope_per_decade",
                                       "small_over_large"])




def fig_bits(df, path, floor: float | None = None):
    """Figure (a): knowledge bits against parameters, log-log, with the Allen-Zhu & Li lines.

    Each (exposures, mode) is one series (filled: knowledge-only, open: mixture); a dotted line at
    each knowledge set's size (max_bits) shows where a run runs out of facts to store. Points at or
    below 0 bits are drawn at `floor` (default: half the smallest positive value) as down-triangles.
    Returns (saved paths, data).
    """

    data = bits_data(df)
    fig, ax = plots.figure("single")
    pos = data["bits"][data["bits"] > 0]
    floor = floor or (float(pos.min()) / 2 if len(pos) else 1.0)
    exps = sorted(set(data["exposures"]))
    colors = dict(zip(exps, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    N_all = np.geomspace(data["params"].min() / 1.5, data["params"].max() * 1.5, 50)
    for e_ref, bpp in sorted(ALLEN_ZHU_LI.items()):
        ax.plot(N_all, bpp * N_all, color="0.45", ls="-" if bpp == 2 else "--", lw=0.9, zorder=1,
                label=f"{bpp:g} bit{'s' if bpp != 1 else ''}/param ({e_ref} exp., Allen-Zhu & Li)")
    for (e, mode), g in data.groupby(["exposures", "mode"]):
        c = colors[e]
        y = np.where(g["bits"] > 0, g["bits"], floor)
        low = g["bits"] <= 0
        face = c if mode == "knowledge" else "white"
        ax.plot(g["params"], y, color=c, lw=0.8, alpha=0.6)
        ax.scatter(g["params"][~low], y[~low], edgecolors=c, facecolors=face, marker="o" if mode == "knowledge" else "s",
                   zorder=3, label=f"{e:g} exp., {mode}")
        if low.any():
            ax.scatter(g["params"][low], y[low], color=c, marker="v", zorder=3)
        if (g["bits_max"] > g["bits_min"]).any():
            ax.vlines(g["params"], np.maximum(g["bits_min"], floor), np.maximum(g["bits_max"], floor), color=c, lw=0.8)
        ax.axhline(float(g["max_bits"].mean()), color=c, ls=":", lw=0.8)
    plots.log_x(ax)
    ax.set_yscale("log")
    ax.set_xlabel("parameters")
    ax.set_ylabel("knowledge stored (bits)")
    ax.legend(fontsize=6, loc="upper left")
    return plots.savefig(fig, path, close=True), data


def fig_saturation(df, path, source: str = "auto", exposures: int | None = None):
    """Figure (b): reasoning accuracy (in and out of distribution) and knowledge fraction against
    parameters on one axis, each with its logistic fit and N50 marked; reasoning points not above
    chance (see saturation_data) are hollow. Returns (saved paths, data)."""

    data = saturation_data(df, source, exposures)
    fig, ax = plots.figure("single")
    lo = min(data["reasoning"]["N"].min(), data["knowledge"]["N"].min()) / 1.5
    hi = max(data["reasoning"]["N"].max(), data["knowledge"]["N"].max()) * 1.5
    grid = np.geomspace(lo, hi, 100)
    series = [("reasoning", "acc", "C0", "o", "reasoning accuracy (in distribution)"),
              ("knowledge", "fraction", "C1", "s", f"knowledge fraction ({data['exposures']} exp.)")]
    for key, col, color, marker, label in series:
        d = data[key]
        solid = d.get("above_chance", np.ones(len(d["N"]), dtype=bool))  # hollow: not above chance
        ax.scatter(d["N"], d[col], edgecolors=color, facecolors=np.where(solid, color, "white"), marker=marker,
                   zorder=3, label=label)
        fit = d["fit"]
        if fit["ok"]:
            ax.plot(grid, logistic(grid, fit["c"], fit["k"], fit["N50"]), color=color, lw=1)
            if lo <= fit["N50"] <= hi:
                ax.axvline(fit["N50"], color=color, ls="--", lw=0.8)
                ax.annotate(f"$N_{{50}}$={fit['N50']:.2g}", (fit["N50"], 0.02 if key == "reasoning" else 0.1),
                            color=color, fontsize=6, rotation=90, ha="right", va="bottom")
    ax.scatter(data["reasoning"]["N"], data["reasoning"]["acc_ood"], color="C0", marker="x", zorder=3,
               label="reasoning accuracy (deeper, OOD)")
    if "acc_chance" in df and df["acc_chance"].notna().any():
        ax.axhline(float(df["acc_chance"].mean()), color="C0", ls=":", lw=0.8, label="reasoning: chance")
    plots.log_x(ax)
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("parameters")
    ax.set_ylabel("accuracy / fraction of facts")
    ax.set_title(f"{data['source']} runs", fontsize=7)
    ax.legend(fontsize=6, loc="upper left")
    return plots.savefig(fig, path, close=True), data


def fig_families(lit, path, measured=None, verified_only: bool = False):
    """Figure (c): score against total parameters, reasoning (left) and knowledge (right) panels,
    one colour per family, one marker per benchmark; a line joins the sizes of one family, benchmark
    and setting (base and instruct scores are not joined); unverified rows hollow. `measured`: an
    extra table in the same columns (e.g. the family probe's scores.csv). Returns (paths, slopes)."""

    d = lit.dropna(subset=["params_b", "score"]).copy()
    if measured is not None:
        d = pd.concat([d, measured], ignore_index=True)
    if verified_only and "verified" in d:
        d = d[d["verified"] != "no"]
    if d.empty:
        raise ValueError("no rows with params_b and score to plot")
    d["setting"] = d["setting"].fillna("") if "setting" in d else ""
    d["verified"] = d["verified"].fillna("yes") if "verified" in d else "yes"
    fams = sorted(set(d["family"]))
    colors = {f: f"C{i % 10}" for i, f in enumerate(fams)}
    fig, axes = plots.figure("double", ncols=2, sharey=True)
    for ax, cat in zip(axes, ("reasoning", "knowledge")):
        sub = d[d["category"] == cat]
        markers = dict(zip(sorted(set(sub["benchmark"])), "os^Dv<>pP*hX8H"))
        for (fam, bench, _), g in sub.groupby(["family", "benchmark", "setting"]):
            g = g.sort_values("params_b")
            hollow = g["verified"] == "no"
            ax.plot(g["params_b"], g["score"], color=colors[fam], lw=0.8, alpha=0.7)
            ax.scatter(g["params_b"][~hollow], g["score"][~hollow], color=colors[fam], marker=markers[bench], s=14)
            ax.scatter(g["params_b"][hollow], g["score"][hollow], edgecolors=colors[fam], facecolors="white",
                       marker=markers[bench], s=14)
        plots.log_x(ax)
        ax.set_xlabel("total parameters (billions)")
        ax.set_title(f"{cat} benchmarks", fontsize=8)
        handles = [ax.scatter([], [], color="0.3", marker=m, s=14, label=b) for b, m in markers.items()]
        ax.legend(handles=handles, fontsize=5, loc="lower right", ncol=2 if len(handles) > 5 else 1)
    axes[0].set_ylabel("published score (%)")
    fam_handles = [axes[1].scatter([], [], color=colors[f], marker="o", s=14, label=f) for f in fams]
    fig.legend(handles=fam_handles, fontsize=6, loc="outside right center")
    return plots.savefig(fig, path, close=True), family_slopes(d)

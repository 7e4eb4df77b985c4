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

Knowledge fits use only sizes in the capacity regime (`in_regime`: capacity_ratio = bits offered /
(2 bits/param x params) >= REGIME = 2, i.e. at least 4 bits offered per parameter): below it the facts
offered, not the model, cap the bits stored, and a slope over such sizes measures the data. This holds
for figure (b)'s logistic and growth per doubling and for the power-law slopes `bits_slope_<tag>`
(`bits_slopes`); each reports how many sizes entered it, and with fewer than 2 the slope is NaN with
the reason. Runs without a capacity_ratio (older tables) count as in the regime.
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
from vtkit.fits import fit_logistic_logN, fit_powerlaw, logistic, size_at

ALLEN_ZHU_LI = {1000: 2.0, 100: 1.0}  # bits per parameter at that many exposures (arXiv 2404.05405)
REGIME = 2.0  # capacity_ratio (bits offered / 2 bits/param x params) at and above which a run is in the capacity regime
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




def in_regime(df) -> np.ndarray:
    """Per run: is it in the capacity regime (capacity_ratio >= REGIME)? A missing column or value
    counts as in it (tables from before the column existed)."""
    if "capacity_ratio" not in df:
        return np.ones(len(df), dtype=bool)
    return pd.to_numeric(df["capacity_ratio"], errors="coerce").fillna(np.inf).to_numpy(float) >= REGIME


def bits_data(df) -> "pd.DataFrame":
    """Figure (a)'s points: runs that trained knowledge, grouped by (exposures, mode, params):
    bits mean/min/max over seeds, bits_per_param, max_bits (the knowledge set), n_seeds, in_regime
    (every seed's run in the capacity regime, see `in_regime`), capacity_ratio and
    bits_per_param_nonembedding (means over seeds, when the runs have them)."""
    sub = df[df["mode"].isin(["knowledge", "mixture"])]
    if sub.empty:
        raise ValueError("no knowledge or mixture runs in the results: figure (a) needs mode "
                         "'knowledge' or 'mixture' runs of notebooks/10_capacity_probe")
    sub = sub.assign(in_regime=in_regime(sub))
    g = sub.groupby(["exposures", "mode", "params"], as_index=False)
    extra = {c: (c, "mean") for c in ("capacity_ratio", "bits_per_param_nonembedding") if c in sub}
    out = g.agg(bits=("bits", "mean"), bits_min=("bits", "min"), bits_max=("bits", "max"),
                bits_per_param=("bits_per_param", "mean"), max_bits=("max_bits", "mean"),
                fraction=("knowledge_fraction", "mean"), n_seeds=("bits", "size"),
                in_regime=("in_regime", "all"), **extra)
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
    """P(X >= k) for X ~ Binomial(n, p): how likely k or more right answers are by guessing
    (`vtkit.stats.binomial_tail`)."""
    from vtkit import stats
    return stats.binomial_tail(k, n, p)


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

    Each (exposures, mode) is one series (filled: knowledge-only, open: mixture); a dotted line marks
    the bits offered (max_bits): one level when every size saw the same facts, else one per size. Points at or
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
    for i, ((e, mode), g) in enumerate(data.groupby(["exposures", "mode"])):
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
        offered = g.groupby("params")["max_bits"].mean()
        label = "facts offered (bits)" if i == 0 else None
        if offered.nunique() == 1:   # budget design: one knowledge set for every size
            ax.axhline(float(offered.iloc[0]), color=c, ls=":", lw=0.8, label=label)
        else:                        # capacity design: each size is offered its own set
            ax.plot(offered.index, offered.values, color=c, ls=":", lw=0.8, marker="_", ms=8, label=label)
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


# ---------------------------------------------------------------- the hypothesis figure (b)



def _curve(N, y, ceiling, start=None):
    """Logistic in log N with the given ceiling rule (None: free), or a failed fit with its reason."""
    sizes = np.unique(N).size
    need = 4 if ceiling is None else 3
    if sizes < need:
        return {"ok": False, "reason": f"{sizes} size(s); the fit needs >= {need}", "N50": math.nan, "c": math.nan,
                "k": math.nan}
    fit = fit_logistic_logN(N, y, ceiling=ceiling, start=start)
    if fit["ok"] and (not 0 < fit["c"] <= 1.05 or fit["k"] <= 0):
        fit = {**fit, "ok": False, "reason": f"fitted ceiling {fit['c']:.3g} / slope {fit['k']:.3g}: not a rising curve "
                                             "with a ceiling in (0, 1]"}
    return fit


def _sizes(fit) -> dict:
    return {"N50": size_at(fit, 0.5), "N90": size_at(fit, 0.9)}


def hypothesis_data(df, source: str = "auto", exposures: int | None = None, n_boot: int = 200, seed: int = 0,
                    alpha: float = 0.01, level: float = 0.95) -> dict:
    """Figure (b): for reasoning and for knowledge, the fraction of its own ceiling each size reaches.

    Reasoning: accuracy above chance, (acc_id - chance) / (1 - chance), a logistic in log N with a
    free ceiling c (<= 1; fixed at 1, every problem right, with only 3 sizes or when the free fit
    finds no ceiling in (0, 1]); its own ceiling is c, so the curve plotted is y / c. Fitted only when some size beats chance (one-sided binomial, level alpha, seeds pooled).
    Knowledge: bits stored over K, the largest knowledge set offered among the runs (its ceiling:
    all the facts there are), from runs in the capacity regime only (capacity_ratio >= REGIME; runs
    without the column count as in it), a logistic with the ceiling fixed at 1; and the growth of
    the bits stored per doubling of size (a power law bits ~ N**b: factor 2**b, and the bits it adds
    at the largest size).
    Both: N50 and N90 (size at half and 90% of the ceiling, fits.size_at) with percentile intervals
    from `n_boot` bootstrap replicates over seeds (runs of a size resampled with replacement) and
    items (each run's accuracy redrawn from Binomial(n_eval, acc), its bits from Normal(bits,
    bits_se)). source: "separate" (knowledge from knowledge runs, reasoning from reasoning runs),
    "mixture", or "auto" (separate when both kinds exist). exposures: the knowledge runs' exposure
    count (None: 100 when present, else the largest).
    Returns {source, exposures, K, reasoning: {...}, knowledge: {...}, statement}: per ability the
    per-size table (N, y, y_lo, y_hi, n_seeds, solid), fit, N50/N90 with _lo/_hi, and for knowledge
    doubling_factor, bits_per_doubling (with _lo/_hi).
    """
    modes = set(df["mode"])
    if source == "auto":
        source = "separate" if {"knowledge", "reasoning"} <= modes else "mixture"
    if source not in ("separate", "mixture"):
        raise ValueError(f"source must be 'auto', 'separate' or 'mixture', got {source!r}")
    k_mode, r_mode = ("knowledge", "reasoning") if source == "separate" else ("mixture", "mixture")
    kn, rs = df[df["mode"] == k_mode].copy(), df[df["mode"] == r_mode].copy()
    if kn.empty or rs.empty:
        raise ValueError(f"figure (b) from {source!r} runs needs mode {k_mode!r} and {r_mode!r} rows; "
                         f"the results hold modes {sorted(modes)}")
    if exposures is None:
        exposures = 100 if (kn["exposures"] == 100).any() else int(kn["exposures"].max())
    kn = kn[kn["exposures"] == exposures]
    if source == "mixture":
        rs = rs[rs["exposures"] == exposures]
    if kn.empty:
        raise ValueError(f"no {k_mode} runs at exposures={exposures}; present: {sorted(set(df['exposures']))}")
    rng = np.random.default_rng(seed)
    chance = float(rs["acc_chance"].mean()) if "acc_chance" in rs and rs["acc_chance"].notna().all() else 0.0
    n_eval = rs["n_eval"].to_numpy(float) if "n_eval" in rs and rs["n_eval"].notna().all() else np.full(len(rs), 64.0)
    rs = rs.assign(n_items=n_eval)
    kn = kn.assign(in_regime=in_regime(kn),
                   bits_se=kn["bits_se"].fillna(0.0) if "bits_se" in kn else 0.0)
    K = float((kn["bits_offered"] if "bits_offered" in kn else kn["max_bits"]).max())
    q = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]

    def r_y(acc):
        return (np.asarray(acc, float) - chance) / (1 - chance)

    r_ceiling = [None]  # free with >= 4 sizes; fixed at 1 (every problem right) with 3, or when the free fit fails

    def r_fit(N, y, start=None):
        return _curve(N, y, r_ceiling[0] if np.unique(N).size >= 4 else 1.0, start)

    def k_fit(N, y, start=None):
        return _curve(N, y, 1.0, start)

    def per_size(d, col):
        g = d.groupby("params")
        return g[col].mean().index.to_numpy(float), g[col].mean().to_numpy(float), g.size().to_numpy()

    # reasoning: the point estimate, then the bootstrap
    out = {"source": source, "exposures": int(exposures), "K": K, "chance": chance}
    pooled = rs.assign(right=rs["acc_id"] * rs["n_items"]).groupby("params")[["right", "n_items"]].sum()
    beats = above_chance(pooled["right"] / pooled["n_items"], pooled["n_items"], chance, alpha)
    rN, racc, rn = per_size(rs, "acc_id")
    ry = r_y(racc)
    rfit = r_fit(rs["params"].to_numpy(float), r_y(rs["acc_id"]))
    if not rfit.get("ok") and "ceiling" in rfit.get("reason", "") and np.unique(rs["params"]).size >= 4:
        r_ceiling[0] = 1.0  # the sizes do not pin a ceiling below 1: fix it at perfect accuracy
        rfit = r_fit(rs["params"].to_numpy(float), r_y(rs["acc_id"]))
    if not beats.any():
        rfit = {**rfit, "ok": False, "reason": f"no size beats chance ({chance:.3f}) at binomial p < {alpha}"}
    kin = kn[kn["in_regime"]]
    kN, kbits, kn_ = per_size(kn, "bits")
    kfit = k_fit(kin["params"].to_numpy(float), kin["bits"].to_numpy(float) / K) if len(kin) else \
        {"ok": False, "reason": "no run in the capacity regime", "N50": math.nan, "c": math.nan, "k": math.nan}
    growth = _growth(kin["params"].to_numpy(float), kin["bits"].to_numpy(float))
    boots = {"r": [], "k": [], "g": [], "ry": [], "ky": []}
    for _ in range(n_boot):
        rr, kk = _resample(rs, rng), _resample(kin if len(kin) else kn, rng)
        acc = rng.binomial(rr["n_items"].astype(int), rr["acc_id"].clip(0, 1)) / rr["n_items"]
        bits = np.maximum(0.0, kk["bits"].to_numpy(float) + rng.normal(0, 1, len(kk)) * kk["bits_se"].to_numpy(float))
        f = r_fit(rr["params"].to_numpy(float), r_y(acc), rfit) if rfit.get("ok") else {"ok": False}
        boots["r"].append(_sizes(f) if f["ok"] else {"N50": math.nan, "N90": math.nan})
        boots["ry"].append(pd.Series(r_y(acc), index=rr["params"].to_numpy()).groupby(level=0).mean())
        if len(kin):
            f = k_fit(kk["params"].to_numpy(float), bits / K, kfit)
            boots["k"].append(_sizes(f) if f["ok"] else {"N50": math.nan, "N90": math.nan})
            boots["g"].append(_growth(kk["params"].to_numpy(float), bits))
        boots["ky"].append(pd.Series(bits / K, index=kk["params"].to_numpy()).groupby(level=0).mean())

    def interval(rows, key):
        v = np.array([r[key] for r in rows], float)
        v = v[np.isfinite(v)]
        return (float(np.percentile(v, q[0])), float(np.percentile(v, q[1]))) if v.size >= max(10, n_boot // 4) \
            else (math.nan, math.nan)

    def band(series_list, N):
        m = pd.concat(series_list, axis=1).reindex(N) if series_list else pd.DataFrame(index=N)
        return m.quantile(q[0] / 100, axis=1).to_numpy(float), m.quantile(q[1] / 100, axis=1).to_numpy(float)

    rc = rfit["c"] if rfit.get("ok") else 1.0
    ylo, yhi = band(boots["ry"], rN)
    out["reasoning"] = {"N": rN, "y": ry / rc, "y_lo": ylo / rc, "y_hi": yhi / rc, "acc": racc, "n_seeds": rn,
                        "solid": np.asarray(beats, bool), "fit": rfit, "ceiling": rc,
                        "acc_ood": rs.groupby("params")["acc_ood"].mean().to_numpy(float) if "acc_ood" in rs else None}
    for key in ("N50", "N90"):
        out["reasoning"][key] = _sizes(rfit)[key] if rfit.get("ok") else math.nan
        out["reasoning"][f"{key}_lo"], out["reasoning"][f"{key}_hi"] = interval(boots["r"], key)
    ylo, yhi = band(boots["ky"], kN)
    solid = kn.groupby("params")["in_regime"].all().reindex(kN).to_numpy(bool)
    out["knowledge"] = {"N": kN, "y": kbits / K, "y_lo": ylo, "y_hi": yhi, "bits": kbits, "n_seeds": kn_,
                        "solid": solid, "fit": kfit, "ceiling": 1.0, **growth}
    for key in ("N50", "N90"):
        out["knowledge"][key] = _sizes(kfit)[key] if kfit.get("ok") else math.nan
        out["knowledge"][f"{key}_lo"], out["knowledge"][f"{key}_hi"] = interval(boots["k"], key)
    for key in ("doubling_factor", "bits_per_doubling"):
        out["knowledge"][f"{key}_lo"], out["knowledge"][f"{key}_hi"] = interval(boots["g"], key)
    out["statement"] = hypothesis_statement(out)
    return out


def _resample(d, rng):
    """Runs of each size drawn with replacement (the seeds' part of the bootstrap)."""
    parts = [g.iloc[rng.integers(0, len(g), len(g))] for _, g in d.groupby("params")]
    return pd.concat(parts) if parts else d


def _growth(N, bits) -> dict:
    """Power law bits ~ A N**b over the sizes: factor 2**b per doubling, and the bits one doubling
    adds at the largest size, bits(Nmax) (1 - 2**-b); growth_n_sizes: the sizes with bits > 0 it used."""
    N, bits = np.asarray(N, float), np.asarray(bits, float)
    ok = bits > 0
    n_sizes = int(np.unique(N[ok]).size)
    if n_sizes < 2:
        return {"doubling_factor": math.nan, "bits_per_doubling": math.nan, "slope": math.nan,
                "growth_n_sizes": n_sizes}
    b = fit_powerlaw(N[ok], bits[ok])["b"]
    top = float(np.mean(bits[N == N.max()]))
    return {"doubling_factor": float(2 ** b), "bits_per_doubling": top * (1 - 2 ** -b), "slope": float(b),
            "growth_n_sizes": n_sizes}


def _fmt(x) -> str:
    return "nan" if not np.isfinite(x) else f"{x:,.3g}" if abs(x) < 1e4 else f"{x:.2g}"


def hypothesis_statement(h: dict) -> str:
    """What figure (b) shows, in words, from its numbers (and what it does not)."""
    r, k = h["reasoning"], h["knowledge"]
    lines = []
    if r["fit"].get("ok"):
        where = "inside" if r["N"].min() <= r["N90"] <= r["N"].max() else "outside (extrapolated)"
        fixed = " fixed" if r["fit"].get("ceiling_fixed") else ""
        lines.append(f"Reasoning reaches 50% of its{fixed} ceiling (accuracy above chance {r['ceiling']:.2f}) at "
                     f"{_fmt(r['N50'])} parameters [{_fmt(r['N50_lo'])}, {_fmt(r['N50_hi'])}] and 90% at "
                     f"{_fmt(r['N90'])} [{_fmt(r['N90_lo'])}, {_fmt(r['N90_hi'])}], {where} the sizes measured.")
    else:
        lines.append(f"Reasoning: no fit ({r['fit'].get('reason', '')}).")
    if np.isfinite(k.get("doubling_factor", math.nan)):
        lines.append(f"Knowledge stored grows x{k['doubling_factor']:.2f} [{_fmt(k['doubling_factor_lo'])}, "
                     f"{_fmt(k['doubling_factor_hi'])}] per doubling of size, {_fmt(k['bits_per_doubling'])} bits "
                     f"[{_fmt(k['bits_per_doubling_lo'])}, {_fmt(k['bits_per_doubling_hi'])}] at the largest size "
                     f"({_fmt(k['N'].max())}); at the largest size it holds {k['y'][-1]:.1%} of the {_fmt(h['K'])} "
                     "bits offered.")
    if k["fit"].get("ok"):
        where = "beyond the largest size measured" if k["N50"] > k["N"].max() else "inside the sizes measured"
        lines.append(f"Knowledge would reach 50% of the facts offered at {_fmt(k['N50'])} parameters "
                     f"[{_fmt(k['N50_lo'])}, {_fmt(k['N50_hi'])}] and 90% at {_fmt(k['N90'])} "
                     f"[{_fmt(k['N90_lo'])}, {_fmt(k['N90_hi'])}] ({where}).")
    else:
        lines.append(f"Knowledge: no saturation fit ({k['fit'].get('reason', '')}).")
    n_out = int((~k["solid"]).sum())
    if n_out:
        lines.append(f"{n_out} of {len(k['solid'])} knowledge sizes are not in the capacity regime (bits offered < "
                     f"{REGIME:g} x 2 bits/param); they are drawn hollow and left out of the knowledge fit.")
    if not (r["fit"].get("ok") and k["fit"].get("ok")):
        lines.append(two_point_reading(h))
    elif r["fit"].get("ok") and k["fit"].get("ok"):
        verdict = ("consistent with the hypothesis: reasoning saturates at fewer parameters than knowledge"
                   if r["N90"] < k["N50"] else
                   "not what the hypothesis predicts: knowledge reaches half its ceiling before reasoning reaches 90%")
        lines.append(f"Reading: {verdict} (for these tasks, sizes and budgets).")
    return " ".join(lines)


TWO_POINT_REASONING = 0.8   # reasoning "near its ceiling": this share of it above chance at the largest size
TWO_POINT_PROPORTIONAL = 1.8  # knowledge "in proportion to parameters": at least this factor per doubling


def two_point_reading(h: dict) -> str:
    """The reading without saturation fits (fewer than 3 sizes a curve, as in the demo's slice), from
    the measured points alone: reasoning's share of its ceiling above chance at its largest size
    (solid sizes: above chance) and knowledge's growth per doubling over the capacity-regime sizes.
    The hypothesis' shape is read when reasoning is near its ceiling (>= TWO_POINT_REASONING) while
    knowledge still grows in proportion to parameters (>= TWO_POINT_PROPORTIONAL per doubling);
    no saturation size is claimed."""
    r, k = h["reasoning"], h["knowledge"]
    solid = np.asarray(r["solid"], bool)
    if solid.sum() < 1 or not np.isfinite(k.get("doubling_factor", math.nan)):
        return "Reading: the two curves cannot be compared on these runs (too few sizes above chance or in the capacity regime)."
    i = int(np.argmax(r["N"]))
    top, factor = float(r["y"][i]), float(k["doubling_factor"])
    pts = ", ".join(f"{y:.2f} at {_fmt(n)}" for n, y in zip(r["N"], r["y"]))
    shape = top >= TWO_POINT_REASONING and factor >= TWO_POINT_PROPORTIONAL
    verdict = ("the hypothesis' shape: reasoning near its ceiling while knowledge still grows in proportion to "
               "parameters" if shape else "not the hypothesis' shape on these points")
    return (f"Without saturation fits, from the points: reasoning (share of its ceiling above chance) {pts} "
            f"parameters ({int(solid.sum())} of {solid.size} sizes above chance); knowledge x{factor:.2f} per doubling "
            f"over {int(k['growth_n_sizes'])} capacity-regime sizes. Reading: {verdict} (for these tasks, sizes and "
            "budgets; no saturation size is placed).")


def fig_hypothesis(df, path, source: str = "auto", exposures: int | None = None, n_boot: int = 200, seed: int = 0):
    """Figure (b), the hypothesis figure: fraction of its own ceiling against parameters for reasoning
    and knowledge, with the fitted curves, N50 / N90 marked with their bootstrap intervals, per-size
    intervals; hollow: reasoning not above chance, knowledge outside the capacity regime.
    Returns (saved paths, hypothesis_data)."""
    data = hypothesis_data(df, source, exposures, n_boot=n_boot, seed=seed)
    fig, ax = plots.figure("single")
    handles = []
    Ns = np.concatenate([data["reasoning"]["N"], data["knowledge"]["N"]])
    lo, hi = Ns.min() / 1.5, Ns.max() * 1.5
    for key, color, marker, label in (("reasoning", "C0", "o", "reasoning (accuracy above chance)"),
                                      ("knowledge", "C1", "s", f"knowledge (of {_fmt(data['K'])} bits offered)")):
        d = data[key]
        fit = d["fit"]
        grid = np.geomspace(lo, hi if not fit.get("ok") else max(hi, min(d["N90"] * 1.5, hi * 100)), 200)
        ax.errorbar(d["N"], d["y"], yerr=[np.clip(d["y"] - d["y_lo"], 0, None), np.clip(d["y_hi"] - d["y"], 0, None)],
                    fmt="none", ecolor=color, lw=0.8)
        ax.scatter(d["N"], d["y"], edgecolors=color, facecolors=np.where(d["solid"], color, "white"), marker=marker,
                   zorder=3)
        handles.append(ax.scatter([], [], color=color, marker=marker, label=label))
        if fit.get("ok"):  # solid over the sizes measured, dotted where it extrapolates
            inside = (grid >= d["N"].min()) & (grid <= d["N"].max())
            ax.plot(grid[inside], logistic(grid[inside], 1.0, fit["k"], fit["N50"]), color=color, lw=1)
            ax.plot(grid, np.where(inside, np.nan, logistic(grid, 1.0, fit["k"], fit["N50"])), color=color, lw=0.8,
                    ls=(0, (1, 2)))
            for qk, ls in (("N50", "--"), ("N90", ":")):
                if np.isfinite(d[f"{qk}_lo"]):
                    ax.axvspan(d[f"{qk}_lo"], d[f"{qk}_hi"], color=color, alpha=0.08, lw=0)
                ax.axvline(d[qk], color=color, ls=ls, lw=0.8)
                ax.annotate(f"$N_{{{qk[1:]}}}$={_fmt(d[qk])}", (d[qk], 0.03 if key == "reasoning" else 0.6),
                            color=color, fontsize=6, rotation=90, ha="right", va="bottom")
    plots.log_x(ax)
    ax.set_ylim(-0.05, 1.1)
    ax.set_xlabel("parameters")
    ax.set_ylabel("fraction of its own ceiling")
    regime = int(data["knowledge"]["solid"].sum())
    ax.set_title(f"{data['source']} runs, {data['exposures']} exposures; knowledge in the capacity regime at "
                 f"{regime} of {len(data['knowledge']['solid'])} sizes (hollow: not; dotted: extrapolated)", fontsize=6)
    ax.legend(handles=handles, fontsize=6, loc="lower right")
    return plots.savefig(fig, path, close=True), data


# ---------------------------------------------------------------- the figures stage's metrics


def bits_slopes(bits) -> "pd.DataFrame":
    """Per (exposures e, mode) of bits_data, tag `e<e>_<mode>`: the exponent `slope` of bits ~ N**b
    (fits.fit_powerlaw on the seed means) over the sizes in the capacity regime that stored any bits,
    `n_sizes` (how many entered the fit), `n_data_limited` (sizes left out as outside the regime),
    and `reason` (empty when fitted; else why not: fewer than 2 sizes qualify, and the slope is NaN)."""
    rows = []
    for (e, mode), g in bits.groupby(["exposures", "mode"]):
        tag = f"e{int(e)}_{mode}"
        regime = g["in_regime"].to_numpy(bool) if "in_regime" in g else np.ones(len(g), bool)
        use = g[regime & (g["bits"].to_numpy(float) > 0)]
        n, n_out = int(use["params"].nunique()), int(g.loc[~regime, "params"].nunique())
        slope, reason = math.nan, ""
        if n >= 2:
            slope = float(fit_powerlaw(use["params"], use["bits"])["b"])
        else:
            reason = (f"{tag}: {n} size(s) in the capacity regime (capacity_ratio >= {REGIME:g}) with bits > 0 "
                      f"({n_out} of {g['params'].nunique()} data-limited, left out); a slope needs >= 2, "
                      "so none is fitted rather than one over data-limited sizes")
        rows.append({"tag": tag, "exposures": e, "mode": mode, "slope": slope, "n_sizes": n,
                     "n_data_limited": n_out, "reason": reason})
    return pd.DataFrame(rows, columns=["tag", "exposures", "mode", "slope", "n_sizes", "n_data_limited", "reason"])


def bits_metrics(runs, bits) -> dict:
    """Figure (a)'s numbers for metrics.json: n_runs, n_sizes, and per (exposures e, mode) tag
    `e<e>_<mode>`: bits_per_param_max_<tag>, fraction_max_<tag> (over sizes, seed means of bits_data),
    bits_per_param_nonembedding_max_<tag> (when the runs have it), bits_slope_<tag> and
    bits_slope_n_sizes_<tag> (`bits_slopes`). bits_slope_<tag> is fitted over the sizes in the capacity
    regime only (before issue 26 it used every size that stored any bits, data-limited ones
    included, and was absent below 2 sizes); with fewer than 2 such sizes it is NaN (None in
    metrics.json) and `bits_slopes` gives the reason."""
    out = {"n_runs": len(runs), "n_sizes": int(runs["params"].nunique())}
    for (e, mode), g in bits.groupby(["exposures", "mode"]):
        tag = f"e{int(e)}_{mode}"
        out[f"bits_per_param_max_{tag}"] = float(g["bits_per_param"].max())
        out[f"fraction_max_{tag}"] = float(g["fraction"].max())
        if "bits_per_param_nonembedding" in g and g["bits_per_param_nonembedding"].notna().any():
            out[f"bits_per_param_nonembedding_max_{tag}"] = float(g["bits_per_param_nonembedding"].max())
    for r in bits_slopes(bits).to_dict("records"):
        out[f"bits_slope_{r['tag']}"] = r["slope"]
        out[f"bits_slope_n_sizes_{r['tag']}"] = r["n_sizes"]
    return out


def hypothesis_metrics(hyp: dict) -> dict:
    """Figure (b)'s numbers (hypothesis_data) for metrics.json: per ability (reasoning, knowledge)
    fit_ok_<ability> and N50 / N90 with _lo/_hi (`N50_lo_reasoning`, ...), the knowledge growth per
    doubling (knowledge_doubling_factor, knowledge_bits_per_doubling, with _lo/_hi; fitted over the
    sizes in the capacity regime, knowledge_growth_n_sizes of them with bits > 0, NaN below 2), the
    source and exposures used, the number of knowledge sizes in the capacity regime, the number of
    reasoning sizes above chance and reasoning's share of its ceiling at the largest size
    (reasoning_frac_largest), and the reading (a string)."""
    out = {}
    for key in ("reasoning", "knowledge"):
        d = hyp[key]
        out[f"fit_ok_{key}"] = bool(d["fit"].get("ok"))
        for q in ("N50", "N90"):
            for suffix in ("", "_lo", "_hi"):
                out[f"{q}{suffix}_{key}"] = d[f"{q}{suffix}"]
    for key in ("doubling_factor", "bits_per_doubling"):
        for suffix in ("", "_lo", "_hi"):
            out[f"knowledge_{key}{suffix}"] = hyp["knowledge"][f"{key}{suffix}"]
    out["hypothesis_source"] = hyp["source"]
    out["hypothesis_exposures"] = hyp["exposures"]
    out["knowledge_sizes_in_regime"] = int(hyp["knowledge"]["solid"].sum())
    out["knowledge_growth_n_sizes"] = int(hyp["knowledge"]["growth_n_sizes"])
    r = hyp["reasoning"]
    out["reasoning_sizes_above_chance"] = int(np.asarray(r["solid"], bool).sum())
    out["reasoning_frac_largest"] = float(r["y"][int(np.argmax(r["N"]))]) if len(r["N"]) else math.nan
    out["reading"] = hyp["statement"]
    return out


def literature_metrics(slopes) -> dict:
    """Figure (c)'s numbers (family_slopes) for metrics.json: per category the mean over families and
    benchmarks of the slope per tenfold size (lit_slope_per_decade_<category>) and of the smallest
    model's score over the largest's (lit_small_over_large_<category>)."""
    out = {}
    for cat, g in slopes.groupby("category"):
        out[f"lit_slope_per_decade_{cat}"] = float(g["slope_per_decade"].mean())
        out[f"lit_small_over_large_{cat}"] = float(g["small_over_large"].mean())
    return out

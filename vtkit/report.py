"""`vtkit report RUN_DIR`: report.html, summary.csv and figures from a sweep's results table.

    vtkit report runs/demo        # -> runs/demo/report.html, summary.csv, figures/*.pdf|png

Reads `results.parquet` and `sweep.json` (column roles and the experiment spec) that `vtkit sweep`
writes. report.html, top to bottom:

  failures      every failed stage first: run, stage, error, link to its executed notebook
  headline      per stage, its headline metrics (the stage's effect), one column per combination
                of the varied factors: see "Intervals" below
  stages        (pipelines) each stage's own figures, the PNGs its notebook saved into its output
                folder, per run, each linked to that run's executed notebook
  parameters    (when a factor varies) each headline metric against each varied parameter: pooled
                value with its interval, runs as dots; PDF+PNG in figures/
  runs          one row per run and stage: parameters, status, vtkit source, metrics, links
  compute       (stages that write vtkit.compute's keys) per run, each stage's tokens and FLOPs and their
                cumulative sum over the pipeline's stages (`compute_table`; also compute.csv)
  summary       every numeric metric, counts and times included: pooled value, interval, n (also
                in summary.csv); and the spec as run

Parameters whose name ends in `seed` are replicates, not factors.

Headline metrics: the experiment file's `report:` key names them, `report: {headline: {stage: [a, b]}}`
per stage (then the stages it does not name lead with nothing: their numbers are in the summary), or
`report: {metrics: [a, b]}` for every stage that reports them; a named metric that no run reported
shows as "not reported", and a named stage the results do not hold is left out (an experiment
may run part of a pipeline). Without names, a stage's headline is its first DEFAULT_HEADLINE
numeric, non-boolean metrics (in metrics.json order) that are not bookkeeping: parameter and token
counts, steps, times, sample sizes, seeds, and the `_lo`/`_hi` bounds of a stage's own intervals
(see `is_bookkeeping`).

Intervals (`summarize`): with fewer than FEW_RUNS runs (seeds) per column, each run's value with
its own 95% interval, the `X_lo`/`X_hi` its stage wrote (a bootstrap over items, paired for a
gain, or Wilson), and a pooled value (the mean of the runs) only where every run has such an
interval: its interval is the mean of the runs' half-widths, the item noise of the mean whatever
the runs share. Never a t interval over 2 seeds (its 95% half-width is 12.7 standard errors). From
FEW_RUNS runs on: the mean with a Student-t interval over the runs (vtkit.stats.t_interval). No
interval leaves the metric's range (`metric_range`: rates [0, 1], gains of rates [-1, 1]).

Size: figures are embedded as downscaled PNG thumbnails (THUMB_DPI, 128 colours) until EMBED_BUDGET bytes
of them; later ones are linked, and every thumbnail links its full-resolution PNG/PDF and
notebook by relative path, so the experiment folder can be moved or served as is. Executed
notebooks are rendered to `executed.html` beside them with nbconvert.
"""
from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import re
import time
from pathlib import Path

MAX_FIGURES = 60  # parameter figures beyond this are left out (the report says so)
DEFAULT_HEADLINE = 6  # headline metrics per stage when the experiment file names none
FEW_RUNS = 5  # below this many runs per group: each run's own interval; from it on, a t interval over the runs
THUMB_DPI = 120  # embedded figures are redrawn at this resolution (a one-column figure: ~390 px wide)
THUMB_PX = 900  # and at most this wide
EMBED_BUDGET = 1_500_000  # bytes of embedded images per report; figures beyond it are linked, not embedded
_BOOKKEEPING = re.compile(
    r"(_lo|_hi|_s|_sec|_secs|_seconds|seconds|_steps|steps|_step|params|_params|_count|seed|token)$"
    r"|(^|[/_])(n|k|n_[a-z0-9_]+|k_max|wall|time|tokens|tokens_[a-z0-9_]+|[a-z0-9_]*_tokens|[a-z0-9_]*flops(_[a-z0-9]+)?)$",
    re.IGNORECASE)
# rates in [0, 1], judged on the last `/` part of a name: accuracies, mean@k/pass@k/cons@k, CLR's
# clr@k/majority@k/mean1@k, recalls, `*_rate`, evaluate's `headline`
_RATE = re.compile(r"^(accuracy|headline|([a-z0-9_]*_)?acc(_[a-z0-9]+)?|(mean|pass|cons|clr|majority|mean1)@\d+"
                   r"|clr|majority|([a-z0-9_]*_)?recall(_[a-z0-9]+)*|[a-z0-9_]*_rate)$", re.IGNORECASE)


def metric_range(metric: str) -> tuple[float, float] | None:
    """The values `metric` can take, from its name: (0, 1) for a rate (see _RATE), (-1, 1) for a
    gain (`*gain`, a difference of two rates such as `merged_minus_last/mean/mean@4` or
    `clr_minus_majority`); None (unbounded) for anything else."""
    parts = metric.split("/")
    last = parts[-1]
    for suffix in ("_lo", "_hi"):
        last = last.removesuffix(suffix)
    if re.search(r"(^|_)gain$", last):
        return (-1.0, 1.0)
    if "_minus_" in last:
        a, _, b = last.partition("_minus_")
        return (-1.0, 1.0) if _RATE.match(a) and _RATE.match(b) else None
    if _RATE.match(last):
        return (-1.0, 1.0) if any("_minus_" in p for p in parts[:-1]) else (0.0, 1.0)
    return None


def bound_columns(metric: str, columns) -> tuple[str, str] | None:
    """The columns holding a run's own 95% interval of `metric` (`X_lo`/`X_hi`, or `N50_lo_knowledge`
    for `N50_knowledge` as the figures stage writes them); None when the run reported none."""
    columns = set(columns)
    head, sep, tail = metric.rpartition("_")
    for lo, hi in [(f"{metric}_lo", f"{metric}_hi")] + ([(f"{head}_lo_{tail}", f"{head}_hi_{tail}")] if sep else []):
        if lo in columns and hi in columns:
            return lo, hi
    return None


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _clip(lo: float, hi: float, rng: tuple[float, float] | None) -> tuple[float, float]:
    if rng is None or not (_finite(lo) and _finite(hi)):
        return lo, hi
    return min(max(lo, rng[0]), rng[1]), min(max(hi, rng[0]), rng[1])


def summarize(values, los=None, his=None, rng: tuple[float, float] | None = None) -> dict:
    """One metric over the runs of a group: {"value", "lo", "hi", "n", "interval"}.

    `values` are the runs' values, `los`/`his` their own 95% bounds (None: not reported). From
    FEW_RUNS runs on: the mean with a Student-t interval over the runs (vtkit.stats.t_interval).
    Below: the mean, with an interval only when every run has its own ("items"): the mean of the
    runs' lower and upper half-widths around it, which bounds the item noise of the mean whether
    or not the runs share items (it leaves out the seed-to-seed variation a t interval would need
    more runs to measure). One run: its own interval. The interval is clipped to `rng` (the
    metric's range) unless a value lies outside it (then the range is wrong and nothing is clipped).
    """
    n_all = len(values)
    los = list(los) if los is not None else [None] * n_all
    his = list(his) if his is not None else [None] * n_all
    rows = [(float(v), lo, hi) for v, lo, hi in zip(values, los, his) if _finite(v)]
    n = len(rows)
    if n == 0:
        return {"value": math.nan, "lo": math.nan, "hi": math.nan, "n": 0, "interval": ""}
    mean = sum(v for v, _, _ in rows) / n
    if n >= FEW_RUNS:
        from vtkit import stats

        mean, lo, hi, _ = stats.t_interval([v for v, _, _ in rows])
        how = f"t over {n} runs"
    elif all(_finite(lo) and _finite(hi) for _, lo, hi in rows):
        lo = mean - sum(v - float(lo) for v, lo, _ in rows) / n
        hi = mean + sum(float(hi) - v for v, _, hi in rows) / n
        how = "the run's own" if n == 1 else f"items, pooled over {n} runs"
    else:
        lo = hi = math.nan
        how = ""
    if rng is not None and any(not rng[0] <= v <= rng[1] for v, _, _ in rows):
        rng = None
    lo, hi = _clip(lo, hi, rng)
    return {"value": mean, "lo": lo, "hi": hi, "n": n, "interval": how}


def _is_replicate(name: str) -> bool:
    return name.split(".")[-1].lower().endswith("seed")


def _numeric_metrics(df, metrics: list[str]) -> list[str]:
    """Metrics whose values are all numbers or booleans (booleans plot as rates)."""
    import numpy as np

    out = []
    for m in metrics:
        col = df[m].dropna()
        if len(col) and all(isinstance(v, (bool, int, float, np.number, np.bool_)) for v in col):
            out.append(m)
    return out


def _column(df, name: str | None) -> list:
    """A column's values as plain Python numbers (None where missing or not a number)."""
    if name is None or name not in df.columns:
        return [None] * len(df)
    return [float(v) if _finite(v) or hasattr(v, "item") and _finite(v.item()) else None for v in df[name]]


def _summarize_column(sdf, metric: str) -> dict:
    bounds = bound_columns(metric, sdf.columns) or (None, None)
    return summarize(_column(sdf, metric), _column(sdf, bounds[0]), _column(sdf, bounds[1]), metric_range(metric))


def _bounds_of_others(metrics: list[str], columns) -> set[str]:
    """The `_lo`/`_hi` columns that belong to another metric of the list (shown with it, not alone)."""
    return {c for m in metrics for c in (bound_columns(m, columns) or ())}


def metric_intervals(df, roles: dict):
    """Every numeric metric per stage and per value of each varied factor (summary.csv): the pooled
    value, its interval and n as `summarize` gives them; a metric's own `_lo`/`_hi` columns are its
    interval, not rows of their own. With no factor varied within a stage (seeds only), one row per
    metric pools that stage's runs."""
    import pandas as pd

    ok = df[df["status"] == "ok"]
    factors = [p for p in roles.get("varied", []) if p in df.columns and not _is_replicate(p)]
    rows = []
    for stage, sdf in ok.groupby("stage", sort=False):
        names = _numeric_metrics(sdf, [m for m in roles.get("metrics", []) if m in sdf.columns])
        bounds = _bounds_of_others(names, sdf.columns)
        for metric in [m for m in names if m not in bounds]:
            used = [f for f in factors if sdf[f].nunique(dropna=True) > 1]
            groups = [(None, None, sdf)] if not used else [
                (f, value, g) for f in used for value, g in sdf.groupby(f, sort=True, dropna=True)]
            for f, value, g in groups:
                s = _summarize_column(g, metric)
                rows.append({"stage": stage, "metric": metric, "parameter": f, "value": value, "mean": s["value"],
                             "ci_low": s["lo"], "ci_high": s["hi"], "n": s["n"], "interval": s["interval"]})
    return pd.DataFrame(rows, columns=["stage", "metric", "parameter", "value", "mean", "ci_low", "ci_high", "n",
                                       "interval"])


def is_bookkeeping(metric: str) -> bool:
    """True for metrics that describe the run rather than its result: sizes, counts, times, seeds,
    interval bounds (`params`, `train_steps`, `wall_s`, `eval_seconds`, `select/n_kept`, `mean_tokens`,
    `accuracy_lo`, ...); judged on the last `/`-separated part of the name."""
    return bool(_BOOKKEEPING.search(metric.rsplit("/", 1)[-1]))


def _as_float(v) -> float:
    """A numeric cell as a float (numpy ints included); NaN for anything else."""
    try:
        return float(v) if not isinstance(v, (bool, str)) else math.nan
    except (TypeError, ValueError):
        return math.nan


COMPUTE = ("tokens_trained", "tokens_generated", "tokens_generated_eval", "train_flops", "gen_flops")


def compute_table(df, roles: dict):
    """The work of each run's stages in pipeline order (`vtkit.compute`'s keys in their metrics.json) and its
    cumulative sum over the run's stages up to each: `cum_train_flops`, `cum_gen_flops`, `cum_flops`. One row
    per run and stage that finished; a stage without the keys (an older run) adds nothing and shows blanks.
    Empty when no stage recorded compute."""
    import pandas as pd

    cols = ["run_id", "stage", *COMPUTE, "cum_train_flops", "cum_gen_flops", "cum_flops"]
    if not any(k in df.columns for k in ("train_flops", "gen_flops")):
        return pd.DataFrame(columns=cols)
    order = {st: i for i, st in enumerate(_stages(df, roles))}
    ok = df[df["status"] == "ok"].copy()
    ok["_order"] = ok["stage"].map(order)
    rows = []
    for run_id, g in ok.sort_values("_order", kind="stable").groupby("run_id", sort=False):
        cum_t = cum_g = 0.0
        for _, r in g.iterrows():
            vals = {k: _as_float(r[k]) if k in g.columns else math.nan for k in COMPUTE}
            cum_t += 0.0 if math.isnan(vals["train_flops"]) else float(vals["train_flops"])
            cum_g += 0.0 if math.isnan(vals["gen_flops"]) else float(vals["gen_flops"])
            rows.append({"run_id": run_id, "stage": r["stage"], **vals, "cum_train_flops": cum_t,
                         "cum_gen_flops": cum_g, "cum_flops": cum_t + cum_g})
    return pd.DataFrame(rows, columns=cols)


def _is_bool(col) -> bool:
    import numpy as np

    return all(isinstance(v, (bool, np.bool_)) for v in col.dropna())


def _stages(df, roles: dict) -> list[str]:
    named = [s for s in roles.get("stages", []) if s in set(df["stage"])]
    return named + [s for s in dict.fromkeys(df["stage"]) if s not in named]


def headline_metrics(df, roles: dict, report_spec: dict | None = None) -> dict[str, list[str]]:
    """{stage: [metric names]} to show up front (rule in the module docstring), stages in run order.

    Stages the table does not hold are left out, so an experiment that runs part of a pipeline can
    keep the pipeline's `report:`.
    """
    spec = report_spec if isinstance(report_spec, dict) else {}
    per_stage = spec.get("headline") if isinstance(spec.get("headline"), dict) else {}
    named = [m for m in spec.get("metrics") or [] if isinstance(m, str)]
    metrics = [m for m in roles.get("metrics", []) if m in df.columns]
    stages = _stages(df, roles)
    out = {}
    for stage in stages:
        sdf = df[df["stage"] == stage]
        reported = [m for m in metrics if sdf[m].notna().any()]
        if stage in per_stage:
            out[stage] = [m for m in per_stage[stage] if isinstance(m, str)]
        elif named and (len(stages) == 1 or set(named) & set(reported)):
            out[stage] = named if len(stages) == 1 else [m for m in named if m in reported]
        elif per_stage:
            continue  # the file names the headlines per stage, and not this stage's: its numbers are in the summary
        else:
            ok = sdf[sdf["status"] == "ok"]
            numeric = _numeric_metrics(ok, [m for m in reported if not is_bookkeeping(m)])
            out[stage] = [m for m in numeric if not _is_bool(ok[m])][:DEFAULT_HEADLINE]
    return out


def _factors(df, roles: dict) -> list[str]:
    return [p for p in roles.get("varied", []) if p in df.columns and not _is_replicate(p)]


def _group_label(values: dict) -> str:
    return ", ".join(f"{k}={_fmt(v)}" for k, v in values.items())


def headline_table(df, roles: dict, heads: dict[str, list[str]]):
    """Each headline metric per stage and combination of varied factors (`group`: `lr=0.1, bs=8`;
    "" when only seeds vary).

    Columns stage, metric, group, run, value, ci_low, ci_high, n, interval. Below FEW_RUNS runs in a
    group: one row per run (`run`: its replicate values, e.g. `seed=0`) with the run's own interval
    (clipped to the metric's range), then a `pooled` row where every run has one (see `summarize`);
    from FEW_RUNS runs on: one `mean` row with a t interval over the runs. A metric no successful run
    of a group reported gets one row with n = 0.
    """
    import pandas as pd

    ok = df[df["status"] == "ok"]
    factors = [f for f in _factors(df, roles) if ok[f].nunique(dropna=True) > 1]
    replicates = [p for p in roles.get("varied", []) if p in df.columns and _is_replicate(p)]
    rows = []
    for stage, metrics in heads.items():
        sdf = ok[ok["stage"] == stage]
        groups = list(sdf.groupby(factors, sort=True, dropna=False)) if factors and len(sdf) else [((), sdf)]
        for metric in metrics:
            numeric = metric in sdf.columns and bool(_numeric_metrics(sdf, [metric]))
            rng = metric_range(metric)
            for key, g in groups:
                key = key if isinstance(key, tuple) else (key,)
                base = {"stage": stage, "metric": metric, "group": _group_label(dict(zip(factors, key)))}
                s = _summarize_column(g, metric) if numeric else summarize([])
                if s["n"] == 0:
                    rows.append({**base, "run": "", "value": math.nan, "ci_low": math.nan, "ci_high": math.nan,
                                 "n": 0, "interval": ""})
                    continue
                if s["n"] >= FEW_RUNS:
                    rows.append({**base, "run": "mean", "value": s["value"], "ci_low": s["lo"], "ci_high": s["hi"],
                                 "n": s["n"], "interval": s["interval"]})
                    continue
                bounds = bound_columns(metric, g.columns) or (None, None)
                for (_, run), v, lo, hi in zip(g.iterrows(), _column(g, metric), _column(g, bounds[0]),
                                               _column(g, bounds[1])):
                    if v is None:
                        continue
                    one = summarize([v], [lo], [hi], rng)
                    label = _group_label({p: run[p] for p in replicates}) or str(run["run_id"])
                    rows.append({**base, "run": label, "value": one["value"], "ci_low": one["lo"],
                                 "ci_high": one["hi"], "n": 1, "interval": one["interval"]})
                if s["n"] > 1 and s["interval"]:
                    rows.append({**base, "run": "pooled", "value": s["value"], "ci_low": s["lo"], "ci_high": s["hi"],
                                 "n": s["n"], "interval": s["interval"]})
    return pd.DataFrame(rows, columns=["stage", "metric", "group", "run", "value", "ci_low", "ci_high", "n", "interval"])


def stage_figures(out_dir: str | os.PathLike) -> list[Path]:
    """The PNG figures a stage's notebook saved: `*.png` in its output folder and in `figures/` there."""
    d = Path(out_dir)
    return sorted([*d.glob("*.png"), *d.glob("figures/*.png")]) if d.is_dir() else []


def thumbnail(png: Path, dpi: float | None = None, max_px: int | None = None) -> bytes:
    """`png` redrawn at `dpi` (default THUMB_DPI; the source's own from its header, else plots.DPI),
    at most `max_px` (default THUMB_PX) wide, never enlarged, with a 128-colour palette: tens of kB."""
    from PIL import Image

    from vtkit import plots

    with Image.open(png) as im:
        src_dpi = float((im.info.get("dpi") or (plots.DPI,))[0]) or plots.DPI
        width = min(max_px or THUMB_PX, round(im.width * (dpi or THUMB_DPI) / src_dpi), im.width)
        im = im.convert("RGB")
        if width < im.width:
            im = im.resize((width, max(1, round(im.height * width / im.width))), Image.LANCZOS)
        buf = io.BytesIO()
        im.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(buf, format="PNG", optimize=True)
        return buf.getvalue()


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=+-]+", "_", text).strip("_")[:80]


def figure_keys(summary, metrics: dict[str, list[str]] | None = None):
    """(stage, metric, parameter) rows of `summary` to draw, in the order `metrics` names them."""
    keys = summary[summary.parameter.notna()][["stage", "metric", "parameter"]].drop_duplicates(ignore_index=True)
    if metrics is not None:
        keys = keys[[m in metrics.get(st, ()) for st, m in zip(keys.stage, keys.metric)]]
    order = {(st, m): (i, j) for i, st in enumerate(metrics or {}) for j, m in enumerate((metrics or {})[st])}
    return keys.iloc[sorted(range(len(keys)), key=lambda i: order.get((keys.stage.iloc[i], keys.metric.iloc[i]), (0, 0)))]


def make_figures(df, summary, fig_dir: Path, metrics: dict[str, list[str]] | None = None) -> list[dict]:
    """One PDF+PNG per (stage, metric, varied parameter) of `summary`; returns [{title, png, pdf}].

    Only metrics against a parameter (a stage with no varied factor gets none: its numbers are in
    the headline table); `metrics` ({stage: [names]}) restricts them further.
    """
    import numpy as np

    from vtkit import plots

    ok = df[df["status"] == "ok"]
    figures = []
    for _, key in figure_keys(summary, metrics).iterrows():
        if len(figures) >= MAX_FIGURES:
            break
        stage, metric, param = key["stage"], key["metric"], key["parameter"]
        s = summary[(summary.stage == stage) & (summary.metric == metric) & (summary.parameter == param)]
        runs = ok[ok.stage == stage]
        fig, ax = plots.figure("single")
        values = list(s["value"])
        if all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in values):
            xs_s = np.asarray(values, dtype=float)
            xs_r = runs[param].astype(float).to_numpy()
            if len(xs_s) > 2 and xs_s.min() > 0 and xs_s.max() / xs_s.min() >= 100:
                ax.set_xscale("log")
        else:  # categories in sorted order
            pos = {v: i for i, v in enumerate(values)}
            xs_s = np.arange(len(values), dtype=float)
            xs_r = runs[param].map(pos).astype(float).to_numpy()
            ax.set_xticks(xs_s, [str(v) for v in values])
        ax.set_xlabel(param)
        title = f"{stage}: {metric} vs {param}"
        ax.scatter(xs_r, runs[metric].astype(float), s=8, alpha=0.35, color="0.4", linewidths=0, label="runs")
        err = np.vstack([s["mean"] - s["ci_low"], s["ci_high"] - s["mean"]]).astype(float)
        ax.errorbar(xs_s, s["mean"].astype(float), yerr=np.nan_to_num(err), marker="o", capsize=2,
                    label="mean, 95% interval")
        ax.set_ylabel(metric)
        ax.set_title(title)
        ax.legend(loc="best")
        base = fig_dir / _slug(f"{stage}__{metric}__vs__{param}")
        pdf, png = plots.savefig(fig, base, close=True)
        figures.append({"title": title, "png": png, "pdf": pdf})
    return figures


def render_notebook(ipynb: Path, exporter=None) -> Path | None:
    """executed.ipynb -> executed.html beside it (skipped when up to date); None if unreadable."""
    out = ipynb.with_suffix(".html")
    if out.exists() and out.stat().st_mtime >= ipynb.stat().st_mtime:
        return out
    try:
        import nbformat

        body, _ = exporter.from_notebook_node(nbformat.read(ipynb, as_version=4))
        out.write_text(body)
        return out
    except Exception:  # noqa: BLE001 - a half-written notebook (killed run) must not stop the report
        return None


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _interval(value: float, lo: float, hi: float, n: int) -> str:
    """`0.885 [0.81, 0.94]`, the value alone when it has no interval, "not reported" when n = 0."""
    if n == 0:
        return "not reported"
    return f"{value:.4g}" + ("" if not (_finite(lo) and _finite(hi)) else f" [{lo:.4g}, {hi:.4g}]")


_CSS = """body{font-family:Georgia,'STIX Two Text',serif;margin:2em auto;max-width:1300px;color:#222}
table{border-collapse:collapse;font-size:12px;margin:1em 0}td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}
th{background:#f3f3f3}tr.failed td{background:#fdecea}pre{background:#f7f7f7;padding:1em;overflow-x:auto}
td.num{text-align:right;font-variant-numeric:tabular-nums}td.missing{color:#a00}
figure{display:inline-block;margin:0.5em;vertical-align:top}figure img{max-width:100%;height:auto}
figcaption{font-size:12px;text-align:center}.err{color:#a00;max-width:520px}.note{font-size:12px;color:#555}"""


class _Images:
    """Embeds thumbnails until EMBED_BUDGET bytes, then links the files instead."""

    def __init__(self, run_dir: Path, budget: int | None = None):
        self.run_dir, self.left, self.linked = run_dir, EMBED_BUDGET if budget is None else budget, 0

    def rel(self, path: Path) -> str:
        return html.escape(os.path.relpath(path, self.run_dir))

    def figure(self, png: Path, caption: str, href: str | None = None, extra: str = "") -> str:
        """`<figure>` with the thumbnail (linked to `href`, default the full PNG) and a caption."""
        e = html.escape
        target = href or self.rel(png)
        try:
            data = base64.b64encode(thumbnail(png)).decode()
        except Exception:  # noqa: BLE001 - an unreadable PNG (half-written) is linked, not drawn
            data = None
        if data is not None and len(data) <= self.left:
            self.left -= len(data)
            img = f"<a href='{target}'><img alt='{e(caption)}' src='data:image/png;base64,{data}'></a>"
        else:
            self.linked += 1
            img = f"<a href='{self.rel(png)}'>[{e(png.name)}]</a>"
        return (f"<figure>{img}<figcaption>{e(caption)} (<a href='{self.rel(png)}'>png</a>"
                f"{extra})</figcaption></figure>")


def build(run_dir: str | os.PathLike, render_notebooks: bool = True) -> Path:
    """Write report.html, summary.csv and figures/ into run_dir; returns the report's path."""
    import pandas as pd

    run_dir = Path(run_dir)
    results = run_dir / "results.parquet"
    if not results.is_file():
        raise FileNotFoundError(f"{results} not found; `vtkit report` takes an experiment's output folder "
                                "(e.g. runs/demo) after `vtkit sweep` has written its results there")
    df = pd.read_parquet(results)
    meta_path = run_dir / "sweep.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    if "metrics" not in meta:  # older or hand-made table: metrics are the columns after out_dir
        cols = list(df.columns)
        meta["metrics"] = cols[cols.index("out_dir") + 1:] if "out_dir" in cols else []
        meta["params"] = cols[2:cols.index("status")] if "status" in cols else []
        meta["varied"] = []
    spec = meta.get("spec") if isinstance(meta.get("spec"), dict) else {}
    stages = _stages(df, meta)
    pipeline = "pipeline" in spec or len(stages) > 1

    summary = metric_intervals(df, meta)
    summary.to_csv(run_dir / "summary.csv", index=False)
    heads = headline_metrics(df, meta, spec.get("report"))
    table = headline_table(df, meta, heads)
    fig_dir = run_dir / "figures"
    for old in [*fig_dir.glob("*.png"), *fig_dir.glob("*.pdf")]:  # the report owns this folder
        old.unlink()
    figures = make_figures(df, summary, fig_dir, heads)

    links = {}  # out_dir -> the executed notebook, rendered to HTML when asked (else the .ipynb)
    exporter = None
    if render_notebooks:
        from nbconvert import HTMLExporter

        exporter = HTMLExporter()
    for out_dir in df["out_dir"]:
        ipynb = Path(out_dir) / "executed.ipynb"
        if ipynb.is_file():
            page = render_notebook(ipynb, exporter) if exporter is not None else ipynb
            links[out_dir] = os.path.relpath(page or ipynb, run_dir)

    e = html.escape
    images = _Images(run_dir)
    varied = [p for p in meta.get("varied", []) if p in df.columns]
    label = {rid: _group_label(dict(zip(varied, vals))) or rid
             for rid, *vals in df[["run_id", *varied]].drop_duplicates("run_id").itertuples(index=False)}

    def nb_link(out_dir, text="notebook") -> str:
        link = links.get(out_dir)
        return f"<a href='{e(link)}'>{e(text)}</a>" if link else ""

    name = meta.get("name", run_dir.name)
    n_runs = df["run_id"].nunique()
    failed_runs = df.loc[df["status"] == "failed", "run_id"].nunique()
    pending_runs = df.loc[df["status"] == "pending", "run_id"].nunique()
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>vtkit report: {e(name)}</title>"
             f"<style>{_CSS}</style></head><body>",
             f"<h1>{e(name)}</h1><p>{e(meta.get('description', ''))}</p>",
             f"<p>{n_runs} run(s) of {len(stages)} stage(s) ({e(', '.join(stages))}); "
             f"{n_runs - failed_runs - pending_runs} ok, {failed_runs} failed, {pending_runs} not finished. "
             f"Report written {e(time.strftime('%Y-%m-%d %H:%M'))} from <code>{e(str(results))}</code>.</p>"]
    if "vtkit_source" in df.columns:  # runs kept with `vtkit sweep --reuse-stale` after a library change
        sources = df.loc[df["status"] == "ok", "vtkit_source"].dropna().unique()
        if len(sources) > 1:
            parts.append(f"<p class=err>These results come from {len(sources)} versions of the vtkit source "
                         f"({e(', '.join(sorted(map(str, sources))))}; column vtkit_source of the runs table): "
                         "finished runs were kept with <code>--reuse-stale</code> after the library changed.</p>")

    failed = df[(df["status"] == "failed") & ~df["error"].fillna("").str.startswith("not run:")]
    if len(failed):
        parts.append("<h2>Failures</h2><table><tr><th>run</th><th>stage</th><th>error</th><th>notebook</th>"
                     "<th>run_id</th></tr>")
        for _, row in failed.iterrows():
            parts.append(f"<tr class='failed'><td>{e(label[row['run_id']])}</td><td>{e(row['stage'])}</td>"
                         f"<td class=err>{e(_fmt(row['error']))}</td><td>{nb_link(row['out_dir'])}</td>"
                         f"<td>{e(row['run_id'])}</td></tr>")
        parts.append("</table>")

    parts.append("<h2>Headline metrics</h2><p class=note>Each stage's effect, as the experiment file's "
                 "<code>report:</code> key names it (else the first non-bookkeeping metrics of each stage). "
                 f"With fewer than {FEW_RUNS} runs per column: each run's value with its own 95% interval (the "
                 "stage's bootstrap over items, paired for gains, or Wilson), and, where every run has one, the "
                 "pooled value: the mean of the runs, its interval the mean of their half-widths (item noise "
                 "only). No t interval over so few runs. From " + str(FEW_RUNS) + " runs on: the mean with a "
                 "Student-t interval over the runs. Intervals stay inside the metric's range (rates in [0, 1], "
                 "gains in [-1, 1]). Every metric, counts included, is in the summary below and in "
                 "summary.csv.</p>")
    groups = list(dict.fromkeys(table["group"]))
    if len(table):
        parts.append("<table><tr><th>stage</th><th>metric</th>" +
                     "".join(f"<th>{e(g) or 'value [95% interval]'}</th><th>n</th>" for g in groups) + "</tr>")
        for (stage, metric), rows in table.groupby(["stage", "metric"], sort=False):
            cells = ""
            for g in groups:
                sub = rows[rows["group"] == g]
                if not len(sub):
                    cells += "<td></td><td></td>"
                    continue
                n = int(sub.loc[sub["run"] != "pooled", "n"].sum())  # runs that reported it
                lines = [(f"{e(r['run'])}: " if r["run"] and r["run"] != "mean" else "")
                         + e(_interval(r["value"], r["ci_low"], r["ci_high"], r["n"])) for _, r in sub.iterrows()]
                cells += f"<td class={'num' if n else 'missing'}>{'<br>'.join(lines)}</td><td class=num>{n}</td>"
            parts.append(f"<tr><td>{e(stage)}</td><td>{e(metric)}</td>{cells}</tr>")
        parts.append("</table>")
    else:
        parts.append("<p>No numeric metrics among the successful runs.</p>")
    named = (spec.get("report") or {}).get("metrics") if isinstance(spec.get("report"), dict) else None
    unreported = [m for m in named or [] if not any(m in ms for ms in heads.values())]
    if unreported:
        parts.append(f"<p class=err>report.metrics names {e(', '.join(unreported))}, which no stage reported.</p>")

    if pipeline:
        parts.append("<h2>Stages</h2><p class=note>The figures each stage's notebook saved, per run; a figure "
                     "links its full-size PNG, the caption the PDF and the executed notebook.</p>")
        for stage in stages:
            sdf = df[df["stage"] == stage]
            parts.append(f"<h3>{e(stage)}</h3>")
            for _, row in sdf[sdf["status"] != "ok"].iterrows():  # failures first
                parts.append(f"<p class=err>{e(label[row['run_id']])}: {e(row['status'])}: "
                             f"{e(_fmt(row['error']))} {nb_link(row['out_dir'])}</p>")
            shown = 0
            for _, row in sdf[sdf["status"] == "ok"].iterrows():
                for png in stage_figures(row["out_dir"]):
                    pdf = png.with_suffix(".pdf")
                    extra = (f", <a href='{images.rel(pdf)}'>pdf</a>" if pdf.is_file() else "")
                    extra += f", {nb_link(row['out_dir'])}" if row["out_dir"] in links else ""
                    link = e(links[row["out_dir"]]) if row["out_dir"] in links else None
                    parts.append(images.figure(png, f"{label[row['run_id']]}: {png.stem}", link, extra))
                    shown += 1
            if not shown and (sdf["status"] == "ok").any():
                parts.append("<p class=note>This stage's notebook saved no figure.</p>")

    if figures or _factors(df, meta):
        parts.append("<h2>Against the varied parameters</h2><p class=note>Mean with its 95% interval per "
                     "value (other factors pooled), runs as dots.</p>")
        for fig in figures:
            parts.append(images.figure(fig["png"], fig["title"], extra=f", <a href='{images.rel(fig['pdf'])}'>pdf</a>"))
        if not figures:
            parts.append("<p>No headline metric to draw.</p>")
        left = len(figure_keys(summary, heads)) - len(figures)
        if left > 0:
            parts.append(f"<p class=note>{left} more figure(s) left out (MAX_FIGURES = {MAX_FIGURES}).</p>")
    if images.linked:
        parts.append(f"<p class=note>{images.linked} figure(s) linked rather than embedded, to keep this page "
                     f"under {EMBED_BUDGET // 1_000_000 or 1} MB of images.</p>")

    parts.append("<h2>Runs</h2>")
    show = ["run_id", "stage", *[p for p in meta.get("params", []) if p in df.columns], "status", "error", "wall_s",
            *[c for c in ("vtkit_source",) if c in df.columns], *[m for m in meta.get("metrics", []) if m in df.columns]]
    parts.append("<table><tr>" + "".join(f"<th>{e(c)}</th>" for c in show) + "<th>notebook</th><th>figures</th></tr>")
    for _, row in df.iterrows():
        cls = " class='failed'" if row["status"] == "failed" else ""
        cells = "".join(f"<td{' class=err' if c == 'error' else ''}>{e(_fmt(row[c]))}</td>" for c in show)
        cells += f"<td>{nb_link(row['out_dir'])}</td>"
        cells += "<td>" + " ".join(f"<a href='{images.rel(p)}'>{e(p.stem)}</a>" for p in stage_figures(row["out_dir"])) + "</td>"
        parts.append(f"<tr{cls}>{cells}</tr>")
    parts.append("</table>")
    comp = compute_table(df, meta)
    comp.to_csv(run_dir / "compute.csv", index=False)
    if len(comp):
        parts.append("<h2>Compute by stage</h2><p class=note>What each stage did (vtkit.compute: tokens trained and "
                     "generated, evaluation's share of the generated apart; FLOPs 6 N per trained token and 2 N per "
                     "sampled or scored token plus attention, as <code>vtkit plan</code> counts them) and the sum "
                     "over the run's stages so far, per run (also compute.csv).</p>")
        heads_c = ["run", "stage", *COMPUTE, "cumulative train FLOPs", "cumulative gen FLOPs", "cumulative FLOPs"]
        parts.append("<table class=compute><tr>" + "".join(f"<th>{e(c)}</th>" for c in heads_c) + "</tr>")
        for _, r in comp.iterrows():
            nums = [r[k] for k in (*COMPUTE, "cum_train_flops", "cum_gen_flops", "cum_flops")]
            parts.append(f"<tr><td>{e(label.get(r['run_id'], r['run_id']))}</td><td>{e(r['stage'])}</td>" +
                         "".join(f"<td class=num>{'' if math.isnan(v) else f'{v:.4g}'}</td>" for v in nums) + "</tr>")
        parts.append("</table>")
    if len(summary):
        parts.append("<details><summary>Every numeric metric, counts and times included: the pooled value, its "
                     f"interval as above (t over the runs from {FEW_RUNS} runs on), n (summary.csv)</summary>")
        parts.append(summary.to_html(index=False, na_rep="", float_format=lambda v: f"{v:.4g}"))
        parts.append("</details>")
    yaml_file = run_dir / "experiment.yaml"
    spec_text = yaml_file.read_text() if yaml_file.is_file() else (json.dumps(spec, indent=2) if spec else "(not recorded)")
    parts.append(f"<h2>Experiment</h2><pre>{e(spec_text)}</pre>")
    parts.append("</body></html>")
    out = run_dir / "report.html"
    tmp = run_dir / ".report.html.tmp"
    tmp.write_text("\n".join(parts))
    os.replace(tmp, out)
    return out

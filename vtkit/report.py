"""`vtkit report RUN_DIR`: figures and a self-contained report.html from a sweep's results table.

    vtkit report runs/demo        # -> runs/demo/report.html, runs/demo/figures/*.pdf|png, summary.csv

Reads `results.parquet` and `sweep.json` (column roles) that `vtkit sweep` writes. For every stage
and numeric metric it plots the metric against each varied parameter (mean over the runs that
share a value, with a 95% t-interval over seeds and other replicates; individual runs as dots).
Parameters whose name ends in `seed` are treated as replicates, not as factors; with no factor
left, a metric is plotted per stage. The numbers behind every figure are in `summary.csv`.

report.html embeds its figures as base64 PNG (one file to mail around) and links each run's
executed notebook, rendered to `executed.html` beside it with nbconvert (relative links, so the
folder can be moved or served as is).
"""
from __future__ import annotations

import base64
import html
import json
import math
import os
import re
import time
from pathlib import Path

# two-sided 95% Student t quantiles for df = 1..30 (no scipy in the kit); 1.96 beyond
_T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042]
MAX_FIGURES = 60  # beyond this the report lists what it left out instead of drawing it


def mean_ci(values) -> tuple[float, float, float, int]:
    """(mean, ci_low, ci_high, n): 95% Student-t interval; NaN bounds when n < 2."""
    xs = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    n = len(xs)
    if n == 0:
        return math.nan, math.nan, math.nan, 0
    mean = sum(xs) / n
    if n < 2:
        return mean, math.nan, math.nan, n
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
    half = (_T95[n - 2] if n - 1 <= len(_T95) else 1.96) * sd / math.sqrt(n)
    return mean, mean - half, mean + half, n


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


def summarize(df, roles: dict):
    """Mean and 95% CI of every numeric metric per stage and per value of each varied factor."""
    import pandas as pd

    ok = df[df["status"] == "ok"]
    factors = [p for p in roles.get("varied", []) if p in df.columns and not _is_replicate(p)]
    rows = []
    for stage, sdf in ok.groupby("stage", sort=False):
        for metric in _numeric_metrics(sdf, [m for m in roles.get("metrics", []) if m in sdf.columns]):
            vals = sdf[metric].astype(float)
            used = [f for f in factors if sdf[f].nunique(dropna=True) > 1]
            if not used:
                mean, lo, hi, n = mean_ci(vals)
                rows.append({"stage": stage, "metric": metric, "parameter": None, "value": None,
                             "mean": mean, "ci_low": lo, "ci_high": hi, "n": n})
            for f in used:
                for value, g in sdf.groupby(f, sort=True, dropna=True):
                    mean, lo, hi, n = mean_ci(g[metric].astype(float))
                    rows.append({"stage": stage, "metric": metric, "parameter": f, "value": value,
                                 "mean": mean, "ci_low": lo, "ci_high": hi, "n": n})
    return pd.DataFrame(rows, columns=["stage", "metric", "parameter", "value", "mean", "ci_low", "ci_high", "n"])


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=+-]+", "_", text).strip("_")[:80]


def make_figures(df, summary, fig_dir: Path) -> list[dict]:
    """One PDF+PNG per (stage, metric, parameter) of `summary`; returns [{title, png, pdf}]."""
    import numpy as np
    import pandas as pd

    from vtkit import plots

    ok = df[df["status"] == "ok"]
    figures = []
    keys = summary[["stage", "metric", "parameter"]].drop_duplicates(ignore_index=True)
    for _, key in keys.iterrows():
        if len(figures) >= MAX_FIGURES:
            break
        stage, metric, param = key["stage"], key["metric"], key["parameter"]
        s = summary[(summary.stage == stage) & (summary.metric == metric) &
                    (summary.parameter.isna() if param is None or pd.isna(param) else summary.parameter == param)]
        runs = ok[ok.stage == stage]
        fig, ax = plots.figure("single")
        if param is None or pd.isna(param):
            xs_s, xs_r, labels = np.zeros(len(s)), np.zeros(len(runs)), [stage]
            ax.set_xticks([0], labels)
            title = f"{stage}: {metric}"
        else:
            values = list(s["value"])
            numeric = all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in values)
            if numeric:
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
                    label="mean, 95% CI")
        ax.set_ylabel(metric)
        ax.set_title(title)
        ax.legend(loc="best")
        base = fig_dir / _slug(f"{stage}__{metric}" + ("" if param is None or pd.isna(param) else f"__vs__{param}"))
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


_CSS = """body{font-family:Georgia,'STIX Two Text',serif;margin:2em auto;max-width:1200px;color:#222}
table{border-collapse:collapse;font-size:12px;margin:1em 0}td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}
th{background:#f3f3f3}tr.failed td{background:#fdecea}pre{background:#f7f7f7;padding:1em;overflow-x:auto}
figure{display:inline-block;margin:0.5em;vertical-align:top}figure img{width:420px}
figcaption{font-size:12px;text-align:center}.err{color:#a00;max-width:420px}"""


def build(run_dir: str | os.PathLike, render_notebooks: bool = True) -> Path:
    """Write figures/, summary.csv and report.html into run_dir; returns the report's path."""
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
    summary = summarize(df, meta)
    summary.to_csv(run_dir / "summary.csv", index=False)
    fig_dir = run_dir / "figures"
    for old in [*fig_dir.glob("*.png"), *fig_dir.glob("*.pdf")]:  # the report owns this folder
        old.unlink()
    figures = make_figures(df, summary, fig_dir)

    links = {}
    if render_notebooks:
        from nbconvert import HTMLExporter

        exporter = HTMLExporter()
        for out_dir in df["out_dir"]:
            ipynb = Path(out_dir) / "executed.ipynb"
            page = render_notebook(ipynb, exporter) if ipynb.is_file() else None
            if page is not None:
                links[out_dir] = os.path.relpath(page, run_dir)

    e = html.escape
    name = meta.get("name", run_dir.name)
    n_runs = df["run_id"].nunique()
    failed_runs = df.loc[df["status"] != "ok", "run_id"].nunique()
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>vtkit report: {e(name)}</title>"
             f"<style>{_CSS}</style></head><body>",
             f"<h1>{e(name)}</h1><p>{e(meta.get('description', ''))}</p>",
             f"<p>{n_runs} run(s), {len(df)} stage row(s); {n_runs - failed_runs} run(s) ok, {failed_runs} failed. "
             f"Report written {e(time.strftime('%Y-%m-%d %H:%M'))} from <code>{e(str(results))}</code>.</p>",
             "<h2>Experiment</h2>"]
    spec = meta.get("spec")
    yaml_file = run_dir / "experiment.yaml"
    spec_text = yaml_file.read_text() if yaml_file.is_file() else (json.dumps(spec, indent=2) if spec else "(not recorded)")
    parts.append(f"<pre>{e(spec_text)}</pre>")

    parts.append("<h2>Figures</h2>")
    if not figures:
        parts.append("<p>No numeric metrics among the successful runs.</p>")
    for fig in figures:
        data = base64.b64encode(fig["png"].read_bytes()).decode()
        parts.append(f"<figure><img alt='{e(fig['title'])}' src='data:image/png;base64,{data}'>"
                     f"<figcaption>{e(fig['title'])} (<a href='{e(os.path.relpath(fig['pdf'], run_dir))}'>pdf</a>)"
                     "</figcaption></figure>")

    parts.append("<h2>Runs</h2>")
    show = ["run_id", "stage", *[p for p in meta.get("params", []) if p in df.columns], "status", "error", "wall_s",
            *[m for m in meta.get("metrics", []) if m in df.columns]]
    parts.append("<table><tr>" + "".join(f"<th>{e(c)}</th>" for c in show) + "<th>notebook</th></tr>")
    for _, row in df.iterrows():
        cls = " class='failed'" if row["status"] != "ok" else ""
        cells = "".join(f"<td{' class=err' if c == 'error' else ''}>{e(_fmt(row[c]))}</td>" for c in show)
        link = links.get(row["out_dir"])
        cells += f"<td><a href='{e(link)}'>notebook</a></td>" if link else "<td></td>"
        parts.append(f"<tr{cls}>{cells}</tr>")
    parts.append("</table>")
    if len(summary):
        parts.append("<h2>Summary</h2><p>Mean and 95% t-interval per value (also in summary.csv).</p>")
        parts.append(summary.to_html(index=False, na_rep="", float_format=lambda v: f"{v:.4g}"))
    parts.append("</body></html>")
    out = run_dir / "report.html"
    tmp = run_dir / ".report.html.tmp"
    tmp.write_text("\n".join(parts))
    os.replace(tmp, out)
    return out

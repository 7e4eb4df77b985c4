"""Paired comparisons over seeds from a sweep's results table: the numbers behind docs/LOG.md.

    vtkit compare runs/mgpo_vs_grpo --metric final/math/mean@4 --a mgpo_lambda=0 --b mgpo_lambda=1
    vtkit compare runs/mgpo_vs_grpo --metric heldout_acc --step 32 --a mgpo_lambda=0 --b mgpo_lambda=1
    vtkit compare runs/spectrum_ablation --stage merge --metric merged_minus_last/mean/mean@4

RUN_DIR is an experiment's output folder (`vtkit sweep` writes RUN_DIR/results.parquet: one row per
run and stage, the varied values and stage parameters as columns, then the stage's metrics.json
keys). Several RUN_DIRs are read as one table (a sweep extended by a second experiment file).

Two arms (`--a KEY=V`, `--b KEY=V`, each repeatable; `KEY.SUB=V` looks inside a dict-valued parameter
such as `overrides.lr_schedule=cosine`; `seed=0..15` a range): the rows of each arm are paired by `--by`
(default `seed`); the comparison is the per-pair difference **b - a** (arm b minus arm a), its mean
with a 95% Student-t interval over the pairs (`vtkit.stats.t_interval`, n - 1 degrees of freedom)
and a 95% paired bootstrap over the pairs (`vtkit.stats.paired_bootstrap`: pairs resampled
together, seeded). One arm (neither --a nor --b): the metric itself per --by key (a metric that is
already a difference, such as the merge stage's `merged_minus_last/...`), with the same two
intervals. `--step N` reads the metric from each run's `steps.jsonl` (an RL curve: `heldout_acc`
at global step N of `--phase`) instead of metrics.json.

Outputs under `--out` (default RUN_DIR/compare/): `<name>.csv` (one row per pair and metric),
`<name>.json` (the summaries) and `<name>.pdf/.png` (per-pair lines from a to b, and the per-pair
differences with their mean and both intervals). Errors name the problem: an unknown metric (with
close names), an arm with no finished row (with the values the key takes), unpaired seeds (named;
`--drop-unpaired` compares the common ones), duplicate rows for one seed with different values.
"""
from __future__ import annotations

import difflib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from vtkit import stats


class CompareError(ValueError):
    """Bad input to a comparison: the message names the problem and the fix."""


# ---------------------------------------------------------------------------------- the table
def load_table(run_dirs: Sequence[str | Path]):
    """The results tables of `run_dirs` as one DataFrame, with `_run_dir` (the folder a row came from)."""
    import pandas as pd

    frames = []
    for d in run_dirs:
        path = Path(d) / "results.parquet"
        if not path.exists():
            raise CompareError(f"{path} not found: RUN_DIR is an experiment's output folder (OUT/<name>, "
                               "where `vtkit sweep EXPERIMENT.yaml --out OUT` writes results.parquet)")
        df = pd.read_parquet(path)
        df["_run_dir"] = str(d)
        frames.append(df)
    if not frames:
        raise CompareError("no RUN_DIR given")
    return pd.concat(frames, ignore_index=True, sort=False)


def stage_dir(row) -> Path:
    """A row's stage folder: its recorded out_dir, else where it sits under the RUN_DIR it was read
    from (a results table copied or moved with its runs)."""
    recorded = Path(str(row.get("out_dir", "")))
    if recorded.is_dir():
        return recorded
    base = Path(row["_run_dir"]) / str(row["run_id"])
    for cand in (base / str(row.get("stage", "")), base):
        if cand.is_dir():
            return cand
    return recorded


def parse_selector(items: Sequence[str] | None) -> dict:
    """['mgpo_lambda=1', 'lr=3e-4'] -> {'mgpo_lambda': '1', 'lr': '3e-4'} (values stay text until matched)."""
    out = {}
    for item in items or []:
        key, sep, value = str(item).partition("=")
        if not sep or not key.strip():
            raise CompareError(f"an arm is KEY=VALUE (e.g. mgpo_lambda=1), got {item!r}")
        out[key.strip()] = value.strip()
    return out


def _is_missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def same_value(cell, text: str) -> bool:
    """Does a table cell equal the command line's VALUE? Numbers compare as numbers (1 = 1.0 = 1e0; `A..B`
    is the inclusive range), lists and dicts (stored as JSON text) as parsed YAML, anything else as text."""
    if _is_missing(cell):
        return text.lower() in ("", "none", "null", "~")
    import yaml

    from vtkit.experiment import _Loader   # YAML that reads 1e-4 as a float
    if isinstance(cell, (dict, list)):
        try:
            return cell == yaml.load(text, Loader=_Loader)
        except yaml.YAMLError:
            return False
    if isinstance(cell, (bool, np.bool_)):
        return str(bool(cell)).lower() == text.lower()
    span = re.fullmatch(r"\s*(-?[\d.eE+-]+?)\s*\.\.\s*(-?[\d.eE+-]+)\s*", text)
    if span:   # an inclusive range of numbers: seed=0..15
        try:
            return float(span.group(1)) <= float(cell) <= float(span.group(2))
        except (TypeError, ValueError):
            return False
    try:
        return float(cell) == float(text)
    except (TypeError, ValueError):
        pass
    if str(cell) == text:
        return True
    try:
        return json.loads(str(cell)) == yaml.load(text, Loader=_Loader)
    except (ValueError, yaml.YAMLError):
        return False


def _column(df, key: str, what: str, roles: dict | None = None) -> str:
    """The column for a parameter KEY (`param_KEY` where the sweep renamed it); a clear error otherwise."""
    if key in df.columns:
        return key
    if f"param_{key}" in df.columns:
        return f"param_{key}"
    cols = [str(c) for c in df.columns]
    params = [c for c in (roles or {}).get("params", []) if c in cols] or \
        (cols[cols.index("stage") + 1:cols.index("status")] if "stage" in cols and "status" in cols else cols)
    close = difflib.get_close_matches(key, [str(c) for c in df.columns], n=5, cutoff=0.5)
    raise CompareError(f"{what}: the table has no column {key!r}" + (f"; close: {close}" if close else "")
                       + f"; the parameters are {sorted(set(map(str, params)))}")


def values(df, key: str, what: str, roles: dict | None = None) -> list:
    """Each row's value of the parameter KEY; `KEY.SUB` reads inside a dict-valued parameter (a sweep
    stores dicts as JSON text), e.g. `overrides.lr_schedule`; None where the row has no such entry."""
    head, _, rest = key.partition(".")
    if not rest or key in df.columns or f"param_{key}" in df.columns:
        return list(df[_column(df, key, what, roles)])
    out = []
    for cell in df[_column(df, head, what, roles)]:
        v = cell
        if isinstance(v, str):
            try:
                v = json.loads(v)
            except ValueError:
                v = None
        for part in rest.split("."):
            v = v.get(part) if isinstance(v, dict) else None
        out.append(v)
    return out


def _mask(df, sel: dict, what: str, roles: dict | None = None) -> np.ndarray:
    mask = np.ones(len(df), dtype=bool)
    for k, v in sel.items():
        mask &= np.array([same_value(c, v) for c in values(df, k, what, roles)], dtype=bool)
    return mask


def _roles(run_dirs) -> dict:
    for d in run_dirs:
        p = Path(d) / "sweep.json"
        if p.exists():
            try:
                return json.loads(p.read_text())
            except ValueError:
                pass
    return {}


def _key(v):
    """A --by value as a hashable, printable key: 3.0 -> 3."""
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return int(v)
    if isinstance(v, (np.integer,)):
        return int(v)
    return v


def _steps_value(row, metric: str, step: int, phase: str | None):
    """`metric` at global step `step` of `phase` in the run's steps.jsonl; None when not logged."""
    from vtkit import runinfo

    f = stage_dir(row) / "steps.jsonl"
    if not f.exists():
        return None, []
    rows = runinfo.read_jsonl(f)
    keys = sorted({k for r in rows for k in r})
    hits = [r for r in rows if r.get("global_step") == step and (phase is None or r.get("phase") == phase)
            and not _is_missing(r.get(metric))]
    return (float(hits[-1][metric]) if hits else None), keys


# ---------------------------------------------------------------------------------- comparison
@dataclass
class Comparison:
    """One metric compared: `pairs` (one row per --by key: a, b, diff; or value) and `summary`."""
    metric: str
    by: list
    a: dict | None
    b: dict | None
    stage: str | None
    step: int | None
    pairs: list = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)

    @property
    def paired(self) -> bool:
        return self.a is not None

    def label(self) -> str:
        return self.metric + (f" at step {self.step}" if self.step is not None else "")


def _arm_text(sel: dict | None) -> str:
    return ", ".join(f"{k}={v}" for k, v in (sel or {}).items()) or "all rows"


def _summary(values: Sequence[float], n_boot: int, seed: int) -> dict:
    v = np.asarray(values, dtype=float)
    mean, lo, hi, n = stats.t_interval(v)
    out = {"n": n, "mean": mean, "sd": float(v.std(ddof=1)) if n > 1 else math.nan, "t_lo": lo, "t_hi": hi,
           "df": n - 1, "n_positive": int((v > 0).sum()), "n_negative": int((v < 0).sum())}
    out["boot_lo"], out["boot_hi"] = stats.bootstrap_ci(v, n_boot=n_boot, seed=seed) if n else (math.nan, math.nan)
    return out


def compare(run_dirs: Sequence[str | Path] | str | Path, metric: str, a: dict | Sequence[str] | None = None,
            b: dict | Sequence[str] | None = None, *, by: Sequence[str] = ("seed",), stage: str | None = None,
            where: dict | Sequence[str] | None = None, step: int | None = None, phase: str | None = "math",
            drop_unpaired: bool = False, n_boot: int = stats.N_BOOT, seed: int = 0, table=None) -> Comparison:
    """Compare `metric` between arms a and b paired by `by` (b - a), or summarise it over `by` when no
    arms are given. See the module docstring; raises CompareError with the fix on bad input."""
    run_dirs = [run_dirs] if isinstance(run_dirs, (str, Path)) else list(run_dirs)
    a = parse_selector(a) if a is not None and not isinstance(a, dict) else a
    b = parse_selector(b) if b is not None and not isinstance(b, dict) else b
    where = parse_selector(where) if where is not None and not isinstance(where, dict) else (where or {})
    if (a is None) != (b is None) or (a is not None and (not a or not b)):
        raise CompareError("give both arms (--a KEY=V and --b KEY=V) to compare two arms, or neither to "
                           "summarise the metric over --by")
    by = [by] if isinstance(by, str) else list(by)
    if not by:
        raise CompareError("--by needs at least one key (default: seed)")
    df = load_table(run_dirs) if table is None else table
    roles = _roles(run_dirs)
    by_cols = [_column(df, k, "--by", roles) for k in by]

    # rows of the wanted stage that finished
    df = df[_mask(df, where, "--where", roles)]
    if stage is not None:
        if "stage" not in df.columns or stage not in set(df["stage"]):
            raise CompareError(f"no rows of stage {stage!r}; the stages are "
                               f"{sorted(set(df['stage'])) if 'stage' in df.columns else []}")
        df = df[df["stage"] == stage]
    ok = df[df["status"] == "ok"] if "status" in df.columns else df
    notes = []
    if step is None:
        col = metric if metric in df.columns else (f"metric_{metric}" if f"metric_{metric}" in df.columns else None)
        if col is None:
            metrics = [c for c in roles.get("metrics", []) if c in df.columns] or \
                [c for c in df.columns if "/" in str(c) or "@" in str(c)]
            close = difflib.get_close_matches(metric, list(map(str, metrics or df.columns)), n=6, cutoff=0.4)
            raise CompareError(f"unknown metric {metric!r} in {', '.join(map(str, run_dirs))}"
                               + (f"; close names: {close}" if close else "")
                               + " (the columns of results.parquet; --step N reads steps.jsonl instead)")
        value = {}
        for i in ok.index:
            cell = ok.at[i, col]
            try:
                value[i] = None if _is_missing(cell) else float(cell)
            except (TypeError, ValueError):
                raise CompareError(f"metric {metric!r} is not a number ({cell!r} in run {ok.at[i, 'run_id']})") from None
    else:
        value, keys = {}, []
        for i, row in ok.iterrows():
            value[i], k = _steps_value(row, metric, step, phase or None)
            keys = keys or k
        if all(v is None for v in value.values()):
            if keys and metric not in keys:
                close = difflib.get_close_matches(metric, keys, n=6, cutoff=0.4)
                raise CompareError(f"unknown steps.jsonl metric {metric!r}" + (f"; close names: {close}" if close else "")
                                   + f"; logged: {keys}")
            raise CompareError(f"no finished run logged {metric!r} at global step {step}"
                               + (f" of phase {phase!r}" if phase else "") + " (steps.jsonl; --phase '' for any phase)")
    if stage is None and "stage" in ok.columns:   # the one stage that reports the metric
        stages = sorted({ok.at[i, "stage"] for i, v in value.items() if v is not None})
        if len(stages) > 1:
            raise CompareError(f"{metric!r} is reported by several stages {stages}: choose one with --stage")
        if stages:
            stage = stages[0]
            df, ok = df[df["stage"] == stage], ok[ok["stage"] == stage]

    def arm_rows(sel: dict | None, name: str):
        rows = ok[_mask(ok, sel or {}, f"arm {name}", roles)]
        if len(rows) == 0:
            detail = "; ".join(f"{k} takes {sorted({str(v) for v in values(df, k, name, roles) if not _is_missing(v)})}"
                               for k in (sel or {}))
            raise CompareError(f"arm {name} ({_arm_text(sel)}) matches no finished row"
                               + (f" of stage {stage!r}" if stage else "") + (f": {detail}" if detail else ""))
        if "status" in df.columns:   # runs of this arm that did not finish: say which
            everyone = df[_mask(df, sel or {}, name, roles)]
            bad = everyone[everyone["status"] != "ok"]
            if len(bad):
                notes.append(f"arm {name}: {len(bad)} run(s) not finished, left out: "
                             + ", ".join(f"{r['run_id']} ({r['status']})" for _, r in bad.iterrows()))
        per_key: dict = {}
        for i, row in rows.iterrows():
            key = tuple(_key(row[c]) for c in by_cols)
            per_key.setdefault(key, []).append((row["run_id"], value.get(i)))
        out, missing = {}, []
        for key, got in per_key.items():
            vals = {v for _, v in got if v is not None}
            if not vals:
                missing.append(key)
                continue
            if len(vals) > 1:
                raise CompareError(f"arm {name}: {len(got)} rows for {_key_text(by, key)} with different values "
                                   f"{sorted(vals)} (runs {[r for r, _ in got]}); narrow the arm with more "
                                   "KEY=V, --where or --stage")
            if len(got) > 1:
                notes.append(f"arm {name}: {len(got)} runs for {_key_text(by, key)} give the same value; counted once")
            out[key] = vals.pop()
        if missing:
            notes.append(f"arm {name}: no value of {metric!r} for " + ", ".join(_key_text(by, k) for k in missing))
        if not out:
            raise CompareError(f"arm {name} ({_arm_text(sel)}): no finished row reports {metric!r}"
                               + (f" at step {step}" if step is not None else ""))
        return out

    comp = Comparison(metric, by, a, b, stage, step, notes=notes)
    if a is None:
        vals = arm_rows(None, "all")
        keys = sorted(vals, key=_sort_key)
        comp.pairs = [{**dict(zip(by, k)), "value": vals[k]} for k in keys]
        comp.summary = {"value": _summary([vals[k] for k in keys], n_boot, seed)}
        return comp
    va, vb = arm_rows(a, "a"), arm_rows(b, "b")
    only_a = sorted(set(va) - set(vb), key=_sort_key)
    only_b = sorted(set(vb) - set(va), key=_sort_key)
    common = sorted(set(va) & set(vb), key=_sort_key)
    if only_a or only_b:
        text = "; ".join(s for s in (
            f"in arm a ({_arm_text(a)}) only: " + ", ".join(_key_text(by, k) for k in only_a) if only_a else "",
            f"in arm b ({_arm_text(b)}) only: " + ", ".join(_key_text(by, k) for k in only_b) if only_b else "") if s)
        if not drop_unpaired or not common:
            raise CompareError(f"unpaired {'/'.join(by)}: {text}" + (
                f"; --drop-unpaired compares the {len(common)} common ones" if common else "; no key is in both arms"))
        notes.append(f"unpaired, left out (--drop-unpaired): {text}")
    xa = [va[k] for k in common]
    xb = [vb[k] for k in common]
    comp.pairs = [{**dict(zip(by, k)), "a": va[k], "b": vb[k], "diff": vb[k] - va[k]} for k in common]
    d = _summary(np.subtract(xb, xa), n_boot, seed)
    boot = stats.paired_bootstrap(xa, xb, n_boot=n_boot, seed=seed)   # the same draws as d's bootstrap
    d["boot_lo"], d["boot_hi"] = boot["gain_lo"], boot["gain_hi"]
    comp.summary = {"a": _summary(xa, n_boot, seed), "b": _summary(xb, n_boot, seed), "diff": d}
    return comp


def _sort_key(key):
    return tuple((0, v, "") if isinstance(v, (int, float)) else (1, 0, str(v)) for v in key)


def _key_text(by, key) -> str:
    return ", ".join(f"{k}={v}" for k, v in zip(by, key))


# ---------------------------------------------------------------------------------- output
def _ci(s: dict, sign: str = "") -> str:
    f = f"{{:{sign}.4f}}"
    return f"{f.format(s['mean'])} [{f.format(s['t_lo'])}, {f.format(s['t_hi'])}]"


def format_text(comp: Comparison, n_boot: int = stats.N_BOOT, seed: int = 0) -> str:
    """The per-pair table and the summary lines, as `vtkit compare` prints them."""
    lines = [f"{comp.label()}" + (f" (stage {comp.stage})" if comp.stage else "")
             + f", by {', '.join(comp.by)}"]
    by_w = max(len(", ".join(comp.by)), 6)
    if comp.paired:
        lines.append(f"  a: {_arm_text(comp.a)}    b: {_arm_text(comp.b)}    difference = b - a")
        lines.append(f"  {'/'.join(comp.by):>{by_w}}  {'a':>9}  {'b':>9}  {'b - a':>9}")
        for p in comp.pairs:
            key = "/".join(str(p[k]) for k in comp.by)
            lines.append(f"  {key:>{by_w}}  {p['a']:9.4f}  {p['b']:9.4f}  {p['diff']:+9.4f}")
        s = comp.summary
        for arm in ("a", "b"):
            lines.append(f"  {arm} ({_arm_text(getattr(comp, arm))}): mean {_ci(s[arm])} (95% t), "
                         f"sd {s[arm]['sd']:.4f}, n {s[arm]['n']}, > 0 in {s[arm]['n_positive']}")
        d = s["diff"]
        lines.append(f"  b - a: mean {_ci(d, '+')} (95% t interval over {d['n']} pairs, {d['df']} df); "
                     f"paired bootstrap over pairs [{d['boot_lo']:+.4f}, {d['boot_hi']:+.4f}] "
                     f"({n_boot} draws, seed {seed}); sd {d['sd']:.4f}; b > a in {d['n_positive']} of {d['n']}, "
                     f"b < a in {d['n_negative']}")
    else:
        lines.append(f"  {'/'.join(comp.by):>{by_w}}  {'value':>9}")
        for p in comp.pairs:
            key = "/".join(str(p[k]) for k in comp.by)
            lines.append(f"  {key:>{by_w}}  {p['value']:+9.4f}")
        v = comp.summary["value"]
        lines.append(f"  mean {_ci(v, '+')} (95% t interval over {v['n']} values, {v['df']} df); bootstrap over "
                     f"them [{v['boot_lo']:+.4f}, {v['boot_hi']:+.4f}] ({n_boot} draws, seed {seed}); "
                     f"sd {v['sd']:.4f}; > 0 in {v['n_positive']} of {v['n']}, < 0 in {v['n_negative']}")
    lines += [f"  note: {n}" for n in comp.notes]
    return "\n".join(lines)


def jsonable(x):
    """x with numpy scalars as Python numbers and NaN as None (JSON has no NaN)."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return None if math.isnan(float(x)) else float(x)
    if isinstance(x, np.integer):
        return int(x)
    return x


def to_json(comps: Sequence[Comparison], run_dirs, n_boot: int, seed: int) -> dict:
    """The comparisons as one JSON-ready dict (what `--json` prints and <name>.json holds)."""
    return jsonable({"run_dirs": [str(d) for d in run_dirs], "difference": "b - a", "n_boot": n_boot,
                  "boot_seed": seed, "interval": "95%: t over pairs (t_lo, t_hi); bootstrap over pairs (boot_lo, boot_hi)",
                  "comparisons": [{"metric": c.metric, "step": c.step, "stage": c.stage, "by": c.by, "a": c.a,
                                   "b": c.b, "summary": c.summary, "pairs": c.pairs, "notes": c.notes} for c in comps]})


def plot(comps: Sequence[Comparison], path=None, title: str | None = None):
    """Per-pair lines a -> b with the arms' means (two arms), and the per-pair differences (or values)
    with their mean, t interval (thick) and bootstrap interval (thin), one column per metric."""
    from vtkit import plots

    paired = comps[0].paired
    fig, axes = plots.figure("double" if paired else "single", ncols=2 if paired else 1)
    axes = list(np.atleast_1d(axes))
    rng = np.random.default_rng(0)
    if paired:
        ax = axes.pop(0)
        for i, c in enumerate(comps):
            xa, xb = 3 * i, 3 * i + 1
            for p in c.pairs:
                ax.plot([xa, xb], [p["a"], p["b"]], color="0.6", lw=0.6, alpha=0.7)
            for x, arm in ((xa, "a"), (xb, "b")):
                s = c.summary[arm]
                plots.curve_ci(ax, [x], [s["mean"]], [s["t_lo"]], [s["t_hi"]], color=f"C{i}", ms=5)
        ax.set_xticks([3 * i + j for i in range(len(comps)) for j in (0, 1)],
                      [t for c in comps for t in (f"a: {_arm_text(c.a)}", f"b: {_arm_text(c.b)}")],
                      rotation=20 if len(comps) > 1 else 0)
        ax.set(ylabel=comps[0].label() if len(comps) == 1 else "value", title="per seed (lines), mean and 95% t")
    ax = axes[0]
    key, name = ("diff", "b - a") if paired else ("value", "value")
    for i, c in enumerate(comps):
        ys = [p[key] for p in c.pairs]
        ax.scatter(i + rng.uniform(-0.25, -0.08, len(ys)), ys, s=9, color="0.5", zorder=2)
        s = c.summary[key]
        plots.curve_ci(ax, [i], [s["mean"]], [s["t_lo"]], [s["t_hi"]], color=f"C{i}", ms=6, lw=1.6,
                       label="mean, 95% t" if i == 0 else None)
        ax.errorbar([i + 0.12], [s["mean"]], yerr=plots.yerr([s["mean"]], [s["boot_lo"]], [s["boot_hi"]]),
                    color=f"C{i}", lw=0.8, capsize=1.5, fmt="none", label="95% bootstrap" if i == 0 else None)
    ax.axhline(0, color="0.3", lw=0.6)
    ax.set_xticks(range(len(comps)), [c.label() for c in comps], rotation=20 if len(comps) > 1 else 0)
    ax.set_xlim(-0.6, len(comps) - 0.4)
    ax.set(ylabel=f"{name} (per {'/'.join(comps[0].by)})", title=title or (
        f"b - a over {comps[0].summary[key]['n']} pairs" if paired else f"over {comps[0].summary[key]['n']} runs"))
    ax.legend(loc="best")
    if path is not None:
        plots.savefig(fig, path)
    return fig


def default_name(comps: Sequence[Comparison]) -> str:
    c = comps[0]
    text = "+".join(x.label() for x in comps)
    if c.paired:
        text += f"__{_arm_text(c.b)}_minus_{_arm_text(c.a)}"
    return re.sub(r"[^A-Za-z0-9@=.+-]+", "_", text).strip("_")[:150]


def write(comps: Sequence[Comparison], out_dir, name: str | None = None, *, run_dirs=(), n_boot: int = stats.N_BOOT,
          seed: int = 0, title: str | None = None) -> dict:
    """<name>.csv (pairs), <name>.json (summaries) and the figure under out_dir; returns their paths."""
    import matplotlib.pyplot as plt
    import pandas as pd

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = name or default_name(comps)
    rows = [{"metric": c.label(), **p} for c in comps for p in c.pairs]
    pd.DataFrame(rows).to_csv(out / f"{name}.csv", index=False)
    (out / f"{name}.json").write_text(json.dumps(to_json(comps, run_dirs, n_boot, seed), indent=1) + "\n")
    fig = plot(comps, out / name, title=title)
    plt.close(fig)
    return {"csv": out / f"{name}.csv", "json": out / f"{name}.json", "pdf": out / f"{name}.pdf",
            "png": out / f"{name}.png"}

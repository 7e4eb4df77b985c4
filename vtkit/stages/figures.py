"""Stage `figures` (notebook 20): the paper's three figures on the compression-coverage hypothesis,
from a capacity sweep's results.parquet and the literature table.

    from vtkit.stages import figures
    cfg = figures.Config.from_preset("tiny", capacity_results="runs/capacity-demo/results.parquet")
    res = figures.run(cfg, "runs/figures")   # -> fig_a_bits, fig_b_saturation, fig_c_families (.pdf, .png)

    python -m vtkit.stages.figures --preset tiny --out-dir runs/figures \
        --set capacity_results=runs/capacity-demo/results.parquet

(a) knowledge stored (bits) against parameters with Allen-Zhu & Li's 1 and 2 bits/param lines, and
the slope of bits against parameters fitted over the sizes in the capacity regime only
(`bits_slope_<tag>`, with `bits_slope_n_sizes_<tag>`; NaN, with the reason printed, below 2 sizes);
(b) for reasoning and knowledge the fraction of its own ceiling each size reaches, a logistic in
log N for each, N50 / N90 with bootstrap intervals over seeds and items, and a reading in words;
(c) published scores of model families against size (and the family stage's scores.csv when given).
The computations are vtkit.figures'; its docstring says where they depart from the paper. The
preset's paths are relative to notebooks/ (the notebook's working directory): from elsewhere, pass
capacity_results.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import pandas as pd

from vtkit import figures
from vtkit.stages import base

RUN_COLUMNS = ("model", "mode", "exposures", "seed", "params", "capacity_ratio", "bits_offered", "bits",
               "bits_per_param", "bits_per_param_lo", "bits_per_param_hi", "bits_per_param_nonembedding",
               "bits_stored_unclamped", "acc_id", "acc_id_lo", "acc_id_hi", "acc_ood", "epochs_run")  # printed per run


@dataclass
class Config(base.StageConfig):
    SECTION: ClassVar[str] = "figures"

    capacity_results: str         # a capacity sweep's results.parquet
    literature: str | None        # published-scores CSV (None: vtkit/data/published_scores.csv)
    family_results: str | None    # scores.csv of stage family, added to figure (c)
    source: str                   # figure (b): auto | separate | mixture
    exposures: int | None         # figure (b): knowledge runs at this exposure count (None: 100 when present, else the largest)
    verified_only: bool           # figure (c): only rows read from a primary source
    n_boot: int                   # figure (b): bootstrap replicates over seeds and items


@dataclass
class Result(base.StageResult):
    runs: pd.DataFrame | None = None     # the finished capacity runs
    bits: pd.DataFrame | None = None     # figure (a)'s points
    hypothesis: dict = field(default_factory=dict)   # figure (b)'s data, fits and statement
    slopes: pd.DataFrame | None = None   # figure (c)'s per-family slopes
    figures: dict = field(default_factory=dict)      # "a", "b", "c" -> [pdf, png]


def run(cfg: Config, out_dir) -> Result:
    out = base.start(cfg, out_dir)
    runs = figures.load_results(cfg.capacity_results)   # a missing file names the command that makes it
    cols = [c for c in RUN_COLUMNS if c in runs]
    print(f"{len(runs)} finished runs from {Path(cfg.capacity_results).resolve()}")
    print(runs[cols].sort_values(["mode", "exposures", "params", "seed"]).to_string(index=False, float_format="%.4g"))

    paths_a, bits = figures.fig_bits(runs, out / "fig_a_bits")
    print(bits.to_string(index=False, float_format="%.4g"))
    metrics = figures.bits_metrics(runs, bits)
    for r in figures.bits_slopes(bits).to_dict("records"):   # knowledge slopes: capacity-regime sizes only
        print(f"bits_slope_{r['tag']}: " + (f"{r['slope']:.3f} over {r['n_sizes']} sizes in the capacity regime "
                                           f"({r['n_data_limited']} data-limited left out)" if not r["reason"]
                                           else f"none ({r['reason']})"))

    paths_b, hyp = figures.fig_hypothesis(runs, out / "fig_b_saturation", source=cfg.source, exposures=cfg.exposures,
                                          n_boot=cfg.n_boot, seed=cfg.seed)
    for key in ("reasoning", "knowledge"):
        d = hyp[key]
        print(f"{key:9s}: " + ", ".join(f"{q} {d[q]:.3g} [{d[f'{q}_lo']:.3g}, {d[f'{q}_hi']:.3g}]" for q in ("N50", "N90"))
              + ("" if d["fit"].get("ok") else f" (no fit: {d['fit'].get('reason')})"))
    metrics.update(figures.hypothesis_metrics(hyp))
    print(hyp["statement"])

    lit = figures.load_literature(cfg.literature)
    measured = pd.read_csv(cfg.family_results) if cfg.family_results else None
    paths_c, slopes = figures.fig_families(lit, out / "fig_c_families", measured=measured,
                                           verified_only=cfg.verified_only)
    print(slopes.to_string(index=False, float_format="%.3g"))
    metrics.update(figures.literature_metrics(slopes))
    base.finish(out, metrics)
    print({k: (round(v, 4) if isinstance(v, float) and not math.isnan(v) else v) for k, v in metrics.items()})
    return Result(out_dir=Path(out), metrics=metrics, runs=runs, bits=bits, hypothesis=hyp, slopes=slopes,
                  figures={"a": paths_a, "b": paths_b, "c": paths_c})


if __name__ == "__main__":
    raise SystemExit(base.main(sys.modules[__name__]))

"""Stage `family` (notebook 11): a family of models, ordered by size, on reasoning and knowledge sets
with the same prompts and the same sampling for every model.

    from vtkit.stages import family
    cfg = family.Config.from_preset("small", seed=0, models=["tiny-1m", "smollm2-135m"])
    res = family.run(cfg, "runs/family")     # -> family.csv, scores.csv, samples.jsonl, fig_family.{pdf,png}

    python -m vtkit.stages.family --preset tiny --out-dir runs/family --set n_items=16

Reasoning is graded by math-verify on the boxed answer, knowledge by exact alias match (SQuAD
normalisation) with the lenient alias-in-answer score beside it (vtkit.family). `score` is greedy
accuracy at temperature 0, else mean@n_samples, in percent. scores.csv has the literature table's
columns (vtkit/data/published_scores.csv), so stage `figures` can draw these models beside
published families. Offline, the tiny preset runs fresh tiny models (they score about zero: it
exercises the code path); the small preset adds SmolLM2-135M.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import pandas as pd

from vtkit import family as fam
from vtkit import runinfo
from vtkit.stages import base


@dataclass
class Config(base.StageConfig):
    SECTION: ClassVar[str] = "family"

    generation: dict                # the kit's own sampling backend (vtkit.generate.configure, set by base.start)
    models: list           # model specs ordered by size: tiny sizes, smollm2-135m, paths, hub ids
    family: str            # the family's name in scores.csv
    reasoning: list        # "math" and/or "gym:<reasoning-gym dataset>"
    knowledge: list        # "countries" and/or triviaqa, nq_open, popqa, simpleqa
    paths: dict            # benchmark -> local copy, e.g. {"triviaqa": "/data/triviaqa"}
    math_depth: int        # operations of the "math" problems
    n_items: int           # items per benchmark
    n_samples: int         # samples per item
    temperature: float     # 0: greedy
    top_p: float
    max_new_tokens: int


@dataclass
class Result(base.StageResult):
    benchmarks: dict = field(default_factory=dict)   # name -> (category, records)
    table: pd.DataFrame | None = None                # one row per model and benchmark (family.csv)
    scores: pd.DataFrame | None = None               # the same in the literature table's columns (scores.csv)
    samples: list = field(default_factory=list)      # every graded completion (samples.jsonl)
    figures: list = field(default_factory=list)      # fig_family.pdf, .png


def run(cfg: Config, out_dir) -> Result:
    t_start = time.time()
    out = base.start(cfg, out_dir)
    if not cfg.models:
        raise ValueError("models is empty: pass a list of model specs ordered by size")
    benchmarks = fam.family_benchmarks(cfg.reasoning, cfg.knowledge, n_items=cfg.n_items, seed=cfg.seed,
                                       paths=cfg.paths, math_depth=cfg.math_depth)
    for name, (category, recs) in benchmarks.items():
        print(f"{name} ({category}, {len(recs)} items): {recs[0]['prompt'][:100]!r} -> {recs[0]['answer']!r}")
    print("models:", cfg.models)

    table, samples = fam.evaluate_family(cfg.models, benchmarks, n=cfg.n_samples, temperature=cfg.temperature,
                                         top_p=cfg.top_p, max_new_tokens=cfg.max_new_tokens, seed=cfg.seed)
    table.to_csv(out / "family.csv", index=False)
    runinfo.write_jsonl(out / "samples.jsonl", samples)
    print(table.drop(columns=["spec"]).to_string(index=False, float_format="%.3g"))

    scores = fam.scores_table(table, cfg.family, n_samples=cfg.n_samples, temperature=cfg.temperature)
    scores.to_csv(out / "scores.csv", index=False)
    made = fam.fig_family_probe(table, out / "fig_family")
    metrics = fam.family_metrics(table, n_models=len(cfg.models), n_benchmarks=len(benchmarks),
                                 wall_s=time.time() - t_start)
    base.finish(out, metrics)
    print({k: round(v, 3) if isinstance(v, float) else v for k, v in metrics.items()})
    return Result(out_dir=Path(out), metrics=metrics, benchmarks=benchmarks, table=table, scores=scores,
                  samples=samples, figures=made)


if __name__ == "__main__":
    raise SystemExit(base.main(sys.modules[__name__]))

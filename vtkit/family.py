"""The family probe (notebook 11, vtkit.stages.family): a family of models ordered by size, measured
on reasoning and knowledge sets with the same prompts and sampling; its tables, metrics and figure.

    from vtkit import family
    benches = family.family_benchmarks(["math"], ["countries"], n_items=64)
    table, samples = family.evaluate_family(["tiny-100k", "tiny-1m"], benches)
    family.fig_family_probe(table, "runs/x/fig_family")
    family.scores_table(table, "tiny", n_samples=1, temperature=0.0)    # scores.csv: the literature's columns

Reasoning is graded by math-verify on the boxed answer, knowledge by exact alias match through
vtkit.evaluation; `alias_in` (a lenient whole-word match in the answer) is reported beside exact
match, never instead of it. The compression-coverage hypothesis predicts knowledge scores that
grow with size much faster than reasoning scores (docs/method.md).
"""
from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd

from vtkit import evalsets, evaluation, facts, models, plots, tasks
from vtkit.facts import normalize_answer

BOXED = re.compile(r"\\boxed\s*\{([^{}]*)\}")


def alias_in(text: str | None, aliases) -> bool:
    """Lenient knowledge match: some alias appears, as whole words, in the answer region of `text`
    (after </think>), both sides normalised as in vtkit.facts.alias_match. Credits chatty answers
    ("The capital of France is Paris.") that exact match misses; a reply listing several options
    can be credited wrongly, so report it beside exact match, never instead of it."""
    if isinstance(aliases, str):
        aliases = json.loads(aliases) if aliases.startswith("[") else [aliases]
    answer = BOXED.sub(r" \1 ", (text or "").rsplit("</think>", 1)[-1])   # \boxed{Paris} counts as Paris
    region = normalize_answer(answer)
    if not region:
        return False
    padded = f" {region} "
    return any(a and f" {a} " in padded for a in (normalize_answer(x) for x in aliases))


def family_benchmarks(reasoning, knowledge, *, n_items: int, seed: int = 0, paths: dict | None = None,
                      math_depth: int = 1) -> dict:
    """name -> (category, list of records). reasoning: names "math" (vtkit's generator at
    `math_depth`) or "gym:<reasoning-gym dataset>"; knowledge: "countries" (vtkit.facts) or a
    vtkit.evalsets knowledge benchmark (triviaqa, nq_open, popqa, simpleqa), read from paths[name]
    when given (these need a local copy offline)."""

    out = {}
    for name in reasoning:
        if name == "math":
            recs = tasks.make("math", n_items, seed=seed, difficulty=math_depth, split="test")
        elif name.startswith("gym:"):
            recs = tasks.from_reasoning_gym(name[4:], n_items, seed=seed, split="test")
        else:
            raise ValueError(f"unknown reasoning benchmark {name!r}: use 'math' or 'gym:<name>' "
                             "(e.g. gym:basic_arithmetic, gym:gsm_symbolic)")
        out[name] = ("reasoning", [dict(r) for r in recs])
    for name in knowledge:
        if name == "countries":
            recs = facts.make(n_items, seed=seed)
        elif name in evalsets.KNOWLEDGE_NAMES:
            ds = evalsets.load(name, path=(paths or {}).get(name))
            recs = ds.shuffle(seed=seed).select(range(min(n_items, len(ds))))
        else:
            raise ValueError(f"unknown knowledge benchmark {name!r}: use 'countries' or one of "
                             f"{evalsets.KNOWLEDGE_NAMES} (with paths={{name: local copy}})")
        out[name] = ("knowledge", [dict(r) for r in recs])
    return out


def model_tag(spec: str) -> str:
    """A short name for a model spec: the spec itself, or the last two parts of a path."""
    p = Path(str(spec))
    return str(spec) if len(p.parts) <= 2 else "/".join(p.parts[-2:])


def evaluate_family(specs, benchmarks: dict, *, n: int = 1, temperature: float = 0.0, top_p: float = 1.0,
                    max_new_tokens: int = 64, seed: int = 0, batch_size: int = 32):
    """Every model spec on every benchmark with the same prompts and sampling (vtkit.evaluation).

    Reasoning is graded by math-verify on the boxed answer; knowledge by exact alias match (and the
    lenient alias_in beside it). Returns (table: pandas DataFrame, one row per model and benchmark,
    with model, spec, params, benchmark, category, score (the headline rate: greedy_acc when greedy,
    else mean@n; percent), pass@n, lenient (percent),
    n_items, truncation_rate, load_s (the model), wall_s (the benchmark); samples: list of dicts).
    """
    rows, samples = [], []
    for spec in specs:
        t0 = time.time()
        model, tok = models.load(spec, seed=seed)
        params, load_s = models.param_count(model), time.time() - t0
        for bench, (category, recs) in benchmarks.items():
            t1 = time.time()
            proto = evaluation.get("knowledge" if category == "knowledge" else "vibethinker-math", n=n,
                                   temperature=temperature, top_p=top_p, top_k=-1, max_new_tokens=max_new_tokens,
                                   prompt_suffix="", ks=(n,), seed=seed, batch_size=batch_size, n_boot=200)
            res = evaluation.evaluate((model, tok), recs, proto)
            met, samp = res.metrics, res.samples
            by_id = {r["id"]: r for r in recs}
            lenient = [alias_in(s["text"], json.loads(by_id[s["id"]]["meta"] or "{}").get("aliases") or
                                [by_id[s["id"]]["answer"]]) for s in samp] if category == "knowledge" else \
                [bool(s["correct"]) for s in samp]
            rows.append({"model": model_tag(spec), "spec": str(spec), "params": params, "benchmark": bench,
                         "category": category, "score": 100 * res.acc, f"pass@{n}": 100 * met.get(f"pass@{n}", res.acc),
                         "lenient": 100 * float(np.mean(lenient)), "n_items": len(recs),
                         "truncation_rate": met["truncation_rate"], "load_s": load_s, "wall_s": time.time() - t1})
            samples += [{"model": model_tag(spec), "benchmark": bench, **s, "lenient": bool(le)}
                        for s, le in zip(samp, lenient)]
        del model
    return pd.DataFrame(rows), samples


def scores_table(table, family: str, *, n_samples: int, temperature: float) -> "pd.DataFrame":
    """evaluate_family's table in the literature table's columns (vtkit/data/published_scores.csv):
    model, family, params_b (= active_params_b: these models are dense), benchmark, category, score,
    setting ("vtkit n=<samples> T=<temperature>"), source, verified. Stage `figures` draws it
    beside the published families (its family_results)."""
    return pd.DataFrame({"model": table["model"], "family": family, "params_b": table["params"] / 1e9,
                         "active_params_b": table["params"] / 1e9, "benchmark": table["benchmark"],
                         "category": table["category"], "score": table["score"],
                         "setting": f"vtkit n={n_samples} T={temperature}",
                         "source": "measured by vtkit (11_family_probe)", "verified": "yes"})


def family_metrics(table, *, n_models: int, n_benchmarks: int, wall_s: float) -> dict:
    """The stage's metrics.json: n_models, n_benchmarks, wall_s, per category the mean score and
    lenient score over models and benchmarks (score_<category>_mean, lenient_<category>_mean), and
    every model's score on every benchmark (score/<benchmark>/<model>), all in percent."""
    metrics = {"n_models": n_models, "n_benchmarks": n_benchmarks, "wall_s": wall_s}
    for cat, g in table.groupby("category"):
        metrics[f"score_{cat}_mean"] = float(g["score"].mean())
        metrics[f"lenient_{cat}_mean"] = float(g["lenient"].mean())
    for r in table.to_dict("records"):
        metrics[f"score/{r['benchmark']}/{r['model']}"] = r["score"]
    return metrics


def fig_family_probe(table, path):
    """The family probe's figure: score (mean@1, %) against parameters, one line per benchmark,
    reasoning solid, knowledge dashed. Returns the saved paths."""

    fig, ax = plots.figure("single")
    for i, (bench, g) in enumerate(table.groupby("benchmark")):
        g = g.sort_values("params")
        ls = "-" if g["category"].iloc[0] == "reasoning" else "--"
        ax.plot(g["params"], g["score"], ls=ls, marker="o", color=f"C{i % 10}", label=f"{bench} ({g['category'].iloc[0]})")
    plots.log_x(ax)
    ax.set_ylim(-3, 103)
    ax.set_xlabel("parameters")
    ax.set_ylabel("score (mean@1, %)")
    ax.legend(fontsize=6)
    return plots.savefig(fig, path, close=True)

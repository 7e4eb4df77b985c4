"""The evaluate stage (notebooks/evaluate.ipynb): a model on task sets under the reports' protocols.

    from vtkit.stages import evaluate
    cfg = evaluate.Config.from_preset("tiny", seed=0, model="runs/distill/model", tasks=["math"])
    res = evaluate.run(cfg, "runs/evaluate")   # res.metrics["headline"], res.results["math"] (EvalResult)

    python -m vtkit.stages.evaluate --preset tiny --out-dir runs/evaluate --set model=runs/distill/model

Each task set (a vtkit domain, `gym:NAME`, or a `vtkit.evalsets` benchmark; `load_task_set`) is
sampled and graded by `vtkit.evaluation.evaluate` under its protocol (`protocol_for`: the set's
default protocol, or `protocol`, with the config's n_samples / max_new_tokens / temperature /
prompt_suffix and `protocol_overrides` on top). Writes metrics.json (every set's metrics under
`<set>/`, and the first set's headline rate as `headline`, `headline_lo`, `headline_hi`),
samples.jsonl (every graded sample, with its `task_set`) and fig_accuracy (PDF + PNG).
Departures from the reports are the preset's: at tiny, CPU-sized protocols (`tiny_protocol`) and no
prompt suffix. `workers` (parallel code sandboxes) is a preset key here, 2 in every preset.
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from typing import ClassVar

from vtkit import evaluation, models, plots, presets, runinfo
from vtkit.stages import base

# config key -> the Protocol field it sets when not None
PROTOCOL_KEYS = (("n_samples", "n"), ("max_new_tokens", "max_new_tokens"), ("temperature", "temperature"),
                 ("prompt_suffix", "prompt_suffix"))


@dataclass
class Config(base.StageConfig):
    SECTION: ClassVar[str] = "evaluate"

    generation: dict                # the kit's own sampling backend (vtkit.generate.configure, set by base.start)
    model: str                      # model spec (tiny-1m, smollm2-135m, a hub id) or checkpoint folder
    tasks: list                     # task sets: vtkit domains, "gym:NAME", evalsets benchmarks
    n: int                          # items per generated task set (vtkit domains, gym:)
    difficulty: int | list | None   # difficulty of generated task sets
    task_options: dict | None       # per generated task set, tasks.make keywords: {"math": {"mod": 7}}
    max_items: int | None           # cap on benchmark items (None: all)
    protocol: str | None            # one vtkit.evaluation protocol for every set; None: each set's default
    tiny_protocol: bool             # evaluation.get(..., tiny=True): CPU-sized n, lengths and bootstrap
    n_samples: int | None           # samples per item (None: the protocol's n)
    max_new_tokens: int | None      # None: the protocol's
    temperature: float | None       # None: the protocol's
    prompt_suffix: str | None       # None: the protocol's
    protocol_overrides: dict | None  # any other Protocol field, e.g. {"top_p": 1.0, "ks": [1, 8]}
    data_path: str | None           # a benchmark's local copy (one set) or a folder of copies named <benchmark>
    benchmark_options: dict | None  # evalsets.load keywords per benchmark, e.g. {"livecodebench": {...}}
    judge: str | None               # optional LLM judge (model spec) beside math-verify for math
    workers: int                    # parallel sandboxes for code


@dataclass
class Result(base.StageResult):
    results: dict = field(default_factory=dict)   # task set -> evaluation.EvalResult
    model: str = ""                                # the model spec evaluated


def load_task_set(cfg: Config, name: str) -> tuple[list[dict], str]:
    """(records, default protocol name) of one task set (vtkit.evaluation.task_set). With several
    task sets, `data_path` is a folder of local copies, read through $VTKIT_DATA_DIR."""
    single = len(cfg.tasks) == 1 and cfg.data_path
    if cfg.data_path and not single:   # a folder of local copies named <benchmark>
        os.environ["VTKIT_DATA_DIR"] = str(cfg.data_path)
    opts = {**(cfg.task_options or {}), **(cfg.benchmark_options or {})}.get(name, {})
    return evaluation.task_set(name, n=cfg.n, seed=cfg.seed, difficulty=cfg.difficulty, options=opts,
                               data_path=cfg.data_path if single else None, max_items=cfg.max_items)


def protocol_for(cfg: Config, default_name: str) -> evaluation.Protocol:
    """The protocol a task set runs under: `cfg.protocol` or the set's default, tiny-sized if asked,
    with the run's seed, `protocol_overrides`, then the config's non-None sampling keys."""
    over = {"seed": cfg.seed, **(cfg.protocol_overrides or {})}
    for key, name in PROTOCOL_KEYS:
        if cfg[key] is not None:
            over[name] = cfg[key]
    return evaluation.get(cfg.protocol or default_name, tiny=cfg.tiny_protocol, **over)


def headline_metrics(first: evaluation.EvalResult) -> dict:
    """The first task set's headline rate (mean@n, the reports' mean pass@1) as `headline`, with its
    interval (`headline_lo`, `headline_hi`) and its name (`headline_metric`)."""
    return {"headline_metric": first.headline,
            **{k.replace(first.headline, "headline"): v for k, v in first.flat(keys=[first.headline]).items()}}


def figure(results: dict, title: str = ""):
    """pass@k and cons@k against k per task set (left), and each set's headline rate (right)."""
    plots.use_style()
    fig, (ax, bx) = plots.figure("double", ncols=2)
    all_ks = set()
    for i, (name, res) in enumerate(results.items()):
        ks = sorted(int(k.split("@")[1]) for k in res.metrics if k.startswith("pass@") and k.split("@")[1].isdigit())
        for kind, style in (("pass", "-"), ("cons", "--")):
            if not ks or f"{kind}@{ks[0]}" not in res:
                continue
            y, lo, hi = zip(*[plots.with_ci(res.metrics, f"{kind}@{k}") for k in ks])
            plots.curve_ci(ax, ks, y, lo, hi, band=True, ls=style, marker="o", ms=3, color=f"C{i}",
                           label=f"{name} {kind}@k")
        all_ks |= set(ks)
    plots.bars_ci(bx, list(results), *zip(*[plots.with_ci(r.metrics, r.headline) for r in results.values()]),
                  color=[f"C{i}" for i in range(len(results))])
    ax.set_xscale("log", base=2)
    if all_ks:
        ax.set_xticks(sorted(all_ks), [str(k) for k in sorted(all_ks)])
    ax.set_xlabel("k (samples)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(frameon=False, fontsize=6)
    bx.set_ylabel("headline rate (mean@n, or greedy_acc)")
    bx.set_ylim(0, 1)
    fig.suptitle(title if len(title) < 40 else "..." + title[-37:], fontsize=8)
    return fig


def run(cfg: Config, out_dir) -> Result:
    """Sample and grade `cfg.model` on every task set; metrics.json, samples.jsonl, fig_accuracy."""
    if not cfg.tasks:
        raise ValueError("tasks is empty: name at least one task set, e.g. tasks=['math']")
    t0 = time.time()
    out = base.start(cfg, out_dir)
    print(json.dumps(cfg.to_dict(), indent=1))
    sets = {name: load_task_set(cfg, name) for name in cfg.tasks}
    for name, (ds, default) in sets.items():
        p = protocol_for(cfg, default)
        print(f"{name}: {len(ds)} items; protocol {p.name}: n={p.n}, temperature={p.temperature}, "
              f"top_p={p.top_p}, max_new_tokens={p.max_new_tokens}, suffix={p.prompt_suffix!r}")

    spec = cfg.model
    preset_model = spec == presets.resolve(cfg.preset, Config.SECTION)["model"]
    print("model:", spec, "(the preset's; at tiny an untrained model: pass a checkpoint)" if preset_model else "")
    model_tok = models.load(spec, seed=cfg.seed)
    metrics, results, rows = {}, {}, []
    for name, (ds, default) in sets.items():
        t = time.time()
        res = evaluation.evaluate(model_tok, ds, protocol_for(cfg, default), judge=cfg.judge, workers=cfg.workers)
        results[name] = res
        metrics.update(res.flat(f"{name}/"))
        rows += [{"task_set": name, **s} for s in res.samples]
        print(f"{name}: {res.describe()}, truncated {res['truncation_rate']:.2f}  ({time.time() - t:.1f} s)")
    runinfo.write_jsonl(out / "samples.jsonl", rows)
    metrics.update({**headline_metrics(results[cfg.tasks[0]]), "n_task_sets": len(sets),
                    "wall_s": time.time() - t0})
    base.finish(out, metrics)
    plots.savefig(figure(results, spec), out / "fig_accuracy", close=True)
    print(f"done in {time.time() - t0:.1f} s")
    return Result(out_dir=out, metrics=metrics, results=results, model=spec)


if __name__ == "__main__":
    raise SystemExit(base.main(sys.modules[__name__]))

"""Merge stage (notebooks/02_spectrum_merge.ipynb): checkpoint scoring, specialists, parameter merging.

    from vtkit.stages import merge
    res = merge.run(merge.Config.from_preset("tiny", seed=0, sft_dir="runs/sft"), "runs/merge")
    python -m vtkit.stages.merge --preset tiny --out-dir runs/merge --set sft_dir=runs/sft

Diversity-exploring distillation (docs/method.md, "Spectrum"): every checkpoint the SFT stage
saved under `sft_dir/<stage>/checkpoint-*` is scored per probe group (validation split) with K
samples per problem: mean@K, pass@K and distinct@K (vtkit.spectrum.score_checkpoints). Each
group's specialist is the checkpoint with the most distinct valid solutions (`rule`), the
specialists are merged in parameter space with `weights` (uniform over groups by default), and
the merged model is compared on the test split with the last checkpoint, the best single
checkpoint and each group's specialist. Without `sft_dir`, a quick stage-1 SFT of the sft
preset's mixture (`fallback_epochs`, checkpoints every `fallback_save_steps`) makes the
checkpoints under out_dir/sft. Writes model/ (with merge.json), checkpoint_scores.csv,
merge_comparison.pdf/png, checkpoint_scores.pdf/png and metrics.json (n_checkpoints,
n_specialists, k, rule, last_checkpoint, best_single_checkpoint, specialist/<group>/checkpoint,
<model>/<group>/<rate>, <model>/mean/<rate>, merged_minus_last|best_single/mean/<rate>, wall_s).
Settings: vtkit/presets/merge.yaml.

Departures from the paper: the report gives no checkpoint interval, K or probing sets; they are
settings here. The probe and test problems are drawn with `data_seed`, fixed across seeds.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from vtkit import models, plots, spectrum, tasks, train
from vtkit.stages import base
from vtkit.stages import sft as sft_stage


@dataclass
class Config(base.StageConfig):
    SECTION: ClassVar[str] = "merge"

    generation: dict                # the kit's own sampling backend (vtkit.generate.configure, set by base.start)
    report_to: str                # experiment tracker (transformers' report_to) of the standalone SFT
    sft_dir: str | None           # the SFT stage's out_dir (stage1/, stage2/ checkpoints); None = a quick SFT here
    stages: list                  # which stages' checkpoints are scored (folders under sft_dir)
    probe: dict                   # validation-split groups that choose the specialists
    test: dict                    # test-split groups on which the models are compared
    data_seed: int                # seed of the probe and test problems (fixed across seeds)
    k: int                        # samples per problem: mean@K, pass@K, distinct@K
    temperature: float            # sampling temperature
    top_p: float                  # nucleus sampling
    max_new_tokens: int           # generation budget
    rule: str                     # specialist rule: "distinct" (most distinct valid solutions) or "pass@k"
    weights: list | None          # merge weight per probe group (sum 1); None = uniform
    fallback_epochs: float        # standalone (no sft_dir): epochs of the quick stage-1 SFT
    fallback_save_steps: int      # standalone: its checkpoint interval


@dataclass
class Result(base.StageResult):
    model: Any = None                                  # the merged model (also in out_dir/model)
    tokenizer: Any = None
    sft_dir: Path | None = None                        # where the checkpoints came from
    checkpoints: list = field(default_factory=list)    # scored checkpoint folders, in order
    labels: dict = field(default_factory=dict)         # checkpoint path -> "stage1@100"
    scores: Any = None                                 # DataFrame: checkpoint x probe group (checkpoint_scores.csv)
    specialists: dict = field(default_factory=dict)    # probe group -> checkpoint path
    best_single: str = ""                              # the best single checkpoint's path
    last: str = ""                                     # the last checkpoint's path
    sources: list = field(default_factory=list)        # the merged checkpoints
    weights: list = field(default_factory=list)        # and their weights
    results: dict = field(default_factory=dict)        # model name -> test group -> EvalResult
    figures: dict = field(default_factory=dict)        # merge_comparison, checkpoint_scores


def standalone_sft(cfg: Config, out: Path, seed: int) -> Path:
    """No sft_dir: a quick stage-1 SFT of a fresh model of the sft preset on its mixture (quality
    filtered), with checkpoints every `fallback_save_steps`; returns the folder holding stage1/."""
    sft_cfg = base.upstream_config(sft_stage.Config, None, cfg.preset)
    model, tok = models.load(sft_cfg.model, seed=seed)
    data, _ = spectrum.quality_filter(spectrum.flatten(tasks.make_groups(sft_cfg.mixture, seed=seed)))
    sft_dir = out / "sft"
    train.sft(model, tok, data, sft_dir / "stage1", epochs=cfg.fallback_epochs, lr=sft_cfg.lr,
              batch_size=sft_cfg.batch_size, max_length=sft_cfg.max_length,
              save_steps=cfg.fallback_save_steps, seed=seed, logging_steps=50, report_to=cfg.report_to)
    print(f"standalone (no sft_dir): a quick stage-1 SFT of a fresh {sft_cfg.model} on the sft preset's "
          f"mixture ({len(data)} queries, {cfg.fallback_epochs} epochs) made the checkpoints in {sft_dir}")
    return sft_dir


def find_checkpoints(sft_dir, stages) -> list[Path]:
    """The `checkpoint-<step>` folders under `sft_dir/<stage>` for each stage, stage by stage in step
    order; a FileNotFoundError saying how to make them when there are none."""
    ckpts = [p for st in stages for p in train.checkpoints(f"{sft_dir}/{st}")]
    if not ckpts:
        raise FileNotFoundError(f"no checkpoint-* folders under {sft_dir}/{{{','.join(stages)}}}; "
                                "run notebooks/01_sft_curriculum.ipynb with save_steps first, or pass its out_dir")
    return ckpts


def compare(merged, tok, test: dict, last: str, best: str, special: dict, sampling: dict) -> dict:
    """Model name -> test group -> EvalResult for the merged model, the last checkpoint, the best
    single one, and each group's specialist on its own group; each checkpoint is scored once."""
    results = {"merged": spectrum.score(merged, tok, test, n_boot=1000, **sampling)}
    cache = {}
    for p in dict.fromkeys([last, best, *special.values()]):
        m, tk = models.load(p)
        cache[p] = spectrum.score(m, tk, test, n_boot=1000, **sampling)
    results["last"], results["best_single"] = cache[last], cache[best]
    results["specialist"] = {g: cache[special[g]][g] for g in test if g in special}
    return results


def plot_comparison(results: dict, groups, k: int, path=None):
    """mean@K, pass@K and distinct@K per test group for each compared model, 95% CI bars."""
    plots.use_style()
    fig, axes = plots.figure("double", ncols=3)
    groups, kinds = list(groups), list(results)
    w = 0.8 / len(kinds)
    nan3 = (float("nan"),) * 3
    for ax, name in zip(axes, spectrum.comparison_names(k)):
        for i, mn in enumerate(kinds):
            ys, lo, hi = zip(*[plots.with_ci(results[mn][g].metrics, name) if g in results[mn] else nan3
                               for g in groups])
            ax.bar([j + (i - (len(kinds) - 1) / 2) * w for j in range(len(groups))], ys, w,
                   yerr=plots.yerr(ys, lo, hi), capsize=1.2, label=mn.replace("_", " "))
        ax.set_xticks(range(len(groups)), groups, rotation=30)
        ax.set(title=name if not name.startswith("distinct") else f"distinct valid (of {k})",
               ylim=(0, 1) if not name.startswith("distinct") else (0, None))
    axes[0].legend()
    if path is not None:
        plots.savefig(fig, path, close=True)
    return fig


def plot_checkpoint_scores(rows, labels: dict, k: int, path=None):
    """distinct@K and pass@K on the probe groups along the checkpoints."""
    plots.use_style()
    fig, axes = plots.figure("double", ncols=2)
    for ax, key in zip(axes, (f"distinct@{k}", f"pass@{k}")):
        for g, sub in rows.groupby("group", sort=False):
            ax.plot(sub["index"], sub[key], marker="o", label=g)
        ax.set_xticks(range(len(labels)), list(labels.values()), rotation=30)
        ax.set(ylabel=key + " (probe)", title="checkpoint scores")
    axes[0].legend()
    if path is not None:
        plots.savefig(fig, path, close=True)
    return fig


def run(cfg: Config, out_dir) -> Result:
    t0 = time.time()
    out = base.start(cfg, out_dir)
    seed = cfg.seed
    sft_dir = Path(cfg.sft_dir) if cfg.sft_dir is not None else standalone_sft(cfg, out, seed)
    ckpts = find_checkpoints(sft_dir, cfg.stages)
    labels = {str(p): spectrum.checkpoint_label(p) for p in ckpts}
    last = str(ckpts[-1])
    probe = tasks.make_groups(cfg.probe, seed=cfg.data_seed, split="validation")
    test = tasks.make_groups(cfg.test, seed=cfg.data_seed, split="test")
    K = cfg.k   # metric names as everywhere in the kit: mean@K (pass@1 from K samples), pass@K, distinct@K
    sampling = dict(k=cfg.k, temperature=cfg.temperature, top_p=cfg.top_p, max_new_tokens=cfg.max_new_tokens,
                    seed=seed, batch_size=128)
    print(f"{len(ckpts)} checkpoints: {', '.join(labels.values())}; probe { {g: len(v) for g, v in probe.items()} }, "
          f"test { {g: len(v) for g, v in test.items()} }, K = {cfg.k}  [{time.time() - t0:.0f} s]")

    t = time.time()   # scoring every checkpoint on the probing sets
    rows = pd.DataFrame(spectrum.score_checkpoints(ckpts, probe, n_boot=200, **sampling))
    rows["label"] = rows["checkpoint"].map(labels)
    rows.to_csv(out / "checkpoint_scores.csv", index=False)
    print(rows.pivot(index="label", columns="group", values=f"distinct@{K}").reindex(labels.values()).round(2)
          .to_string())
    print(f"(distinct valid solutions per problem)  [{time.time() - t:.0f} s]")

    t = time.time()   # specialists and the merge
    special = spectrum.select_specialists(rows, rule=cfg.rule)
    best = spectrum.best_single(rows, rule=cfg.rule)
    paths, w = spectrum.specialist_weights(special, cfg.weights)
    blind = spectrum.blind_groups(rows)
    for g, p in special.items():
        print(f"specialist for {g:9s}: {labels[p]}" + ("  (no checkpoint solved a probe problem: ties go to the latest)"
                                                        if g in blind else ""))
    print(f"best single checkpoint: {labels[best]}; last: {labels[last]}")
    print("merge: " + " + ".join(f"{x:.3f} * {labels[p]}" for p, x in zip(paths, w)))
    merged = spectrum.merge_checkpoints(paths, w)
    tok = models.load(paths[0])[1]
    spectrum.save_merged(merged, tok, out / "model", sources=paths, weights=w)
    print(f"[{time.time() - t:.0f} s]")

    t = time.time()   # merged vs last vs best single vs specialists, on held-out test problems
    results = compare(merged, tok, test, last, best, special, sampling)
    metrics = {"n_checkpoints": len(ckpts), "n_specialists": len(paths), "k": cfg.k, "rule": cfg.rule,
               "last_checkpoint": labels[last], "best_single_checkpoint": labels[best]}
    metrics.update({f"specialist/{g}/checkpoint": labels[p] for g, p in special.items()})
    metrics.update(spectrum.comparison_metrics(results, K))
    table = pd.DataFrame(spectrum.comparison_table(results, K))
    print(table.pivot(index="model", columns="group", values=f"pass@{K}").round(2).to_string())
    print(f"(Pass@{cfg.k} on the test split)")
    for name in spectrum.comparison_names(K):
        print(f"mean {name:11s}: " + "  ".join(f"{mn.replace('_', ' ')} {metrics[f'{mn}/mean/{name}']:.3f}"
                                              for mn in spectrum.COMPARED))
    print(f"[{time.time() - t:.0f} s]")

    figures = {"merge_comparison": plot_comparison(results, test, K, out / "merge_comparison"),
               "checkpoint_scores": plot_checkpoint_scores(rows, labels, K, out / "checkpoint_scores")}
    metrics["wall_s"] = time.time() - t0
    base.finish(out, metrics)
    print(f"wall {metrics['wall_s']:.0f} s")
    return Result(out_dir=out, metrics=metrics, model=merged, tokenizer=tok, sft_dir=sft_dir, checkpoints=ckpts,
                  labels=labels, scores=rows, specialists=special, best_single=best, last=last, sources=paths,
                  weights=w, results=results, figures=figures)


if __name__ == "__main__":
    raise SystemExit(base.main(sys.modules[__name__]))

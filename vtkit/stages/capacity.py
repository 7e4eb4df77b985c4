"""Stage `capacity` (notebook 10): one tiny model trained from scratch on knowledge, reasoning or both,
measured in bits stored and reasoning accuracy in and out of distribution.

    from vtkit.stages import capacity
    cfg = capacity.Config.from_preset("tiny", seed=0, model="tiny-50k", mode="mixture")
    res = capacity.run(cfg, "runs/capacity")       # -> metrics.json, train_log.json, fig_probe.{pdf,png}

    python -m vtkit.stages.capacity --preset tiny --out-dir runs/capacity --set model=tiny-50k

Steps, in order: the corpus (vtkit.corpora.probe_corpus: in the capacity design capacity_factor x the
model's 2 bits/param ceiling of people, each seen `exposures` times, plus the reasoning problems),
training (vtkit.train.train_lm: one pass, or in reasoning mode until the held-out loss stops
improving), knowledge in bits net of the untrained model (vtkit.capacity.knowledge_eval), greedy
accuracy (and pass@k) on held-out problems of the trained depths and deeper ones
(vtkit.capacity.reasoning_eval), then metrics.json (vtkit.capacity.probe_metrics) and the figure.
Besides the clamped bits (`bits`, `bits_per_param`) metrics.json carries the sum without the clamp at
0 per fact (`bits_stored_unclamped`, `bits_per_param_unclamped`) and bits per non-embedding
parameter (`params_nonembedding`, `bits_per_param_nonembedding`).
The measures and where they depart from Allen-Zhu & Li are in vtkit.capacity's docstring. A sweep
over sizes (experiments/capacity_scaling.yaml) feeds stage `figures`.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import pandas as pd

from vtkit import capacity, corpora, models, plots, runinfo, train
from vtkit.stages import base


@dataclass
class Config(base.StageConfig):
    SECTION: ClassVar[str] = "capacity"

    model: str                     # a tiny size (vtkit.models.TINY_SIZES), trained from scratch
    mode: str                      # knowledge | reasoning | mixture
    exposures: int                 # times each fact is seen in training
    capacity_factor: float | None  # bits offered / (2 bits/param x params); None: the budget design
    knowledge_format: str          # coded (9 tokens a person) | prose (bioS biographies)
    token_budget: int | None       # budget design only: tokens every mode fills
    n_people: int | None           # None: capacity_people(params, capacity_factor) (or what the budget holds)
    max_depth: int                 # train on problems with 1..max_depth operations
    ood_depth: int                 # out of distribution: max_depth+1..ood_depth operations
    ops: str | None                # math operation mix: add, mul, mixed, or None = all three
    math_kw: dict                  # further math-generator options (mod, shuffle)
    n_problems: int                # distinct training problems (capacity design)
    n_val: int                     # held-out training-split problems for early stopping
    max_epochs: int                # reasoning mode: at most this many passes
    patience: int                  # reasoning mode: validation measurements without improvement before stopping
    mix_epochs: int                # mixture: passes over the problems beside the single pass over the facts
    lr: float | None               # None: lr_by_model[model]
    lr_by_model: dict              # the learning rate per size
    batch_size: int                # most rows per step
    batch_tokens: int | None       # tokens per step (rows x the longest row); None: batch_size rows
    max_length: int                # documents are cut to this many tokens
    n_eval: int                    # held-out problems per split (in / out of distribution)
    pass_k: int                    # samples per problem for pass@k (0: greedy only)
    knowledge_subset: int | None   # prose format: people scored set-normalised (the rest scale up)
    baseline_people: int           # prose format: people the untrained model is scored on
    save_model: bool               # keep the trained model in out_dir/model
    report_to: str                 # none | tensorboard (train_lm's events under out_dir/tensorboard)


@dataclass
class Result(base.StageResult):
    config: Config | None = None
    log: dict = field(default_factory=dict)           # train_lm's log (losses, val_losses, best_step, ...)
    knowledge: dict = field(default_factory=dict)     # knowledge_eval + per-parameter numbers
    person_bits: object = None                        # bits stored per person, net of the baseline (coded format)
    reasoning_id: dict = field(default_factory=dict)  # reasoning_eval in distribution (without samples)
    reasoning_ood: dict = field(default_factory=dict)
    samples: pd.DataFrame | None = None               # graded completions, with split id / ood
    by_depth: pd.Series | None = None                 # greedy accuracy by number of operations
    figures: list = field(default_factory=list)       # the saved figure files (fig_probe.pdf, .png)


def check(cfg: Config) -> None:
    """The settings run() refuses before training, with the fix."""
    if cfg.model not in models.TINY_SIZES:
        raise ValueError(f"model must be a tiny size trained from scratch ({', '.join(models.TINY_SIZES)}), "
                         f"got {cfg.model!r}")
    if cfg.ood_depth <= cfg.max_depth:
        raise ValueError(f"ood_depth ({cfg.ood_depth}) must exceed max_depth ({cfg.max_depth})")


def run(cfg: Config, out_dir) -> Result:
    t_start = time.time()
    out = base.start(cfg, out_dir)
    check(cfg)
    cfg = cfg.replace(lr=capacity.learning_rate(cfg.lr, cfg.lr_by_model, cfg.model))  # None: the per-size table
    runinfo.write_json(out / "config.json", {"section": cfg.SECTION, **cfg.to_dict()})  # the rate actually used
    seed = cfg.seed
    net, tok = models.load(cfg.model, seed=seed, dtype="float32")  # fp32 weights (bf16 autocast on GPU)
    n_params = models.param_count(net)
    print({k: cfg[k] for k in ("model", "mode", "exposures", "capacity_factor", "knowledge_format", "lr")},
          f"params={n_params:,}")

    t0 = time.time()
    corpus = corpora.probe_corpus(cfg.mode, cfg.token_budget, cfg.exposures, tok, max_depth=cfg.max_depth,
                                  seed=seed, n_people=cfg.n_people, ops=cfg.ops, math_kw=cfg.math_kw,
                                  knowledge_format=cfg.knowledge_format, n_params=n_params,
                                  capacity_factor=cfg.capacity_factor, n_problems=cfg.n_problems,
                                  n_val=cfg.n_val, mix_epochs=cfg.mix_epochs)
    info = {k: v for k, v in corpus.items() if k not in ("texts", "val", "people", "eval_people")}
    print(info, f"({time.time() - t0:.1f} s)")

    t0 = time.time()
    early = cfg.mode == "reasoning" and cfg.capacity_factor is not None  # train to convergence
    log = train.train_lm(net, tok, corpus["texts"], lr=cfg.lr, batch_size=cfg.batch_size, max_length=cfg.max_length,
                         batch_tokens=cfg.batch_tokens, seed=seed, epochs=cfg.max_epochs if early else 1,
                         val=corpus["val"] if early else None, patience=cfg.patience, out_dir=out,
                         report_to=cfg.report_to)
    val_loss = train.lm_loss(net, tok, corpus["val"]) if corpus["val"] else float("nan")
    train_s = time.time() - t0
    runinfo.write_json(out / "train_log.json", log)
    print(f"{log['steps']} of {log['steps_planned']} steps ({log['epochs_run']:.1f} epochs), {log['tokens']:,} tokens "
          f"at {log['tokens_per_s']:,.0f} tok/s, final loss {log['final_loss']:.3f}, held-out reasoning loss "
          f"{val_loss:.3f}{' (early stop)' if log['stopped_early'] else ''} ({train_s:.1f} s)")
    if cfg.save_model:
        models.save(net, tok, out / "model")

    t0 = time.time()
    untrained, _ = models.load(cfg.model, seed=seed, dtype="float32")
    kn = capacity.knowledge_eval(net, tok, corpus["eval_people"], subset=cfg.knowledge_subset, untrained=untrained,
                                 baseline_people=cfg.baseline_people, seed=seed, knowledge_format=cfg.knowledge_format)
    del untrained
    person_bits = kn.pop("person_bits", None)
    kn = capacity.knowledge_per_param(kn, n_params)
    print({k: round(v, 4) if isinstance(v, float) else v for k, v in kn.items()}, f"({time.time() - t0:.1f} s)")

    t0 = time.time()
    mod = cfg.math_kw.get("mod", 23)
    ev = dict(n=cfg.n_eval, k=cfg.pass_k, seed=seed, samples=True, ops=cfg.ops, math_kw=cfg.math_kw)
    rs_id = capacity.reasoning_eval(net, tok, depths=(1, cfg.max_depth), **ev)
    rs_ood = capacity.reasoning_eval(net, tok, depths=(cfg.max_depth + 1, cfg.ood_depth), **ev)
    eval_s = time.time() - t0
    rows = [{**s, "split": split} for split, r in (("id", rs_id), ("ood", rs_ood)) for s in r.pop("samples")]
    runinfo.write_jsonl(out / "reasoning_samples.jsonl", rows)
    samples = pd.DataFrame(rows)
    by_depth = samples[samples["mode"] == "greedy"].groupby("difficulty")["correct"].mean()
    for name, r in (("in distribution", rs_id), ("out of distribution", rs_ood)):
        print(f"{name}: greedy acc {r['greedy_acc']:.3f} [{r['greedy_acc_lo']:.3f}, {r['greedy_acc_hi']:.3f}]"
              f" (chance {1 / mod:.3f})")
    print("greedy accuracy by number of operations:", by_depth.round(3).to_dict())
    print(samples[samples["mode"] == "greedy"].iloc[0]["text"][:300])

    metrics = capacity.probe_metrics(
        params=n_params, params_embed=capacity.embedding_params(net), corpus=corpus, log=log,
        val_loss=val_loss, knowledge=kn, reasoning_id=rs_id, reasoning_ood=rs_ood, mod=mod, pass_k=cfg.pass_k,
        train_s=train_s, eval_s=eval_s, wall_s=time.time() - t_start)
    base.finish(out, metrics)
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()}, indent=None))
    res = Result(out_dir=Path(out), metrics=metrics, config=cfg, log=log, knowledge=kn, person_bits=person_bits,
                 reasoning_id=rs_id, reasoning_ood=rs_ood, samples=samples, by_depth=by_depth)
    res.figures = plots.savefig(figure(res), out / "fig_probe", close=True)
    return res


def figure(res: Result):
    """The run's figure: training (and held-out reasoning) loss by step; knowledge fraction by
    attribute (orange) beside greedy accuracy by number of operations (blue: trained depths, red: OOD)."""
    cfg, log, kn, by_depth = res.config, res.log, res.knowledge, res.by_depth
    mod = res.metrics["mod"]
    fig, (ax1, ax2) = plots.figure("double", ncols=2)
    steps, losses = zip(*log["losses"])
    ax1.plot(steps, losses, label="training loss")
    if log["val_losses"]:
        ax1.plot(*zip(*log["val_losses"]), "o-", label="held-out reasoning loss")
        ax1.axvline(log["best_step"], color="0.5", ls=":", lw=0.8)
    ax1.set_xlabel("step")
    ax1.set_ylabel("loss (nats/token)")
    ax1.set_yscale("log")
    ax1.legend(fontsize=6)
    ax1.set_title(f"{cfg.model}, {cfg.mode}", fontsize=8)
    attrs = [a for a in kn if a.startswith("fraction_") and a != "fraction_raw"]
    bars = {a.removeprefix("fraction_"): kn[a] for a in attrs} | {f"{d} ops": v for d, v in by_depth.items()}
    colors = ["C1"] * len(attrs) + ["C0" if d <= cfg.max_depth else "C3" for d in by_depth.index]
    ax2.bar(range(len(bars)), list(bars.values()), color=colors)
    ax2.axhline(1 / mod, color="C0", ls=":", lw=0.8)
    ax2.set_xticks(range(len(bars)), list(bars.keys()), rotation=45, ha="right")
    ax2.set_ylim(0, 1)
    ax2.set_ylabel("fraction known / accuracy")
    ax2.set_title("knowledge by attribute (orange), reasoning by depth (blue: trained, red: OOD)", fontsize=7)
    return fig


if __name__ == "__main__":
    raise SystemExit(base.main(sys.modules[__name__]))

"""Quickstart stage (notebooks/00_quickstart.ipynb): a tiny model, one task, SFT, greedy accuracy and pass@k.

    from vtkit.stages import quickstart
    res = quickstart.run(quickstart.Config.from_preset("tiny", seed=0), "runs/quickstart")
    python -m vtkit.stages.quickstart --preset tiny --out-dir runs/quickstart --set epochs=3

Builds `cfg.model` with the seed (fresh weights at tiny), draws disjoint train/test problems from
vtkit.tasks, measures greedy accuracy, fine-tunes with trl's SFTTrainer (vtkit.train.sft), then
measures greedy accuracy again and an unbiased pass@k curve from `n_samples` samples at T = 1.
Writes model/, sft/ (trainer log), quickstart.pdf/png and metrics.json (params,
greedy_acc_before, greedy_acc with its interval, train_loss_first/last, train_steps, pass@k,
mean_tokens, truncation_rate). Settings: vtkit/presets/quickstart.yaml. No paper counterpart:
this is the kit's smoke test, not a VibeThinker recipe.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import Any, ClassVar

from vtkit import evaluation, models, plots, tasks, train
from vtkit.stages import base

KS = (1, 2, 4, 8, 16, 32, 64)   # the pass@k curve's k values, up to n_samples


@dataclass
class Config(base.StageConfig):
    SECTION: ClassVar[str] = "quickstart"

    report_to: str              # experiment tracker (transformers' report_to): none or tensorboard
    model: str                  # model spec: a tiny size (fresh weights), smollm2-135m, hub id or path
    domain: str                 # vtkit.tasks domain
    difficulty: int | list      # operations per problem (or a [lo, hi] range)
    task_kw: dict               # further vtkit.tasks.make keywords (mod, subdomain, shuffle)
    n_train: int                # training problems
    n_test: int                 # held-out test problems
    epochs: float               # SFT epochs
    lr: float                   # SFT peak learning rate
    batch_size: int             # SFT batch size
    max_length: int             # SFT maximum sequence length in tokens
    n_samples: int              # samples per test problem for pass@k
    max_new_tokens: int         # generation budget of every evaluation

    def context_needs(self) -> list[tuple]:
        from vtkit import context
        return [(self.model, max(self.max_length, context.PROMPT_TOKENS + self.max_new_tokens),
                 "max_length / prompt + max_new_tokens")]


@dataclass
class Result(base.StageResult):
    model: Any = None                               # the fine-tuned model
    tokenizer: Any = None
    before: evaluation.EvalResult | None = None     # greedy, untrained
    after: evaluation.EvalResult | None = None      # greedy, trained
    sampled: evaluation.EvalResult | None = None    # n_samples at T = 1: pass@k
    ks: tuple = ()
    curve: list = field(default_factory=list)       # (step, training loss)
    figures: dict = field(default_factory=dict)  # quickstart: the loss / pass@k figure (saved as quickstart.pdf/png)


def pass_ks(n_samples: int) -> tuple[int, ...]:
    """The k values of the pass@k curve that `n_samples` samples per problem can estimate."""
    if not isinstance(n_samples, int) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive int (samples per test problem), got {n_samples!r}")
    return tuple(k for k in KS if k <= n_samples)


def summary_metrics(params: int, before, after, curve, sampled, ks) -> dict:
    """metrics.json of the stage: greedy accuracy before/after (with interval), the loss curve's
    ends, pass@k for each k, and the sampled run's mean length and truncation rate."""
    if not curve:
        raise ValueError("no training loss was logged: train for at least one step")
    return {
        "params": params,
        "greedy_acc_before": before.acc,
        **after.flat(keys=["greedy_acc"]),
        "train_loss_first": curve[0][1], "train_loss_last": curve[-1][1], "train_steps": curve[-1][0],
        **{f"pass@{k}": sampled[f"pass@{k}"] for k in ks},
        "mean_tokens": sampled["mean_tokens"], "truncation_rate": sampled["truncation_rate"],
    }


def plot(curve, sampled, after, ks, path=None):
    """Training loss (log scale) and the pass@k curve with 95% intervals, the greedy accuracy dashed;
    saved to `path` (.pdf and .png) when given."""
    plots.use_style()
    fig, (a, b) = plots.figure("double", ncols=2)
    a.plot(*zip(*curve))
    a.set(xlabel="step", ylabel="training loss", yscale="log", title="SFT")
    a.set_yscale("log")
    plots.curve_ci(b, ks, *zip(*[plots.with_ci(sampled.metrics, f"pass@{k}") for k in ks]), label="pass@k (T = 1)")
    b.axhline(after.acc, ls="--", c="gray", label="greedy")
    b.set(xscale="log", xlabel="k (samples)", ylabel="pass@k", ylim=(0, 1), title="held-out test")
    b.set_xticks(ks, [str(k) for k in ks])
    b.legend()
    if path is not None:
        plots.savefig(fig, path, close=True)
    return fig


def run(cfg: Config, out_dir) -> Result:
    out = base.start(cfg, out_dir)
    seed = cfg.seed
    print(json.dumps(cfg.to_dict(), indent=1))
    # model and data
    net, tok = models.load(cfg.model, seed=seed, context=cfg.context_for(cfg.model))
    task = dict(seed=seed, difficulty=cfg.difficulty, **cfg.task_kw)
    train_set = tasks.make(cfg.domain, cfg.n_train, split="train", **task)
    test_set = tasks.make(cfg.domain, cfg.n_test, split="test", **task)
    print(f"{cfg.model}: {models.param_count(net):,} parameters; {len(train_set)} train / {len(test_set)} test problems")
    print(train_set[0]["prompt"], "\n---\n", train_set[0]["solutions"][0], sep="")
    # before training: greedy
    greedy = evaluation.get("greedy", domain=cfg.domain, max_new_tokens=cfg.max_new_tokens, seed=seed)
    before = evaluation.evaluate((net, tok), test_set, greedy)
    print("before training:", before.describe())
    # supervised fine-tuning
    net, log = train.sft(net, tok, train_set, out / "sft", epochs=cfg.epochs, lr=cfg.lr, batch_size=cfg.batch_size,
                         max_length=cfg.max_length, seed=seed, report_to=cfg.report_to)
    curve = train.loss_curve(log)
    print(f"training loss {curve[0][1]:.3f} -> {curve[-1][1]:.3f} over {curve[-1][0]} steps")
    models.save(net, tok, out / "model")
    # after training: greedy, then n_samples at T = 1 for pass@k
    after = evaluation.evaluate((net, tok), test_set, greedy)
    ks = pass_ks(cfg.n_samples)
    sampling = evaluation.get("vibethinker-math", tiny=True, domain=cfg.domain, n=cfg.n_samples, temperature=1.0,
                              top_p=0.95, ks=ks, prompt_suffix="", max_new_tokens=cfg.max_new_tokens, seed=seed)
    pk = evaluation.evaluate((net, tok), test_set, sampling)
    print("after training:", after.describe())
    arith = evaluation.arith_metrics("", list(test_set), after, start=before, seed=seed)
    if arith:
        print("after training, by arithmetic:", evaluation.arith_line("", arith))
    for k in ks:
        print(f"pass@{k}: {pk[f'pass@{k}']:.3f} [{pk[f'pass@{k}_lo']:.3f}, {pk[f'pass@{k}_hi']:.3f}]")
    print("example completion:\n" + after.samples[0]["text"])
    fig = plot(curve, pk, after, ks, out / "quickstart")
    metrics = {**summary_metrics(models.param_count(net), before, after, curve, pk, ks), **arith}
    base.finish(out, metrics)
    return Result(out_dir=out, metrics=metrics, model=net, tokenizer=tok, before=before, after=after,
                  sampled=pk, ks=ks, curve=curve, figures={"quickstart": fig})


if __name__ == "__main__":
    raise SystemExit(base.main(sys.modules[__name__]))

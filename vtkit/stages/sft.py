"""SFT stage (notebooks/01_sft_curriculum.ipynb): two-stage curriculum SFT, the Spectrum phase's training.

    from vtkit.stages import sft
    res = sft.run(sft.Config.from_preset("tiny", seed=0), "runs/sft")
    python -m vtkit.stages.sft --preset tiny --out-dir runs/sft --set epochs1=3

The recipe (docs/method.md, "Spectrum"): a multi-path pool from `cfg.mixture` (the tasks'
reference solutions, or a teacher's rejection-sampled traces when `cfg.teacher` is set), cleaned
by `vtkit.spectrum.quality_filter` (duplicates, loops, overlap with the held-out groups and
`benchmarks`, wrong traces); stage 1 trains on all of it; stage 2, from the stage-1 model, on
traces of at least `min_tokens` tokens whose queries the reference model (`cfg.reference`, else
the stage-1 model) gets wrong in >= `error_threshold` of `n_rollouts` samples. Greedy held-out
accuracy per `eval` group before and after each stage, with paired gains. Checkpoints every
`save_steps` in stage1/ and stage2/ (the merge stage scores them); the final model in model/.
`epochs2 = 0` skips stage 2 and its filters: one-stage SFT (the plain recipe; vtkit.stages.ablation).
Writes metrics.json (before|stage1|stage2/<group>/greedy_acc, .../gain, stage1|stage2/filter/...,
stage1|stage2/steps, loss_first, loss_last, n_checkpoints, wall_s), stage2_error_rates.json and
sft_curriculum.pdf/png. Settings: vtkit/presets/sft.yaml.

Departures from the paper: at tiny the traces are reference solutions (no teacher) and the stage-2
reference is the stage-1 model; the stage-2 length bound is scaled to tiny traces (55 tokens, the
report's 5K); `lr2` may replace the stage-1 learning rate in stage 2 (the report reuses it).
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

from vtkit import batching, evaluation, hubdata, models, plots, presets, runinfo, spectrum, train
from vtkit.stages import base

STAGES = ("before", "stage1", "stage2")   # the held-out evaluations, in order
GAINS = (("before", "stage1"), ("stage1", "stage2"))   # paired gains: (from, to)


@dataclass
class Config(base.StageConfig):
    SECTION: ClassVar[str] = "sft"

    generation: dict                # the kit's own sampling backend (vtkit.generate.configure, set by base.start)
    report_to: str                  # experiment tracker (transformers' report_to): none or tensorboard
    model: str                      # starting model spec (a tiny size = fresh weights); the notebook's init_model
    teacher: str | None             # model spec that writes the traces by rejection sampling; None = reference solutions
    mixture: dict                   # stage-1 pool: group -> {n, tasks.make keywords}
    eval: dict                      # held-out groups, greedy; `hard` is the stage-2 target
    heldout_split: str                # "test" for the reported numbers, "validation" for choosing settings (screens)
    benchmarks: list                # vtkit.evalsets names to decontaminate against, besides the eval groups
    overlap_n: int | str | None     # n-gram length for decontamination; "domain" = vtkit.tasks.OVERLAP_N
    hub_data: dict | None           # hub datasets replacing the mixture/eval groups of their domains (vtkit.hubdata); None = generated
    teacher_samples: int            # (teacher only) samples per query for rejection sampling
    max_paths: int                  # (teacher only) distinct verified traces kept per query
    epochs1: float                  # stage-1 epochs
    epochs2: float                  # stage-2 epochs; 0 = one-stage SFT (no stage-2 filters or training)
    lr: float                       # stage-1 peak learning rate (cosine to lr/625)
    lr2: float | None               # stage-2 peak learning rate; None = lr
    warmup: float                   # linear warmup, a fraction of the steps (or a step count >= 1)
    batch_size: int                 # per-device batch
    grad_accum: int                 # gradient accumulation (global batch = batch_size x grad_accum)
    micro_batch: int | None         # rows a GPU holds per forward/backward (vtkit.batching); None = batch_size / processes
    max_length: int                 # maximum sequence length in tokens
    save_steps: int                 # checkpoint interval in both stages
    min_tokens: int                 # stage 2: minimum trace length in tokens
    n_rollouts: int                 # stage 2: reference rollouts per query
    error_threshold: float          # stage 2: minimum reference error rate of a kept query
    max_rollout_queries: int | None  # stage 2: roll out on at most this many length survivors; None = all
    reference: str | None           # stage-2 reference model; None = the stage-1 model itself
    temperature: float              # rollouts and teacher sampling
    top_p: float                    # rollouts and teacher sampling
    max_new_tokens: int             # rollouts, teacher sampling and evaluation

    def context_needs(self) -> list[tuple]:
        from vtkit import context
        gen = context.PROMPT_TOKENS + self.max_new_tokens
        return [(self.model, max(self.max_length, gen), "max_length / prompt + max_new_tokens"),
                (self.teacher, gen, "prompt + max_new_tokens"), (self.reference, gen, "prompt + max_new_tokens")]


@dataclass
class Result(base.StageResult):
    model: Any = None                                # the stage-2 model (also saved in out_dir/model)
    tokenizer: Any = None
    heldout: dict = field(default_factory=dict)     # group -> held-out test records
    data1: list = field(default_factory=list)       # stage-1 records (after the quality filters)
    data2: list = field(default_factory=list)       # stage-2 records
    evals: dict = field(default_factory=dict)       # "before"|"stage1"|"stage2" -> group -> EvalResult
    curves: dict = field(default_factory=dict)      # "stage1"|"stage2" -> [(step, loss)]
    checkpoints: dict = field(default_factory=dict)  # "stage1"|"stage2" -> [checkpoint folders]
    figures: dict = field(default_factory=dict)  # sft_curriculum: loss curves and held-out accuracy (sft_curriculum.pdf/png)


# ------------------------------------------------------------------------------------ data

def stage1_data(cfg: Config, seed: int) -> tuple[list[dict], dict, dict]:
    """The stage-1 pool (reference solutions, or the teacher's verified samples), the held-out
    groups, and the filters' counts; returns (records, held-out groups, metrics)."""
    metrics = {}
    # hub_data None: tasks.make_groups; else hub datasets replace the groups of their domains
    pool = spectrum.flatten(hubdata.make_groups(cfg.hub_data, cfg.mixture, seed=seed, split="train"))
    heldout = hubdata.make_groups(cfg.hub_data, cfg.eval, seed=seed, split=cfg.heldout_split)
    evalsets = list(heldout.values())
    if cfg.benchmarks:
        from vtkit import evalsets as vev
        evalsets += [[dict(r) for r in vev.load(b)] for b in cfg.benchmarks]
    if cfg.teacher:
        tmodel, ttok = models.load(cfg.teacher, seed=seed, context=cfg.context_for(cfg.teacher))
        pool, tcounts = spectrum.teacher_traces(tmodel, ttok, pool, n=cfg.teacher_samples, max_paths=cfg.max_paths,
                                                temperature=cfg.temperature, top_p=cfg.top_p,
                                                max_new_tokens=cfg.max_new_tokens, seed=seed)
        del tmodel
        metrics.update({f"teacher/{k}": v for k, v in tcounts.items()})
        print(f"teacher {cfg.teacher}: rejection sampling kept {tcounts['traces_out']} traces for "
              f"{tcounts['queries_out']} of {tcounts['queries_in']} queries")
    else:
        print("traces: the tasks' reference solutions (no teacher at this preset)")
    data1, c1 = spectrum.quality_filter(pool, eval_sets=evalsets, overlap_n=cfg.overlap_n)
    metrics.update({f"stage1/filter/{k}": v for k, v in c1.items()})
    print(json.dumps(c1))
    return data1, heldout, metrics


def describe_data(data, heldout) -> str:
    """One line: queries, traces, multi-path queries, held-out group sizes."""
    paths = [len(r["solutions"]) for r in data]
    return (f"stage-1 data: {len(data)} queries, {sum(paths)} traces ({sum(p > 1 for p in paths)} queries with "
            f"several paths); held-out: { {g: len(v) for g, v in heldout.items()} }")


# ------------------------------------------------------------------------------ evaluation

def evaluate(model, tok, heldout: dict, cfg: Config, seed: int) -> dict:
    """Greedy held-out accuracy per group (one sample, graded by the domain's verifier)."""
    return spectrum.score(model, tok, heldout, k=1, temperature=0.0, max_new_tokens=cfg.max_new_tokens,
                          seed=seed, batch_size=128)


def accuracy_metrics(name: str, results: dict) -> dict:
    """`<name>/<group>/greedy_acc` (with its _lo/_hi) for each group's EvalResult."""
    out = {}
    for g, res in results.items():
        out.update(res.flat(f"{name}/{g}/", keys=["greedy_acc"]))
    return out


def describe_accuracy(name: str, results: dict) -> str:
    return f"{name:7s} " + "  ".join(f"{g} {r.acc:.2f}" for g, r in results.items())


def gain_metrics(evals: dict, seed: int) -> dict:
    """Paired gains (same problems, bootstrap interval) of stage 1 over before and stage 2 over
    stage 1, per group: `<to>/<group>/gain`, `_lo`, `_hi`."""
    out = {}
    for g in evals[list(evals)[-1]]:
        for a, b in GAINS:
            if a in evals and b in evals:
                out.update({f"{b}/{g}/{k}": v for k, v in evaluation.paired_gain(evals[a][g], evals[b][g], seed=seed).items()})
    return out


# -------------------------------------------------------------------------------- training

def train_stage(model, tok, data, out_dir, cfg: Config, *, epochs: float, lr: float, logging_steps: int, seed: int):
    """One SFT stage with the preset's shared settings and checkpoints; returns (model, log, checkpoints)."""
    model, log = train.sft(model, tok, data, out_dir, epochs=epochs, lr=lr, warmup=cfg.warmup,
                           **batching.sft_args(cfg.batch_size, cfg.grad_accum, cfg.micro_batch), max_length=cfg.max_length,
                           save_steps=cfg.save_steps, seed=seed, logging_steps=logging_steps, report_to=cfg.report_to)
    return model, log, train.checkpoints(out_dir)


def stage_metrics(name: str, log, ckpts) -> dict:
    """`<name>/steps` (optimizer steps taken), `loss_first`, `loss_last` (logged points) and `n_checkpoints`."""
    curve = train.loss_curve(log)
    if not curve:
        raise ValueError(f"{name}: the trainer logged no loss; train for at least one step")
    return {f"{name}/steps": max(h["step"] for h in log), f"{name}/loss_first": curve[0][1],
            f"{name}/loss_last": curve[-1][1], f"{name}/n_checkpoints": len(ckpts)}


def describe_stage(name: str, log, ckpts) -> str:
    curve, m = train.loss_curve(log), stage_metrics(name, log, ckpts)
    return (f"{name.replace('stage', 'stage ')}: loss {curve[0][1]:.2f} -> {curve[-1][1]:.2f} (logged at step "
            f"{curve[-1][0]}) over {m[f'{name}/steps']} steps; {len(ckpts)} checkpoints")


# ------------------------------------------------------------------------------ stage 2 data

def stage2_data(data1, model, tok, cfg: Config, seed: int) -> tuple[list[dict], list[dict], list[float], dict]:
    """The stage-2 filters (vtkit.spectrum.stage2_filter): traces of >= min_tokens tokens, then
    queries the reference (cfg.reference, else `model`) gets wrong in >= error_threshold of
    n_rollouts samples. Returns (records, probed records, their error rates, metrics
    `stage2/filter/...` with `mean_error_rate`, None when nothing was probed). Raises when no
    query survives, naming the settings to lower."""
    ref, rtok = (models.load(cfg.reference, seed=seed, context=cfg.context_for(cfg.reference)) if cfg.reference
                 else (model, tok))
    data2, survive, probe, rates = spectrum.stage2_filter(
        data1, ref, rtok, min_tokens=cfg.min_tokens, n_rollouts=cfg.n_rollouts, threshold=cfg.error_threshold,
        max_queries=cfg.max_rollout_queries, seed=seed, temperature=cfg.temperature, top_p=cfg.top_p,
        max_new_tokens=cfg.max_new_tokens, batch_size=128)
    metrics = {f"stage2/filter/{k}": v for k, v in survive.items()}
    metrics["stage2/filter/mean_error_rate"] = sum(rates) / len(rates) if rates else None
    print(json.dumps(survive))
    print(f"reference: {cfg.reference or 'the stage-1 model'}; mean error rate on probed queries "
          f"{metrics['stage2/filter/mean_error_rate'] if rates else float('nan'):.2f}")
    if not data2:
        raise RuntimeError("stage 2 has no data: no query passed the filters; lower min_tokens or error_threshold")
    return data2, probe, rates, metrics


# --------------------------------------------------------------------------------- figure

def plot(curves: dict, checkpoints: dict, metrics: dict, groups, path=None):
    """Left: both stages' loss curves (stage 2 after stage 1's last logged step), checkpoints grey.
    Right: held-out greedy accuracy per group before / after stage 1 / after stage 2, 95% CI."""
    plots.use_style()
    fig, (a, b) = plots.figure("double", ncols=2)
    curve1, curve2 = curves["stage1"], curves["stage2"]
    n1 = curve1[-1][0]
    a.plot(*zip(*curve1), label="stage 1")
    a.plot([s + n1 for s, _ in curve2], [v for _, v in curve2], label="stage 2")
    for p in checkpoints["stage1"] + checkpoints["stage2"]:
        a.axvline(int(p.name.split("-")[-1]) + (n1 if p.parent.name == "stage2" else 0), c="0.85", lw=0.6, zorder=0)
    a.set(xlabel="step", ylabel="training loss", yscale="log", title="SFT (grey: checkpoints)")
    a.legend()
    groups = list(groups)
    w = 0.27
    for i, name in enumerate(n for n in STAGES if f"{n}/{groups[0]}/greedy_acc" in metrics):
        ys, lo, hi = zip(*[plots.with_ci(metrics, f"{name}/{g}/greedy_acc") for g in groups])
        b.bar([j + (i - 1) * w for j in range(len(groups))], ys, w, yerr=plots.yerr(ys, lo, hi), capsize=1.5, label=name)
    b.set_xticks(range(len(groups)), groups)
    b.set(ylabel="held-out accuracy (greedy)", ylim=(0, 1), title="held-out test split, 95% CI")
    b.legend()
    if path is not None:
        plots.savefig(fig, path, close=True)
    return fig


# ------------------------------------------------------------------------------------ run

def _preset_model(cfg: Config) -> bool:
    return cfg.preset in presets.PRESETS and cfg.model == presets.resolve(cfg.preset, "sft")["model"]


def run(cfg: Config, out_dir) -> Result:
    t0 = time.time()
    out = base.start(cfg, out_dir)
    seed = cfg.seed
    model, tok = models.load(cfg.model, seed=seed, context=cfg.context_for(cfg.model))
    print(f"start: {cfg.model}" + (" (the preset's model; pass init_model to start elsewhere)" if _preset_model(cfg)
                                   else "") + f", {models.param_count(model):,} parameters")
    metrics = {"params": models.param_count(model)}

    t = time.time()   # data: the multi-path pool and its quality filters
    data1, heldout, m = stage1_data(cfg, seed)
    metrics.update(m)
    print(describe_data(data1, heldout) + f"  [{time.time() - t:.0f} s]")

    evals = {}

    def held_out(name):
        t = time.time()
        evals[name] = evaluate(model, tok, heldout, cfg, seed)
        metrics.update(accuracy_metrics(name, evals[name]))
        print(describe_accuracy(name, evals[name]))
        print(f"[{time.time() - t:.0f} s]")

    held_out("before")

    t = time.time()   # stage 1: broad coverage
    model, log1, ck1 = train_stage(model, tok, data1, out / "stage1", cfg, epochs=cfg.epochs1, lr=cfg.lr,
                                   logging_steps=50, seed=seed)
    print(describe_stage("stage1", log1, ck1) + f"  [{time.time() - t:.0f} s]")
    held_out("stage1")

    data2, probe, rates, log2, ck2 = [], [], [], [], []
    if cfg.epochs2 > 0:
        t = time.time()   # stage-2 filters: long traces, then queries the reference gets wrong
        data2, probe, rates, m = stage2_data(data1, model, tok, cfg, seed)
        metrics.update(m)
        print(f"[{time.time() - t:.0f} s]")

        t = time.time()   # stage 2: hard and long, from the stage-1 model
        model, log2, ck2 = train_stage(model, tok, data2, out / "stage2", cfg, epochs=cfg.epochs2,
                                       lr=cfg.lr2 or cfg.lr, logging_steps=5, seed=seed)
        print(describe_stage("stage2", log2, ck2) + f"  [{time.time() - t:.0f} s]")
        held_out("stage2")
    else:   # one-stage SFT: the plain recipe, and the pipeline ablation's arms without stage 2
        print("stage 2 skipped (epochs2 = 0): one-stage SFT, the stage-1 model is the final model")
    models.save(model, tok, out / "model")
    metrics.update(gain_metrics(evals, seed))

    curves = {"stage1": train.loss_curve(log1), "stage2": train.loss_curve(log2) if log2 else []}
    checkpoints = {"stage1": ck1, "stage2": ck2}
    fig = plot(curves, checkpoints, metrics, evals[list(evals)[-1]], out / "sft_curriculum")
    metrics.update({**stage_metrics("stage1", log1, ck1), **(stage_metrics("stage2", log2, ck2) if log2 else {}),
                    "wall_s": time.time() - t0})
    base.finish(out, metrics)
    runinfo.write_json(out / "stage2_error_rates.json", {"ids": [r["id"] for r in probe], "error_rates": rates})
    print(f"wall {metrics['wall_s']:.0f} s")
    return Result(out_dir=out, metrics=metrics, model=model, tokenizer=tok, heldout=heldout, data1=data1,
                  data2=data2, evals=evals, curves=curves, checkpoints=checkpoints, figures={"sft_curriculum": fig})


if __name__ == "__main__":
    raise SystemExit(base.main(sys.modules[__name__]))

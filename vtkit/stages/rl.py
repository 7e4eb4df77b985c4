"""Stage rl (notebook 03): the Signal phase, MGPO RL in phases Math -> (Long2Short) -> Code -> STEM.

    from vtkit.stages import rl
    cfg = rl.Config.from_preset("tiny", seed=0, phases=["math"], init_model="runs/merge/model")
    res = rl.run(cfg, "runs/03_mgpo_rl")   # res.metrics, res.steps, res.start / res.final, res.figure

    python -m vtkit.stages.rl --preset tiny --out-dir runs/03_mgpo_rl --set 'phases=[math]'

The 3B report's protocol (docs/method.md, "Signal"), one model trained in place:
1. the start: `init_model` (the Spectrum merge), or standalone the preset's quick SFT start
   (`vtkit.train.preset_start`); RL prompts (train split) and held-out problems (test split) per
   domain from `tasks`, `n_prompts`, `n_heldout` and `data_seed` (fixed across RL seeds);
2. held-out accuracy of the start on every domain the phases touch (`eval_samples` samples at
   `eval_temperature`: mean@n, the reports' protocol; greedy when n = 1 at T = 0);
3. per phase, from the previous phase's model: the 0/1 solvability filter (`vtkit.rl.filter_solvable`,
   `filter_rollouts` samples a prompt at the training temperature); a phase with fewer than
   max(min_prompts, prompts_per_step) solvable prompts is skipped (`<phase>/skipped` = True) and the
   next phase runs from the model as it is; else `vtkit.rl_phase.run_phase` with the settings of
   `PHASE_SETTINGS` (checkpoint `phases/<phase>/model`, global steps continuing the previous phase's);
4. per domain, the final model's held-out result against the start (`final/<domain>/...`: paired
   gain, bootstrap over items): the measurement after the domain's last phase when no phase of another
   domain trained since, else a new one of the final model (`remeasure`). For math, beside accuracy,
   `start/math/faithful` and `final/math/faithful` (+ `_lo`/`_hi`): the share of the held-out samples'
   traces that are faithful (`vtkit.faithful`), read from the same samples, no extra sampling. Then the
   final checkpoint `model/`, `steps.jsonl` (all phases), `metrics.json` and the figure `rl_curves.pdf/png`.

Where it departs from the paper: see vtkit.rl_phase and vtkit.rl (trl's loss, beta = 0, sizes).
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from vtkit.stages import base


@dataclass
class Config(base.StageConfig):
    SECTION: ClassVar[str] = "rl"

    report_to: str                      # experiment tracker ("none", "tensorboard": events under the phase folder)
    init_model: str | None              # start checkpoint (the Spectrum merge); None = the quick SFT start
    model: str                          # model of the standalone start (a tiny size or a hub name)
    start_data: dict | None             # quick SFT start data: domain -> {n, tasks.make keywords}; None = no SFT
    start_epochs: float                 # quick SFT start epochs
    start_lr: float                     # quick SFT start learning rate
    tasks: dict                         # domain -> tasks.make keywords of its RL prompts and held-out problems
    hub_data: dict | None               # hub datasets replacing the tasks of their domains (vtkit.hubdata); None = generated
    phases: list                        # phase names in order (vtkit.rl_phase.PHASES)
    data_seed: int                      # seed of the prompts and held-out problems (fixed across RL seeds)
    n_prompts: int | dict               # RL prompts per domain, before the solvability filter
    n_heldout: int | dict               # held-out problems per domain
    heldout_split: str                # "test" for the reported numbers, "validation" for choosing settings (screens)
    filter_rollouts: int                # samples per prompt for the 0/1 solvability filter
    min_prompts: int                    # a phase needs max(min_prompts, prompts_per_step) solvable prompts
    mgpo_lambda: float                  # MGPO's lambda; 0 = GRPO
    max_steps: int                      # RL steps per phase
    lr: float                           # peak learning rate
    warmup: float                       # linear warmup steps (a fraction of max_steps when < 1)
    lr_schedule: str                    # after warmup: constant, cosine or linear (to 0 at max_steps)
    prompts_per_step: int               # prompts per RL step
    num_generations: int                # G, samples per prompt
    micro_batch: int | None             # completions a GPU holds per forward/backward (vtkit.batching); None = all
    max_completion_length: int          # tokens per sample (training, filter and held-out)
    temperature: float                  # sampling temperature of training and the filter
    eval_every: int                     # held-out evaluation every k steps (and after the last)
    eval_samples: int                   # held-out samples per problem (mean@n)
    eval_temperature: float             # held-out sampling temperature
    num_iterations: int                 # updates per batch of samples (1 = on-policy)
    steps_per_generation: int           # optimizer steps per generation (1 = on-policy)
    loss_type: str                      # trl loss aggregation ("grpo": per-sequence token mean)
    beta: float                         # KL coefficient (0: no reference model)
    negative_advantage_scale: float     # factor on negative advantages (0 = positive samples only)
    advantage_mode: str                 # mgpo, or rft (the rejection-sampling fine-tuning control)
    skip_zero_advantage: bool           # leave zero-advantage samples out of the loss's forward/backward
    use_vllm: bool                      # rollouts through trl's vLLM integration (needs vLLM: the `gpu` extra)
    vllm_mode: str                      # colocate (vLLM in each training process) or server (`trl vllm-serve`)
    vllm_gpu_memory_utilization: float  # colocate: share of each GPU's memory vLLM takes
    vllm_tensor_parallel_size: int      # colocate: GPUs per vLLM engine
    vllm_max_model_length: int | None   # vLLM context in tokens; None = trl's default (the model config's)
    vllm_server_base_url: str | None    # server mode: the server's URL; None = trl's host and port
    generation: dict                    # the kit's own sampling backend (vtkit.generate.configure, set by base.start)

    def context_needs(self) -> list[tuple]:
        from vtkit import context
        return [(self.init_model or self.model, context.PROMPT_TOKENS + self.max_completion_length,
                 "prompt + max_completion_length")]


# Config fields that go to rl_phase.run_phase unchanged (its keywords, or MGPOConfig fields via **grpo_kw)
PHASE_SETTINGS = ("eval_every", "eval_samples", "eval_temperature", "mgpo_lambda", "max_steps", "lr", "warmup",
                  "lr_schedule", "prompts_per_step", "num_generations", "max_completion_length", "temperature",
                  "num_iterations", "steps_per_generation", "loss_type", "beta", "negative_advantage_scale",
                  "advantage_mode", "skip_zero_advantage", "report_to", "use_vllm", "vllm_mode",
                  "vllm_gpu_memory_utilization", "vllm_tensor_parallel_size", "vllm_max_model_length",
                  "vllm_server_base_url", "micro_batch")
# the fields the stage itself uses (the start, the data, the filter)
STAGE_SETTINGS = ("init_model", "model", "start_data", "start_epochs", "start_lr", "tasks", "phases", "data_seed",
                  "n_prompts", "n_heldout", "heldout_split", "filter_rollouts", "min_prompts", "generation", "hub_data")


@dataclass
class Result(base.StageResult):
    model: object = None                             # the final model (trained in place through the phases)
    tokenizer: object = None
    start: dict = field(default_factory=dict)        # domain -> EvalResult of the start
    final: dict = field(default_factory=dict)        # domain -> EvalResult of the final model
    steps: list = field(default_factory=list)        # step log of every phase (steps.jsonl)
    filters: dict = field(default_factory=dict)      # phase -> solvability filter report
    figure: object = None                            # rl_curves (None when every phase was skipped)


def phase_kwargs(cfg: Config) -> dict:
    """The keywords of `rl_phase.run_phase` that come from the config (the same for every phase)."""
    return {**{k: getattr(cfg, k) for k in PHASE_SETTINGS}, "seed": cfg.seed}


def min_kept(cfg: Config) -> int:
    """Solvable prompts a phase needs to run: a step takes prompts_per_step prompts, and fewer than
    min_prompts carry too little signal."""
    return max(cfg.min_prompts, cfg.prompts_per_step)


def filter_metrics(phase: str, rep: dict) -> dict:
    """The solvability filter's counts as metrics (`<phase>/n_prompts`, `n_dropped_all_correct`, ...)."""
    return {f"{phase}/n_prompts": rep["n_in"], f"{phase}/n_dropped_all_correct": rep["n_all_correct"],
            f"{phase}/n_dropped_all_wrong": rep["n_all_wrong"], f"{phase}/n_kept": rep["n_kept"]}


def domains(cfg: Config) -> list[str]:
    """The task domains of the phases, in order of first use."""
    from vtkit import rl_phase
    return list(dict.fromkeys(rl_phase.phase_spec(p).domain for p in cfg.phases))


def phase_data(cfg: Config) -> tuple[dict, dict]:
    """(RL prompts, held-out problems): {domain: records}, train and `heldout_split` splits, seeded by data_seed."""
    from vtkit import hubdata   # hub_data None: tasks.make_groups; else hub groups replace their domains' tasks
    spec = {}
    for d in domains(cfg):
        if d not in cfg.tasks:
            raise base.ConfigError(f"phase domain {d!r} has no settings in tasks (has {sorted(cfg.tasks)}); "
                                   f"add tasks: {{{d}: {{difficulty: 1}}}}")
        spec[d] = cfg.tasks[d]
    train_sets = hubdata.make_groups(cfg.hub_data, spec, cfg.n_prompts, seed=cfg.data_seed)
    heldout = hubdata.make_groups(cfg.hub_data, spec, cfg.n_heldout, seed=cfg.data_seed, split=cfg.heldout_split)
    return train_sets, heldout


def start_model(cfg: Config):
    """(model, tokenizer): `init_model`, or the preset's standalone start."""
    from vtkit import models, train
    if cfg.init_model:
        model, tok = models.load(cfg.init_model, context=cfg.context_for(cfg.init_model))
        print(f"start: {cfg.init_model}")
    else:
        model, tok, what = train.preset_start(cfg, seed=cfg.seed)
        print(f"standalone (no init_model): RL starts from {what}")
    return model, tok


def run_phases(model, tok, cfg: Config, train_sets: dict, heldout: dict, current: dict, out: Path,
               metrics: dict) -> tuple[list, dict]:
    """The phases in order, each from the model as the previous one left it (trained in place).

    current: domain -> EvalResult of the model as it is now (updated after each phase); metrics:
    updated with each phase's filter counts, `<phase>/skipped` and its `run_phase` metrics.
    Returns (step log of every phase, {phase: filter report})."""
    import datasets

    from vtkit import rl, rl_phase
    steps, offset, filters = [], 0, {}
    for ph in cfg.phases:
        t = time.time()
        spec = rl_phase.phase_spec(ph)
        kept, rep = rl.filter_solvable(model, tok, datasets.Dataset.from_list(train_sets[spec.domain]),
                                       n_rollouts=cfg.filter_rollouts, temperature=cfg.temperature,
                                       max_new_tokens=cfg.max_completion_length, seed=cfg.seed)
        filters[ph] = rep
        metrics.update(filter_metrics(ph, rep))
        print(f"{ph}: kept {rep['n_kept']} of {rep['n_in']} prompts (dropped {rep['n_all_correct']} always "
              f"solved, {rep['n_all_wrong']} never solved in {cfg.filter_rollouts} samples)")
        if rep["n_kept"] < min_kept(cfg):
            metrics[f"{ph}/skipped"] = True
            print(f"  skipped: fewer than {min_kept(cfg)} solvable prompts (min_prompts, prompts_per_step); "
                  "too little signal")
            continue
        res = rl_phase.run_phase(model, tok, kept, out / "phases" / ph, phase=ph, heldout=heldout[spec.domain],
                                 before=current[spec.domain], step_offset=offset, **phase_kwargs(cfg))
        current[spec.domain] = res.after
        steps += res.steps
        offset = max(s["global_step"] for s in steps)
        metrics.update(res.metrics(n_boot=1000, seed=cfg.seed))
        metrics[f"{ph}/skipped"] = False
        m = res.metrics()
        print(f"  {spec.domain} held-out {m[f'{ph}/heldout_start']:.3f} -> {m[f'{ph}/heldout_end']:.3f}, gain "
              f"{m[f'{ph}/heldout_gain']:+.3f} [{m[f'{ph}/heldout_gain_lo']:+.3f}, {m[f'{ph}/heldout_gain_hi']:+.3f}]; "
              f"mean weight {m.get(f'{ph}/weight_mean', float('nan')):.3f}"
              f"  [{time.time() - t:.0f} s]")
    return steps, filters


def remeasure(cfg: Config, metrics: dict) -> list[str]:
    """Domains whose latest held-out result predates the final model: a phase of another domain
    trained after the last phase of theirs (or after the start, when none of theirs trained)."""
    from vtkit import rl_phase
    trained = [rl_phase.phase_spec(ph).domain for ph in cfg.phases if metrics.get(f"{ph}/skipped") is False]

    def since_own(d):   # the domains trained after d's last phase (all of them when none of d's ran)
        last = max((i for i, x in enumerate(trained) if x == d), default=-1)
        return trained[last + 1:]
    return [d for d in domains(cfg) if any(x != d for x in since_own(d))]


def faithful_metrics(prefix: str, domain: str, records: list, result) -> dict:
    """`<prefix>faithful` (+ `_lo`/`_hi`): the share of the held-out samples' traces that are faithful
    (vtkit.faithful: right arithmetic on the problem's numbers, boxed answer = the trace's result), from
    the completions the evaluation already drew; math only ({} for other domains), printed."""
    if domain != "math":
        return {}
    from vtkit import faithful
    f = faithful.from_eval(records, result)
    print(f"{prefix.split('/')[0]:6s} {domain:5s} faithful traces {f['faithful']:.3f} "
          f"[{f['faithful_lo']:.3f}, {f['faithful_hi']:.3f}] (n = {f['n_traces']})")
    return {f"{prefix}{k}": f[k] for k in ("faithful", "faithful_lo", "faithful_hi")}


def heldout_label(proto) -> str:
    """The held-out axis label: the protocol's name when greedy, else mean@n at T."""
    return f"held-out {proto.name.split('-')[0] if proto.greedy else f'mean@{proto.n}, T = {proto.temperature:g}'}"


def run(cfg: Config, out_dir) -> Result:
    """The stage (module docstring): start, held-out start, phases, final comparison, figure."""
    import matplotlib.pyplot as plt

    from vtkit import evaluation, models, rl_phase, runinfo
    T0 = time.time()
    out = base.start(cfg, out_dir)
    doms = domains(cfg)
    model, tok = start_model(cfg)
    train_sets, heldout = phase_data(cfg)
    print(f"phases {cfg.phases}, lambda = {cfg.mgpo_lambda}, {cfg.max_steps} steps per phase, "
          f"{cfg.prompts_per_step} prompts x G = {cfg.num_generations} per step  [{time.time() - T0:.0f} s]")

    t = time.time()
    # held-out protocol (vtkit.evaluation): eval_samples at eval_temperature (the reports' mean@n at T = 1)
    proto = evaluation.sampled(cfg.eval_samples, cfg.eval_temperature, cfg.max_completion_length, seed=cfg.seed)
    start = {d: evaluation.evaluate((model, tok), heldout[d], proto) for d in doms}
    metrics = {}
    for d, r in start.items():
        metrics.update(r.flat(f"start/{d}/", keys=[r.headline]))
        print(f"start  {d:5s} held-out {r.describe()}")
        metrics.update(faithful_metrics(f"start/{d}/", d, heldout[d], r))
        metrics.update(evaluation.arith_metrics(f"start/{d}/", heldout[d], r))
    print(f"[{time.time() - t:.0f} s]")

    current = dict(start)          # latest held-out result per domain, for the model as it is now
    steps, filters = run_phases(model, tok, cfg, train_sets, heldout, current, out, metrics)
    models.save(model, tok, out / "model")
    runinfo.write_jsonl(out / "steps.jsonl", steps)

    for d in remeasure(cfg, metrics):   # a later phase of another domain trained the model since
        current[d] = evaluation.evaluate((model, tok), heldout[d], proto)
        print(f"final  {d:5s} re-measured on the final model (a later phase trained another domain)")
    for d in doms:
        r = current[d]
        g = evaluation.paired_gain(start[d], r, seed=cfg.seed)
        metrics.update({**r.flat(f"final/{d}/", keys=[r.headline]),
                        **{f"final/{d}/heldout_{k}": v for k, v in g.items()}})
        print(f"final  {d:5s} {r.describe()}  vs start {start[d].acc:.3f}: "
              f"gain {g['gain']:+.3f} [{g['gain_lo']:+.3f}, {g['gain_hi']:+.3f}]")
        metrics.update(faithful_metrics(f"final/{d}/", d, heldout[d], r))
        arith = evaluation.arith_metrics(f"final/{d}/", heldout[d], r, start=start[d], seed=cfg.seed)
        metrics.update(arith)
        if arith:
            print("       " + evaluation.arith_line(f"final/{d}/", arith))
    metrics["wall_s"] = time.time() - T0
    base.finish(out, metrics)

    fig = None
    if steps:
        fig = rl_phase.plot_steps(steps, out / "rl_curves", title=f"MGPO, $\\lambda$ = {cfg.mgpo_lambda:g}",
                                  heldout_label=heldout_label(proto))
        plt.close(fig)             # shown where the caller displays res.figure
    print(f"total {time.time() - T0:.0f} s")
    return Result(out_dir=out, metrics=metrics, model=model, tokenizer=tok, start=start, final=current,
                  steps=steps, filters=filters, figure=fig)


if __name__ == "__main__":
    raise SystemExit(base.main(sys.modules[__name__]))

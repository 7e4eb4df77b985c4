"""Stage instruct (notebook 05): Instruct RL on constrained and open-ended prompts (3B report).

    from vtkit.stages import instruct
    cfg = instruct.Config.from_preset("tiny", seed=0, init_model="runs/04_self_distill/model")
    res = instruct.run(cfg, "runs/05_instruct_rl")   # res.metrics, res.stages, res.reading, res.figure

    python -m vtkit.stages.instruct --preset tiny --out-dir runs/05_instruct_rl --set max_steps=24

The protocol (docs/method.md, "Instruct RL"):
1. the start: `init_model` (the self-distilled model), or standalone the RL preset's start
   (`vtkit.train.preset_start`). Prompts (`prompt_sets`): `n_train` constrained prompts on the first
   `n_train_bases` requests of `vtkit.instructions.BASE_TASKS` with `n_constraints` constraints of the
   types `instruction_ids` (None: all that make_prompts generates), `n_open` open-ended prompts on the
   first `OPEN_TRAIN_TOPICS` topics of `vtkit.reward_model.TOPICS`; held out: `n_heldout` distinct
   constrained prompts on the other requests and `n_heldout_open` open prompts on the other topics;
2. the rubric reward model (`train_reward_model`): `reward_model` built, trained on `rm_pairs`
   synthetic preference pairs (0: used as it is), its pair accuracy on 200 pairs of another seed,
   untrained and trained, overall and per rubric item;
3. the held-out probe (`HeldOut`): IFEval's strict pass rates, prompt and instruction level, with
   `eval_samples` samples at `eval_temperature`, and the reward model's mean score on the held-out
   open prompts; measured on the start, after a brief SFT on the prompts' verified references
   (`sft_epochs` > 0: a tiny model knows no instructions) and after RL;
4. MGPO (`vtkit.rl_phase.run_phase`) on the shuffled mixture with the rule reward
   (`vtkit.instructions.instruction_reward`, MGPO's group accuracy) and the reward model's
   (open prompts); `model/`, `steps.jsonl`, the paired gain of RL over its start, a one-line
   reading of why it did or did not rise (`reading.txt`, `vtkit.rl_phase.instruct_reading`),
   `metrics.json` and the figure `pass_rates.pdf/png`.
The report names no reward model and gives no mixture or budgets; the values are in
vtkit/presets/instruct.yaml.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from vtkit.stages import base

RATES = ("prompt_level_strict_acc", "inst_level_strict_acc")   # IFEval's names (vtkit.evaluation)
OPEN_TRAIN_TOPICS = 24      # open prompts train on the first 24 of reward_model.TOPICS; held-out ones use the rest
RM_TEST_PAIRS = 200         # held-out preference pairs (seed + 1000) for the reward model's pair accuracy
SFT_MAX_LENGTH = 256        # tokens per conversation of the brief SFT (references are ~50-90 tokens)


@dataclass
class Config(base.StageConfig):
    SECTION: ClassVar[str] = "instruct"

    generation: dict                # the kit's own sampling backend (vtkit.generate.configure, set by base.start)
    report_to: str                  # experiment tracker (transformers' report_to): none or tensorboard
    init_model: str | None          # start checkpoint (the self-distilled model); None = the RL preset's start
    n_constraints: list             # [lo, hi] constraints per constrained prompt
    instruction_ids: list | None    # the constraint types used; None = every type make_prompts generates
    n_train_bases: int              # training prompts use the first n of instructions.BASE_TASKS, held-out the rest
    n_train: int                    # constrained training prompts (brief SFT and RL)
    n_open: int                     # open-ended training prompts (RL with the reward model)
    n_heldout: int                  # held-out constrained prompts (distinct) for the pass rates
    n_heldout_open: int             # held-out open prompts for the mean reward-model score
    eval_samples: int               # held-out samples per prompt
    eval_temperature: float         # held-out sampling temperature
    reward_model: str               # a tiny size (built and trained here), smollm2-135m, or an HF reward model
    rm_pairs: int                   # synthetic preference pairs to train the reward model on (0: use it as it is)
    rm_epochs: float                # reward-model training epochs
    rm_lr: float                    # reward-model learning rate
    rm_device: str                  # where the reward model scores: auto (the GPU when there is one), cpu, cuda
    rm_dtype: str                   # its dtype: auto (bf16 on a GPU, fp32 on the CPU), bfloat16, float32
    rm_max_length: int | None       # tokens it reads (the last ones); None = the whole prompt + response
    rm_batch_size: int              # responses per scoring forward
    sft_epochs: float               # brief SFT on the verified references before RL (0: none)
    sft_lr: float                   # brief SFT learning rate
    sft_batch_size: int             # brief SFT batch size
    mgpo_lambda: float              # MGPO's lambda; 0 = GRPO
    max_steps: int                  # RL steps
    lr: float                       # RL learning rate
    prompts_per_step: int           # prompts per RL step
    num_generations: int            # G, samples per prompt
    micro_batch: int | None         # completions a GPU holds per forward/backward (vtkit.batching); None = all
    max_completion_length: int      # tokens per sample (RL and held-out)
    temperature: float              # RL sampling temperature
    eval_every: int                 # held-out evaluation every k RL steps (and after the last)
    negative_advantage_scale: float  # factor on negative advantages (0 = positive samples only)

    def context_needs(self) -> list[tuple]:
        from vtkit import context
        gen = context.PROMPT_TOKENS + self.max_completion_length
        return [(self.init_model, gen, "prompt + max_completion_length"),
                (self.reward_model, self.rm_max_length or gen, "rm_max_length / prompt + max_completion_length")]


@dataclass
class Result(base.StageResult):
    model: Any = None                                  # the model after RL
    tokenizer: Any = None
    stages: dict = field(default_factory=dict)         # "start", ["sft",] "rl" -> held-out EvalResult
    rm_accuracy: dict = field(default_factory=dict)    # the reward model's held-out pair accuracy: all, per kind
    steps: list = field(default_factory=list)          # the RL step log (steps.jsonl)
    gain: dict = field(default_factory=dict)           # paired prompt-level gain of RL over its start
    gain_inst: dict = field(default_factory=dict)      # paired instruction-level gain
    reading: str = ""                                  # why RL did or did not raise the pass rate (reading.txt)
    figure: Any = None                                 # pass_rates: the pass rates per stage, the rewards per step


def prompt_sets(cfg: Config, seed: int) -> dict:
    """{constrained, held, open_train, open_held}: training and held-out prompts (module docstring, 1).

    Held-out constrained prompts are other requests (base tasks) than the training ones, with the same
    constraint types; held-out open prompts are other topics."""
    from vtkit import instructions
    from vtkit import reward_model as rm
    bases, k = instructions.BASE_TASKS, cfg.n_train_bases
    if not 0 < k < len(bases):
        raise base.ConfigError(f"n_train_bases = {k}: it must leave requests for both sides, 1 to {len(bases) - 1} "
                               f"of the {len(bases)} in vtkit.instructions.BASE_TASKS")
    kw = dict(n_constraints=cfg.n_constraints, instruction_ids=cfg.instruction_ids)
    topics = rm.TOPICS
    return {"constrained": instructions.constrained_prompts(cfg.n_train, seed, base_tasks=bases[:k], **kw),
            "held": instructions.constrained_prompts(cfg.n_heldout, seed + 1000, base_tasks=bases[k:], unique=True,
                                                     **kw),
            "open_train": rm.open_prompts(cfg.n_open, seed=seed, topics=topics[:OPEN_TRAIN_TOPICS]),
            "open_held": rm.open_prompts(cfg.n_heldout_open, seed=seed + 1000, topics=topics[OPEN_TRAIN_TOPICS:])}


def train_reward_model(cfg: Config, out, seed: int):
    """(model, tokenizer, metrics): the rubric reward model built from `cfg.reward_model`, trained on
    `cfg.rm_pairs` pairs when > 0, with its pair accuracy on RM_TEST_PAIRS pairs of seed + 1000
    before training (`rm/pair_acc_before`) and after (`rm/pair_acc_all`, `rm/pair_acc_<kind>`)."""
    from vtkit import reward_model as rm
    t = time.time()
    model, tok = rm.build(cfg.reward_model, seed=seed, device=cfg.rm_device, dtype=cfg.rm_dtype)
    test_pairs = rm.preference_pairs(RM_TEST_PAIRS, seed=seed + 1000)
    score_kw = dict(batch_size=cfg.rm_batch_size, max_length=cfg.rm_max_length)
    metrics = {"rm/pair_acc_before": rm.pair_accuracy(model, tok, test_pairs, **score_kw)}
    if cfg.rm_pairs > 0:
        model, _ = rm.train(model, tok, rm.preference_pairs(cfg.rm_pairs, seed=seed), out / "rm", epochs=cfg.rm_epochs,
                            lr=cfg.rm_lr, seed=seed, report_to=cfg.report_to)
        rm.place(model, cfg.rm_device, cfg.rm_dtype)   # training left fp32 master weights
    acc = rm.pair_accuracy(model, tok, test_pairs, by_kind=True, **score_kw)
    metrics.update({f"rm/pair_acc_{k}": v for k, v in acc.items()})
    print(f"held-out pair accuracy {metrics['rm/pair_acc_before']:.3f} untrained -> {acc['all']:.3f} "
          f"({', '.join(f'{k} {v:.2f}' for k, v in acc.items() if k != 'all')})  [{time.time() - t:.0f} s]")
    return model, tok, metrics


@dataclass
class HeldOut:
    """The held-out probe: strict pass rates on `held` under `protocol`, and the reward model's mean
    score on answers sampled (`gen`: vtkit.generate keywords) to the open prompts `open_held`."""
    tokenizer: Any
    held: Any                   # held-out constrained prompts
    open_held: Any              # held-out open prompts
    rubric: Any                 # the reward model's trl reward (reward_model.make_reward)
    protocol: Any               # vtkit.evaluation.Protocol of the pass rates
    gen: dict                   # max_new_tokens, n, temperature, seed of the open-prompt answers

    def open_score(self, model) -> float:
        """Mean reward-model score (sigmoid) of sampled answers to the held-out open prompts."""
        from vtkit.generate import generate
        outs = generate(model, self.tokenizer, self.open_held["prompt"], **self.gen)
        return float(np.mean(self.rubric([o["text"] for o in outs], prompts=[o["prompt"] for o in outs])))

    def pass_rates(self, model, label: str, r=None) -> tuple[Any, dict]:
        """(EvalResult, metrics): `<label>/<rate>` with _lo/_hi for RATES and `<label>/open_rm_score`;
        `r`: the pass rates when already measured with this protocol on `held` (not measured again)."""
        from vtkit import evaluation, plots
        r = r if r is not None else evaluation.evaluate((model, self.tokenizer), self.held, self.protocol)
        m = {**r.flat(f"{label}/", keys=list(RATES)), f"{label}/open_rm_score": self.open_score(model)}
        print(f"{label:6s} " + ", ".join("{} {:.3f} [{:.3f}, {:.3f}]".format(k, *plots.with_ci(r.metrics, k))
                                         for k in RATES)
              + f", open-prompt RM score {m[f'{label}/open_rm_score']:.3f}")
        return r, m


def rl_metrics(start, after, phase_metrics: dict, seed: int) -> tuple[dict, dict, dict]:
    """(metrics, prompt-level gain, instruction-level gain) of RL over its start: the paired gains
    (`rl/heldout_gain*`, `rl/inst_level_strict_gain*`), `rl/steps`, and the phase's mean weights and
    reward (`instruct/...` renamed `rl/...`)."""
    from vtkit import evaluation
    g = evaluation.paired_gain(start, after, seed=seed)
    gi = evaluation.paired_gain(start, after, metric="inst_level_strict", seed=seed)
    m = {**{f"rl/heldout_{k}": v for k, v in g.items()},          # prompt-level strict, paired
         **{f"rl/inst_level_strict_{k}": v for k, v in gi.items()},
         "rl/steps": phase_metrics["instruct/steps"]}
    m2 = {k.replace("instruct/", "rl/"): v for k, v in phase_metrics.items()
          if k.endswith(("weight_mean", "weight_min", "reward"))}
    return {**m, **m2}, g, gi


def plot_pass_rates(stages: dict, steps: list, path=None):
    """Strict pass rates (prompt and instruction level, 95% intervals) per stage, and the mean rule
    and reward-model rewards per RL step; saved to `path` (.pdf and .png) when given."""
    import matplotlib.pyplot as plt

    from vtkit import plots
    plots.use_style()
    fig, (ax, ax2) = plots.figure("double", ncols=2)
    x = np.arange(len(stages))
    for i, (key, lab) in enumerate(zip(RATES, ("prompt-level", "instruction-level"))):
        y, lo, hi = zip(*[plots.with_ci(s.metrics, key) for s in stages.values()])
        ax.bar(x + (i - 0.5) * 0.38, y, 0.38, yerr=plots.yerr(y, lo, hi), capsize=2, label=lab, color=f"C{i}")
    ax.set_xticks(x, list(stages))
    ax.set_ylabel("strict pass rate (held-out)")
    ax.legend(loc="best")
    for k, lab in (("reward/instruction_reward", "rule reward (constrained)"), ("reward/rubric_reward", "RM reward (open)")):
        r = [s for s in steps if s.get(k) is not None]
        ax2.plot([s["step"] for s in r], [s[k] for s in r], label=lab)
    ax2.set_xlabel("RL step")
    ax2.set_ylabel("mean reward")
    ax2.legend(loc="best")
    if path is not None:
        plots.savefig(fig, path)
    plt.close(fig)   # the notebook shows res.figure
    return fig


def run(cfg: Config, out_dir) -> Result:
    import datasets

    from vtkit import evaluation, instructions, models, rl_phase, runinfo, train
    from vtkit import reward_model as rm
    from vtkit.stages import rl as rl_stage

    T0 = time.time()
    out = base.start(cfg, out_dir)
    seed = cfg.seed
    if cfg.init_model:
        model, tok = models.load(cfg.init_model, context=cfg.context_for(cfg.init_model))
        print(f"start: {cfg.init_model}")
    else:
        model, tok, what = train.preset_start(rl_stage.Config.from_preset(cfg.preset), seed=seed)
        print(f"standalone (no init_model): the RL preset's start, {what}")
    p = prompt_sets(cfg, seed)
    if cfg.instruction_ids:
        print(f"constraint types: {len(cfg.instruction_ids)} of {len(instructions.REGISTRY)} "
              f"({', '.join(cfg.instruction_ids)})")
    mixture = datasets.concatenate_datasets([p["constrained"], p["open_train"]]).shuffle(seed=seed)
    print(f"{len(p['constrained'])} constrained + {len(p['open_train'])} open prompts for training; {len(p['held'])} "
          f"held-out constrained, {len(p['open_held'])} held-out open  [{time.time() - T0:.0f} s]")

    # the rubric reward model
    rm_model, rm_tok, metrics = train_reward_model(cfg, out, seed)
    rubric = rm.make_reward(rm_model, rm_tok, batch_size=cfg.rm_batch_size, max_length=cfg.rm_max_length)
    probe = HeldOut(tok, p["held"], p["open_held"], rubric,
                    evaluation.sampled(cfg.eval_samples, cfg.eval_temperature, cfg.max_completion_length, seed=seed),
                    dict(max_new_tokens=cfg.max_completion_length, n=cfg.eval_samples,
                         temperature=cfg.eval_temperature, seed=seed))

    # pass rates of the start, after the brief SFT, then RL
    t = time.time()
    stages = {}

    def measure(label, r=None):
        stages[label], m = probe.pass_rates(model, label, r)
        metrics.update(m)

    measure("start")
    if cfg.sft_epochs > 0:
        model, _ = train.sft(model, tok, list(p["constrained"]) + list(p["open_train"]), out / "sft",
                             epochs=cfg.sft_epochs, lr=cfg.sft_lr, batch_size=cfg.sft_batch_size,
                             max_length=SFT_MAX_LENGTH, seed=seed, report_to=cfg.report_to)
        measure("sft")
    rl_start = list(stages)[-1]
    print(f"[{time.time() - t:.0f} s]")

    t = time.time()
    res = rl_phase.run_phase(
        model, tok, mixture, out / "phases" / "instruct", phase="instruct",
        rewards=[instructions.instruction_reward, rubric], accuracy_reward="instruction_reward",
        heldout=lambda m: evaluation.evaluate((m, tok), p["held"], probe.protocol),
        before=stages[rl_start], eval_every=cfg.eval_every, mgpo_lambda=cfg.mgpo_lambda, max_steps=cfg.max_steps,
        lr=cfg.lr, prompts_per_step=cfg.prompts_per_step, num_generations=cfg.num_generations,
        max_completion_length=cfg.max_completion_length, temperature=cfg.temperature,
        negative_advantage_scale=cfg.negative_advantage_scale, micro_batch=cfg.micro_batch, seed=seed,
        report_to=cfg.report_to)
    measure("rl", res.after)   # the phase's last held-out evaluation: same model, prompts and protocol
    models.save(model, tok, out / "model")
    runinfo.write_jsonl(out / "steps.jsonl", res.steps)
    m, g, gi = rl_metrics(stages[rl_start], stages["rl"], res.metrics(), seed)
    metrics.update({**m, "wall_s": time.time() - T0})
    # the measured reason for the gain or its absence: the rules' pass rate against the reward model's score
    reading, why = rl_phase.instruct_reading(g, metrics[f"{rl_start}/open_rm_score"], metrics["rl/open_rm_score"],
                                             res.steps)
    metrics.update({f"rl/{k}": v for k, v in why.items() if k.endswith("_change")})
    if runinfo.is_main():
        (out / "reading.txt").write_text(reading + "\n")
    base.finish(out, metrics)
    print(f"RL over its start ({rl_start}): prompt-level {g['gain']:+.3f} [{g['gain_lo']:+.3f}, {g['gain_hi']:+.3f}], "
          f"instruction-level {gi['gain']:+.3f} [{gi['gain_lo']:+.3f}, {gi['gain_hi']:+.3f}]  [{time.time() - t:.0f} s]")
    print("reading:", reading)

    fig = plot_pass_rates(stages, res.steps, out / "pass_rates")
    print(f"total {time.time() - T0:.0f} s")
    return Result(out_dir=out, metrics=metrics, model=model, tokenizer=tok, stages=stages,
                  rm_accuracy={k.removeprefix("rm/pair_acc_"): v for k, v in metrics.items()
                               if k.startswith("rm/pair_acc_") and k != "rm/pair_acc_before"},
                  steps=res.steps, gain=g, gain_inst=gi, reading=reading, figure=fig)


if __name__ == "__main__":
    raise SystemExit(base.main(sys.modules[__name__]))

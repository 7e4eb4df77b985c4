"""One Signal-phase RL run: MGPO on a dataset with given rewards, a step log, held-out accuracy, a checkpoint.

    from vtkit import rl_phase, tasks
    heldout = list(tasks.make("math", 32, seed=0, difficulty=1, split="test"))
    res = rl_phase.run_phase(model, tok, tasks.make("math", 64, difficulty=1), "runs/x/phases/math",
                          phase="math", heldout=heldout, mgpo_lambda=1.0, max_steps=20, eval_every=5)
    res.before.acc, res.after.acc                      # held-out rate (vtkit.evaluation.EvalResult)
    res.metrics()                                      # math/heldout_start, math/heldout_gain[_lo|_hi], ...
    res.steps                                          # one dict per step (also steps.jsonl)
    rl_phase.plot_steps(res.steps, "runs/x/rl_curves")    # reward, held-out accuracy, weights, length
    rl_phase.plot_sweep("runs/mgpo_vs_grpo")              # held-out accuracy vs step, one line per lambda
    # or from a shell: vtkit plot-sweep runs/mgpo_vs_grpo --by mgpo_lambda

What one phase does: the records become trl prompt rows (user turn in `prompt`, the record's
`answer`/`tests`/`domain`/`meta` beside it for the rewards), an `MGPOTrainer` trains on them
strictly on-policy by default (`num_iterations=1`, `steps_per_generation=1`: every update uses
completions the current policy just sampled), a `HeldOutCallback` measures accuracy on the
held-out records before the first step, every `eval_every` steps and after the last, and the
phase's checkpoint goes to `out_dir/model` with its step log in `out_dir/steps.jsonl`.

Rewards per phase (`PHASES`, docs/method.md "Signal"): math is graded by its final answer
(`accuracy`), code by the sandbox tests (`code_tests`, binary), STEM by answer-with-unit or option
letter (`stem`); Long2Short is a second math phase with `long2short_lambda` = 0.2 (the 3B report's
value). The MGPO group accuracy p comes from that phase's binary reward (`mgpo_accuracy_reward`).

Departures from the paper / choices of ours: the report's loss averages tokens per sequence, then
over the group ((1/G) sum_i 1/|y_i| sum_t ...), which is trl's `loss_type="grpo"`; we pass that
instead of trl 1.16's default "dapo". beta = 0 (no KL term, no reference model; the reports give
no coefficient). Held-out accuracy is measured by vtkit.evaluation: `greedy_acc` by default
(one sample, temperature 0, a cheap low-variance probe), or the reports' sampled protocol when
`eval_samples` > 1 at `eval_temperature` (mean@n, as the RL presets do). After an optional
linear `warmup` the learning rate follows `lr_schedule`: "constant" (the default; the small and
paper presets), or "cosine" / "linear" decay to 0 at max_steps (the tiny preset: cosine). The
default lr 3e-4 is the tiny preset's measured value (1e-3 collapsed held-out accuracy: docs/LOG.md).
Precision as in SFT (`vtkit.models.training_precision`): fp32 master weights with bf16 autocast on
CUDA, fp32 on CPU (`precision=` or $VTKIT_PRECISION overrides it). The stage around the phases (the
start, the solvability filter, phase chaining, the final comparison) is vtkit.stages.rl.
The trainer adds its rollouts, scoring and trained tokens to `vtkit.compute` (`count_work`).
"""
from __future__ import annotations

import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import datasets
import numpy as np
import pandas as pd
import torch
from transformers import PrinterCallback, TrainerCallback

from vtkit import batching, compute, evaluation, generate, models, plots
from vtkit.stats import t_interval as mean_ci
from vtkit.rewards import REWARDS
from vtkit.rl import MGPOConfig, MGPOTrainer
from vtkit.runinfo import read_jsonl, write_jsonl  # noqa: F401 (rl_phase.read_jsonl/write_jsonl: older callers)
from vtkit.train import tracking_dir

RECORD_COLUMNS = ("id", "domain", "subdomain", "answer", "tests", "meta", "instruction_id_list", "kwargs")


@dataclass(frozen=True)
class PhaseSpec:
    domain: str                       # task domain of the phase's prompts (vtkit.tasks)
    rewards: tuple                    # vtkit.rewards.REWARDS names; the first is the binary accuracy
    long2short_lambda: float = 0.0    # > 0: Long2Short shaping of the accuracy reward


PHASES = {
    "math": PhaseSpec("math", ("accuracy",)),
    "long2short": PhaseSpec("math", ("accuracy",), long2short_lambda=0.2),  # 3B report's lambda
    "math_faithful": PhaseSpec("math", ("faithful_accuracy",)),   # reward only answers the trace carries (issue 26, 0(c))
    "code": PhaseSpec("code", ("code_tests",)),
    "stem": PhaseSpec("stem", ("stem",)),
}


def phase_spec(name: str) -> PhaseSpec:
    if name not in PHASES:
        raise ValueError(f"unknown phase {name!r}; valid phases: {', '.join(PHASES)} (the 3B order is "
                         "math, [long2short,] code, stem)")
    return PHASES[name]


def reward_funcs(names: Sequence[str]) -> list[Callable]:
    """vtkit.rewards functions by registry name (their trl names are their __name__s)."""
    bad = [n for n in names if n not in REWARDS]
    if bad:
        raise ValueError(f"unknown reward(s) {bad}; valid: {', '.join(REWARDS)}")
    return [REWARDS[n] for n in names]


# ----------------------------------------------------------------------------- data

def to_prompt_rows(records):
    """Task records -> a trl prompt-only dataset: `prompt` as one user turn, reward columns kept."""
    rows = [dict(r) for r in records]
    if not rows:
        raise ValueError("no records to train on (the solvability filter may have dropped them all); "
                         "pass more prompts, or prompts nearer the model's level")
    cols = [c for c in RECORD_COLUMNS if c in rows[0]]
    return datasets.Dataset.from_list(
        [{"prompt": [{"role": "user", "content": r["prompt"]}], **{c: r[c] for c in cols}} for r in rows])


# ----------------------------------------------------------------------------- callback

class HeldOutCallback(TrainerCallback):
    """Held-out evaluation at step 0, every `every` steps, and at the last step (no step twice).

    `evaluate(model) -> vtkit.evaluation.EvalResult`; `before` (the starting model's result, if
    already measured) stands in for step 0. `log` holds one row per evaluation (step, acc, lo, hi,
    mean_tokens, eval_s) and `results` the EvalResults. Evaluation never changes training:
    vtkit.generate samples under a forked RNG and restores train mode, so a run with this callback
    updates the weights exactly as one without it (tested).
    """

    def __init__(self, evaluate: Callable, every: int = 5, before: evaluation.EvalResult | None = None):
        if every < 1:
            raise ValueError(f"every must be >= 1 step, got {every}")
        self.evaluate, self.every = evaluate, every
        self.log: list[dict] = []
        self.results: list = []
        if before is not None:
            self._record(0, before, 0.0)

    def _record(self, step: int, r, eval_s: float):
        lo, hi = r.interval
        self.log.append({"step": step, "acc": r.acc, "lo": lo, "hi": hi, "mean_tokens": r["mean_tokens"],
                         "eval_s": eval_s})
        self.results.append(r)

    def _eval(self, model, step: int):
        if self.log and self.log[-1]["step"] == step:
            return
        t = time.time()
        r = self.evaluate(model)
        self._record(step, r, time.time() - t)

    def on_train_begin(self, args, state, control, model=None, **kw):
        self._eval(model, state.global_step)

    def on_step_end(self, args, state, control, model=None, **kw):
        if state.global_step % self.every == 0 or state.global_step >= state.max_steps:
            self._eval(model, state.global_step)


# ----------------------------------------------------------------------------- one phase

@dataclass
class PhaseResult:
    phase: str
    model: object
    steps: list                      # step log rows (also out_dir/steps.jsonl)
    before: evaluation.EvalResult | None   # held-out at step 0
    after: evaluation.EvalResult | None    # held-out after the last step
    wall_s: float
    out_dir: Path
    evals: list = field(default_factory=list)   # HeldOutCallback.log rows

    def metrics(self, prefix: str | None = None, n_boot: int = 1000, seed: int = 0) -> dict:
        """Flat scalars for metrics.json: `heldout_start`, `heldout_end` (each with _lo/_hi), the
        paired `heldout_gain` with `_lo`/`_hi`, `n_heldout`, steps, wall time and mean weights."""
        p = f"{prefix or self.phase}/"
        out = {f"{p}steps": sum(1 for s in self.steps if s.get("loss") is not None), f"{p}wall_s": self.wall_s}
        for name, r in (("heldout_start", self.before), ("heldout_end", self.after)):
            if r is not None:
                lo, hi = r.interval
                out.update({f"{p}{name}": r.acc, f"{p}{name}_lo": lo, f"{p}{name}_hi": hi})
        if self.before is not None and self.after is not None:
            g = evaluation.paired_gain(self.before, self.after, n_boot=n_boot, seed=seed)
            out.update({f"{p}heldout_{k}": v for k, v in g.items()})
            out[f"{p}n_heldout"] = self.after["n_items"]
        for k in ("weight_mean", "weight_min", "frac_solved_or_failed", "reward", "completion_length"):
            v = [s[k] for s in self.steps if s.get(k) is not None]
            if v:
                out[f"{p}{k}"] = float(np.mean(v))
        return out


_LOG_KEYS = {  # step-log name: trl log-history key
    "loss": "loss", "reward": "reward", "reward_std": "reward_std",
    "completion_length": "completions/mean_length", "clipped_ratio": "completions/clipped_ratio",
    "weight_mean": "mgpo/weight_mean", "weight_min": "mgpo/weight_min",
    "frac_solved_or_failed": "mgpo/frac_solved_or_failed", "group_accuracy": "mgpo/group_accuracy_mean",
    "frac_reward_zero_std": "frac_reward_zero_std", "learning_rate": "learning_rate",
    "rows_in_loss": "mgpo/rows_in_loss",
}


def step_log(log_history: list[dict], evals: list[dict], phase: str, step_offset: int = 0) -> list[dict]:
    """Merge trl's per-step log history and the held-out evaluations into one row per step."""
    rows: dict[int, dict] = {}
    for h in log_history:
        if "step" not in h or "loss" not in h:
            continue  # the end-of-training summary has train_loss, not loss
        row = rows.setdefault(h["step"], {})
        keys = {**_LOG_KEYS, **{f"reward/{k.split('/')[1]}": k for k in h
                                if k.startswith("rewards/") and k.endswith("/mean")}}
        for name, key in keys.items():
            if key in h and h[key] is not None and not (isinstance(h[key], float) and math.isnan(h[key])):
                row[name] = float(h[key])
    for e in evals:
        row = rows.setdefault(e["step"], {})
        row.update(heldout_acc=e["acc"], heldout_lo=e["lo"], heldout_hi=e["hi"],
                   heldout_tokens=e["mean_tokens"])
    return [{"phase": phase, "step": s, "global_step": s + step_offset, **rows[s]} for s in sorted(rows)]


def _third_means(steps: Sequence[dict], key: str) -> tuple[float, float] | None:
    """Mean of a step-log value over the first and the last third of the steps that log it."""
    v = [s[key] for s in steps if s.get(key) is not None]
    if len(v) < 2:
        return None
    k = max(1, len(v) // 3)
    return sum(v[:k]) / k, sum(v[-k:]) / k


def instruct_reading(gain: dict, rm_start: float, rm_end: float, steps: Sequence[dict],
                     rule_key: str = "reward/instruction_reward", rm_key: str = "reward/rubric_reward",
                     tol: float = 0.02) -> tuple[str, dict]:
    """Why instruction RL did or did not raise the held-out constraint pass rate, from measurements.

    gain: `evaluation.paired_gain` of the held-out prompt-level pass rate (RL over its start);
    rm_start / rm_end: the reward model's mean score on held-out open prompts before and after RL;
    steps: the phase's step log (training rule reward and reward-model reward per step, first third
    against last third). Returns (one-line reading, numbers). The verdicts, in order:
    "raised" (the gain's interval excludes 0 upwards); "not resolved" (a positive gain whose interval
    includes 0); then, for a gain <= 0: "reward-model over-optimisation" (the held-out RM score rose
    by more than `tol`); "fits the training prompts" (the training rule reward rose by more than `tol`);
    "degraded" (RM score and pass rate both fell: the updates hurt the start on every measure, no
    reward is being exploited); else "no signal" (neither reward moved in training).
    """
    rule, rmr = _third_means(steps, rule_key), _third_means(steps, rm_key)
    nums = {"rm_score_change": rm_end - rm_start,
            "train_rule_change": rule[1] - rule[0] if rule else float("nan"),
            "train_rm_change": rmr[1] - rmr[0] if rmr else float("nan")}
    d_rm, d_rule = nums["rm_score_change"], nums["train_rule_change"]
    facts = (f"held-out pass rate {gain['gain']:+.3f} [{gain['gain_lo']:+.3f}, {gain['gain_hi']:+.3f}], "
             f"held-out reward-model score {rm_start:.3f} -> {rm_end:.3f}"
             + (f", training rule reward {rule[0]:.3f} -> {rule[1]:.3f}" if rule else "")
             + (f", training RM reward {rmr[0]:.3f} -> {rmr[1]:.3f}" if rmr else ""))
    if gain["gain_lo"] > 0:
        verdict = "raised: RL raised the held-out constraint pass rate"
    elif gain["gain"] > 0:
        verdict = ("not resolved: the pass rate rose but its interval includes 0 (too few held-out prompts or "
                   "steps for a gain this size)")
    elif d_rm > tol:
        verdict = ("reward-model over-optimisation: the reward model's score rose while the rules' "
                   "pass rate did not")
    elif d_rule > tol:
        verdict = ("fits the training prompts: the rule reward rose in training but the held-out "
                   "pass rate did not")
    elif d_rm < -tol and gain["gain"] < 0:
        verdict = ("degraded: the reward model's score and the rules' pass rate both fell; no reward "
                   "was exploited, the updates hurt the start on every measure")
    else:
        verdict = "no signal: neither reward moved in training, and the held-out pass rate did not rise"
    nums["verdict"] = verdict.split(":")[0]
    return f"{verdict} ({facts})", nums


# -> transformers' names; with warmup 0, "constant_with_warmup" is "constant" (the same factor 1.0 at every step)
LR_SCHEDULES = {"constant": "constant_with_warmup", "cosine": "cosine", "linear": "linear"}


def run_phase(model, tokenizer, records, out_dir, *, phase: str = "rl", rewards: Sequence | None = None,
              accuracy_reward: str | None = None, heldout: Sequence[dict] | Callable | None = None,
              eval_every: int = 5, eval_max_new_tokens: int | None = None, eval_samples: int = 1,
              eval_temperature: float = 0.0, before: evaluation.EvalResult | None = None, mgpo_lambda: float = 1.0, long2short_lambda: float | None = None,
              max_steps: int = 20, lr: float = 3e-4, warmup: float = 0, lr_schedule: str = "constant",
              prompts_per_step: int = 8, num_generations: int = 8,
              max_completion_length: int = 96, temperature: float = 1.0, top_p: float = 1.0,
              num_iterations: int = 1, steps_per_generation: int = 1, loss_type: str = "grpo", beta: float = 0.0,
              seed: int = 0, step_offset: int = 0, save: bool = True, callbacks: Sequence = (),
              report_to: str = "none", precision: str | None = None, micro_batch: int | None = None,
              **grpo_kw) -> PhaseResult:
    """Train `model` in place with MGPO on `records` for `max_steps` steps; see the module docstring.

    rewards: registry names or trl reward functions; default = the phase's (`PHASES`). accuracy_reward:
    the trl name (__name__) of the binary verifiable reward MGPO takes p from; default = the first
    reward's. heldout: records (measured by vtkit.evaluation with `eval_samples` samples at
    `eval_temperature`; greedy by default) or a function model -> EvalResult; `before`: the starting
    model's EvalResult when already measured (so step 0 is not measured twice).
    prompts_per_step x num_generations completions are sampled per step; after `warmup` (steps, or a
    fraction of max_steps when < 1; 0 = none) the learning rate stays constant (lr_schedule="constant")
    or decays to 0 at max_steps ("cosine", "linear"). `micro_batch`: completions per process per forward and
    backward (`vtkit.batching.rl_args`: the step's batch in gradient-accumulation micro-steps, one optimizer
    step per generation as before); None: the whole batch at once. Extra keyword
    arguments go to MGPOConfig (any GRPOConfig field: the RL presets' use_vllm, vllm_mode,
    vllm_gpu_memory_utilization, vllm_tensor_parallel_size, vllm_max_model_length and
    vllm_server_base_url reach trl that way; use_vllm without vLLM installed is an ImportError that
    says how to install it). With beta > 0, trl builds its reference
    model from the model's config path: save the model to a folder and load it from there first.
    """
    t0 = time.time()
    spec = PHASES.get(phase)
    if rewards is None:
        if spec is None:
            raise ValueError(f"phase {phase!r} has no default rewards; pass rewards=[...] (names of "
                             "vtkit.rewards.REWARDS or trl reward functions)")
        rewards = spec.rewards
    funcs = [reward_funcs([r])[0] if isinstance(r, str) else r for r in rewards]
    if not funcs:
        raise ValueError("rewards is empty: RL needs at least one reward function")
    if accuracy_reward is None:
        accuracy_reward = funcs[0].__name__
    if long2short_lambda is None:
        long2short_lambda = spec.long2short_lambda if spec is not None else 0.0
    if lr_schedule not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {sorted(LR_SCHEDULES)}, got {lr_schedule!r}")
    for name, v in (("prompts_per_step", prompts_per_step), ("num_generations", num_generations),
                    ("max_steps", max_steps)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    if num_generations < 2:
        raise ValueError("num_generations must be >= 2: group-relative advantages need at least two samples")
    ds = to_prompt_rows(records)
    if len(ds) < prompts_per_step:  # trl's sampler would form no full batch and train zero steps silently
        raise ValueError(f"phase {phase!r} has {len(ds)} prompts but a step takes prompts_per_step = "
                         f"{prompts_per_step}; pass more prompts or a smaller prompts_per_step")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cuda = torch.cuda.is_available()
    prec = models.prepare_training(model, precision)  # fp32 master weights; bf16 autocast on CUDA
    if grpo_kw.get("use_transformers_paged") or grpo_kw.get("use_transformers_continuous_batching"):
        raise ValueError("trl's continuous-batching generation casts the trained model to bf16 in place, "
                         "which drops the fp32 master weights; use the default generate or vLLM")
    tracking_dir(out, report_to)
    args = MGPOConfig(
        output_dir=str(out / "trainer"), max_steps=max_steps, learning_rate=lr,
        **batching.rl_args(prompts_per_step, num_generations, micro_batch, steps_per_generation),
        num_generations=num_generations, num_iterations=num_iterations,
        max_completion_length=max_completion_length, temperature=temperature, top_p=top_p, top_k=0,
        loss_type=loss_type, beta=beta, mgpo_lambda=float(mgpo_lambda), mgpo_accuracy_reward=accuracy_reward,
        long2short_lambda=float(long2short_lambda), lr_scheduler_type=LR_SCHEDULES[lr_schedule], warmup_steps=warmup,
        logging_steps=1, save_strategy="no", report_to=report_to, disable_tqdm=True, seed=seed, data_seed=seed,
        **prec.trainer_args(), dataloader_num_workers=0,
        **{"gradient_checkpointing": cuda, **grpo_kw})  # checkpointing (trl's default) only pays on a GPU
    if args.use_vllm:   # trl would fail inside the trainer: say how to install vLLM before anything runs
        generate.require_vllm("use_vllm: true (trl's vLLM rollouts)")
    cbs = list(callbacks)
    held = None
    if heldout is not None:
        if callable(heldout):
            fn = heldout
        else:
            recs = [dict(r) for r in heldout]
            proto = evaluation.sampled(eval_samples, eval_temperature, eval_max_new_tokens or max_completion_length,
                                       seed=seed)
            fn = lambda m: evaluation.evaluate((m, tokenizer), recs, proto)  # noqa: E731
        held = HeldOutCallback(fn, every=eval_every, before=before)
        cbs.append(held)
    model.train()
    trainer = count_work(MGPOTrainer(model=model, reward_funcs=funcs, args=args, train_dataset=ds,
                                     processing_class=tokenizer, callbacks=cbs))
    trainer.remove_callback(PrinterCallback)  # with tqdm off it prints every step's log dict; steps.jsonl has them
    trainer.train()
    model.eval()
    evals, results = (held.log, held.results) if held else ([], [])
    steps = step_log(trainer.state.log_history, evals, phase, step_offset)
    write_jsonl(out / "steps.jsonl", steps)
    shutil.rmtree(out / "trainer", ignore_errors=True)  # save_strategy="no": only trl's stray files
    if save:
        models.save(model, tokenizer, out / "model")
    return PhaseResult(phase=phase, model=model, steps=steps, before=results[0] if results else None,
                       after=results[-1] if len(results) > 1 else None, wall_s=time.time() - t0, out_dir=out,
                       evals=evals)


def count_work(trainer):
    """Make an MGPOTrainer add its work to `vtkit.compute` (returns it): every rollout's completion tokens as
    generated (its prompt prefilled), trl's forward-only old / reference log-probabilities as scored, and the
    prompt + completion tokens of the rows in each loss (after MGPO drops zero-advantage rows) as trained.
    Completion lengths are trl's completion_mask (up to and including the stop token). The instance's
    methods are wrapped, so the trainer class (and what tests put in its place) stays MGPOTrainer."""
    generate_and_score, loss = trainer._generate_and_score_completions, trainer._compute_loss

    def counted_generate_and_score(inputs):
        output = generate_and_score(inputs)
        prompt, completion = output["prompt_mask"].sum(1), output["completion_mask"].sum(1)
        compute.add_generated(trainer.model, completion.tolist(), prompt_tokens=prompt.tolist(), eval=False)
        for key in ("old_per_token_logps", "ref_per_token_logps"):
            if output.get(key) is not None:
                compute.add_scored(trainer.model, (prompt + completion).tolist())
        return output

    def counted_loss(model, inputs):
        if trainer.model.training:
            compute.add_trained(trainer.model, (inputs["prompt_mask"].sum(1) + inputs["completion_mask"].sum(1)).tolist())
        return loss(model, inputs)

    trainer._generate_and_score_completions = counted_generate_and_score
    trainer._compute_loss = counted_loss
    return trainer


# ----------------------------------------------------------------------------- figures

PANELS = (("reward", "mean reward"), ("heldout_acc", "held-out accuracy"),
          ("weight", "MGPO weight"), ("completion_length", "response length (tokens)"))


def plot_steps(steps: Sequence[dict], path=None, title: str | None = None, heldout_label: str | None = None):
    """2 x 2 figure over global steps: reward, held-out accuracy (+ interval), weight mean/min, length.

    `heldout_label` names the held-out metric on its axis (e.g. "held-out mean@4, T = 1"; say
    which protocol measured it).

    One colour per phase; phase boundaries as dotted lines. Saved as PDF+PNG when `path` is given.
    """
    plots.use_style()
    fig, axes = plots.figure("double", nrows=2, ncols=2, height=4.4)
    axes = np.asarray(axes).ravel()
    phases = list(dict.fromkeys(s["phase"] for s in steps))
    colors = {p: f"C{i}" for i, p in enumerate(phases)}
    for ax, (key, label) in zip(axes, PANELS):
        for p in phases:
            rows = [s for s in steps if s["phase"] == p]
            if key == "weight":
                for k, ls in (("weight_mean", "-"), ("weight_min", "--")):
                    xs = [s["global_step"] for s in rows if s.get(k) is not None]
                    ax.plot(xs, [s[k] for s in rows if s.get(k) is not None], ls, color=colors[p],
                            label=f"{p} {k.split('_')[1]}")
            elif key == "heldout_acc":
                r = [s for s in rows if s.get("heldout_acc") is not None]
                x = np.array([s["global_step"] for s in r])
                y = np.array([s["heldout_acc"] for s in r])
                if len(r):
                    err = np.vstack([y - [s["heldout_lo"] for s in r], [s["heldout_hi"] for s in r] - y])
                    ax.errorbar(x, y, yerr=np.clip(err, 0, None), marker="o", capsize=2, color=colors[p], label=p)
            else:
                r = [s for s in rows if s.get(key) is not None]
                ax.plot([s["global_step"] for s in r], [s[key] for s in r], color=colors[p], label=p)
        for p in phases[1:]:
            ax.axvline(min(s["global_step"] for s in steps if s["phase"] == p), color="0.7", ls=":", lw=0.8)
        ax.set_xlabel("RL step")
        ax.set_ylabel(heldout_label if key == "heldout_acc" and heldout_label else label)
    axes[0].legend(loc="best")
    axes[2].legend(loc="best", ncol=2 if len(phases) > 1 else 1)
    if title:
        fig.suptitle(title)
    if path is not None:
        plots.savefig(fig, path)
    return fig


def sweep_curves(exp_dir, by: str = "mgpo_lambda", metric: str = "heldout_acc", phase: str | None = "math"):
    """Per (value of `by`, step): mean of `metric` over the sweep's finished runs, a 95% t-interval over
    seeds, and the run count. Reads `results.parquet` (vtkit sweep) and each run's `steps.jsonl`."""
    exp_dir = Path(exp_dir)
    table = exp_dir / "results.parquet"
    if not table.exists():
        raise FileNotFoundError(f"{table} not found: run `vtkit sweep EXPERIMENT.yaml` first (it writes the table)")
    df = pd.read_parquet(table)
    if by not in df.columns:
        raise ValueError(f"the sweep varies no {by!r}; its columns are {list(df.columns)}")
    rows = []
    for _, r in df[df["status"] == "ok"].iterrows():
        f = Path(r["out_dir"]) / "steps.jsonl"
        if not f.exists():
            continue
        for s in read_jsonl(f):
            if (phase is None or s["phase"] == phase) and s.get(metric) is not None:
                rows.append({by: r[by], "run_id": r["run_id"], "step": s["global_step"], metric: s[metric]})
    if not rows:
        raise ValueError(f"no finished run under {exp_dir} logged {metric!r}" + (f" in phase {phase!r}" if phase else ""))
    long = pd.DataFrame(rows)
    out = []
    for (v, step), g in long.groupby([by, "step"], sort=True):
        m, lo, hi, n = mean_ci(g[metric].tolist())
        out.append({by: v, "step": step, "mean": m, "lo": lo, "hi": hi, "n_runs": n})
    return pd.DataFrame(out)


def plot_sweep(exp_dir, by: str = "mgpo_lambda", metric: str = "heldout_acc", phase: str | None = "math", path=None):
    """Held-out accuracy against steps, one line per value of `by`, shaded 95% intervals over seeds.

    Writes `exp_dir/figures/<metric>_vs_step_by_<by>` (PDF+PNG) and the numbers as `.csv` beside it.
    Returns (figure, curves DataFrame)."""
    curves = sweep_curves(exp_dir, by, metric, phase)
    plots.use_style()
    fig, ax = plots.figure("single")
    for i, (v, g) in enumerate(curves.groupby(by, sort=True)):
        lab = f"$\\lambda$ = {v:g}" + (" (GRPO)" if float(v) == 0 else "") if by == "mgpo_lambda" else f"{by} = {v}"
        ax.plot(g["step"], g["mean"], marker="o", color=f"C{i}", label=lab)
        ax.fill_between(g["step"], g["lo"].fillna(g["mean"]), g["hi"].fillna(g["mean"]), color=f"C{i}", alpha=0.15,
                        linewidth=0)
    ax.set_xlabel("RL step")
    ax.set_ylabel("held-out accuracy" if metric == "heldout_acc" else metric)
    ax.legend(loc="best")
    base = Path(path) if path else Path(exp_dir) / "figures" / f"{metric}_vs_step_by_{by}"
    base.parent.mkdir(parents=True, exist_ok=True)
    plots.savefig(fig, base)
    curves.to_csv(base.with_suffix(".csv"), index=False)
    return fig, curves

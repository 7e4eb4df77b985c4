"""Signal-phase RL: MaxEnt-Guided Policy Optimization (MGPO) on top of trl's GRPOTrainer.

    from vtkit.rl import MGPOConfig, MGPOTrainer, mgpo_weight, long2short_rewards, filter_solvable
    args = MGPOConfig(output_dir="runs/x/rl", mgpo_lambda=1.0, mgpo_accuracy_reward="accuracy",
                      num_generations=8, ...)               # every GRPOConfig field works as usual
    trainer = MGPOTrainer(model, reward_funcs=[accuracy, fmt], args=args, train_dataset=ds,
                          processing_class=tokenizer)
    trainer.train()

What MGPO does (docs/method.md, "Signal"): for each prompt, G sampled responses get binary
verifiable rewards; the group accuracy p is the fraction rewarded as correct; the group's GRPO
advantages are scaled by w = exp(-lam * D_ME(p || 0.5)), D_ME the KL of Bernoulli(p) from
Bernoulli(0.5) in nats, so groups near p = 0.5 (maximum uncertainty) keep full weight and groups
the policy always or never solves are damped. lam = 0 is GRPO exactly (w = 1.0, an exact float
multiply), which the tests check on losses and parameters.

How it hooks into trl 1.16 (GRPOTrainer has no advantage hook):
- `_calculate_rewards` returns the per-function rewards *gathered over all processes* (global
  batch, groups of G consecutive rows). We keep a copy of the accuracy column there, before any
  Long2Short shaping, so p is the raw verifiable accuracy.
- `_generate_and_score_completions` computes advantages on that global batch and slices rows
  `[process_index * n_local, (process_index + 1) * n_local)` for the local process. We compute
  the weights on the same gathered groups and slice them identically, then multiply
  `output["advantages"]`. This runs once per generation batch: trl buffers the result and reuses
  it for `steps_per_generation` micro-steps and `num_iterations` passes, so the weights are applied
  exactly once per sample whatever those settings are.
- Long2Short (`long2short_lambda > 0`): applied in `_calculate_rewards` to the accuracy column of
  the gathered rewards, per group, with L_i = the completion's token count as trl generated it
  (`completion_ids`, including the EOS token when one was produced), gathered the same way.
  Other reward functions are untouched; then trl normalises the summed rewards as usual.

Departures from the paper / choices of ours:
- A group whose accuracy reward is NaN (reward function returned None) everywhere gets w = 1 and
  is left out of the logged statistics; NaN rows inside a group are left out of its p.
- "Correct" means accuracy reward >= `mgpo_correct_threshold` (1.0 for vtkit's 0/1 rewards).
- The weight multiplies trl's advantage whatever its `scale_rewards` / aggregation setting; with the
  defaults this is the report's A'_i = w(q) * (r_i - mean_G) / std_G.
- `negative_advantage_scale` (default 1, the method) multiplies the negative weighted advantages; the
  tiny preset sets 0 (positive samples only): on the demo's start the symmetric update gained +0.08 in
  32 steps, positive-only +0.14, and the negative half alone is what collapsed models at tiny
  (docs/LOG.md, "RL at tiny"). `advantage_mode="rft"` is the control: advantage = 1 for a verified sample, else 0
  (rejection-sampling fine-tuning on exactly the samples RL sees).
- `skip_zero_advantage` (default on) leaves the samples whose final advantage is exactly 0 out of
  the loss's forward and backward pass, where that leaves the loss and its gradient unchanged
  (`drop_zero_advantage_rows`, `skips_zero_advantage`). Positive samples only zero about half of
  every batch: a tiny RL step then takes about a third less time (docs/LOG.md). The rows are
  dropped after trl's shuffle, so the random stream, and every later sample, is the same.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch
from accelerate.utils import gather
from trl import GRPOConfig, GRPOTrainer

from vtkit import evaluation
from vtkit import generate as gen

LOG2 = math.log(2.0)


# ----------------------------------------------------------------------------- the weight

def _check_p_range(lo: float, hi: float) -> None:
    if not (lo >= 0.0 and hi <= 1.0):  # also catches NaN
        raise ValueError(f"p must be a probability in [0, 1]; got values in [{lo}, {hi}]. "
                         "Pass the group accuracy (fraction of correct responses).")


def bernoulli_kl_to_half(p):
    """D_ME(p || 0.5) = p log(2p) + (1-p) log(2(1-p)) in nats; 0 at p = 0.5, log 2 at p in {0, 1}.

    Accepts a python float, a numpy array or a torch tensor and returns the same kind.
    """
    if isinstance(p, torch.Tensor):
        pf = p if p.is_floating_point() else p.double()
        if pf.numel():
            _check_p_range(pf.min().item(), pf.max().item())
        return torch.special.xlogy(pf, 2 * pf) + torch.special.xlogy(1 - pf, 2 * (1 - pf))
    if isinstance(p, np.ndarray) or isinstance(p, (list, tuple)):
        pa = np.asarray(p, dtype=np.float64)
        if pa.size:
            _check_p_range(float(pa.min()), float(pa.max()))
        with np.errstate(divide="ignore", invalid="ignore"):
            a = np.where(pa > 0, pa * np.log(np.where(pa > 0, 2 * pa, 1.0)), 0.0)
            b = np.where(pa < 1, (1 - pa) * np.log(np.where(pa < 1, 2 * (1 - pa), 1.0)), 0.0)
        return a + b
    if isinstance(p, (int, float, np.floating, np.integer)) and not isinstance(p, bool):
        p = float(p)
        _check_p_range(p, p)
        a = p * math.log(2 * p) if p > 0 else 0.0
        b = (1 - p) * math.log(2 * (1 - p)) if p < 1 else 0.0
        return a + b
    raise TypeError(f"p must be a float, numpy array or torch tensor, got {type(p).__name__}")


def mgpo_weight(p, lam: float):
    """MGPO weight w = exp(-lam * D_ME(p || 0.5)), in [2**-lam, 1]; lam = 0 gives exactly 1."""
    if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not math.isfinite(lam) or lam < 0:
        raise ValueError(f"lam must be a finite number >= 0 (lam = 0 is plain GRPO); got {lam!r}")
    d = bernoulli_kl_to_half(p)
    if isinstance(d, torch.Tensor):
        return torch.exp(-float(lam) * d)
    if isinstance(d, np.ndarray):
        return np.exp(-float(lam) * d)
    return math.exp(-float(lam) * d)


def group_accuracy(acc_rewards: torch.Tensor, num_generations: int, correct_threshold: float = 1.0):
    """Per-group accuracy p from a flat (global) reward vector with groups of `num_generations` rows.

    NaN rewards are left out of their group's p; a group with no finite reward gets p = NaN.
    """
    if acc_rewards.numel() % num_generations:
        raise ValueError(f"{acc_rewards.numel()} rewards do not split into groups of {num_generations}")
    r = acc_rewards.detach().float().view(-1, num_generations)
    valid = ~torch.isnan(r)
    correct = (r >= correct_threshold) & valid
    n_valid = valid.sum(dim=1)
    return torch.where(n_valid > 0, correct.sum(dim=1) / n_valid.clamp(min=1), torch.full_like(r[:, 0], math.nan))


def group_weights(p_group: torch.Tensor, lam: float) -> torch.Tensor:
    """mgpo_weight per group; groups with p = NaN (no accuracy signal) get weight 1."""
    nan = torch.isnan(p_group)
    w = mgpo_weight(torch.where(nan, torch.full_like(p_group, 0.5), p_group), lam)
    return torch.where(nan, torch.ones_like(w), w)


def local_sample_weights(acc_rewards_global: torch.Tensor, num_generations: int, lam: float,
                         correct_threshold: float, process_index: int, n_local: int):
    """(local per-sample weights, per-group p, per-group w), sliced exactly like trl slices advantages."""
    p = group_accuracy(acc_rewards_global, num_generations, correct_threshold)
    w = group_weights(p, lam)
    w_sample = w.repeat_interleave(num_generations)
    sl = slice(process_index * n_local, (process_index + 1) * n_local)
    if w_sample[sl].numel() != n_local:
        raise ValueError(f"global batch of {w_sample.numel()} rows has no slice {sl} of {n_local} rows")
    return w_sample[sl], p, w


# ----------------------------------------------------------------------------- Long2Short

def long2short_rewards(rewards: Sequence[float], lengths: Sequence[int], lam: float = 0.2,
                       correct_threshold: float = 1.0) -> list[float]:
    """Long2Short reward shaping for ONE group (3B report; lam = 0.2 is the report's value).

    C = {i : r_i >= correct_threshold}, s_i = 1/L_i, s_bar = mean_{C} s,
    r'_i = r_i + lam * (s_i - s_bar) / max_{j in C} |s_j - s_bar| for i in C; others unchanged.
    Nothing changes when |C| <= 1 or all correct lengths are equal. Shifts sum to zero over C, so
    the group mean is unchanged; the shortest correct response gets the largest reward.
    """
    if len(rewards) != len(lengths):
        raise ValueError(f"rewards ({len(rewards)}) and lengths ({len(lengths)}) must have one entry per response")
    if not (math.isfinite(lam) and lam >= 0):
        raise ValueError(f"lam must be a finite number >= 0, got {lam!r}")
    out = [float(r) if r is not None else math.nan for r in rewards]
    correct = [i for i, r in enumerate(out) if r >= correct_threshold]  # NaN compares False
    for i in correct:
        if not lengths[i] > 0:
            raise ValueError(f"response {i} is correct but has length {lengths[i]}; lengths must be >= 1 token")
    if len(correct) <= 1 or len({lengths[i] for i in correct}) == 1:
        return out  # compare lengths, not s_bar: float noise in the mean would fake a spread
    s = {i: 1.0 / float(lengths[i]) for i in correct}
    s_bar = sum(s.values()) / len(s)
    spread = max(abs(v - s_bar) for v in s.values())
    for i in correct:
        out[i] = out[i] + lam * (s[i] - s_bar) / spread
    return out


def long2short_group_tensor(acc: torch.Tensor, lengths: torch.Tensor, num_generations: int, lam: float,
                            correct_threshold: float = 1.0) -> torch.Tensor:
    """long2short_rewards applied to every group of a flat reward vector (groups of consecutive rows)."""
    r = acc.detach().double().view(-1, num_generations).tolist()
    L = lengths.view(-1, num_generations).tolist()
    shaped = [long2short_rewards(rg, lg, lam, correct_threshold) for rg, lg in zip(r, L)]
    return torch.tensor(shaped, dtype=acc.dtype, device=acc.device).view(-1)


# ----------------------------------------------------------------------------- trainer

ADVANTAGE_MODES = ("mgpo", "rft")

@dataclass
class MGPOConfig(GRPOConfig):
    """GRPOConfig plus the MGPO / Long2Short knobs."""

    mgpo_lambda: float = field(default=0.0, metadata={
        "help": "MGPO lambda (3B report: gamma) >= 0; 0 is plain GRPO. Value not given in the reports."})
    mgpo_accuracy_reward: str | None = field(default=None, metadata={
        "help": "Name of the reward function (trainer.reward_func_names entry, i.e. its __name__) whose "
                "value is the verifiable 0/1 accuracy. Required when mgpo_lambda > 0 or long2short_lambda > 0."})
    mgpo_correct_threshold: float = field(default=1.0, metadata={
        "help": "An accuracy reward >= this counts as correct (1.0 for 0/1 rewards)."})
    long2short_lambda: float = field(default=0.0, metadata={
        "help": "Long2Short lambda (report: 0.2 in its second Math stage); 0 disables the shaping."})
    negative_advantage_scale: float = field(default=1.0, metadata={
        "help": "Multiplies every negative advantage (after the MGPO weight): 1 = the method (symmetric), 0 = "
                "positive samples only. Ours, not the reports' (docs/method.md, 'Signal')."})
    advantage_mode: str = field(default="mgpo", metadata={
        "help": "'mgpo': the weighted group-relative advantage; 'rft': the control of rejection-sampling "
                "fine-tuning on the same samples, advantage = 1 for a correct sample and 0 otherwise (no "
                "baseline, no weight), i.e. SFT on the verified samples of each step."})
    skip_zero_advantage: bool = field(default=True, metadata={
        "help": "Leave the samples whose final advantage is exactly 0 out of the loss's forward and backward "
                "pass, rescaling the others' advantages so that the loss and its gradient are the same (a "
                "zero-advantage sample adds exactly 0 to both; drop_zero_advantage_rows). With positive "
                "samples only (or rft) that is about half of every batch. Only where this is exact: loss_type "
                "in SKIP_RESCALE, beta 0, one optimizer step per generation (steps_per_generation, "
                "num_iterations and gradient accumulation 1), no entropy mask or bonus; elsewhere it does "
                "nothing. trl's logged entropy is then the kept samples' entropy."})

    def __post_init__(self):
        super().__post_init__()
        for name in ("mgpo_lambda", "long2short_lambda"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        v = self.negative_advantage_scale
        if not (isinstance(v, (int, float)) and math.isfinite(v) and 0 <= v <= 1):
            raise ValueError(f"negative_advantage_scale must be a number in [0, 1] (1 = the method), got {v!r}")
        if self.advantage_mode not in ADVANTAGE_MODES:
            raise ValueError(f"advantage_mode must be one of {ADVANTAGE_MODES}, got {self.advantage_mode!r}")
        if self.advantage_mode == "rft" and not self.mgpo_accuracy_reward:
            raise ValueError("advantage_mode='rft' needs mgpo_accuracy_reward (the 0/1 accuracy reward's name)")
        if (self.mgpo_lambda > 0 or self.long2short_lambda > 0) and not self.mgpo_accuracy_reward:
            raise ValueError("mgpo_lambda > 0 or long2short_lambda > 0 needs mgpo_accuracy_reward: the name of the "
                             "reward function that returns the verifiable 0/1 accuracy (e.g. 'accuracy')")


class MGPOTrainer(GRPOTrainer):
    """GRPOTrainer whose per-group advantages are scaled by the MGPO weight (see module docstring)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        a = self.args
        if not isinstance(a, MGPOConfig):
            raise TypeError(f"MGPOTrainer needs args=MGPOConfig(...), got {type(a).__name__}")
        self._acc_idx = None
        if a.mgpo_accuracy_reward is not None:
            if a.mgpo_accuracy_reward not in self.reward_func_names:
                raise ValueError(f"mgpo_accuracy_reward={a.mgpo_accuracy_reward!r} is not one of this trainer's "
                                 f"reward functions {self.reward_func_names}; pass the __name__ of the "
                                 "verifiable accuracy reward")
            self._acc_idx = self.reward_func_names.index(a.mgpo_accuracy_reward)
        self._mgpo_acc = None  # raw gathered accuracy rewards of the batch being scored
        self._skip_zero = skips_zero_advantage(a, getattr(self, "_entropy_bonus_enabled", False))

    def _group_size(self) -> int:
        return self.num_generations if self.model.training else self.num_generations_eval

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        if self._acc_idx is None:
            return rewards_per_func
        acc = rewards_per_func[:, self._acc_idx]
        self._mgpo_acc = acc.clone()  # before shaping: p is the raw verifiable accuracy
        if self.args.long2short_lambda > 0:
            local_len = torch.tensor([len(c) for c in completion_ids_list], device=rewards_per_func.device)
            lengths = gather(local_len)  # same process order as trl's gather of the rewards
            rewards_per_func[:, self._acc_idx] = long2short_group_tensor(
                acc, lengths, self._group_size(), self.args.long2short_lambda, self.args.mgpo_correct_threshold)
        return rewards_per_func

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        # the rows are dropped here, after trl's shuffle of the scored batch: the random stream (and so
        # every later sample) is the same with and without skip_zero_advantage
        if self._skip_zero and self.model.training:
            inputs = drop_zero_advantage_rows(inputs, SKIP_RESCALE[self.args.loss_type])
            self._metrics["train"]["mgpo/rows_in_loss"].append(float(inputs["advantages"].shape[0]))
        return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                    num_items_in_batch=num_items_in_batch)

    def _generate_and_score_completions(self, inputs):
        self._mgpo_acc = None
        output = super()._generate_and_score_completions(inputs)
        if self._acc_idx is None:
            return output
        if self._mgpo_acc is None:
            raise RuntimeError("MGPOTrainer: trl did not call _calculate_rewards; this trl version is unsupported")
        adv = output["advantages"]
        n_local = adv.shape[0]
        w_local, p, w = local_sample_weights(self._mgpo_acc, self._group_size(), self.args.mgpo_lambda,
                                             self.args.mgpo_correct_threshold, self.accelerator.process_index,
                                             n_local)
        a = self.args
        if a.advantage_mode == "rft":  # the control: SFT on this step's verified samples
            sl = slice(self.accelerator.process_index * n_local, (self.accelerator.process_index + 1) * n_local)
            acc_local = self._mgpo_acc[sl]  # trl's slice of the gathered batch
            new = (acc_local >= a.mgpo_correct_threshold).to(device=adv.device, dtype=adv.dtype)
        else:
            new = adv * w_local.to(device=adv.device, dtype=adv.dtype)
            if a.negative_advantage_scale != 1.0:
                new = torch.where(new < 0, new * a.negative_advantage_scale, new)
        output["advantages"] = new
        # keep trl's completions table consistent: it logged the unweighted global advantages last
        logged = self._logs["advantages"]
        n_global = w.numel() * self._group_size()
        if len(logged) >= n_global:
            tail = [logged.pop() for _ in range(n_global)][::-1]
            w_all = w.repeat_interleave(self._group_size()).tolist()
            logged.extend(a * wi for a, wi in zip(tail, w_all))
        mode = "train" if self.model.training else "eval"
        ok = ~torch.isnan(p)
        if ok.any():
            pv, wv = p[ok], w[ok]
            self._metrics[mode]["mgpo/weight_mean"].append(wv.mean().item())
            self._metrics[mode]["mgpo/weight_min"].append(wv.min().item())
            self._metrics[mode]["mgpo/frac_solved_or_failed"].append(((pv == 0) | (pv == 1)).float().mean().item())
            self._metrics[mode]["mgpo/group_accuracy_mean"].append(pv.mean().item())
        return output


# loss_type -> how the loss is normalised, so how the kept rows' advantages must be rescaled for the loss and
# its gradient to stay the same: "rows" (a mean over sequences), "tokens" (a mean over the batch's completion
# tokens) or None (a fixed normaliser: the generation batch's token count)
SKIP_RESCALE = {"grpo": "rows", "dr_grpo": "rows", "bnpo": "tokens", "dapo": None, "cispo": None}


def skips_zero_advantage(args, entropy_bonus: bool = False) -> bool:
    """Whether MGPOTrainer leaves zero-advantage rows out of the loss under these MGPOConfig args: asked
    for, and exact (a loss type in SKIP_RESCALE, no KL term, one optimizer step per generation, no
    entropy mask or bonus, all of which would give a zero-advantage row a gradient or move the normaliser)."""
    return bool(args.skip_zero_advantage and args.loss_type in SKIP_RESCALE and args.beta == 0.0
                and args.steps_per_generation == 1 and args.num_iterations == 1
                and args.gradient_accumulation_steps == 1 and args.top_entropy_quantile >= 1.0 and not entropy_bonus)


def drop_zero_advantage_rows(output: dict, rescale: str | None = "rows") -> dict:
    """trl's scored batch without its zero-advantage rows, the others' advantages rescaled.

    With no KL term, a row whose advantage is exactly 0 contributes exactly 0 to the policy loss and
    its gradient, but it still costs a forward and a backward pass. Leaving it out changes only the
    loss's normaliser where that is counted on the batch: rescale="rows" (the 'grpo' and 'dr_grpo'
    losses, means over sequences) scales the kept advantages by kept/total rows, "tokens" ('bnpo')
    by kept/total completion tokens, None ('dapo', 'cispo': a normaliser fixed on the whole
    generation batch) not at all. The loss and the gradient are then unchanged up to float rounding.
    Trailing completion columns that only padding fills are trimmed. At least one row is kept (with
    advantage 0 when every row has 0), so the step stays well defined."""
    if rescale not in ("rows", "tokens", None):
        raise ValueError(f"rescale must be 'rows', 'tokens' or None, got {rescale!r}")
    adv = output["advantages"]
    n = adv.shape[0]
    keep = (adv.reshape(n, -1) != 0).any(dim=1).nonzero().flatten()
    if len(keep) == n:
        return output
    if len(keep) == 0:
        keep = torch.zeros(1, dtype=torch.long, device=adv.device)
    out = {k: (v.index_select(0, keep.to(v.device)) if isinstance(v, torch.Tensor) and v.ndim >= 1 and v.shape[0] == n
               else v) for k, v in output.items()}
    if rescale == "rows":
        out["advantages"] = out["advantages"] * (len(keep) / n)
    elif rescale == "tokens":
        out["advantages"] = out["advantages"] * (out["completion_mask"].sum() / output["completion_mask"].sum()).item()
    width = int(out["completion_mask"].sum(0).nonzero().max().item()) + 1 if out["completion_mask"].any() else 1
    for k in ("completion_ids", "completion_mask", "old_per_token_logps", "sampling_per_token_logps",
              "importance_sampling_ratio", "ref_per_token_logps", "tool_mask"):
        v = out.get(k)
        if isinstance(v, torch.Tensor) and v.ndim == 2 and v.shape[1] == output["completion_ids"].shape[1]:
            out[k] = v[:, :width]
    return out


# ----------------------------------------------------------------------------- solvability filter

def filter_solvable(model, tokenizer, dataset, n_rollouts: int = 8, grade_fn: Callable | None = None,
                    **gen_kw) -> tuple[Any, dict]:
    """Drop prompts whose accuracy under `model` over `n_rollouts` samples is exactly 0 or 1 (3B report).

    `grade_fn(record, completion) -> bool` defaults to `vtkit.evaluation.grade_one`; `gen_kw` go to
    `vtkit.generate.generate` (temperature, top_p, max_new_tokens, seed, ...). Returns the kept rows
    and a report {n_in, n_all_correct, n_all_wrong, n_kept, n_rollouts, accuracy (per input row)}.
    """
    if n_rollouts < 2:
        raise ValueError(f"n_rollouts must be >= 2 to tell solvable prompts from 0/1 ones, got {n_rollouts}")
    if "prompt" not in dataset.column_names:
        raise ValueError(f"dataset needs a 'prompt' column (vtkit record schema); has {dataset.column_names}")
    records = list(dataset)
    if not records:
        return dataset, {"n_in": 0, "n_all_correct": 0, "n_all_wrong": 0, "n_kept": 0,
                         "n_rollouts": n_rollouts, "accuracy": []}
    outs = gen.sharded_generate(model, tokenizer, [r["prompt"] for r in records], n=n_rollouts, **gen_kw)
    recs = [records[o["prompt_index"]] for o in outs]
    ok = ([g["correct"] for g in evaluation.grade(recs, [o["text"] for o in outs])] if grade_fn is None
          else [bool(grade_fn(r, o["text"])) for r, o in zip(recs, outs)])
    correct = np.zeros(len(records), dtype=np.int64)
    count = np.zeros(len(records), dtype=np.int64)
    for o, c in zip(outs, ok):
        count[o["prompt_index"]] += 1
        correct[o["prompt_index"]] += c
    if (count != n_rollouts).any():
        raise RuntimeError(f"generate returned {count.tolist()} samples per prompt, expected {n_rollouts} each")
    acc = correct / n_rollouts
    keep = [i for i, a in enumerate(acc) if 0.0 < a < 1.0]
    report = {"n_in": len(records), "n_all_correct": int((acc == 1.0).sum()),
              "n_all_wrong": int((acc == 0.0).sum()), "n_kept": len(keep), "n_rollouts": n_rollouts,
              "accuracy": acc.tolist()}
    return dataset.select(keep), report

"""The work a stage did, counted from real token counts: tokens trained, generated and scored, and their FLOPs.

    from vtkit import compute
    compute.reset()                                   # vtkit.stages.base.start does this for every stage
    compute.add_trained(model, [37, 52])              # two training sequences of 37 and 52 tokens
    compute.add_generated(model, [12, 30], prompt_tokens=[20, 20])   # two samples, their prompts prefilled
    with compute.evaluation():                        # generation inside is also counted as evaluation
        evaluation.evaluate((model, tok), records)
    compute.metrics()   # {"tokens_trained": 89, "tokens_generated": 42, "tokens_generated_eval": ..., ...}

One process-wide counter. The kit counts at the source, so a stage needs no bookkeeping of its own:
`vtkit.generate.generate` (every sampling call: generated tokens = the records' `n_tokens`, prompt tokens
= `n_prompt_tokens`), `vtkit.train.sft` and `train_lm` (the tokens of every row trained, padding
excluded), `vtkit.rl_phase.run_phase` (rollouts as generated tokens; prompt + completion tokens of the rows
in the loss as trained tokens; trl's forward-only log-probabilities of old/reference policies as scored
tokens), `vtkit.evaluation.evaluate` (its generation marked as evaluation), and forward-only scoring:
`train.lm_loss`, `distill.learning_potential`, the capacity probe's pair scoring (`capacity._score_pairs`).
`vtkit.stages.base.start` resets the counter and `base.finish` adds `metrics()` to the stage's metrics.json.

FLOPs use the plan's formulas (`vtkit.plan.train_flops`, `forward_flops`: 6 N T for training, 2 N T for
forward-only work, N the parameters that multiply, plus attention over each sequence's own length), per
sequence, so that the plan and this count agree on the same model and tokens. `gen_flops` holds generation
(prompt prefill and generated tokens) and scoring; `train_flops` training only.

Departures: FLOPs are model FLOPs (what the plan's GPU-hours divide by MFU), not what the hardware ran:
padding, gradient-checkpointing recomputation and a KV-cache's re-reads are not counted, and a prompt
sampled n times counts n prefills, as the plan assumes. LoRA adapters are not in N. Not counted: the
capacity probe's cached candidate scoring (`capacity._score_sets`) and a reward model's scores inside trl
(instruct). Under data parallelism (several processes) each process counts its own shard only, and the
main process writes metrics.json: its counts are then one process's share.
"""
from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from vtkit import plan

KEYS = ("tokens_trained", "tokens_generated", "tokens_generated_eval", "tokens_prompt", "tokens_scored",
        "train_flops", "gen_flops", "gen_flops_eval")


@dataclass
class Counter:
    """Totals since the last `reset` (what `metrics` reports)."""
    tokens_trained: int = 0          # tokens of training sequences (forward + backward)
    tokens_generated: int = 0        # sampled tokens, evaluation included
    tokens_generated_eval: int = 0   # the part of tokens_generated sampled by evaluation
    tokens_prompt: int = 0           # prompt tokens prefilled for sampling
    tokens_scored: int = 0           # forward-only scoring (log-probabilities, losses), no sampling
    train_flops: float = 0.0
    gen_flops: float = 0.0           # sampling (prompt + generated) and scoring
    gen_flops_eval: float = 0.0      # the part of gen_flops spent by evaluation
    started: float = field(default_factory=time.time)
    in_eval: int = 0                 # depth of `evaluation()` blocks


_C = Counter()


def reset() -> None:
    """Zero the counter (a stage's start)."""
    global _C
    _C = Counter()


def shape(model):
    """The plan's `Shape` of a model: an HF model (its config), a folder or model spec, or a vllm.LLM; None
    for a torch module without an HF config (counted by its parameter count, without attention)."""
    if isinstance(model, str):
        return plan.model_shape(model, use_hub=False)
    cfg = getattr(model, "config", None)
    if cfg is None and hasattr(model, "llm_engine"):   # vllm.LLM
        cfg = model.llm_engine.model_config.hf_config
    if cfg is None or not hasattr(cfg, "to_dict"):
        if hasattr(model, "parameters"):   # a torch module without an HF config: its parameters, no attention
            return None
        raise TypeError(f"compute: cannot size a model of type {type(model).__name__}: pass an HF model (with a "
                        f".config), a model folder or spec, or a vllm.LLM")
    d = cfg.to_dict()
    s = plan.shape_from_config(d, str(getattr(cfg, "name_or_path", "") or type(model).__name__), "model config")
    if any(a.endswith("ForSequenceClassification") for a in d.get("architectures") or []):
        s = s.as_classifier()
    return s


def _flops(model, lengths: list[int], per_token: int, prompts: list[int] | None = None) -> float:
    """plan.train_flops (per_token 6) or plan.forward_flops (2) of each sequence over its own length (prompt +
    tokens); a module without an HF config: per_token x its parameter count per token, no attention."""
    s = shape(model)
    full = lengths if prompts is None else [p + n for p, n in zip(prompts, lengths)]
    if s is None:
        return float(per_token * sum(p.numel() for p in model.parameters()) * sum(full))
    f = plan.train_flops if per_token == 6 else plan.forward_flops
    return sum(f(s, L, L) for L in full)


def _lengths(n_tokens) -> list[int]:
    out = [int(n_tokens)] if isinstance(n_tokens, int) else [int(x) for x in n_tokens]
    if any(x < 0 for x in out):
        raise ValueError(f"compute: token counts must be >= 0, got {out[:5]}...")
    return out


def add_trained(model, n_tokens: int | Iterable[int]) -> None:
    """Count training on sequences of these token lengths (an int: one sequence). FLOPs: plan.train_flops
    of each sequence over its own length."""
    lengths = _lengths(n_tokens)
    if not lengths:
        return
    _C.train_flops += _flops(model, lengths, 6)
    _C.tokens_trained += sum(lengths)


def add_generated(model, n_tokens: int | Iterable[int], prompt_tokens: int | Iterable[int] = 0,
                  eval: bool | None = None) -> None:
    """Count sampled sequences: `n_tokens` generated tokens each, after `prompt_tokens` prompt tokens each (an
    int applies to every sequence). FLOPs: plan.forward_flops of prompt + generated tokens over that length,
    as the plan counts generation. `eval`: None = inside an `evaluation()` block or not."""
    gen = _lengths(n_tokens)
    if not gen:
        return
    prompts = [int(prompt_tokens)] * len(gen) if isinstance(prompt_tokens, int) else _lengths(prompt_tokens)
    if len(prompts) != len(gen):
        raise ValueError(f"compute.add_generated: {len(gen)} generated lengths but {len(prompts)} prompt lengths")
    flops = _flops(model, gen, 2, prompts)
    _C.tokens_generated += sum(gen)
    _C.tokens_prompt += sum(prompts)
    _C.gen_flops += flops
    if eval or (eval is None and _C.in_eval):
        _C.tokens_generated_eval += sum(gen)
        _C.gen_flops_eval += flops


def add_scored(model, n_tokens: int | Iterable[int]) -> None:
    """Count forward-only scoring of sequences of these lengths (log-probabilities, losses, rewards)."""
    lengths = _lengths(n_tokens)
    if not lengths:
        return
    flops = _flops(model, lengths, 2)
    _C.tokens_scored += sum(lengths)
    _C.gen_flops += flops
    if _C.in_eval:
        _C.gen_flops_eval += flops


@contextlib.contextmanager
def evaluation():
    """Generation and scoring inside count also as evaluation (tokens_generated_eval, gen_flops_eval)."""
    _C.in_eval += 1
    try:
        yield
    finally:
        _C.in_eval -= 1


def metrics() -> dict:
    """The counts since `reset`: KEYS (ints for tokens, floats for FLOPs)."""
    return {k: getattr(_C, k) for k in KEYS}


def elapsed() -> float:
    """Seconds since `reset` (a stage's wall time when it writes none of its own)."""
    return time.time() - _C.started

"""One Signal-phase RL run: MGPO on a dataset with given rewards, a step log, held-out accuracy, a checkpoint.

    from vtkit import rlrun, tasks
    heldout = list(tasks.make("math", 32, seed=0, difficulty=1, split="test"))
    res = rlrun.run_phase(model, tok, tasks.make("math", 64, difficulty=1), "runs/x/phases/math",
                          phase="math", heldout=heldout, mgpo_lambda=1.0, max_steps=20, eval_every=5)
    res.before["accuracy"], res.after["accuracy"]      # greedy held-out accuracy with bootstrap ends
    res.steps                                          # one dict per step (also steps.jsonl)
    rlrun.plot_steps(res.steps, "runs/x/rl_curves")    # reward, held-out accuracy, weights, length
    rlrun.plot_sweep("runs/mgpo_vs_grpo")              # held-out accuracy vs step, one line per lambda

What one phase does: the records become trl prompt rows (user turn in `prompt`, the record's
`answer`/`tests`/`domain`/`meta` beside it for the rewards), an `MGPOTrainer` trains on them
strictly on-policy by default (`num_iterations=1`, `steps_per_generation=1`: every update uses
completions the current policy just sampled), a `HeldOutCallback` measures accuracy on the
held-out records before the first step, every `eval_every` steps and after the last, and the
phase's checkpoint goes to `out_dir/model` with its step log in `out_dir/steps.jsonl`.

Rewards per phase (`PHASES`, PIPELINE.md "Signal phase"): math is graded by its final answer
(`accuracy`), code by the sandbox tests (`code_tests`, binary), STEM by answer-with-unit or option
letter (`stem`); Long2Short is a second math phase with `long2short_lambda` = 0.2 (the 3B report's
value). The MGPO group accuracy p comes from that phase's binary reward (`mgpo_accuracy_reward`).

Departures from the paper / choices of ours: the report's loss averages tokens per sequence, then
over the group ((1/G) sum_i 1/|y_i| sum_t ...), which is trl's `loss_type="grpo"`; we pass that
instead of trl 1.16's default "dapo". beta = 0 (no KL term, no reference model; the reports give
no coefficient). Held-out accuracy defaults to greedy (one sample, temperature 0), a cheap,
low-variance probe; the notebooks pass the reports' sampled protocol instead (`eval_samples`
samples at `eval_temperature` 1.0, mean pass@1). The learning rate is constant after an optional
linear `warmup`.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from transformers import PrinterCallback, TrainerCallback

RECORD_COLUMNS = ("id", "domain", "subdomain", "answer", "tests", "meta", "instruction_id_list", "kwargs")


@dataclass(frozen=True)
class PhaseSpec:
    domain: str                       # task domain of the phase's prompts (vtkit.tasks)
    rewards: tuple                    # vtkit.rewards.REWARDS names; the first is the binary accuracy
    long2short_lambda: float = 0.0    # > 0: Long2Short shaping of the accuracy reward


PHASES = {
    "math": PhaseSpec("math", ("accuracy",)),
    "long2short": PhaseSpec("math", ("accuracy",), long2short_lambda=0.2),  # 3B report's lambda
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
    from vtkit.rewards import REWARDS
    bad = [n for n in names if n not in REWARDS]
    if bad:
        raise ValueError(f"unknown reward(s) {bad}; valid: {', '.join(REWARDS)}")
    return [REWARDS[n] for n in names]


# ----------------------------------------------------------------------------- data

def to_prompt_rows(records):
    """Task records -> a trl prompt-only dataset: `prompt` as one user turn, reward columns kept."""
    import datasets
    rows = [dict(r) for r in records]
    if not rows:
        raise ValueError("no records to train on (the solvability filter may have dropped them all); "
                         "pass more prompts, or prompts nearer the model's level")
    cols = [c for c in RECORD_COLUMNS if c in rows[0]]
    return datasets.Dataset.from_list(
        [{"prompt": [{"role": "user", "content": r["prompt"]}], **{c: r[c] for c in cols}} for r in rows])


def grade_texts(records: Sequence[dict], texts: Sequence[str]) -> list[bool]:
    """Correctness of each text for its record, per record domain; code runs in parallel sandboxes."""
    from vtkit.rewards import accuracy_reward
    if len(records) != len(texts):
        raise ValueError(f"{len(records)} records but {len(texts)} texts; pass one text per record")
    if not records:
        return []
    cols = {k: [r.get(k, "") or "" for r in records] for k in ("answer", "domain", "meta", "tests")}
    return [r == 1.0 for r in accuracy_reward(list(texts), **cols)]


def heldout_accuracy(model, tokenizer, records: Sequence[dict], max_new_tokens: int = 96, n: int = 1,
                     temperature: float = 0.0, batch_size: int = 64, n_boot: int = 1000, seed: int = 0) -> dict:
    """Held-out accuracy with a percentile-bootstrap interval over items.

    n = 1, temperature = 0 (default) is greedy; otherwise n samples per item at `temperature` and
    the item's score is its share of correct samples (the reports' mean pass@1 over n samples).
    Returns {accuracy, lo, hi, n, mean_tokens, correct (per item: bool when greedy, else the share)}.
    """
    from vtkit.generate import generate
    from vtkit.metrics import bootstrap_ci
    records = [dict(r) for r in records]
    if not records:
        raise ValueError("no held-out records: pass at least one (vtkit.tasks.make(..., split='test'))")
    if n < 1 or (temperature == 0 and n > 1):
        raise ValueError(f"need n >= 1, and n = 1 when greedy (temperature 0); got n={n}, temperature={temperature}")
    outs = generate(model, tokenizer, [r["prompt"] for r in records], n=n, temperature=temperature,
                    max_new_tokens=max_new_tokens, batch_size=batch_size, seed=seed)
    ok = np.array(grade_texts([records[o["prompt_index"]] for o in outs], [o["text"] for o in outs])).reshape(-1, n)
    per_item = [bool(x[0]) for x in ok] if n == 1 else [float(x.mean()) for x in ok]
    lo, hi = bootstrap_ci([float(c) for c in per_item], n_boot=n_boot, seed=seed)
    return {"accuracy": float(ok.mean()), "lo": lo, "hi": hi, "n": len(records),
            "mean_tokens": float(np.mean([o["n_tokens"] for o in outs])), "correct": per_item}


def instruction_pass_rates(model, tokenizer, records: Sequence[dict], max_new_tokens: int = 128, n: int = 1,
                           temperature: float = 0.0, batch_size: int = 64, n_boot: int = 1000, seed: int = 0) -> dict:
    """IFEval strict pass rates on constrained prompts (vtkit.instructions.make_prompts rows).

    `accuracy` is prompt-level strict (every instruction of the prompt followed), `inst` instruction-
    level strict (the share of the prompt's instructions followed); per prompt each is averaged over
    its n samples (greedy by default; vtkit.protocols' "ifeval" preset samples n = 4 at temperature
    1.0), then over prompts, with percentile-bootstrap intervals over prompts. Keys fit HeldOutCallback.
    """
    from vtkit.generate import generate
    from vtkit.instructions import check_strict
    from vtkit.metrics import bootstrap_ci
    records = [dict(r) for r in records]
    if not records or any(not r.get("instruction_id_list") for r in records):
        raise ValueError("need constrained prompts with a non-empty instruction_id_list each "
                         "(vtkit.instructions.make_prompts); open-ended rows have no pass rate")
    if n < 1 or (temperature == 0 and n > 1):
        raise ValueError(f"need n >= 1, and n = 1 when greedy (temperature 0); got n={n}, temperature={temperature}")
    outs = generate(model, tokenizer, [r["prompt"] for r in records], n=n, temperature=temperature,
                    max_new_tokens=max_new_tokens, batch_size=batch_size, seed=seed)
    oks = [check_strict(o["text"], records[o["prompt_index"]]["instruction_id_list"],
                        records[o["prompt_index"]]["kwargs"]) for o in outs]
    prompt = np.array([float(all(ok)) for ok in oks]).reshape(-1, n).mean(1)
    inst = np.array([sum(ok) / len(ok) for ok in oks]).reshape(-1, n).mean(1)
    lo, hi = bootstrap_ci(prompt, n_boot=n_boot, seed=seed)
    ilo, ihi = bootstrap_ci(inst, n_boot=n_boot, seed=seed)
    return {"accuracy": float(prompt.mean()), "lo": lo, "hi": hi, "inst": float(inst.mean()), "inst_lo": ilo,
            "inst_hi": ihi, "n": len(records), "mean_tokens": float(np.mean([o["n_tokens"] for o in outs])),
            "correct": [bool(p) if n == 1 else float(p) for p in prompt], "inst_per_item": inst.tolist()}


def constrained_prompts(n: int, seed: int = 0, n_constraints=(1, 1), instruction_ids: Sequence[str] | None = None,
                        base_tasks: Sequence[str] | None = None, unique: bool = False, max_rounds: int = 200):
    """n rows of vtkit.instructions.make_prompts whose constraints all come from `instruction_ids` (None: any).

    Draws make_prompts batches with seeds seed, seed+1, ... and keeps matching rows (and, with
    unique=True, each prompt text once) until n are found; same arguments, same rows.
    """
    import datasets

    from vtkit import instructions
    allowed = None if instruction_ids is None else set(instruction_ids)
    if allowed is not None:
        bad = sorted(allowed - set(instructions.REGISTRY))
        if bad or not allowed:
            raise ValueError(f"unknown instruction ids {bad}; valid: {', '.join(sorted(instructions.REGISTRY))}")
    rows, seen = [], set()
    for k in range(max_rounds):
        if len(rows) >= n:
            break
        batch = instructions.make_prompts(max(2 * n, 32), seed=seed * 1000 + k, n_constraints=tuple(n_constraints),
                                          base_tasks=base_tasks)
        for r in batch:
            if (allowed is None or set(r["instruction_id_list"]) <= allowed) and not (unique and r["prompt"] in seen):
                seen.add(r["prompt"])
                rows.append(r)
    if len(rows) < n:
        raise ValueError(f"found only {len(rows)} of {n} prompts with constraints from {sorted(allowed or [])}"
                         f"{' (unique)' if unique else ''}; ask for fewer, or allow more instruction ids / base tasks")
    return datasets.Dataset.from_list(rows[:n])


def paired_gain(before: Sequence[bool], after: Sequence[bool], n_boot: int = 1000, seed: int = 0) -> dict:
    """after - before accuracy on the same items, with a paired bootstrap interval (items resampled)."""
    from vtkit.metrics import bootstrap_ci
    if len(before) != len(after) or not before:
        raise ValueError(f"need two equal, non-empty per-item lists, got {len(before)} and {len(after)}")
    d = [float(a) - float(b) for a, b in zip(after, before)]
    lo, hi = bootstrap_ci(d, n_boot=n_boot, seed=seed)
    return {"gain": float(np.mean(d)), "lo": lo, "hi": hi}


# ----------------------------------------------------------------------------- callback

class HeldOutCallback(TrainerCallback):
    """Held-out evaluation at step 0, every `every` steps, and at the last step (no step twice).

    `evaluate(model) -> dict` with at least accuracy, lo, hi, mean_tokens, correct (heldout_accuracy's
    keys); `before` (that dict for the starting model, if already measured) stands in for step 0.
    Evaluation never changes training: vtkit.generate samples under a forked RNG and restores train
    mode, so a run with this callback updates the weights exactly as one without it (tested).
    """

    def __init__(self, evaluate: Callable, every: int = 5, before: dict | None = None):
        if every < 1:
            raise ValueError(f"every must be >= 1 step, got {every}")
        self.evaluate, self.every = evaluate, every
        self.log: list[dict] = [] if before is None else [{"step": 0, **before}]

    def _eval(self, model, step: int):
        if self.log and self.log[-1]["step"] == step:
            return
        t = time.time()
        r = self.evaluate(model)
        self.log.append({"step": step, **r, "eval_s": time.time() - t})

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
    before: dict | None              # held-out at step 0 (heldout_accuracy's dict)
    after: dict | None               # held-out after the last step
    wall_s: float
    out_dir: Path
    evals: list = field(default_factory=list)

    def metrics(self, prefix: str | None = None, n_boot: int = 1000, seed: int = 0) -> dict:
        """Flat scalars for metrics.json: before/after accuracy with intervals, the paired gain, weights."""
        p = f"{prefix or self.phase}/"
        out = {f"{p}steps": sum(1 for s in self.steps if s.get("loss") is not None), f"{p}wall_s": self.wall_s}
        for name, r in (("before", self.before), ("after", self.after)):
            if r is not None:
                out.update({f"{p}{name}": r["accuracy"], f"{p}{name}_lo": r["lo"], f"{p}{name}_hi": r["hi"]})
        if self.before is not None and self.after is not None:
            g = paired_gain(self.before["correct"], self.after["correct"], n_boot=n_boot, seed=seed)
            out.update({f"{p}gain": g["gain"], f"{p}gain_lo": g["lo"], f"{p}gain_hi": g["hi"],
                        f"{p}n_heldout": self.after["n"]})
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
        row.update(heldout_acc=e["accuracy"], heldout_lo=e["lo"], heldout_hi=e["hi"],
                   heldout_tokens=e["mean_tokens"])
    return [{"phase": phase, "step": s, "global_step": s + step_offset, **rows[s]} for s in sorted(rows)]


def write_jsonl(path, rows: Sequence[dict]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + f".{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    os.replace(tmp, path)
    return path


def read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def run_phase(model, tokenizer, records, out_dir, *, phase: str = "rl", rewards: Sequence | None = None,
              accuracy_reward: str | None = None, heldout: Sequence[dict] | Callable | None = None,
              eval_every: int = 5, eval_max_new_tokens: int | None = None, eval_samples: int = 1,
              eval_temperature: float = 0.0, before: dict | None = None, mgpo_lambda: float = 1.0, long2short_lambda: float | None = None,
              max_steps: int = 20, lr: float = 1e-3, warmup: float = 0, prompts_per_step: int = 8, num_generations: int = 8,
              max_completion_length: int = 96, temperature: float = 1.0, top_p: float = 1.0,
              num_iterations: int = 1, steps_per_generation: int = 1, loss_type: str = "grpo", beta: float = 0.0,
              seed: int = 0, step_offset: int = 0, save: bool = True, callbacks: Sequence = (),
              **grpo_kw) -> PhaseResult:
    """Train `model` in place with MGPO on `records` for `max_steps` steps; see the module docstring.

    rewards: registry names or trl reward functions; default = the phase's (`PHASES`). accuracy_reward:
    the trl name (__name__) of the binary verifiable reward MGPO takes p from; default = the first
    reward's. heldout: records (`heldout_accuracy` with eval_samples / eval_temperature: greedy by
    default) or a function model -> dict with heldout_accuracy's keys; `before`: that dict for the starting model when already measured.
    prompts_per_step x num_generations completions are sampled per step; the learning rate is
    constant after `warmup` (steps, or a fraction of max_steps when < 1; 0 = none). Extra keyword
    arguments go to MGPOConfig (any GRPOConfig field). With beta > 0, trl builds its reference
    model from the model's config path: save the model to a folder and load it from there first.
    """
    from vtkit.rl import MGPOConfig, MGPOTrainer
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
    args = MGPOConfig(
        output_dir=str(out / "trainer"), max_steps=max_steps, learning_rate=lr,
        per_device_train_batch_size=prompts_per_step * num_generations, num_generations=num_generations,
        steps_per_generation=steps_per_generation, num_iterations=num_iterations,
        max_completion_length=max_completion_length, temperature=temperature, top_p=top_p, top_k=0,
        loss_type=loss_type, beta=beta, mgpo_lambda=float(mgpo_lambda), mgpo_accuracy_reward=accuracy_reward,
        long2short_lambda=float(long2short_lambda), lr_scheduler_type="constant_with_warmup" if warmup else "constant", warmup_steps=warmup,
        logging_steps=1, save_strategy="no", report_to="none", disable_tqdm=True, seed=seed, data_seed=seed,
        bf16=False, use_cpu=not _cuda(), gradient_checkpointing=False, dataloader_num_workers=0, **grpo_kw)
    cbs = list(callbacks)
    held = None
    if heldout is not None:
        if callable(heldout):
            fn = heldout
        else:
            recs, mnt = [dict(r) for r in heldout], eval_max_new_tokens or max_completion_length
            fn = lambda m: heldout_accuracy(m, tokenizer, recs, max_new_tokens=mnt, n=eval_samples,  # noqa: E731
                                            temperature=eval_temperature, seed=seed)
        held = HeldOutCallback(fn, every=eval_every, before=before)
        cbs.append(held)
    model.train()
    trainer = MGPOTrainer(model=model, reward_funcs=funcs, args=args, train_dataset=ds, processing_class=tokenizer,
                          callbacks=cbs)
    trainer.remove_callback(PrinterCallback)  # with tqdm off it prints every step's log dict; steps.jsonl has them
    trainer.train()
    model.eval()
    evals = held.log if held else []
    steps = step_log(trainer.state.log_history, evals, phase, step_offset)
    write_jsonl(out / "steps.jsonl", steps)
    shutil.rmtree(out / "trainer", ignore_errors=True)  # save_strategy="no": only trl's stray files
    if save:
        from vtkit import models
        models.save(model, tokenizer, out / "model")
    return PhaseResult(phase=phase, model=model, steps=steps, before=evals[0] if evals else None,
                       after=evals[-1] if len(evals) > 1 else None, wall_s=time.time() - t0, out_dir=out,
                       evals=evals)


def _cuda() -> bool:
    import torch
    return torch.cuda.is_available()


# ----------------------------------------------------------------------------- task sets and a quick SFT start

def make_tasks(spec: dict, n: int | dict, seed: int = 0, split: str = "train") -> dict[str, list[dict]]:
    """{domain: records} from a per-domain task spec, e.g. {"math": {"difficulty": 1, "mod": 7}, "code": {}}.

    Each domain's dict holds vtkit.tasks.make keywords (difficulty, mod, subdomain, ...); `n` is a
    count for every domain or a {domain: count} dict. split="test" gives the held-out problems."""
    from vtkit import tasks
    if not isinstance(spec, dict) or not spec:
        raise ValueError(f"spec must be a non-empty dict {{domain: {{tasks.make keywords}}}}, got {spec!r}")
    out = {}
    for dom, kw in spec.items():
        kw = {k: (tuple(v) if k == "difficulty" and isinstance(v, list) else v) for k, v in (kw or {}).items()}
        k = n[dom] if isinstance(n, dict) else n
        out[dom] = [dict(r) for r in tasks.make(dom, k, seed=seed, split=split, **kw)]
    return out


def preset_start(cfg: dict, seed: int = 0):
    """The RL preset's standalone start, for notebooks run without a pipeline checkpoint: a cached
    quick SFT of a fresh `cfg["model"]` on `cfg["start_data"]` (tiny; `sft_start`, always seed 0 so
    every run shares one start), else `cfg["model"]` as it is. Returns (model, tokenizer, what it is)."""
    from vtkit import models
    if cfg.get("start_data"):
        model, tok, path = sft_start(cfg["model"], cfg["start_data"], epochs=cfg["start_epochs"],
                                     lr=cfg["start_lr"], seed=0)
        n = {d: v["n"] for d, v in cfg["start_data"].items()}
        return model, tok, (f"a quick SFT of a fresh {cfg['model']} on {n} records, {cfg['start_epochs']} epochs "
                            f"(vtkit.train.sft; cached at {path})")
    model, tok = models.load(cfg["model"], seed=seed)
    return model, tok, cfg["model"]


def sft_start(size: str, data: dict, epochs: float, lr: float, batch_size: int = 16, max_length: int = 256,
              seed: int = 0, cache: bool = True):
    """(model, tokenizer, path): a fresh tiny model SFT'd (vtkit.train.sft) on `data`, cached by its settings.

    data: {domain: {"n": count, **tasks.make keywords}}. For a notebook run standalone (no earlier
    stage's checkpoint). The cache folder is `vtkit.models.cache_dir()/sft_start/<hash of the
    settings and of vtkit's task, train and model code>`, written atomically, so concurrent sweep
    runs share one copy and never read a half-written one.
    """
    import vtkit
    from vtkit import models, train
    settings = {"size": size, "data": data, "epochs": float(epochs), "lr": float(lr), "batch_size": int(batch_size),
                "max_length": int(max_length), "seed": int(seed)}  # 3 and 3.0 epochs: one cache entry
    src = Path(vtkit.__file__).parent
    h = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for f in ["train.py", "models.py", "tokenizer.py", *sorted(str(p.relative_to(src)) for p in (src / "tasks").glob("*.py"))]:
        h.update((src / f).read_bytes())
    path = models.cache_dir() / "sft_start" / h.hexdigest()[:16]
    if cache and (path / "config.json").exists():
        model, tok = models.load(str(path))
        return model, tok, path
    model, tok = models.load(size, seed=seed)
    spec = {d: {k: v for k, v in kw.items() if k != "n"} for d, kw in data.items()}
    groups = make_tasks(spec, {d: kw["n"] for d, kw in data.items()}, seed=seed, split="train")
    records = [r for recs in groups.values() for r in recs]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_train = path.parent / f".train-{uuid.uuid4().hex[:8]}"
    model, _ = train.sft(model, tok, records, tmp_train, epochs=epochs, lr=lr, batch_size=batch_size,
                         max_length=max_length, seed=seed, logging_steps=50)
    shutil.rmtree(tmp_train, ignore_errors=True)
    if cache:
        tmp = path.parent / f".{path.name}-{uuid.uuid4().hex[:8]}"
        models.save(model, tok, tmp)
        try:
            os.replace(tmp, path)  # atomic; a concurrent writer's identical copy may already be there
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
    return model, tok, path


# ----------------------------------------------------------------------------- figures

PANELS = (("reward", "mean reward"), ("heldout_acc", "held-out accuracy (greedy)"),
          ("weight", "MGPO weight"), ("completion_length", "response length (tokens)"))


def plot_steps(steps: Sequence[dict], path=None, title: str | None = None):
    """2 x 2 figure over global steps: reward, held-out accuracy (+ interval), weight mean/min, length.

    One colour per phase; phase boundaries as dotted lines. Saved as PDF+PNG when `path` is given.
    """
    from vtkit import plots
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
        ax.set_ylabel(label)
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
    import pandas as pd

    from vtkit.report import mean_ci
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
    from vtkit import plots
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


def _main(argv: list[str]) -> int:
    import argparse
    ap = argparse.ArgumentParser(prog="python -m vtkit.rlrun", description="figures from RL sweeps")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("plot-sweep", help="held-out accuracy vs step, one line per value of --by")
    p.add_argument("exp_dir")
    p.add_argument("--by", default="mgpo_lambda")
    p.add_argument("--metric", default="heldout_acc")
    p.add_argument("--phase", default="math")
    a = ap.parse_args(argv)
    _, curves = plot_sweep(a.exp_dir, a.by, a.metric, a.phase or None)
    print(curves.to_string(index=False))
    return 0


if __name__ == "__main__":
    import sys
    raise SystemExit(_main(sys.argv[1:]))

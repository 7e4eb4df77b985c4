"""One MGPOTrainer step against one GRPOTrainer step: same tiny model, config, data and seed.

    .venv/bin/python benchmarks/run.py rl

A step is one optimizer step: generation, reward scoring, loss and update, timed by a callback
in process CPU time (single torch thread, so other jobs on a shared machine barely move it) and
in wall time. Runs alternate in rotating order so background load hits all alike; ratios are of
the medians over all steps. Goal: MGPO costs at most 5% more than GRPO.

The headline ratio runs MGPO at lam = 0 with the accuracy reward named: every line of the MGPO code
runs (weights, slicing, logging), and the training trajectory is GRPO's own, so both trainers
generate the same completions and time the same work. At lam = 1 the updates differ, so the
policy, its completion lengths and hence the step time drift apart: that row is for information.

Whole-step ratios carry a few percent of noise; the MGPO code itself is also timed directly, as the
time spent in MGPOTrainer's two overrides minus the time in the GRPOTrainer methods they call.
"""
from __future__ import annotations

import copy
import statistics
import time
import warnings
import zlib

import datasets
import torch
from transformers import TrainerCallback

STEPS = 8  # per run; the first step of each run (warm-up) is dropped
REPEATS = 3  # alternating runs per trainer


def accuracy(completions, **_):
    return [float(zlib.crc32(c[0]["content"].encode()) % 3 == 0) for c in completions]


class _Timer(TrainerCallback):
    def __init__(self):
        self.cpu, self.wall = [], []

    def on_step_begin(self, args, state, control, **kw):
        self._c, self._w = time.process_time(), time.perf_counter()

    def on_step_end(self, args, state, control, **kw):
        self.cpu.append(time.process_time() - self._c)
        self.wall.append(time.perf_counter() - self._w)


def _step_times(trainer_cls, config_cls, model, tok, ds, **extra):
    args = config_cls(output_dir="runs/bench/rl", bf16=False, use_cpu=True, gradient_checkpointing=False,
                      per_device_train_batch_size=16, num_generations=4, max_completion_length=16,
                      report_to="none", seed=0, max_steps=STEPS, logging_steps=1, learning_rate=1e-3,
                      save_strategy="no", disable_tqdm=True, **extra)
    timer = _Timer()
    t = trainer_cls(model=copy.deepcopy(model), reward_funcs=[accuracy], args=args, train_dataset=ds,
                    processing_class=tok, callbacks=[timer])
    t.train()
    return timer.cpu[1:], timer.wall[1:]


class _Overhead:
    """Time spent in MGPOTrainer's overrides outside the GRPOTrainer methods they wrap."""

    def __init__(self, grpo_cls, mgpo_cls):
        self.patches, self.total, self.depth = [], 0.0, 0
        for name in ("_generate_and_score_completions", "_calculate_rewards"):
            self._wrap(grpo_cls, name, sign=-1.0)
            self._wrap(mgpo_cls, name, sign=+1.0)

    def _wrap(self, cls, name, sign):
        orig = cls.__dict__[name]

        def timed(trainer, *a, **kw):
            t = time.process_time()
            try:
                return orig(trainer, *a, **kw)
            finally:
                if isinstance(trainer, self.mgpo_cls):
                    self.total += sign * (time.process_time() - t)

        self.patches.append((cls, name, orig))
        setattr(cls, name, timed)

    def restore(self):
        for cls, name, orig in self.patches:
            setattr(cls, name, orig)


def run() -> list[dict]:
    warnings.filterwarnings("ignore")
    import transformers
    from trl import GRPOConfig, GRPOTrainer

    from vtkit import models
    from vtkit.rl import MGPOConfig, MGPOTrainer

    transformers.logging.set_verbosity_error()
    model, tok = models.load("tiny-100k", seed=0)
    ds = datasets.Dataset.from_list(
        [{"prompt": [{"role": "user", "content": f"What is {i} + {i % 7}?"}]} for i in range(64)])
    mgpo = dict(mgpo_lambda=1.0, mgpo_accuracy_reward="accuracy")
    runs = {"grpo": (GRPOTrainer, GRPOConfig, {}),
            "mgpo0": (MGPOTrainer, MGPOConfig, dict(mgpo_lambda=0.0, mgpo_accuracy_reward="accuracy")),
            "mgpo": (MGPOTrainer, MGPOConfig, mgpo)}
    cpu = {k: [] for k in runs}
    wall = {k: [] for k in runs}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        keys = list(runs)
        for r in range(REPEATS):
            for k in keys[r % len(keys):] + keys[:r % len(keys)]:  # rotate the order: no trainer always runs first
                tc, cc, extra = runs[k]
                c, w = _step_times(tc, cc, model, tok, ds, **extra)
                cpu[k] += c
                wall[k] += w
    finally:
        torch.set_num_threads(threads)
    _Overhead.mgpo_cls = MGPOTrainer
    probe = _Overhead(GRPOTrainer, MGPOTrainer)
    try:
        torch.set_num_threads(1)
        _step_times(MGPOTrainer, MGPOConfig, model, tok, ds, long2short_lambda=0.2, **mgpo)
    finally:
        probe.restore()
        torch.set_num_threads(threads)
    overhead = probe.total / STEPS
    mc = {k: statistics.median(v) for k, v in cpu.items()}
    mw = {k: statistics.median(v) for k, v in wall.items()}
    setup = f"tiny-100k, 16 completions/step (G=4), 16 new tokens, 1 CPU thread; median of {len(cpu['grpo'])} steps"
    return [
        {"benchmark": "GRPOTrainer step (CPU time)", "value": mc["grpo"] * 1e3, "unit": "ms", "goal": "", "note": setup},
        {"benchmark": "MGPOTrainer step (CPU time, lam=0)", "value": mc["mgpo0"] * 1e3, "unit": "ms", "goal": "",
         "note": setup},
        {"benchmark": "MGPO / GRPO step, CPU time", "value": mc["mgpo0"] / mc["grpo"], "unit": "x", "goal": "<= 1.05",
         "note": "lam=0, accuracy reward named: full MGPO code path, identical trajectory"},
        {"benchmark": "MGPO(lam=1) / GRPO step, CPU time", "value": mc["mgpo"] / mc["grpo"], "unit": "x", "goal": "",
         "note": "info: different updates, so different completions are timed"},
        {"benchmark": "MGPO code per step (direct)", "value": overhead * 1e3, "unit": "ms", "goal": "",
         "note": f"CPU time, lam=1 + Long2Short: {100 * overhead / mc['grpo']:.2f}% of a GRPO step"},
        {"benchmark": "MGPO / GRPO step, wall time", "value": mw["mgpo0"] / mw["grpo"], "unit": "x", "goal": "<= 1.05",
         "note": f"wall clock, noisy on a shared machine (GRPO median {mw['grpo'] * 1e3:.0f} ms)"},
    ]


if __name__ == "__main__":
    for row in run():
        print(row)

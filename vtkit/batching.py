"""Micro-batches and gradient accumulation that keep a preset's global batch, whatever the process count.

    from vtkit import batching
    batching.sft_args(8, 16, micro_batch=1, world=8)    # {"batch_size": 8, "grad_accum": 16}: train.sft's keywords
    batching.sft_args(8, 16, micro_batch=1, world=1)    # {"batch_size": 1, "grad_accum": 128}
    batching.rl_args(64, 8, micro_batch=1, world=8)     # MGPOConfig fields: 1 completion a GPU per micro-step,
    #   {"per_device_train_batch_size": 1, "gradient_accumulation_steps": 64, "steps_per_generation": 64}

A preset's global batch (rows per optimizer step over all processes: SFT's `batch_size` x `grad_accum`,
RL's `prompts_per_step` x `num_generations` completions) is what the reports give; the rows one GPU holds
at once (`micro_batch`) is what its memory allows. `micro_steps` splits the first into the second and an
accumulation count: global = micro_batch x processes x accumulation. `micro_batch` None keeps the kit's
older split (SFT: `vtkit.train.per_device_batch`, every process takes batch_size / processes rows;
RL: one micro-step of total / processes completions per process), so tiny and small runs are unchanged.

RL (trl's GRPOTrainer): a generation of the global batch is split into `steps_per_generation`
micro-batches; one optimizer step per `gradient_accumulation_steps` of them. With accumulation k the
kit's `steps_per_generation` (optimizer steps per generation, 1 = on-policy) becomes k x it in trl's
count, so one generation still feeds one optimizer step. `vtkit.plan` sizes memory with these functions.
"""
from __future__ import annotations

from vtkit import runinfo


def micro_steps(global_batch: int, micro_batch: int | None, world: int | None = None) -> tuple[int, int]:
    """(rows per process per micro-step, accumulation steps) with global_batch = rows x world x steps.

    micro_batch None: the whole share of each process in one micro-step (global_batch / world)."""
    world = runinfo.world_size() if world is None else int(world)
    if global_batch < 1 or world < 1 or (micro_batch is not None and micro_batch < 1):
        raise ValueError(f"global batch, micro_batch and processes must be >= 1, got {global_batch}, {micro_batch}, "
                         f"{world}")
    share, rest = divmod(global_batch, world)
    if rest or not share:
        raise ValueError(f"a global batch of {global_batch} rows cannot be split over {world} process(es): make it a "
                         f"multiple of {world}, or launch fewer processes")
    if micro_batch is None:
        return share, 1
    micro = min(int(micro_batch), share)
    steps, rest = divmod(share, micro)
    if rest:
        raise ValueError(f"micro_batch {micro_batch} does not divide the {share} rows each of {world} process(es) takes "
                         f"of the global batch of {global_batch}: pick a divisor of {share}")
    return micro, steps


def sft_args(batch_size: int, grad_accum: int, micro_batch: int | None, world: int | None = None) -> dict:
    """`vtkit.train.sft`'s batch_size and grad_accum for the global batch batch_size x grad_accum in micro-batches
    of `micro_batch` rows per process (train.sft gives each process batch_size / processes rows per micro-step).
    micro_batch None: the arguments as given."""
    if micro_batch is None:
        return {"batch_size": int(batch_size), "grad_accum": int(grad_accum)}
    world = runinfo.world_size() if world is None else int(world)
    micro, steps = micro_steps(batch_size * grad_accum, micro_batch, world)
    return {"batch_size": micro * world, "grad_accum": steps}


def rl_args(prompts_per_step: int, num_generations: int, micro_batch: int | None, steps_per_generation: int = 1,
            world: int | None = None) -> dict:
    """The MGPOConfig (GRPOConfig) batch fields of an RL step of prompts_per_step x num_generations completions
    in micro-batches of `micro_batch` completions per process, `steps_per_generation` optimizer steps per
    generation. micro_batch None: no accumulation, each process its share (total / processes; one process:
    the whole batch, the kit's older fields)."""
    total = prompts_per_step * num_generations
    if micro_batch is None:   # each process its share of the global batch in one micro-step
        share, _ = micro_steps(total, None, world)
        return {"per_device_train_batch_size": share, "gradient_accumulation_steps": 1,
                "steps_per_generation": steps_per_generation}
    micro, steps = micro_steps(total, micro_batch, world)
    return {"per_device_train_batch_size": micro, "gradient_accumulation_steps": steps,
            "steps_per_generation": steps * steps_per_generation}

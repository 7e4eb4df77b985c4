"""Supervised fine-tuning through trl's SFTTrainer, with the settings every vtkit stage shares.

    from vtkit import train
    model, log = train.sft(model, tokenizer, records, out_dir="runs/x/sft", epochs=3, lr=1e-3)

`records` are task records (`vtkit.tasks.make`): every reference solution of a record becomes
one conversation (multi-path distillation keeps them all). Loss is on the assistant turn only
(the chat template's generation markers), sequences are packed on GPU (trl's best-fit-decreasing
packing, padding-free, with varlen attention), and the learning rate follows a linear warmup then a cosine decay to a
floor, as the VibeThinker reports train (5e-5 -> 8e-8, 5% warmup).

Departures from the paper: the report's global batch of 128 sequences is expressed here as
`batch_size` x `grad_accum` packed rows of `max_length` tokens; at the tiny preset rows are
short and batches small so that training fits a CPU minute. `packing="auto"` packs on CUDA only:
trl's padding-free packing flattens a batch into one long sequence, and without flash-attention's
varlen kernels (CPU) attention then costs quadratically in the whole batch (measured: 2.3x slower
per token than unpacked rows for tiny-1m at 16 x 256); pass `packing="bfd"` or `"wrapped"` to force it.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Iterable

import datasets
import torch


def to_conversations(records: Iterable[dict], max_solutions: int | None = None) -> datasets.Dataset:
    """One `{"messages": [user, assistant]}` row per reference solution of each record."""
    rows = []
    for r in records:
        sols = list(r["solutions"])[: max_solutions or None]
        for s in sols:
            rows.append({"messages": [{"role": "user", "content": r["prompt"]},
                                      {"role": "assistant", "content": s}],
                         "id": r["id"], "domain": r["domain"]})
    if not rows:
        raise ValueError("no training conversations: the records carry no `solutions`; "
                         "pass records from vtkit.tasks.make or add reference traces first")
    return datasets.Dataset.from_list(rows)


def sft(model, tokenizer, records, out_dir, *, epochs: float = 3, lr: float = 1e-3, min_lr: float | None = None,
        warmup: float = 0.05, batch_size: int = 16, grad_accum: int = 1, max_length: int = 512,
        packing: bool | str = "auto", save_steps: int | None = None, max_steps: int = -1, seed: int = 0,
        weight_decay: float = 0.0, max_solutions: int | None = None, logging_steps: int = 10):
    """Fine-tune `model` in place on `records` (task records or a `messages` Dataset).

    Returns `(model, log_history)`. With `save_steps`, model-only checkpoints land in
    `out_dir/checkpoint-<step>` (the Spectrum merge notebook scores them). `min_lr` defaults to
    lr / 625, the report's 5e-5 -> 8e-8 ratio.
    """
    from trl import SFTConfig, SFTTrainer

    data = records if isinstance(records, datasets.Dataset) and "messages" in records.column_names \
        else to_conversations(records, max_solutions)
    data = data.select_columns(["messages"])
    if packing == "auto":
        packing = "bfd" if torch.cuda.is_available() else False
    if packing not in (False, True, "bfd", "wrapped"):
        raise ValueError(f"packing must be 'auto', False, True/'bfd' or 'wrapped', got {packing!r}")
    min_lr = lr / 625 if min_lr is None else min_lr
    cuda = torch.cuda.is_available()
    args = SFTConfig(
        output_dir=str(out_dir),
        num_train_epochs=epochs,
        max_steps=max_steps,
        learning_rate=lr,
        lr_scheduler_type="cosine_with_min_lr",
        lr_scheduler_kwargs={"min_lr": min_lr},
        warmup_steps=warmup,  # < 1 means a fraction of all steps (transformers 5)
        weight_decay=weight_decay,
        per_device_train_batch_size=batch_size,
        gradient_accumulation_steps=grad_accum,
        max_length=max_length,
        packing=bool(packing),
        packing_strategy="wrapped" if packing == "wrapped" else "bfd",
        assistant_only_loss=True,
        save_strategy="steps" if save_steps else "no",
        save_steps=save_steps or 500,
        save_only_model=True,
        save_total_limit=None,
        logging_steps=logging_steps,
        logging_first_step=True,  # a loss point even for runs shorter than logging_steps
        report_to="none",
        disable_tqdm=True,
        seed=seed,
        data_seed=seed,
        bf16=cuda,
        use_cpu=not cuda,
        gradient_checkpointing=False,
        dataloader_num_workers=0,
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer)
    trainer.train()
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    with open(Path(out_dir) / "trainer_log.json", "w") as f:
        json.dump(trainer.state.log_history, f, indent=1)
    model.eval()
    return model, trainer.state.log_history


def checkpoints(out_dir) -> list[Path]:
    """The `checkpoint-<step>` folders an `sft(..., save_steps=k)` run left, in step order."""
    found = [p for p in Path(out_dir).glob("checkpoint-*") if p.name.split("-")[-1].isdigit()]
    return sorted(found, key=lambda p: int(p.name.split("-")[-1]))


def loss_curve(log_history) -> list[tuple[int, float]]:
    """(step, training loss) pairs from a trainer log history."""
    return [(h["step"], h["loss"]) for h in log_history if "loss" in h and math.isfinite(h["loss"])]


"""Supervised fine-tuning through trl's SFTTrainer, with the settings every vtkit stage shares.

    from vtkit import train
    model, log = train.sft(model, tokenizer, records, out_dir="runs/x/sft", epochs=3, lr=1e-3)
    log = train.train_lm(model, tokenizer, texts, lr=1e-2)   # plain next-token loop (capacity probe; at the end)

`records` are task records (`vtkit.tasks.make`): every reference solution of a record becomes
one conversation (multi-path distillation keeps them all). Loss is on the assistant turn only
(the chat template's generation markers), sequences are packed on GPU (trl's best-fit-decreasing
packing, padding-free, with varlen attention), and the learning rate follows a linear warmup then a cosine decay to a
floor, as the VibeThinker reports train (5e-5 -> 8e-8, 5% warmup). Precision follows the kit's one
rule (`vtkit.models.training_precision`): fp32 master weights and AdamW states with bf16 autocast on
CUDA (transformers' `bf16=True`), plain fp32 on CPU; `precision=` or $VTKIT_PRECISION overrides it.
Every trained batch (and `lm_loss`'s scoring) adds its tokens, padding excluded, to `vtkit.compute`.

Departures from the paper: the report's global batch of 128 sequences is expressed here as
`batch_size` x `grad_accum` packed rows of `max_length` tokens; at the tiny preset rows are
short and batches small so that training fits a CPU minute. `packing="auto"` packs on CUDA only:
trl's padding-free packing flattens a batch into one long sequence, and without flash-attention's
varlen kernels (CPU) attention then costs quadratically in the whole batch (measured: 2.3x slower
per token than unpacked rows for tiny-1m at 16 x 256); pass `packing="bfd"` or `"wrapped"` to force it.

Data parallel: `sft` runs unchanged in N processes started by `accelerate launch` (configs in
configs/accelerate/) or torchrun; SFTTrainer wraps the model in DDP / DeepSpeed / FSDP and gives
each process a disjoint shard of every batch. `batch_size` x `grad_accum` stays the global batch
(`per_device_batch`), every rank seeds the data order alike, and only rank 0 writes vtkit's files.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Iterable

import datasets
import numpy as np
import torch
from trl import SFTConfig, SFTTrainer

from vtkit import compute, models, runinfo, tasks

REPORT_TO = ("none", "tensorboard", "wandb", "trackio", "mlflow", "all")


def tracking_dir(out_dir, report_to: str) -> Path | None:
    """Check `report_to` (transformers' name of an experiment tracker) and point TensorBoard at
    `out_dir/tensorboard` (transformers reads TENSORBOARD_LOGGING_DIR when the trainer is built).
    Returns that folder, or None when nothing is tracked. Open it with
    `tensorboard --logdir runs/` (the `tensorboard` package is a kit dependency)."""
    names = [report_to] if isinstance(report_to, str) else list(report_to)
    bad = [r for r in names if r not in REPORT_TO]
    if bad:
        raise ValueError(f"report_to={report_to!r}: unknown tracker(s) {bad}; use one of {', '.join(REPORT_TO)}")
    if "tensorboard" not in names and "all" not in names:
        return None
    path = Path(out_dir) / "tensorboard"
    path.mkdir(parents=True, exist_ok=True)
    os.environ["TENSORBOARD_LOGGING_DIR"] = str(path)
    return path


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


def per_device_batch(global_batch: int, grad_accum: int = 1, world: int | None = None) -> int:
    """Rows per process per micro-step so that a step trains on the preset's global batch:
    global_batch = per_device x world x grad_accum. `world` defaults to the processes running
    (`runinfo.world_size()`: 1 alone, N under `accelerate launch` / torchrun). One process gets
    global_batch / grad_accum, as before; a global batch N processes cannot split evenly is an error."""
    world = runinfo.world_size() if world is None else world
    if global_batch < 1 or grad_accum < 1 or world < 1:
        raise ValueError(f"global batch, grad_accum and world size must be >= 1, got {global_batch}, "
                         f"{grad_accum}, {world}")
    per, rest = divmod(global_batch, world * grad_accum)
    if rest or not per:
        raise ValueError(f"a global batch of {global_batch} rows cannot be split over {world} process(es) x "
                         f"{grad_accum} accumulation step(s): make batch_size x grad_accum a multiple of "
                         f"processes x grad_accum = {world * grad_accum}, or launch fewer processes")
    return per


def sft(model, tokenizer, records, out_dir, *, epochs: float = 3, lr: float = 1e-3, min_lr: float | None = None,
        warmup: float = 0.05, batch_size: int = 16, grad_accum: int = 1, max_length: int = 512,
        packing: bool | str = "auto", save_steps: int | None = None, max_steps: int = -1, seed: int = 0,
        weight_decay: float = 0.0, max_solutions: int | None = None, logging_steps: int = 10,
        report_to: str = "none", length_buckets: int | None = None, precision: str | None = None):
    """Fine-tune `model` in place on `records` (task records or a `messages` Dataset).

    `batch_size` x `grad_accum` is the global batch (rows per optimizer step over all processes);
    each of N data-parallel processes takes `per_device_batch` of it per micro-step.
    Returns `(model, log_history)`. With `save_steps`, model-only checkpoints land in
    `out_dir/checkpoint-<step>` (the Spectrum merge notebook scores them). `min_lr` defaults to
    lr / 625, the report's 5e-5 -> 8e-8 ratio. `report_to`: "tensorboard" (events under
    `out_dir/tensorboard`) or another transformers tracker name; "none" by default.
    `length_buckets`: a width in tokens; rows are batched only with rows of the same length bucket
    (`bucketed_order`), so that a few long rows among many short ones (CLR's extraction
    conversations among its claim checks) do not pad whole batches to their length. Unlike
    transformers' group_by_length, rows within a bucket stay in random order: sorting by exact
    length would fill a batch with one kind of row (a claim check's length gives its verdict away).
    `precision`: `models.training_precision` (default: fp32 master weights, bf16 autocast on CUDA;
    plain fp32 on CPU); a bf16 model is cast up to fp32 in place and stays fp32.
    """
    data = records if isinstance(records, datasets.Dataset) and "messages" in records.column_names \
        else to_conversations(records, max_solutions)
    data = data.select_columns(["messages"])
    if packing == "auto":
        packing = "bfd" if torch.cuda.is_available() else False
    if packing not in (False, True, "bfd", "wrapped"):
        raise ValueError(f"packing must be 'auto', False, True/'bfd' or 'wrapped', got {packing!r}")
    min_lr = lr / 625 if min_lr is None else min_lr
    cuda = torch.cuda.is_available()
    world = runinfo.world_size()
    per_device = per_device_batch(batch_size * grad_accum, grad_accum, world)
    prec = models.prepare_training(model, precision)  # fp32 master weights; bf16 autocast on CUDA
    tracking_dir(out_dir, report_to)
    args = SFTConfig(
        output_dir=str(out_dir),
        num_train_epochs=epochs,
        max_steps=max_steps,
        learning_rate=lr,
        lr_scheduler_type="cosine_with_min_lr",
        lr_scheduler_kwargs={"min_lr": min_lr},
        warmup_steps=warmup,  # < 1 means a fraction of all steps (transformers 5)
        weight_decay=weight_decay,
        per_device_train_batch_size=per_device,
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
        report_to=report_to,
        disable_tqdm=True,
        seed=seed,
        data_seed=seed,
        **prec.trainer_args(),  # bf16 / fp16 / use_cpu
        **({"ddp_backend": "gloo"} if world > 1 and not cuda else {}),  # CPU data parallel (tests)
        dataloader_num_workers=0,
        gradient_checkpointing=cuda,  # trl's default (on) recomputes every layer: ~13% of a tiny CPU step (docs/LOG.md); CPU runs need no memory saving
    )
    kw = {"bucket_width": int(length_buckets)} if length_buckets else {}
    trainer = (_BucketedSFT if length_buckets else _CountingSFT)(
        model=model, args=args, train_dataset=data, processing_class=tokenizer, **kw)
    if 0 < warmup < 1:  # a fraction: resolve it here, so that warmup never takes the whole run (warmup_steps)
        per_epoch = math.ceil(len(trainer.train_dataset) / (args.train_batch_size * args.world_size))
        per_epoch = max(math.ceil(per_epoch / grad_accum), 1)  # optimizer steps, as transformers counts them
        total = max_steps if max_steps > 0 else math.ceil(epochs * per_epoch)
        trainer.args.warmup_steps = warmup_steps(warmup, total)
    trainer.train()
    if runinfo.is_main():
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        with open(Path(out_dir) / "trainer_log.json", "w") as f:
            json.dump(trainer.state.log_history, f, indent=1)
    model.eval()
    return model, trainer.state.log_history


def bucketed_order(lengths, batch_size: int, width: int, seed: int) -> list[int]:
    """A training order of row indices in which every run of `batch_size` consecutive indices (a
    batch) comes from one length bucket (length // width), except batches made of buckets'
    leftovers; rows are shuffled within buckets and batches are shuffled among themselves."""
    if width < 1 or batch_size < 1:
        raise ValueError(f"width and batch_size must be >= 1, got {width} and {batch_size}")
    g = torch.Generator().manual_seed(int(seed))
    buckets: dict[int, list[int]] = {}
    for i in torch.randperm(len(lengths), generator=g).tolist():
        buckets.setdefault(int(lengths[i]) // width, []).append(i)
    full, rest = [], []
    for rows in buckets.values():
        cut = len(rows) - len(rows) % batch_size
        full += [rows[j:j + batch_size] for j in range(0, cut, batch_size)]
        rest += rows[cut:]
    tail = [rest[j:j + batch_size] for j in range(0, len(rest), batch_size)]
    last = [tail.pop()] if tail and len(tail[-1]) < batch_size else []  # a short batch goes last
    batches = full + tail
    order = torch.randperm(len(batches), generator=g).tolist()
    return [i for k in order for i in batches[k]] + [i for b in last for i in b]


class _BucketOrder(torch.utils.data.Sampler):
    """`bucketed_order`, drawn afresh each epoch (seed + epoch)."""

    def __init__(self, lengths, batch_size, width, seed):
        self.lengths, self.batch_size, self.width, self.seed, self.epoch = lengths, batch_size, width, seed, 0

    def __len__(self):
        return len(self.lengths)

    def __iter__(self):
        self.epoch += 1
        return iter(bucketed_order(self.lengths, self.batch_size, self.width, self.seed + self.epoch - 1))


def row_tokens(inputs: dict) -> list[int]:
    """Tokens per sequence of a trainer batch, padding excluded: attention-mask sums of padded rows, or the
    documents of a padding-free packed row (its position_ids restart at 0 at each document)."""
    if inputs.get("attention_mask") is not None:
        return inputs["attention_mask"].sum(1).tolist()
    pos = inputs.get("position_ids")
    if pos is not None:
        starts = (pos.reshape(-1) == 0).nonzero().flatten().tolist() + [pos.numel()]
        return [b - a for a, b in zip(starts, starts[1:]) if b > a]
    return [inputs["input_ids"].shape[1]] * inputs["input_ids"].shape[0]


class _CountingSFT(SFTTrainer):
    """SFTTrainer that adds the tokens of every trained batch to `vtkit.compute`."""

    def training_step(self, model, inputs, num_items_in_batch=None):
        compute.add_trained(self.model, row_tokens(inputs))
        return super().training_step(model, inputs, num_items_in_batch)


class _BucketedSFT(_CountingSFT):
    """SFTTrainer whose training order is `bucketed_order` (rows batched by length bucket)."""

    def __init__(self, *args, bucket_width: int, **kw):
        super().__init__(*args, **kw)
        self.bucket_width = bucket_width

    def _get_train_sampler(self, train_dataset=None):
        ds = self.train_dataset if train_dataset is None else train_dataset
        lengths = [len(x) for x in ds["input_ids"]]
        return _BucketOrder(lengths, self.args.train_batch_size * self.args.gradient_accumulation_steps,
                            self.bucket_width, self.args.seed)


def warmup_steps(warmup: float, total_steps: int) -> int:
    """Linear-warmup steps of a run of `total_steps` optimizer steps. `warmup` >= 1 is a step count;
    a fraction is rounded up, as transformers does, except when that would make the whole run warmup:
    then none. The first warmup step trains at lr 0, so a one-step run (a CPU-sized Spectrum stage 2,
    a distillation of a few traces) would not train at all."""
    if warmup >= 1:
        return int(warmup)
    n = math.ceil(total_steps * warmup) if warmup > 0 else 0
    return n if n < total_steps else 0


def checkpoints(out_dir) -> list[Path]:
    """The `checkpoint-<step>` folders an `sft(..., save_steps=k)` run left, in step order."""
    found = [p for p in Path(out_dir).glob("checkpoint-*") if p.name.split("-")[-1].isdigit()]
    return sorted(found, key=lambda p: int(p.name.split("-")[-1]))


def loss_curve(log_history) -> list[tuple[int, float]]:
    """(step, training loss) pairs from a trainer log history."""
    return [(h["step"], h["loss"]) for h in log_history if "loss" in h and math.isfinite(h["loss"])]


# ----------------------------------------------------------------------------- a quick SFT start

def preset_start(cfg: dict, seed: int = 0):
    """The RL preset's standalone start, for notebooks run without a pipeline checkpoint: a cached
    quick SFT of `cfg["model"]` (fresh for a tiny size, else pretrained) on `cfg["start_data"]` (`sft_start`, always seed 0 so
    every run shares one start), else `cfg["model"]` as it is. Returns (model, tokenizer, what it is)."""
    if cfg.get("start_data"):
        model, tok, path = sft_start(cfg["model"], cfg["start_data"], epochs=cfg["start_epochs"],
                                     lr=cfg["start_lr"], seed=0)
        n = {d: v["n"] for d, v in cfg["start_data"].items()}
        kind = "a fresh" if str(cfg["model"]).startswith("tiny-") else "the pretrained"   # tiny sizes start from scratch
        return model, tok, (f"a quick SFT of {kind} {cfg['model']} on {n} records, {cfg['start_epochs']} epochs "
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
    settings = {"size": size, "data": data, "epochs": float(epochs), "lr": float(lr), "batch_size": int(batch_size),
                "max_length": int(max_length), "seed": int(seed)}  # 3 and 3.0 epochs: one cache entry
    src = Path(__file__).parent
    h = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for f in ["train.py", "models.py", "tokenizer.py", *sorted(str(p.relative_to(src)) for p in (src / "tasks").glob("*.py"))]:
        h.update((src / f).read_bytes())
    path = models.cache_dir() / "sft_start" / h.hexdigest()[:16]
    if cache and (path / "config.json").exists():
        model, tok = models.load(str(path))
        return model, tok, path
    model, tok = models.load(size, seed=seed)
    spec = {d: {k: v for k, v in kw.items() if k != "n"} for d, kw in data.items()}
    groups = tasks.make_groups(spec, {d: kw["n"] for d, kw in data.items()}, seed=seed, split="train")
    records = [r for recs in groups.values() for r in recs]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_train = path.parent / f".train-{uuid.uuid4().hex[:8]}"
    model, _ = sft(model, tok, records, tmp_train, epochs=epochs, lr=lr, batch_size=batch_size,
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


# ----------------------------------------------------------------------------- plain next-token training

# The capacity probe's trainer (vtkit.stages.capacity, benchmarks/bench_train.py): a plain loop, not trl's
# SFTTrainer, because pretraining-style text needs no chat masking and the loop is faster on CPU. One pass
# over the shuffled documents per epoch (the probe's exposures are its epochs), causal LM loss on every
# token, one document per row from position 0 (as the probes query them), rows of similar length batched
# together; AdamW, linear warmup then cosine decay to lr x min_lr_ratio. `report_to="tensorboard"` writes
# the loss, learning rate and validation loss under out_dir/tensorboard, with the tags transformers'
# trainers use (train/loss, train/learning_rate, eval/loss).


def _as_ids(docs, tokenizer, max_length: int) -> list[list[int]]:
    """Token ids of each document (strings are tokenized, id lists kept), cut to max_length."""
    docs = list(docs)
    strs = [i for i, d in enumerate(docs) if isinstance(d, str)]
    out = [None] * len(docs)
    if strs:
        for i, ids in zip(strs, tokenizer([docs[i] for i in strs], add_special_tokens=False)["input_ids"]):
            out[i] = list(ids)
    for i, d in enumerate(docs):
        if out[i] is None:
            out[i] = [int(t) for t in d]
    return [x[:max_length] for x in out]


def _batches(ids: list[list[int]], batch_size: int, rng, epochs: int = 1,
             batch_tokens: int | None = None) -> list[list[int]]:
    """Rows of similar length together: shuffled, sorted by length within chunks of 32 batches, then
    the batches shuffled; each epoch a fresh order. batch_tokens: rows per batch chosen so that rows x
    the longest row stays within it (at most batch_size rows): 9-token biographies and ~110-token
    problems then take about the same tokens, and compute, per step."""
    batches = []
    for _ in range(epochs):
        order = rng.permutation(len(ids))
        chunk = batch_size * 32
        for s in range(0, len(order), chunk):
            part = sorted(order[s:s + chunk].tolist(), key=lambda i: len(ids[i]))
            if batch_tokens is None:
                batches += [part[j:j + batch_size] for j in range(0, len(part), batch_size)]
                continue
            cur = []
            for i in part:  # ascending length: the new row is the longest
                if cur and (len(cur) + 1 > batch_size or (len(cur) + 1) * len(ids[i]) > batch_tokens):
                    batches.append(cur)
                    cur = []
                cur.append(i)
            if cur:
                batches.append(cur)
    return [batches[i] for i in rng.permutation(len(batches))]


def _tensor(ids: list[list[int]], rows: list[int]) -> torch.Tensor:
    """Right-padded (rows, longest) with -100 after each document's end."""
    lengths = [len(ids[i]) for i in rows]
    L = max(lengths)
    if min(lengths) == L:
        return torch.tensor([ids[i] for i in rows], dtype=torch.long)
    return torch.tensor([ids[i] + [-100] * (L - len(ids[i])) for i in rows], dtype=torch.long)


def _lm_loss(model, x: torch.Tensor, pad: int, reduction: str = "mean") -> torch.Tensor:
    """Next-token cross-entropy of right-padded rows (-100 marks padding), without an attention mask.

    Under causal attention a real token never sees the padding to its right, so the mask changes
    nothing for the tokens that are scored, and leaving it out keeps the fast causal path. The
    logits are computed for positions 0..L-2 only (the last position predicts nothing)."""
    inp = x.masked_fill(x < 0, pad)
    target = x[:, 1:]
    body = getattr(model, "model", None)
    if body is not None and hasattr(model, "lm_head"):
        hidden = body(input_ids=inp).last_hidden_state[:, :-1]
        logits = model.lm_head(hidden)
    else:
        logits = model(input_ids=inp).logits[:, :-1]
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), target.reshape(-1),
                                             ignore_index=-100, reduction=reduction)


@torch.no_grad()
def lm_loss(model, tokenizer, docs, *, batch_size: int = 256, max_length: int = 512) -> float:
    """Mean next-token loss (nats per predicted token) of `docs` (strings or token-id lists): the
    validation loss of train_lm's early stopping. The model's train/eval mode is restored."""
    ids = _as_ids(docs, tokenizer, max_length)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    device = next(model.parameters()).device
    was = model.training
    model.eval()
    total, count = 0.0, 0
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    for s in range(0, len(order), batch_size):
        x = _tensor(ids, order[s:s + batch_size]).to(device)
        total += float(_lm_loss(model, x, pad, reduction="sum"))
        count += int((x[:, 1:] >= 0).sum())
        compute.add_scored(model, (x >= 0).sum(1).tolist())
    model.train(was)
    return total / max(1, count)


def train_lm(model, tokenizer, texts, *, lr: float = 2e-3, batch_size: int = 16, max_length: int = 512,
             warmup: float = 0.05, min_lr_ratio: float = 0.1, weight_decay: float = 0.0, seed: int = 0,
             log_every: int = 50, epochs: int = 1, val=None, eval_every: int | None = None,
             patience: int = 3, min_delta: float = 0.0, batch_tokens: int | None = None, out_dir=None,
             report_to: str = "none", precision: str | None = None) -> dict:
    """Next-token training on `texts` (strings or token-id lists; loss on every token), in place.

    One pass per epoch over the shuffled documents, rows of similar length batched together
    (batch_size rows, or with batch_tokens as many rows as fit that many tokens, at most batch_size), no
    attention mask (right padding is invisible to causal attention; see _lm_loss); AdamW, linear
    warmup then cosine decay to lr x min_lr_ratio over all `epochs`.
    Early stopping: with `val` (held-out documents) the validation loss is measured every
    `eval_every` steps (None: once per epoch) and after the last step; training stops after
    `patience` measurements without an improvement of more than `min_delta`, and the weights of the
    best measurement are restored. `epochs` is then the most it may train.
    weight_decay 0: a memorisation probe should not be regularised away from the facts.
    report_to: "none" or "tensorboard" (events under `out_dir/tensorboard`; the loop writes them itself,
    so transformers' other trackers are not available here).
    Returns {steps (taken), steps_planned, epochs_run, tokens, final_loss (mean of the last 10% of
    steps), losses [(step, loss)], val_losses [(step, loss)], best_step, best_val_loss,
    stopped_early, wall_s, tokens_per_s}. Precision: `models.training_precision` (fp32 weights and
    AdamW states; on CUDA the forward and backward run under bf16 autocast).
    """

    texts = list(texts)
    if not texts:
        raise ValueError("train_lm: no texts to train on")
    if lr <= 0 or batch_size < 1 or max_length < 2 or epochs < 1:
        raise ValueError(f"train_lm: need lr > 0, batch_size >= 1, max_length >= 2, epochs >= 1 "
                         f"(got {lr}, {batch_size}, {max_length}, {epochs})")
    if val is not None and (len(val) == 0 or patience < 1):
        raise ValueError("train_lm: early stopping needs a non-empty `val` and patience >= 1")
    writer = _lm_writer(out_dir, report_to)
    device = next(model.parameters()).device
    prec = models.prepare_training(model, precision, device=device)
    ids = _as_ids(texts, tokenizer, max_length)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    rng = np.random.default_rng(seed)
    batches = _batches(ids, batch_size, rng, epochs, batch_tokens)
    total = len(batches)
    per_epoch = max(1, total // epochs)
    every = eval_every or per_epoch
    n_warm = max(1, int(warmup * total))

    def factor(step):  # linear warmup, then cosine from 1 to min_lr_ratio
        if step < n_warm:
            return (step + 1) / n_warm
        t = (step - n_warm) / max(1, total - n_warm)
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t))

    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    model.train()
    losses, val_losses, tokens, t0 = [], [], 0, time.time()  # losses: one float per step
    best, best_step, best_state, bad, stopped = math.inf, -1, None, 0, False
    autocast = prec.autocast()
    for step, rows in enumerate(batches):
        x = _tensor(ids, rows).to(device)
        with autocast:
            loss = _lm_loss(model, x, pad)
        loss.backward()
        step_lr = sched.get_last_lr()[0]
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        tokens += int((x >= 0).sum())
        compute.add_trained(model, (x >= 0).sum(1).tolist())
        losses.append(float(loss.detach()))
        if writer is not None:
            writer.add_scalar("train/loss", losses[-1], step + 1)
            writer.add_scalar("train/learning_rate", step_lr, step + 1)
        if val is not None and ((step + 1) % every == 0 or step == total - 1):
            with autocast:
                v = lm_loss(model, tokenizer, val, batch_size=max(batch_size, 64), max_length=max_length)
            val_losses.append((step + 1, v))
            if writer is not None:
                writer.add_scalar("eval/loss", v, step + 1)
            if v < best - min_delta:
                best, best_step, bad = v, step + 1, 0
                best_state = {k: t.detach().clone() for k, t in model.state_dict().items()}
            else:
                bad += 1
                if bad >= patience:
                    stopped = step < total - 1
                    break
    if writer is not None:
        writer.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    wall = time.time() - t0
    done = len(losses)
    return {"steps": done, "steps_planned": total, "epochs_run": done / per_epoch, "tokens": tokens,
            "final_loss": float(np.mean(losses[-max(1, done // 10):])),
            "losses": [(s, v) for s, v in enumerate(losses) if s % log_every == 0 or s == done - 1],
            "val_losses": val_losses, "best_step": best_step if val is not None else done,
            "best_val_loss": best if val is not None else math.nan, "stopped_early": stopped,
            "wall_s": wall, "tokens_per_s": tokens / max(wall, 1e-9)}


def _lm_writer(out_dir, report_to: str):
    """A TensorBoard writer under out_dir/tensorboard for report_to "tensorboard", None for "none"."""
    if report_to not in ("none", "tensorboard"):
        raise ValueError(f"train_lm: report_to={report_to!r}; its plain loop logs to TensorBoard only: "
                         "use 'none' or 'tensorboard'")
    if report_to == "none":
        return None
    if out_dir is None:
        raise ValueError("train_lm: report_to='tensorboard' needs out_dir (events go to out_dir/tensorboard)")
    from torch.utils.tensorboard import SummaryWriter   # tensorboard is a kit dependency; imported when used

    return SummaryWriter(log_dir=str(tracking_dir(out_dir, report_to)))

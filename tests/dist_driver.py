"""What tests/test_distributed.py runs in 1 or 2 processes: a tiny SFT and a sharded evaluation.

    python tests/dist_driver.py sft OUT --global-batch 8 --steps 4            # one process
    ACCELERATE_USE_CPU=1 python -m torch.distributed.run --nproc_per_node 2 \\
        tests/dist_driver.py sft OUT --global-batch 8 --steps 4              # two (gloo, CPU)
    ... dist_driver.py eval OUT          # or `all OUT`: sft into OUT/sft, then eval into OUT/eval

Each rank writes its own evidence next to the run's files: `rank<r>.json` (world size, the
training rows it took at each step, the logged losses, whether it read back the checkpoint rank 0
saved with `models.save`; or the evaluation's metrics and samples)
and, for SFT, `weights<r>.pt` (its final weights). vtkit's own files (metrics.json,
trainer_log.json) are written by rank 0 only; metrics.json records which rank wrote it.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from vtkit import evaluation, models, runinfo, tasks, train


def _records(n: int, split: str) -> list[dict]:
    return tasks.make("math", n, seed=0, split=split, subdomain="add", difficulty=1, mod=7, shuffle=False)


def run_sft(out: Path, global_batch: int, steps: int) -> None:
    seen: list[tuple[int, tuple]] = []      # (optimizer step, tokens of one trained row)
    made: list = []
    compute_loss = train.SFTTrainer.compute_loss

    def recording(self, model, inputs, *a, **kw):   # every SFT trainer class of vtkit derives from trl's
        made.append(self)
        mask = inputs.get("attention_mask", torch.ones_like(inputs["input_ids"]))
        for ids, m in zip(inputs["input_ids"].tolist(), mask.tolist()):
            seen.append((self.state.global_step, tuple(t for t, k in zip(ids, m) if k)))
        return compute_loss(self, model, inputs, *a, **kw)

    train.SFTTrainer.compute_loss = recording
    model, tok = models.load("tiny-25k", seed=0)
    _, log = train.sft(model, tok, _records(32, "train"), out, epochs=1, lr=3e-3, warmup=0,
                       batch_size=global_batch, max_steps=steps, logging_steps=1, max_length=128, seed=0)
    row_of = {tuple(ids): i for i, ids in enumerate(made[0].train_dataset["input_ids"])}
    rows = [[step, row_of[ids]] for step, ids in seen]
    losses = [[h["step"], h["loss"]] for h in log if "loss" in h]
    rank = runinfo.rank()
    models.save(model, tok, out / "model")        # rank 0 writes; every rank may read it back at once
    loaded = models.load(str(out / "model"))[0].state_dict()
    same = all(torch.equal(loaded[k], v) for k, v in model.state_dict().items())
    (out / f"rank{rank}.json").write_text(json.dumps(
        {"rank": rank, "world": runinfo.world_size(), "rows": rows, "losses": losses, "loaded_saved_copy": same}))
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, out / f"weights{rank}.pt")
    runinfo.write_metrics(out, {"writer_rank": rank})


def run_eval(out: Path) -> None:
    model, tok = models.load("tiny-25k", seed=0)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():   # noisy weights: greedy texts that differ from item to item (untrained: all "\n")
        for w in model.parameters():
            w.add_(torch.randn(w.shape, generator=g) * 0.3)
    sampled: list[str] = []
    generate = evaluation.gen.generate

    def recording(model, tokenizer, prompts, **kw):
        sampled.extend(prompts)
        return generate(model, tokenizer, prompts, **kw)

    evaluation.gen.generate = recording
    records = _records(11, "test")
    proto = evaluation.get("greedy", max_new_tokens=12, batch_size=4)
    res = evaluation.evaluate((model, tok), records, proto)
    rank = runinfo.rank()
    ids = {evaluation.with_suffix(r["prompt"], proto.prompt_suffix): r["id"] for r in records}
    samples = [{k: s[k] for k in ("item", "id", "text", "n_tokens", "correct")} for s in res.samples]
    (out / f"rank{rank}.json").write_text(json.dumps(
        {"rank": rank, "world": runinfo.world_size(), "metrics": res.metrics, "samples": samples,
         "sampled": [ids[p] for p in sampled], "ids": [r["id"] for r in records]}))
    runinfo.write_metrics(out, {"writer_rank": rank})


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["sft", "eval", "all"], help="all: sft into OUT/sft, then eval into OUT/eval")
    p.add_argument("out")
    p.add_argument("--global-batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=4)
    a = p.parse_args()
    torch.set_num_threads(1)
    out = Path(a.out)
    for what in (["sft", "eval"] if a.what == "all" else [a.what]):
        where = out / what if a.what == "all" else out
        where.mkdir(parents=True, exist_ok=True)
        run_sft(where, a.global_batch, a.steps) if what == "sft" else run_eval(where)


if __name__ == "__main__":
    main()

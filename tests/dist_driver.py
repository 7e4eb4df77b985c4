"""What tests/test_distributed.py runs in 1 or 2 processes: a tiny SFT, a sharded evaluation, a tiny MGPO.

    python tests/dist_driver.py sft OUT --global-batch 8 --steps 4            # one process
    ACCELERATE_USE_CPU=1 python -m torch.distributed.run --nproc_per_node 2 \\
        tests/dist_driver.py sft OUT --global-batch 8 --steps 4              # two (gloo, CPU)
    ... dist_driver.py eval OUT          # or `all OUT`: sft into OUT/sft, then eval into OUT/eval
    ... dist_driver.py mgpo OUT --steps 6    # vtkit.rl.MGPOTrainer on fixed completions (below)

Each rank writes its own evidence next to the run's files: `rank<r>.json` (world size, the
training rows it took at each step, the logged losses, whether it read back the checkpoint rank 0
saved with `models.save`; or the evaluation's metrics and samples; or MGPO's rows, weights and
advantages) and, for SFT and MGPO, `weights<r>.pt` (its final weights). vtkit's own files (metrics.json,
trainer_log.json) are written by rank 0 only; metrics.json records which rank wrote it.

MGPO: sampling differs by rank, so generation is stubbed with fixed completions: the completion of
a row depends only on its prompt and its place in the prompt's group (global row index mod G),
so one process and two processes score the same 12 rows (3 prompts x G = 4). Each prompt's group
has a fixed pattern of correct answers, chosen so that neither half of a group has the group's
accuracy: a group split over two ranks gets its MGPO weight right only from the gathered rewards.
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


# ---------------------------------------------------------------------------------------------- MGPO
MGPO_G = 4                                   # completions per prompt
MGPO_PROMPTS = ["what is 3 plus 4?", "what is 5 plus 1?", "what is 2 plus 2?"]
MGPO_CORRECT = {0: [1, 0, 0, 0], 1: [1, 1, 1, 0], 2: [1, 1, 0, 0]}   # p = 0.25, 0.75, 0.5; halves differ


def mgpo_completion(prompt: int, j: int) -> str:
    """The fixed completion of the j-th sample of `prompt`'s group ("yes ..." is right), lengths vary."""
    return ("yes" if MGPO_CORRECT[prompt][j] else "no") + " ok" * ((prompt + j) % 3) + f" {j}"


def mgpo_accuracy(completions, **_):
    return [float(c.strip().startswith("yes")) for c in completions]


def _expected_reward(model, tok) -> float:
    """The policy's expected accuracy if it chose among each group's G fixed completions by its own
    sequence probabilities (mean over prompts): it rises as the policy learns the rewarded ones."""
    eos = tok.eos_token_id
    model.eval()
    out = []
    with torch.no_grad():
        for i, prompt in enumerate(MGPO_PROMPTS):
            p_ids = tok(prompt)["input_ids"]
            logps = []
            for j in range(MGPO_G):
                c_ids = tok(mgpo_completion(i, j))["input_ids"] + [eos]
                ids = torch.tensor([p_ids + c_ids])
                lp = torch.log_softmax(model(ids).logits[0, :-1].float(), -1)
                tgt = ids[0, 1:]
                logps.append(lp.gather(1, tgt[:, None])[len(p_ids) - 1:].sum())
            probs = torch.softmax(torch.stack(logps), 0)
            out.append(float((probs * torch.tensor(MGPO_CORRECT[i], dtype=probs.dtype)).sum()))
    model.train()
    return sum(out) / len(out)


def run_mgpo(out: Path, steps: int, lam: float) -> None:
    import datasets
    from transformers import TrainerCallback

    from vtkit import rl

    world, rank = runinfo.world_size(), runinfo.rank()
    model, tok = models.load("tiny-25k", seed=0)
    eos = tok.eos_token_id
    text_of = {tuple(tok(p)["input_ids"]): i for i, p in enumerate(MGPO_PROMPTS)}
    ids_of = {(i, j): tok(mgpo_completion(i, j))["input_ids"] + [eos] for i in MGPO_CORRECT for j in range(MGPO_G)}
    log = {"rows": [], "adv": [], "w_local": [], "p": [], "w": [], "rewards": [], "expected_reward": []}

    class FixedCompletions(rl.MGPOTrainer):
        def _generate_single_turn(self, prompt_ids, *args, **kwargs):   # trl's sampling, replaced
            first = self.accelerator.process_index * len(prompt_ids)     # this rank's first global row
            rows = [(text_of[tuple(p)], (first + k) % MGPO_G) for k, p in enumerate(prompt_ids)]
            log["rows"].append(rows)
            return [list(ids_of[r]) for r in rows], None

        def _generate_and_score_completions(self, inputs):
            output = super()._generate_and_score_completions(inputs)
            log["adv"].append(output["advantages"].tolist())
            log["rewards"].append(self._mgpo_acc.tolist())              # gathered: every rank's rows
            return output

    weights = rl.local_sample_weights

    def recording(acc, num_generations, lam, threshold, process_index, n_local):
        w_local, p, w = weights(acc, num_generations, lam, threshold, process_index, n_local)
        log["w_local"].append(w_local.tolist())
        log["p"].append(p.tolist())
        log["w"].append(w.tolist())
        return w_local, p, w

    rl.local_sample_weights = recording

    class Record(TrainerCallback):
        def on_pre_optimizer_step(self, args, state, control, model=None, **kw):
            if state.global_step == 0:   # the first update's gradient, after DDP's all-reduce (and clipping)
                torch.save({k: v.grad.detach().clone() for k, v in model.named_parameters()}, out / f"grads{rank}.pt")

        def on_step_end(self, args, state, control, model=None, **kw):
            log["expected_reward"].append(_expected_reward(model, tok))

    log["expected_reward"].append(_expected_reward(model, tok))
    ds = datasets.Dataset.from_list([{"prompt": p} for p in MGPO_PROMPTS])
    rows = len(MGPO_PROMPTS) * MGPO_G
    args = rl.MGPOConfig(
        output_dir=str(out / "trainer"), use_cpu=True, bf16=False, per_device_train_batch_size=rows // world,
        num_generations=MGPO_G, max_completion_length=16, loss_type="grpo", beta=0.0, mgpo_lambda=lam,
        mgpo_accuracy_reward="mgpo_accuracy", learning_rate=2e-3, max_steps=steps, logging_steps=1, seed=0,
        num_iterations=2,   # every generation is used twice: the second pass has ratio != 1, so a loss != 0
        report_to="none", save_strategy="no", disable_tqdm=True, dataloader_num_workers=0)
    trainer = FixedCompletions(model=model, reward_funcs=[mgpo_accuracy], args=args, train_dataset=ds,
                               processing_class=tok, callbacks=[Record()])
    trainer.train()
    hist = trainer.state.log_history
    (out / f"rank{rank}.json").write_text(json.dumps(
        {"rank": rank, "world": world, "per_device": args.per_device_train_batch_size,
         "losses": [[h["step"], h["loss"]] for h in hist if "loss" in h],
         "grad_norms": [[h["step"], h["grad_norm"]] for h in hist if "grad_norm" in h], **log}))
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, out / f"weights{rank}.pt")
    runinfo.write_metrics(out, {"writer_rank": rank})


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["sft", "eval", "all", "mgpo"],
                   help="all: sft into OUT/sft, then eval into OUT/eval")
    p.add_argument("out")
    p.add_argument("--global-batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--mgpo-lambda", type=float, default=2.0)
    a = p.parse_args()
    torch.set_num_threads(1)
    out = Path(a.out)
    if a.what == "mgpo":
        out.mkdir(parents=True, exist_ok=True)
        return run_mgpo(out, a.steps, a.mgpo_lambda)
    for what in (["sft", "eval"] if a.what == "all" else [a.what]):
        where = out / what if a.what == "all" else out
        where.mkdir(parents=True, exist_ok=True)
        run_sft(where, a.global_batch, a.steps) if what == "sft" else run_eval(where)


if __name__ == "__main__":
    main()

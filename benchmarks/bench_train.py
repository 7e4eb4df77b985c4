"""Training throughput of the capacity probe on one CPU thread (what a sweep job gets): tokens/s and
achieved FLOP/s (6 x parameters x tokens/s) per tiny size, against the machine's measured fp32
matmul rate on the same thread.

    .venv/bin/python benchmarks/run.py train

Rows: the earlier loop (batch 8 with an attention mask and the HF loss, prose bioS biographies, the
probe before issue 13), train.train_lm on the same biographies at batch 128, and train_lm as the
capacity probe runs it (coded 9-token biographies, batch 128). Each row trains ~4 s after one
warm-up step; on a shared machine the numbers move with the load (the load average is in the first
row). Per token the new loop gains 1.2-1.5x; per bioS fact the coded format needs 17x fewer tokens.

The `fused head` rows time trl's fused LM head (the loss of SFTTrainer and GRPOTrainer) forward and
backward on a tiny model's shapes (1,600 tokens, hidden 96, vocabulary 1,024) with trl's default
32,768-wide vocabulary tile and with the tile fitted to the vocabulary (`models.fit_fused_head`,
which every training path applies): the same bits, fewer seconds.
"""
from __future__ import annotations

import os
import time

import numpy as np
import torch

from vtkit import corpora, models, tasks, train

SIZES = ("tiny-25k", "tiny-100k", "tiny-400k")
SECONDS = 4.0


def matmul_rate(n: int = 512, seconds: float = 1.0) -> float:
    """fp32 FLOP/s of an n x n matmul on this thread (best of a few timed runs)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    best, t_end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        t0 = time.perf_counter()
        for _ in range(10):
            a @ b
        best = max(best, 10 * 2 * n ** 3 / (time.perf_counter() - t0))
    return best


def _old_loop(model, tok, texts, batch_size=8, lr=5e-3):
    """The probe's loop before issue 13: padded batches with an attention mask and the HF loss."""
    ids = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.0)
    model.train()
    tokens, t0, step = 0, None, 0
    while True:
        rows = [ids[(step * batch_size + r) % len(ids)] for r in range(batch_size)]
        L = max(len(r) for r in rows)
        x = torch.zeros((len(rows), L), dtype=torch.long)
        mask = torch.zeros((len(rows), L), dtype=torch.long)
        for r, seq in enumerate(rows):
            x[r, :len(seq)] = torch.tensor(seq)
            mask[r, :len(seq)] = 1
        out = model(input_ids=x, attention_mask=mask, labels=x.masked_fill(mask == 0, -100))
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        if t0 is None:
            t0 = time.perf_counter()  # after one warm-up step
            continue
        tokens += int(mask.sum())
        if time.perf_counter() - t0 > SECONDS:
            return tokens / (time.perf_counter() - t0)


def _new_loop(model, tok, docs, batch_size=128):
    """train.train_lm on enough documents for ~SECONDS (its own tokens/s, warm-up step excluded
    by training twice: a short call first)."""
    train.train_lm(model, tok, docs[:batch_size], batch_size=batch_size, lr=5e-3)
    rate = train.train_lm(model, tok, docs[:batch_size * 4], batch_size=batch_size, lr=5e-3)["tokens_per_s"]
    n = int(min(len(docs), max(batch_size * 4, rate * SECONDS / np.mean([len(d) for d in docs[:100]]))))
    return train.train_lm(model, tok, docs[:n], batch_size=batch_size, lr=5e-3)["tokens_per_s"]


def fused_head_ms(tile: int, n: int = 1600, hidden: int = 96, vocab: int = 1024, reps: int = 20) -> float:
    """Milliseconds of one forward + backward of trl's chunked log-probability head at vocabulary tile `tile`."""
    from trl.kernels import ChunkedLogProbFunction
    g = torch.Generator().manual_seed(0)
    h = torch.randn(n, hidden, generator=g, requires_grad=True)
    w = (0.1 * torch.randn(vocab, hidden, generator=g)).requires_grad_(True)
    t = torch.randint(0, vocab, (n,), generator=g)

    def step():
        lp, ent, *_ = ChunkedLogProbFunction.apply(h, w, None, t, 1.0, tile, None, 1.0, ("entropy",))
        (lp.sum() + 0 * ent.sum()).backward()
    step()   # warm-up
    t0 = time.perf_counter()
    for _ in range(reps):
        step()
    return (time.perf_counter() - t0) / reps * 1e3


def run() -> list[dict]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        peak = matmul_rate()
        load = os.getloadavg()[0]
        rows = [{"benchmark": "fp32 matmul 512x512 (1 thread)", "value": peak / 1e9, "unit": "GFLOP/s", "goal": "",
                 "note": f"the ceiling the rows below are compared with; load average {load:.1f}"}]
        wide = fused_head_ms(models.FUSED_HEAD_TILE)
        fit = fused_head_ms(1024)
        rows += [{"benchmark": "fused head fwd+bwd, trl's 32768 tile", "value": wide, "unit": "ms", "goal": "",
                  "note": "1,600 tokens x hidden 96 x vocabulary 1,024"},
                 {"benchmark": "fused head fwd+bwd, tile = vocabulary", "value": fit, "unit": "ms",
                  "goal": "faster than trl's tile", "note": f"x{wide / fit:.1f} (models.fit_fused_head; same bits)"}]
        people = tasks.people(400, seed=0)
        for size in SIZES:
            _, tok = models.load(size, seed=0, dtype="float32")
            prose, _ = corpora.knowledge_corpus(people, 1, tok, seed=0)
            coded, _ = corpora.coded_corpus(people, 100, tok, seed=0)
            n_params = models.TINY_SIZES[size]
            before = None
            for label, fn, data in (("before: batch 8, mask, prose", _old_loop, prose),
                                    ("train_lm batch 128, prose", _new_loop, prose),
                                    ("train_lm batch 128, coded (the probe)", _new_loop, coded)):
                model, tok = models.load(size, seed=0, dtype="float32")
                rate = fn(model, tok, data)
                flops = 6 * n_params * rate
                before = before or rate
                rows.append({"benchmark": f"{size} {label}", "value": rate, "unit": "tokens/s",
                             "goal": "faster than before" if before != rate else "",
                             "note": f"{flops / 1e9:.1f} GFLOP/s = {flops / peak:.0%} of matmul; x{rate / before:.2f} before"})
        return rows
    finally:
        torch.set_num_threads(threads)

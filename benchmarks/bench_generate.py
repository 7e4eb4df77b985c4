"""vtkit.generate throughput against plain `model.generate` on the same batch, and against one prompt at a time.

Run: `.venv/bin/python benchmarks/run.py generate` (part of `make bench`).

Setup: a fresh tiny-3m (weights from seed 0, so no sample stops early and every row generates exactly
MAX_NEW tokens), N_PROMPTS chat prompts of varied length, greedy, MAX_NEW new tokens each. The plain
baseline is the textbook call: the tokenizer left-pads the whole batch and `model.generate` runs it.
The two batched timings are the best of REPEATS
rounds run in turns after a warm-up; one-at-a-time runs once. Tokens counted: generated tokens up to and
including the stop token, the same rule for both.
"""
from __future__ import annotations

import time

import torch

from vtkit import generate as G, models, tokenizer as vtok

SPEC = "tiny-3m"  # big enough that the matmuls, not Python, set the pace on CPU
N_PROMPTS, MAX_NEW = 64, 64
N_SINGLE = 16  # one-at-a-time is slow; time a subset, tokens/s is per token anyway
REPEATS = 3


def _prompts() -> list[str]:
    ops = ["+", "-", "*"]
    return [f"Compute {i} {ops[i % 3]} {7 * i + 3}." + " Then add the digits of the result." * (i % 5)
            for i in range(N_PROMPTS)]


def _tokenizer():
    try:
        return vtok.build_tokenizer(), "vtkit tokenizer on tasks corpus"
    except ImportError:  # vtkit.tasks.tokenizer_corpus not available
        return vtok.build_tokenizer(_prompts() * 4), "tokenizer trained on the benchmark prompts (vtkit.tasks unavailable)"


def _time(fn) -> tuple[float, int]:
    t0 = time.perf_counter()
    tokens = fn()
    return time.perf_counter() - t0, tokens


def _best_interleaved(fns) -> list[tuple[float, int]]:
    """Best time of each fn over REPEATS rounds, run in turns so load drift hits them alike (after a warm-up)."""
    for fn in fns:
        fn()
    best = [(float("inf"), 0)] * len(fns)
    for _ in range(REPEATS):
        best = [min(b, _time(fn)) for b, fn in zip(best, fns)]
    return best


def run() -> list[dict]:
    tok, tok_note = _tokenizer()
    model, tok = models.load(SPEC, seed=0, tokenizer=tok)
    prompts = _prompts()
    stops = G.stop_ids(model, tok)
    device = next(model.parameters()).device

    def ours(ps=prompts, bs=N_PROMPTS):
        return sum(r["n_tokens"] for r in G.generate(model, tok, ps, temperature=0, max_new_tokens=MAX_NEW, batch_size=bs))

    texts = [tok.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True, tokenize=False)
             for p in prompts]

    def plain():
        tok.padding_side = "left"
        enc = tok(texts, padding=True, add_special_tokens=False, return_tensors="pt").to(device)
        tok.padding_side = "right"
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=MAX_NEW, do_sample=False, eos_token_id=stops,
                                 pad_token_id=tok.pad_token_id)
        n = 0
        for row in out[:, enc["input_ids"].shape[1]:].tolist():
            ends = [j for j, t in enumerate(row) if t in stops]
            n += ends[0] + 1 if ends else len(row)
        return n

    (t_ours, n_ours), (t_plain, n_plain) = _best_interleaved([ours, plain])
    t_one, n_one = _time(lambda: ours(prompts[:N_SINGLE], 1))  # warm already; once is enough at this scale
    where = f"{SPEC} on {device.type} {str(model.dtype).removeprefix('torch.')}, {torch.get_num_threads()} threads"
    batch = f"{N_PROMPTS} prompts x {MAX_NEW} new tokens, greedy; {where}; {tok_note}"
    ours_tps, plain_tps, one_tps = n_ours / t_ours, n_plain / t_plain, n_one / t_one
    return [
        {"benchmark": "vtkit.generate tokens/s (batch 64)", "value": ours_tps, "unit": "tok/s", "goal": "", "note": batch},
        {"benchmark": "plain model.generate tokens/s (same batch)", "value": plain_tps, "unit": "tok/s", "goal": "",
         "note": f"tokenizer left-pads, one model.generate call; {n_plain} tokens vs vtkit {n_ours}"},
        {"benchmark": "vtkit.generate / plain model.generate", "value": ours_tps / plain_tps, "unit": "x",
         "goal": ">= 0.9x", "note": "same prompts, same max_new_tokens, greedy"},
        {"benchmark": "one prompt at a time tokens/s", "value": one_tps, "unit": "tok/s", "goal": "",
         "note": f"vtkit.generate batch_size=1 on {N_SINGLE} of the prompts"},
        {"benchmark": "batched / one at a time", "value": ours_tps / one_tps, "unit": "x", "goal": "> 1x",
         "note": "what batching buys"},
    ]

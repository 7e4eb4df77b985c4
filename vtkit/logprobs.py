"""Per-token log-probabilities of a causal LM without materialising the full (rows x length x vocabulary) logits.

    from vtkit import logprobs
    lp = logprobs.token_logprobs(model, ids, attention_mask)              # (rows, length - 1): log p(next token)
    lp = logprobs.token_logprobs(model, ids, positions=mask)              # only the masked predictions go through the head

Where the kit scores text itself (self-distillation's learning potential, `vtkit.distill`), one forward of a
long trace would otherwise hold bf16 logits for every position (a 64K-token row of a 152K vocabulary is
~20 GB, and the fp32 log-softmax doubles it). Here the backbone runs once (`model.model`, the decoder without
its head) and the head is applied to `chunk_tokens` positions at a time: each chunk's logits are cast to
fp32, log-softmaxed, the targets' values gathered, and the chunk is freed before the next. Peak memory
is `chunk_tokens x vocabulary x ~10 bytes` beside the hidden states, whatever the row length (`vtkit.plan`
counts it so). Only the positions asked for are projected. The result equals the unchunked
`log_softmax(model(ids).logits)` to float rounding (tests/test_logprobs.py).

trl's trainers do the same inside their loss: SFTTrainer and GRPOTrainer (trl 1.16) patch the model with
a fused LM head (`trl.trainer.utils.add_fused_lm_head`: 4096-token x 32768-vocabulary tiles, online
log-sum-exp, backward recomputed per tile), on by default; the kit's SFT and RL losses go through it.
A model without a separate head (`lm_head` and a `model` backbone) falls back to the full forward.
"""
from __future__ import annotations

import torch

CHUNK_TOKENS = 1024   # positions projected at once: 1024 x 152K vocabulary x fp32 = 0.6 GB


def _split(model):
    """(backbone, head) of a causal LM, or (None, None) where the model has no such parts."""
    body, head = getattr(model, "model", None), getattr(model, "lm_head", None)
    if body is None or head is None or not callable(body):
        return None, None
    return body, head


def gather_logprobs(hidden: torch.Tensor, head, targets: torch.Tensor, chunk_tokens: int = CHUNK_TOKENS) -> torch.Tensor:
    """log p(targets[i]) from hidden states (N, H) through `head` (a Linear to the vocabulary), `chunk_tokens`
    positions at a time, in fp32. Returns (N,) fp32."""
    if chunk_tokens < 1:
        raise ValueError(f"chunk_tokens must be >= 1, got {chunk_tokens}")
    out = torch.empty(hidden.shape[0], dtype=torch.float32, device=hidden.device)
    for a in range(0, hidden.shape[0], chunk_tokens):
        logits = head(hidden[a:a + chunk_tokens]).float()
        out[a:a + chunk_tokens] = logits.log_softmax(-1).gather(1, targets[a:a + chunk_tokens, None].to(logits.device))[:, 0]
        del logits
    return out


def token_logprobs(model, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                   positions: torch.Tensor | None = None, chunk_tokens: int = CHUNK_TOKENS) -> torch.Tensor:
    """(rows, length - 1) fp32: log p(input_ids[:, t + 1] | input_ids[:, :t + 1]) for t = 0 .. length - 2.

    `positions`: a (rows, length - 1) bool mask of the predictions wanted (others come back 0), so only those
    positions go through the head. The logits are never held for more than `chunk_tokens` positions."""
    body, head = _split(model)
    targets = input_ids[:, 1:]
    want = torch.ones_like(targets, dtype=torch.bool) if positions is None else positions.to(torch.bool)
    if want.shape != targets.shape:
        raise ValueError(f"positions must have shape {tuple(targets.shape)} (rows, length - 1), got {tuple(want.shape)}")
    out = torch.zeros(targets.shape, dtype=torch.float32, device=input_ids.device)
    if body is None:   # no separate head: the full logits, as the model gives them
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1].float()
        lp = logits.log_softmax(-1).gather(2, targets[..., None])[..., 0]
        return torch.where(want, lp, out)
    hidden = body(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state[:, :-1]
    sel = want.to(hidden.device)
    out[want] = gather_logprobs(hidden[sel], head, targets.to(hidden.device)[sel], chunk_tokens).to(out.device)
    return out

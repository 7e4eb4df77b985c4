"""The kit's training precision (vtkit.models.training_precision): fp32 master weights with bf16 compute.

At RL's lr 1e-6 an AdamW step (about lr in size) is below half of bf16's spacing for any weight
above ~2.6e-4 in magnitude, so pure-bf16 weights round it away. These tests take one step at lr 1e-6
through the kit's real training paths (train.sft, train.train_lm, rl_phase.run_phase) on CPU, where
bf16 autocast works as on CUDA. Every run starts from the same bf16-loaded weights (what models.load
gives on CUDA): with "bf16-mixed" (upcast to fp32 master weights) they move as an fp32 run moves
them; a pure-bf16 copy trained the old way (bf16 weights, no upcast) leaves almost every weight where
it was.
"""
from __future__ import annotations

import pytest
import torch
from transformers import TrainerCallback

from vtkit import models, rl_phase, tasks, train

LR = 1e-6


def _snapshot(model) -> dict:
    return {k: p.detach().float().clone() for k, p in model.named_parameters()}


def _update(model, before: dict) -> dict:
    return {k: p.detach().float() - before[k] for k, p in model.named_parameters()}


def _share(deltas: dict, pred) -> float:
    return sum(pred(k, d).sum().item() for k, d in deltas.items()) / sum(d.numel() for d in deltas.values())


def _rel_error(deltas: dict, ref: dict) -> float:
    """|update - reference update| / |reference update| over all weights."""
    num = sum(((d - ref[k]) ** 2).sum() for k, d in deltas.items()) ** 0.5
    return float(num / sum((d ** 2).sum() for d in ref.values()) ** 0.5)


def _no_upcast(monkeypatch):
    """The training path as it was before: bf16 autocast flags, but the weights are left as loaded."""
    monkeypatch.setattr(models, "prepare_training",
                        lambda model, precision=None, device=None: models.training_precision(precision, device or "cpu"))


def _compare(ref: dict, mixed: dict, pure: dict) -> None:
    """mixed (fp32 master, bf16 compute) moves the weights as the fp32 reference does; pure bf16 does not."""
    assert 0.5 * LR < max(d.abs().max().item() for d in ref.values()) < 1.5 * LR    # an AdamW step is ~lr
    assert _share(ref, lambda k, d: d != 0) > 0.95
    assert _share(mixed, lambda k, d: d != 0) > 0.95
    # The same update to float tolerance; the few exceptions are weights whose gradient is ~0, where
    # bf16 compute flips the sign of AdamW's first step (lr * g / |g|).
    assert _share(mixed, lambda k, d: torch.isclose(d, ref[k], rtol=1e-2, atol=1e-9)) > 0.99
    assert _rel_error(mixed, ref) < 0.2
    assert _share(pure, lambda k, d: d != 0) < 0.1             # rounded away (only weights near 0 move)
    assert _rel_error(pure, ref) > 0.9
    assert _share(pure, lambda k, d: torch.isclose(d, ref[k], rtol=1e-2, atol=1e-9)) < 0.1


# ----------------------------------------------------------------------------- the rule


def test_cuda_trains_fp32_weights_under_bf16_autocast_and_cpu_stays_fp32(monkeypatch):
    monkeypatch.delenv("VTKIT_PRECISION", raising=False)
    gpu = models.training_precision(device="cuda")
    assert (gpu.name, gpu.weights, gpu.compute) == ("bf16-mixed", torch.float32, torch.bfloat16)
    assert gpu.trainer_args() == {"bf16": True, "fp16": False, "use_cpu": False}
    cpu = models.training_precision(device="cpu")
    assert (cpu.name, cpu.weights, cpu.compute) == ("fp32", torch.float32, None)
    assert cpu.trainer_args() == {"bf16": False, "fp16": False, "use_cpu": True}   # what the trainers had on CPU
    with cpu.autocast():
        assert not torch.is_autocast_enabled("cpu")
    with models.training_precision("bf16-mixed", "cpu").autocast():
        assert torch.matmul(torch.ones(2, 2), torch.ones(2, 2)).dtype == torch.bfloat16
    assert models.training_precision("fp32", "cuda").trainer_args()["bf16"] is False
    monkeypatch.setenv("VTKIT_PRECISION", "fp32")
    assert models.training_precision(device="cuda").name == "fp32"                   # the override reaches "auto"


def test_bad_precisions_are_refused_with_the_fix(monkeypatch):
    with pytest.raises(ValueError, match="bf16-mixed"):
        models.training_precision("bf16", "cuda")                                   # pure bf16 weights
    with pytest.raises(ValueError, match="valid: auto, bf16-mixed, fp16-mixed, fp32"):
        models.training_precision("mixed", "cuda")
    with pytest.raises(ValueError, match="needs a CUDA device"):
        models.training_precision("fp16-mixed", "cpu")
    monkeypatch.setenv("VTKIT_PRECISION", "fp64")
    with pytest.raises(ValueError, match="VTKIT_PRECISION"):
        models.training_precision()


def test_prepare_training_upcasts_bf16_weights_exactly_and_load_train_gives_fp32():
    model, _ = models.load("tiny-25k", seed=0, dtype="bfloat16", device="cpu")
    before = _snapshot(model)
    p = models.prepare_training(model, "bf16-mixed", device="cpu")
    assert p.name == "bf16-mixed" and {t.dtype for t in model.parameters()} == {torch.float32}
    assert all(torch.equal(t, before[k]) for k, t in model.named_parameters())     # bf16 -> fp32 is exact
    fp32, _ = models.load("tiny-25k", seed=0, device="cpu", train=True, dtype=None)
    assert fp32.dtype == torch.float32
    assert models.load("tiny-25k", device="cpu", train=True, dtype="bfloat16")[0].dtype == torch.bfloat16


# ----------------------------------------------------------------------------- one step at lr 1e-6


def test_sft_step_at_lr_1e6_moves_the_weights_as_fp32_and_pure_bf16_does_not(tmp_path, monkeypatch):
    recs = tasks.make("math", 8, seed=0, split="train", subdomain="add", difficulty=1, mod=7, shuffle=False)

    def step(name, precision):
        model, tok = models.load("tiny-100k", seed=0, device="cpu", dtype="bfloat16")  # as models.load gives it on CUDA
        before = _snapshot(model)
        dtypes = []
        model.model.layers[0].mlp.down_proj.register_forward_hook(lambda m, a, out: dtypes.append(out.dtype) and None)
        train.sft(model, tok, recs, tmp_path / name, epochs=1, lr=LR, warmup=0, batch_size=8, max_steps=1,
                  max_length=128, precision=precision)
        return _update(model, before), dtypes[0], model.dtype

    ref, ref_compute, ref_weights = step("fp32", "fp32")
    mixed, mixed_compute, mixed_weights = step("mixed", "bf16-mixed")
    assert (ref_compute, ref_weights) == (torch.float32, torch.float32)
    assert (mixed_compute, mixed_weights) == (torch.bfloat16, torch.float32)   # bf16 compute, fp32 master
    _no_upcast(monkeypatch)
    pure, pure_compute, pure_weights = step("pure", "bf16-mixed")
    assert (pure_compute, pure_weights) == (torch.bfloat16, torch.bfloat16)
    _compare(ref, mixed, pure)


def test_train_lm_step_at_lr_1e6_moves_the_weights_as_fp32_and_pure_bf16_does_not(monkeypatch):
    texts = [f"{a} + {b} = {a + b}" for a in range(20) for b in range(3)]

    def step(precision):
        model, tok = models.load("tiny-100k", seed=0, device="cpu", dtype="bfloat16")  # as models.load gives it on CUDA
        before = _snapshot(model)
        log = train.train_lm(model, tok, texts, lr=LR, warmup=0, batch_size=60, max_length=32, precision=precision)
        assert log["steps"] == 1
        return _update(model, before), model.dtype

    ref, _ = step("fp32")
    mixed, mixed_weights = step("bf16-mixed")
    assert mixed_weights == torch.float32
    _no_upcast(monkeypatch)
    pure, pure_weights = step("bf16-mixed")
    assert pure_weights == torch.bfloat16
    _compare(ref, mixed, pure)


def _parity(completions, **kw):
    """A binary reward that varies within a group: 1 for an even number of characters."""
    return [float(len(c[0]["content"]) % 2 == 0) for c in completions]


class _Seen(TrainerCallback):
    def on_train_begin(self, args, state, control, model=None, **kw):
        self.bf16, self.use_cpu, self.dtype = args.bf16, args.use_cpu, model.dtype


def test_rl_step_at_lr_1e6_moves_the_weights_as_fp32_and_pure_bf16_does_not(tmp_path, monkeypatch):
    recs = tasks.make("math", 8, seed=0, difficulty=1)

    def step(name, precision):
        model, tok = models.load("tiny-100k", seed=0, device="cpu", dtype="bfloat16")  # as models.load gives it on CUDA
        before, seen = _snapshot(model), _Seen()
        rl_phase.run_phase(model, tok, recs, tmp_path / name, phase="math", rewards=[_parity], max_steps=1,
                           prompts_per_step=4, num_generations=4, max_completion_length=8, lr=LR, seed=0,
                           save=False, callbacks=[seen], precision=precision)
        return _update(model, before), seen

    ref, seen = step("fp32", "fp32")
    assert (seen.bf16, seen.use_cpu, seen.dtype) == (False, True, torch.float32)
    mixed, seen = step("mixed", "bf16-mixed")
    assert (seen.bf16, seen.use_cpu, seen.dtype) == (True, True, torch.float32)   # MGPOConfig got the helper's flags
    _no_upcast(monkeypatch)
    pure, seen = step("pure", "bf16-mixed")
    assert seen.dtype == torch.bfloat16
    _compare(ref, mixed, pure)
    with pytest.raises(ValueError, match="fp32 master weights"):
        rl_phase.run_phase(*models.load("tiny-25k", device="cpu"), recs, tmp_path / "cb", phase="math",
                           rewards=[_parity], use_transformers_continuous_batching=True)

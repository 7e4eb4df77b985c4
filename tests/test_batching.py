"""vtkit.batching: micro-batches with gradient accumulation keep the global batch, and train the same as the
whole batch at once (real SFT and MGPO steps on a tiny model)."""
import copy

import pytest
import torch

from vtkit import batching, models, rl_phase, tasks, train


def test_micro_steps_split_the_global_batch():
    assert batching.micro_steps(128, 1, world=8) == (1, 16)
    assert batching.micro_steps(128, 4, world=8) == (4, 4)
    assert batching.micro_steps(128, None, world=8) == (16, 1)
    assert batching.micro_steps(16, 64, world=1) == (16, 1)          # a micro-batch above the share is the share
    with pytest.raises(ValueError, match="does not divide the 16 rows"):
        batching.micro_steps(128, 3, world=8)
    with pytest.raises(ValueError, match="cannot be split over 3 process"):
        batching.micro_steps(128, 1, world=3)
    with pytest.raises(ValueError, match="must be >= 1"):
        batching.micro_steps(128, 0, world=1)


def test_sft_args_keep_train_sfts_global_batch():
    for world in (1, 2, 8):
        a = batching.sft_args(8, 16, 1, world=world)
        per = train.per_device_batch(a["batch_size"] * a["grad_accum"], a["grad_accum"], world)
        assert per == 1 and per * world * a["grad_accum"] == 128
    assert batching.sft_args(8, 16, None, world=8) == {"batch_size": 8, "grad_accum": 16}


def test_rl_args_keep_one_optimizer_step_per_generation():
    a = batching.rl_args(64, 8, 1, world=8)
    assert a == {"per_device_train_batch_size": 1, "gradient_accumulation_steps": 64, "steps_per_generation": 64}
    assert batching.rl_args(64, 8, 1, steps_per_generation=2, world=8)["steps_per_generation"] == 128
    assert batching.rl_args(4, 8, None, world=1) == {"per_device_train_batch_size": 32, "gradient_accumulation_steps": 1,
                                                     "steps_per_generation": 1}


@pytest.fixture(scope="module")
def tiny():
    return models.load("tiny-50k", seed=0)


def _params(m):
    return torch.cat([p.detach().flatten() for p in m.parameters()])


def test_sft_in_micro_batches_takes_the_same_step(tiny, tmp_path):
    recs = list(tasks.make("math", 8, seed=0, difficulty=1))
    out = {}
    for micro in (None, 2):
        model = copy.deepcopy(tiny[0])
        kw = batching.sft_args(8, 1, micro, world=1)
        _, log = train.sft(model, tiny[1], recs, tmp_path / str(micro), epochs=1, lr=1e-2, max_steps=1, warmup=0,
                           max_length=128, logging_steps=1, **kw)
        out[micro] = next(h for h in log if "grad_norm" in h)
    # the same rows in one batch of 8 or 4 accumulated micro-batches of 2: the same loss and gradient
    assert out[2]["loss"] == pytest.approx(out[None]["loss"], rel=1e-5)
    assert out[2]["grad_norm"] == pytest.approx(out[None]["grad_norm"], rel=1e-4) and out[None]["grad_norm"] > 0


def length_reward(completions, **kw):
    return [float(len(str(c)) % 3 == 0) for c in completions]


def test_mgpo_in_micro_batches_takes_the_same_step(tiny, tmp_path, monkeypatch):
    recs = tasks.make("math", 4, seed=0, difficulty=1)
    out, rows = {}, []

    class Counting(rl_phase.MGPOTrainer):   # records the rows of every forward/backward micro-step
        def _compute_loss(self, model, inputs):
            rows.append(len(inputs["prompt_ids"]))
            return super()._compute_loss(model, inputs)

    monkeypatch.setattr(rl_phase, "MGPOTrainer", Counting)
    for micro in (None, 2):
        model = copy.deepcopy(tiny[0])
        rl_phase.run_phase(model, tiny[1], recs, tmp_path / str(micro), phase="math", rewards=[length_reward],
                           max_steps=1, prompts_per_step=2, num_generations=4, max_completion_length=8, lr=1e-2,
                           seed=0, save=False, skip_zero_advantage=False, micro_batch=micro)
        out[micro] = _params(model)
    assert rows == [8, 2, 2, 2, 2]                                      # one step: 8 at once, or 4 micro-steps of 2
    assert not torch.equal(out[None], _params(tiny[0]))
    assert torch.allclose(out[None], out[2], atol=2e-6, rtol=1e-4)     # the same update

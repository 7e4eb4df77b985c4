"""vtkit.train: SFT tracking and the warmup (a fraction never makes a short run all warmup)."""
from __future__ import annotations

import torch

from vtkit import models, tasks, train


def test_sft_writes_tensorboard_events_under_the_run(tmp_path):
    model, tok = models.load("tiny-25k", seed=0)
    recs = tasks.make("math", 16, seed=0, split="train", subdomain="add", difficulty=1, mod=7, shuffle=False)
    _, log = train.sft(model, tok, recs, tmp_path / "sft", epochs=1, lr=3e-3, batch_size=8, logging_steps=1,
                       report_to="tensorboard")
    events = list((tmp_path / "sft" / "tensorboard").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0
    assert [h["step"] for h in log if "loss" in h] == [1, 2]


def test_warmup_steps_rounds_up_but_never_takes_the_whole_run():
    assert train.warmup_steps(0.05, 100) == 5
    assert train.warmup_steps(0.05, 30) == 2       # rounded up, as transformers does
    assert train.warmup_steps(0.05, 2) == 1
    assert train.warmup_steps(0.05, 1) == 0        # one step at lr 0 would train nothing
    assert train.warmup_steps(0.5, 2) == 1
    assert train.warmup_steps(0.0, 10) == 0
    assert train.warmup_steps(3, 10) == 3          # a step count stays as given


def test_one_step_sft_with_warmup_fraction_trains(tmp_path):
    model, tok = models.load("tiny-25k", seed=0)
    before = [p.detach().clone() for p in model.parameters()]
    recs = tasks.make("math", n=4, seed=0, difficulty=1, mod=7, subdomain="add")
    model, log = train.sft(model, tok, recs, tmp_path, epochs=1, lr=1e-3, warmup=0.05, batch_size=4, max_length=128)
    assert max(h["step"] for h in log) == 1
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))

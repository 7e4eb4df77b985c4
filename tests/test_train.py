"""vtkit.train: the unpacked SFT path (transformers' Trainer on `train.tokenize`) against trl's
SFTTrainer, tracking, and the warmup (a fraction never makes a short run all warmup)."""
from __future__ import annotations

import numpy as np
import torch
from trl import SFTConfig, SFTTrainer

from vtkit import models, tasks, train


def _records():
    math = tasks.make("math", 40, seed=0, split="train", subdomain="add", difficulty=1, mod=7, shuffle=False)
    code = tasks.make("code", 3, seed=0, split="train", difficulty=1)   # longer, multi-path: padding in a batch
    return list(math) + list(code)


def test_tokenize_matches_sfttrainers_assistant_only_rows(tmp_path):
    model, tok = models.load("tiny-25k", seed=0)
    convs = train.to_conversations(_records())
    ours = train.tokenize(convs, tok, max_length=64)
    cfg = SFTConfig(output_dir=str(tmp_path), assistant_only_loss=True, max_length=64, report_to=[], use_cpu=True,
                    max_steps=1)
    ref = SFTTrainer(model=model, args=cfg, train_dataset=convs, processing_class=tok).train_dataset
    assert len(ours) == len(ref) < len(convs)  # conversations whose prompt fills max_length are dropped
    assert any(len(r["input_ids"]) == 64 for r in ours)  # truncation is exercised
    for a, b in zip(ours, ref):
        assert a["input_ids"] == b["input_ids"] and a["labels"] == b["labels"]
        assert any(t != -100 for t in a["labels"]) and a["labels"][0] == -100


def test_unpacked_sft_follows_sfttrainers_losses_and_weights(tmp_path, monkeypatch):
    """Same data order, truncation, labels, schedule and loss normalisation: per-step losses agree
    to float rounding and so do the trained weights."""
    recs = _records()
    m1, tok = models.load("tiny-50k", seed=0)
    _, ours = train.sft(m1, tok, recs, tmp_path / "a", epochs=1, lr=3e-3, batch_size=8, logging_steps=1)

    class Unpacked(SFTConfig):  # packing="bfd" selects SFTTrainer; the config then turns packing off
        def __init__(self, *a, **k):
            super().__init__(*a, **{**k, "packing": False})
    monkeypatch.setattr(train, "SFTConfig", Unpacked)
    m2, _ = models.load("tiny-50k", seed=0)
    _, ref = train.sft(m2, tok, recs, tmp_path / "b", epochs=1, lr=3e-3, batch_size=8, logging_steps=1, packing="bfd")
    la, lb = ([h["loss"] for h in log if "loss" in h] for log in (ours, ref))
    assert len(la) == len(lb) >= 5
    assert la[-1] < la[0]  # it trains
    np.testing.assert_allclose(la, lb, rtol=1e-4, atol=1e-4)
    for p, q in zip(m1.parameters(), m2.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-3, atol=1e-4)


def test_sft_writes_tensorboard_events_under_the_run(tmp_path):
    model, tok = models.load("tiny-25k", seed=0)
    _, log = train.sft(model, tok, _records()[:16], tmp_path / "sft", epochs=1, lr=3e-3, batch_size=8,
                       logging_steps=1, report_to="tensorboard")
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

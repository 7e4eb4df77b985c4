"""vtkit.train: SFT tracking and the warmup (a fraction never makes a short run all warmup)."""
from __future__ import annotations

import datasets
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


def test_bucketed_order_batches_one_length_bucket_at_a_time_and_keeps_every_row():
    lengths = [300 if i % 10 == 0 else 40 + i % 7 for i in range(95)]   # 10 long rows among 85 short
    order = train.bucketed_order(lengths, batch_size=8, width=128, seed=0)
    assert sorted(order) == list(range(95))
    batches = [order[i:i + 8] for i in range(0, 95, 8)]
    mixed = [b for b in batches if len({lengths[i] // 128 for i in b}) > 1]
    assert len(mixed) <= 1                 # only the buckets' leftovers (2 long + 5 short) may mix
    assert len(batches[-1]) == 95 % 8      # the one short batch comes last
    assert order == train.bucketed_order(lengths, batch_size=8, width=128, seed=0)
    assert order != train.bucketed_order(lengths, batch_size=8, width=128, seed=1)
    short_rows = [i for i in order if lengths[i] < 128]
    assert short_rows != sorted(short_rows, key=lambda i: (lengths[i], i))   # not sorted by length


def test_sft_with_length_buckets_pads_short_batches_to_short_widths(tmp_path):
    """4 long conversations among 60 short ones: bucketed, one batch carries the long rows; randomly
    batched (the default), several short batches are padded to a long row's length."""
    recs = tasks.make("math", 60, seed=0, split="train", subdomain="add", difficulty=1, mod=7)
    convs = [{"messages": [{"role": "user", "content": r["prompt"]},
                           {"role": "assistant", "content": r["solutions"][0]}]} for r in recs]
    for i in range(4):
        convs[i * 15]["messages"][1]["content"] = convs[i * 15]["messages"][1]["content"] * 6
    data = datasets.Dataset.from_list(convs)
    widths = {}
    for buckets in (None, 128):
        model, tok = models.load("tiny-25k", seed=0)
        seen = []
        model.register_forward_pre_hook(lambda m, args, kw: seen.append(kw["input_ids"].shape[1]),
                                        with_kwargs=True)
        train.sft(model, tok, data, tmp_path / str(buckets), epochs=1, lr=1e-3, batch_size=4,
                  seed=0, length_buckets=buckets)
        widths[buckets] = seen
    long_width = max(widths[None])
    assert long_width > 200 and max(widths[128]) == long_width
    assert sum(w > 128 for w in widths[128]) == 1
    assert sum(w > 128 for w in widths[None]) >= 3


def test_fused_head_tile_fitted_to_the_vocabulary_trains_the_same_bits(tmp_path, monkeypatch):
    """trl's default 32,768-wide head tile against one as wide as the tiny vocabulary (models.fit_fused_head):
    the same loss at every step and the same weights, bit for bit."""
    from trl.trainer import utils as trl_utils
    recs = tasks.make("math", 16, seed=0, split="train", subdomain="add", difficulty=1, mod=7, shuffle=False)

    def run(tile):
        model, tok = models.load("tiny-25k", seed=0)
        if tile is not None:   # trl's default tile: the fitting switched off
            monkeypatch.setattr(models, "fit_fused_head", lambda m: None)
            monkeypatch.setattr(trl_utils, "_CHUNKED_LOGPROB_CHUNK_SIZE", tile)
        model, log = train.sft(model, tok, recs, tmp_path / str(tile), epochs=1, lr=3e-3, batch_size=8, logging_steps=1)
        used = trl_utils._CHUNKED_LOGPROB_CHUNK_SIZE
        monkeypatch.undo()
        return model, [h["loss"] for h in log if "loss" in h], used

    wide, wide_loss, wide_tile = run(models.FUSED_HEAD_TILE)
    fit, fit_loss, fit_tile = run(None)
    assert wide_tile == 32768 and fit_tile == fit.config.vocab_size == 1024
    assert len(fit_loss) == 2 and fit_loss == wide_loss
    assert all(torch.equal(a, b) for a, b in zip(wide.state_dict().values(), fit.state_dict().values()))

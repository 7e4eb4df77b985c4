"""vtkit.rl: the MGPO weight, Long2Short, the MGPO trainer against trl's GRPOTrainer, the solvability filter."""
from __future__ import annotations

import copy
import math
import warnings
import zlib

import datasets
import numpy as np
import pytest
import torch
from trl import GRPOConfig, GRPOTrainer

from vtkit import rl
from vtkit.rl import (MGPOConfig, MGPOTrainer, bernoulli_kl_to_half, drop_zero_advantage_rows, long2short_rewards,
                      mgpo_weight)

warnings.filterwarnings("ignore")


# ----------------------------------------------------------------------------- weight

def test_kl_to_half_values_and_kinds():
    assert bernoulli_kl_to_half(0.5) == 0.0
    assert bernoulli_kl_to_half(0.0) == pytest.approx(math.log(2), abs=1e-15)
    assert bernoulli_kl_to_half(1.0) == pytest.approx(math.log(2), abs=1e-15)
    p = 0.25
    assert bernoulli_kl_to_half(p) == pytest.approx(p * math.log(p / 0.5) + (1 - p) * math.log((1 - p) / 0.5))
    ps = np.linspace(0, 1, 11)
    a = bernoulli_kl_to_half(ps)
    t = bernoulli_kl_to_half(torch.tensor(ps))
    assert isinstance(a, np.ndarray) and isinstance(t, torch.Tensor)
    assert np.allclose(a, [bernoulli_kl_to_half(float(x)) for x in ps], atol=1e-15)
    assert np.allclose(t.numpy(), a, atol=1e-12)
    assert np.all(np.isfinite(a)) and np.allclose(a, a[::-1], atol=1e-15)  # symmetric about 0.5


def test_mgpo_weight_range_and_kinds():
    for lam in (0.0, 0.5, 1.0, 3.0):
        ps = np.linspace(0, 1, 101)
        w = mgpo_weight(ps, lam)
        assert w.min() >= 2.0 ** -lam - 1e-12 and w.max() <= 1.0
        assert w[0] == pytest.approx(2.0 ** -lam) and w[50] == 1.0
    assert mgpo_weight(0.3, 0.0) == 1.0
    assert np.all(mgpo_weight(np.array([0.0, 0.3, 1.0]), 0) == 1.0)
    wt = mgpo_weight(torch.tensor([0.0, 0.25, 1.0], dtype=torch.float32), 2.0)
    assert isinstance(wt, torch.Tensor) and wt.dtype == torch.float32
    assert wt[0].item() == pytest.approx(0.25) and wt[2].item() == pytest.approx(0.25)
    assert isinstance(mgpo_weight(0.25, 1.0), float)


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf")])
def test_mgpo_weight_rejects_bad_lambda(bad):
    with pytest.raises(ValueError, match="lam"):
        mgpo_weight(0.5, bad)


def test_mgpo_weight_rejects_bad_p():
    with pytest.raises(ValueError, match="probability"):
        mgpo_weight(1.5, 1.0)
    with pytest.raises(ValueError, match="probability"):
        mgpo_weight(torch.tensor([0.2, -0.1]), 1.0)


# ----------------------------------------------------------------------------- Long2Short

def test_long2short_properties():
    r = [1.0, 1.0, 0.0, 1.0, 0.0, 1.0]
    L = [10, 40, 5, 20, 7, 80]
    out = long2short_rewards(r, L, lam=0.2)
    shifts = [o - x for o, x in zip(out, r)]
    assert sum(shifts) == pytest.approx(0.0, abs=1e-12)
    assert out[2] == 0.0 and out[4] == 0.0  # incorrect unchanged, even the short ones
    assert np.mean(out) == pytest.approx(np.mean(r))
    correct = [0, 1, 3, 5]
    assert max(correct, key=lambda i: out[i]) == 0  # shortest correct gets the largest reward
    assert sorted(correct, key=lambda i: -out[i]) == sorted(correct, key=lambda i: L[i])
    assert max(abs(s) for s in shifts) == pytest.approx(0.2)  # normalised by the max deviation
    # hand computation of the formula
    s = {i: 1 / L[i] for i in correct}
    sb = sum(s.values()) / 4
    m = max(abs(v - sb) for v in s.values())
    assert out[3] == pytest.approx(1 + 0.2 * (s[3] - sb) / m)


def test_long2short_no_change_cases():
    assert long2short_rewards([1, 1, 0], [7, 7, 3]) == [1.0, 1.0, 0.0]  # equal correct lengths
    assert long2short_rewards([1, 0, 0], [3, 9, 1]) == [1.0, 0.0, 0.0]  # |C| = 1
    assert long2short_rewards([0, 0], [3, 9]) == [0.0, 0.0]
    out = long2short_rewards([1, 1, 0.5], [2, 4, 1], correct_threshold=0.5)  # threshold counts 0.5 as correct
    assert out[2] != 0.5 and sum(out) == pytest.approx(2.5)
    with pytest.raises(ValueError, match="one entry per response"):
        long2short_rewards([1, 0], [3])


# ----------------------------------------------------------------------------- tiny trainer setup

CORPUS = [f"what is {a} plus {b}? the answer is {a + b}" for a in range(30) for b in range(5)]


def _tiny():
    """tiny-100k from vtkit.models (Qwen2 architecture, ChatML tokenizer) with fresh seeded weights."""
    from vtkit import models
    return models.load("tiny-100k", seed=0)


@pytest.fixture(scope="module")
def tiny():
    return _tiny()


def accuracy(completions, **_):
    """A deterministic 0/1 'verifier' on the text, so groups have mixed outcomes."""
    return [float(zlib.crc32(c[0]["content"].encode()) % 3 == 0) for c in completions]


def lenient(completions, **_):
    """Like `accuracy` but right two times in three, so groups hold several correct responses."""
    return [1.0 - a for a in accuracy(completions)]


def style(completions, **_):
    return [0.1 * (len(c[0]["content"]) % 5) for c in completions]


OUT = ""   # trainer output folder: set per test to a pytest tmp_path (_trainer_out)


@pytest.fixture(autouse=True)
def _trainer_out(tmp_path):
    global OUT
    OUT = str(tmp_path / "trainer")


PROMPTS = datasets.Dataset.from_list(
    [{"prompt": [{"role": "user", "content": f"what is {i} plus {i % 4}?"}]} for i in range(32)])


def _train(tiny, trainer_cls, config_cls, max_steps=2, reward_funcs=(accuracy,), **extra):
    model, tok = copy.deepcopy(tiny[0]), tiny[1]
    kw = dict(output_dir=OUT, bf16=False, use_cpu=True,
              per_device_train_batch_size=8, num_generations=4, max_completion_length=12, report_to="none",
              seed=0, max_steps=max_steps, logging_steps=1, learning_rate=1e-2, save_strategy="no",
              disable_tqdm=True)
    kw.update(extra)
    trainer = trainer_cls(model=model, reward_funcs=list(reward_funcs), args=config_cls(**kw),
                          train_dataset=PROMPTS, processing_class=tok)
    trainer.train()
    return trainer, model


def _losses(trainer):
    return [h["loss"] for h in trainer.state.log_history if "loss" in h]


def test_lambda_zero_equals_grpo_exactly(tiny):
    extra = dict(num_iterations=2, max_steps=3)  # a second pass over a generation: ratio != 1, loss != 0
    tg, mg = _train(tiny, GRPOTrainer, GRPOConfig, reward_funcs=(accuracy, style), **extra)
    tm, mm = _train(tiny, MGPOTrainer, MGPOConfig, reward_funcs=(accuracy, style), mgpo_lambda=0.0,
                    mgpo_accuracy_reward="accuracy", **extra)
    assert len(_losses(tg)) == 3 and _losses(tg) == _losses(tm)
    assert any(loss != 0 for loss in _losses(tg))
    for (name, a), b in zip(mg.state_dict().items(), mm.state_dict().values()):
        assert torch.equal(a, b), name
    assert not all(torch.equal(a, b) for a, b in zip(tiny[0].state_dict().values(), mg.state_dict().values()))
    logs = [h for h in tm.state.log_history if "mgpo/weight_mean" in h]  # generation steps 0 and 2
    assert len(logs) == 2 and all(h["mgpo/weight_mean"] == 1.0 and h["mgpo/weight_min"] == 1.0 for h in logs)
    assert all(0.0 <= h["mgpo/frac_solved_or_failed"] <= 1.0 for h in logs)


def _row_groups_and_rewards(trainer, batch):
    """Group id (by prompt ids) and the recomputed accuracy reward of every row of a buffered batch."""
    tok = trainer.processing_class
    keys = [tuple(ids[m.bool()].tolist()) for ids, m in zip(batch["prompt_ids"], batch["prompt_mask"])]
    texts = tok.batch_decode(batch["completion_ids"], skip_special_tokens=True)
    rewards = accuracy([[{"role": "assistant", "content": t}] for t in texts])
    return keys, rewards


def test_weights_applied_once_with_buffer_reuse(tiny):
    """steps_per_generation = 2, num_iterations = 2: one generation feeds 4 optimizer steps.

    After those 4 steps the buffered advantages of MGPO must be w(p_group) x those of GRPO: the
    weights were applied once at generation time, never again when the buffer was reused.
    """
    extra = dict(max_steps=4, steps_per_generation=2, num_iterations=2)
    lam = 2.0
    tg, _ = _train(tiny, GRPOTrainer, GRPOConfig, **extra)
    tm, _ = _train(tiny, MGPOTrainer, MGPOConfig, mgpo_lambda=lam, mgpo_accuracy_reward="accuracy", **extra)
    assert tm._step == 4
    rows_g = [dict(b) for b in tg._buffered_inputs]
    rows_m = [dict(b) for b in tm._buffered_inputs]
    keys, rewards = [], []
    for b in rows_m:
        k, r = _row_groups_and_rewards(tm, b)
        keys += k
        rewards += r
    for bg, bm in zip(rows_g, rows_m):
        assert torch.equal(bg["completion_ids"], bm["completion_ids"])  # same generation in both
    groups = {}
    for k, r in zip(keys, rewards):
        groups.setdefault(k, []).append(r)
    assert all(len(v) == 4 for v in groups.values()) and len(groups) == 4
    expected_w = torch.tensor([mgpo_weight(sum(groups[k]) / 4, lam) for k in keys])
    adv_g = torch.cat([b["advantages"] for b in rows_g])
    adv_m = torch.cat([b["advantages"] for b in rows_m])
    assert torch.allclose(adv_m, adv_g * expected_w.to(adv_g.dtype), rtol=1e-6, atol=1e-7)
    # the check has teeth: some row with non-zero advantage has a weight < 1
    assert ((expected_w < 0.99) & (adv_g.abs() > 0.1)).any()
    logs = [h for h in tm.state.log_history if "mgpo/weight_min" in h]
    assert logs[0]["mgpo/weight_min"] == pytest.approx(float(min(expected_w)), rel=1e-6)


class _FakeState:
    """Stand-in for the parent's scoring step: known gathered rewards and known trl advantages."""

    def __init__(self, rewards_global, adv_local, lengths_local=None):
        self.rewards_global, self.adv_local, self.lengths_local = rewards_global, adv_local, lengths_local
        self.returned_rewards = None


def _patch_parent(monkeypatch, fake):
    def fake_rewards(self, inputs, prompts, completions, completion_ids_list):
        return fake.rewards_global.clone()

    def fake_score(self, inputs):
        ids = [[0] * L for L in fake.lengths_local] if fake.lengths_local else None
        fake.returned_rewards = self._calculate_rewards(inputs, None, None, ids)
        return {"advantages": fake.adv_local.clone()}

    monkeypatch.setattr(GRPOTrainer, "_calculate_rewards", fake_rewards)
    monkeypatch.setattr(GRPOTrainer, "_generate_and_score_completions", fake_score)


def _bare_trainer(tiny, **cfg):
    kw = dict(output_dir=OUT, bf16=False, use_cpu=True, per_device_train_batch_size=3,
              num_generations=2, generation_batch_size=6, max_completion_length=8, report_to="none", seed=0)
    kw.update(cfg)
    t = MGPOTrainer(model=copy.deepcopy(tiny[0]), reward_funcs=[style, accuracy], args=MGPOConfig(**kw),
                    train_dataset=PROMPTS, processing_class=tiny[1])
    t.model.train()  # training-mode scoring (groups of num_generations, metrics under "train")
    return t


def test_override_scales_local_slice_of_global_groups(tiny, monkeypatch):
    """Two simulated processes with 3 local rows each and groups of 2: group 1 straddles them."""
    lam = 1.0
    t = _bare_trainer(tiny, mgpo_lambda=lam, mgpo_accuracy_reward="accuracy")
    # gathered rows (6 = 3 groups of 2), columns [style, accuracy]; group accuracies p = 0.5, 1, 0
    acc = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0, 0.0])
    rewards = torch.stack([torch.zeros(6), acc], dim=1)
    p = [0.5, 1.0, 0.0]
    adv_local = torch.tensor([0.7, -0.3, 1.1])
    fake = _FakeState(rewards, adv_local)
    _patch_parent(monkeypatch, fake)
    for proc, rows in ((0, [0, 1, 2]), (1, [3, 4, 5])):
        monkeypatch.setattr(type(t.accelerator), "process_index", property(lambda self, _p=proc: _p))
        out = t._generate_and_score_completions([{}] * 3)
        w_rows = torch.tensor([mgpo_weight(p[r // 2], lam) for r in rows], dtype=torch.float32)
        assert torch.equal(out["advantages"], adv_local * w_rows)
    m = t._metrics["train"]  # statistics over the 3 global groups, the same on every process
    assert m["mgpo/frac_solved_or_failed"][-1] == pytest.approx(2 / 3)
    assert m["mgpo/weight_mean"][-1] == pytest.approx((1.0 + 0.5 + 0.5) / 3)
    assert m["mgpo/weight_min"][-1] == pytest.approx(0.5)
    # one group of 6 with p = 4/6 through the same path: factor exp(-lam * D(4/6))
    t2 = _bare_trainer(tiny, mgpo_lambda=lam, mgpo_accuracy_reward="accuracy", num_generations=6)
    fake.rewards_global = torch.stack([torch.zeros(6), torch.tensor([1.0, 1.0, 1.0, 0.0, 1.0, 0.0])], dim=1)
    monkeypatch.setattr(type(t2.accelerator), "process_index", property(lambda self: 0))
    out = t2._generate_and_score_completions([{}] * 3)
    assert torch.allclose(out["advantages"], adv_local * math.exp(-lam * bernoulli_kl_to_half(4 / 6)))
    assert t2._metrics["train"]["mgpo/weight_min"][-1] == pytest.approx(math.exp(-lam * bernoulli_kl_to_half(4 / 6)))


def test_negative_scale_and_rft_control(tiny, monkeypatch):
    """negative_advantage_scale damps only negative (weighted) advantages; advantage_mode='rft' replaces the
    advantage by the 0/1 correctness of each local row (the rejection-sampling fine-tuning control)."""
    acc = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0, 0.0])   # groups of 2: p = 0.5, 1, 0
    adv_local = torch.tensor([0.7, -0.3, 1.1])
    fake = _FakeState(torch.stack([torch.zeros(6), acc], dim=1), adv_local)
    _patch_parent(monkeypatch, fake)
    monkeypatch.setattr(type(_bare_trainer(tiny).accelerator), "process_index", property(lambda self: 0))
    t = _bare_trainer(tiny, mgpo_lambda=0.0, mgpo_accuracy_reward="accuracy", negative_advantage_scale=0.25)
    assert torch.equal(t._generate_and_score_completions([{}] * 3)["advantages"], torch.tensor([0.7, -0.075, 1.1]))
    t = _bare_trainer(tiny, mgpo_lambda=0.0, mgpo_accuracy_reward="accuracy", negative_advantage_scale=0.0)
    assert torch.equal(t._generate_and_score_completions([{}] * 3)["advantages"], torch.tensor([0.7, 0.0, 1.1]))
    t = _bare_trainer(tiny, mgpo_lambda=1.0, mgpo_accuracy_reward="accuracy", advantage_mode="rft")
    assert torch.equal(t._generate_and_score_completions([{}] * 3)["advantages"], torch.tensor([1.0, 0.0, 1.0]))
    monkeypatch.setattr(type(t.accelerator), "process_index", property(lambda self: 1))
    assert torch.equal(t._generate_and_score_completions([{}] * 3)["advantages"], torch.tensor([1.0, 0.0, 0.0]))
    for bad in (dict(negative_advantage_scale=1.5), dict(advantage_mode="ppo"), dict(advantage_mode="rft")):
        with pytest.raises(ValueError, match="negative_advantage_scale|advantage_mode"):
            MGPOConfig(output_dir=OUT, use_cpu=True, report_to="none", **bad)


def test_override_long2short_shapes_accuracy_and_keeps_raw_p(tiny, monkeypatch):
    t = _bare_trainer(tiny, mgpo_lambda=1.0, mgpo_accuracy_reward="accuracy", long2short_lambda=0.2,
                      per_device_train_batch_size=6, num_generations=3)
    acc = torch.tensor([1.0, 1.0, 0.0, 1.0, 1.0, 1.0])
    lengths = [4, 8, 2, 5, 5, 5]
    fake = _FakeState(torch.stack([torch.full((6,), 0.3), acc], dim=1), torch.ones(6), lengths)
    _patch_parent(monkeypatch, fake)
    out = t._generate_and_score_completions([{}] * 6)
    shaped = fake.returned_rewards
    assert torch.equal(shaped[:, 0], torch.full((6,), 0.3))  # other reward functions untouched
    exp = long2short_rewards([1, 1, 0], [4, 8, 2]) + [1.0, 1.0, 1.0]  # equal lengths in group 2: unchanged
    assert torch.allclose(shaped[:, 1], torch.tensor(exp, dtype=torch.float32))
    w = [mgpo_weight(2 / 3, 1.0)] * 3 + [mgpo_weight(1.0, 1.0)] * 3  # p from raw rewards, before shaping
    assert torch.allclose(out["advantages"], torch.tensor(w, dtype=torch.float32))


def test_long2short_in_real_training_keeps_group_means(tiny):
    model = copy.deepcopy(tiny[0])
    with torch.no_grad():  # a louder <|im_end|> embedding: the untrained model stops at varied lengths
        model.get_input_embeddings().weight[tiny[1].eos_token_id] *= 40
    t, _ = _train((model, tiny[1]), MGPOTrainer, MGPOConfig, max_steps=1, reward_funcs=(lenient,),
                  mgpo_accuracy_reward="lenient", long2short_lambda=0.2)
    shaped = list(t._logs["rewards"]["lenient"])
    raw = lenient([[{"role": "assistant", "content": c}] if isinstance(c, str) else c for c in t._logs["completion"]])
    assert len(shaped) == len(raw) == 8
    for g in range(2):
        s, r = shaped[4 * g:4 * g + 4], raw[4 * g:4 * g + 4]
        assert sum(s) == pytest.approx(sum(r), abs=1e-5)  # zero-sum within the group
        assert all(si == ri for si, ri in zip(s, r) if ri == 0.0)  # incorrect unchanged
    assert any(v not in (0.0, 1.0) for v in shaped)  # the shaping did act on this batch


@pytest.mark.parametrize("loss_type", ["grpo", "bnpo", "dapo"])
def test_skipping_zero_advantage_rows_keeps_the_update(tiny, loss_type):
    """Positive samples only: about half the rows have advantage 0. Leaving them out of the loss (the
    default) must give the same losses and weights as computing them, while the loss sees fewer rows;
    each loss type's normaliser is kept (a mean over rows, over tokens, or a fixed count). Plain SGD, so
    the weights compare the gradients: Adam's first steps turn a rounding-level difference in a
    near-zero gradient into a full-size step of either sign."""
    extra = dict(max_steps=3, mgpo_lambda=1.0, mgpo_accuracy_reward="accuracy", negative_advantage_scale=0.0,
                 loss_type=loss_type, optim="sgd", learning_rate=1.0)
    t_all, m_all = _train(tiny, MGPOTrainer, MGPOConfig, skip_zero_advantage=False, **extra)
    t_skip, m_skip = _train(tiny, MGPOTrainer, MGPOConfig, **extra)
    assert t_skip._skip_zero and not t_all._skip_zero
    rows = [h["mgpo/rows_in_loss"] for h in t_skip.state.log_history if "mgpo/rows_in_loss" in h]
    assert len(rows) == 3 and all(1 <= r < 8 for r in rows)  # rows were dropped on every step
    assert _losses(t_skip) == pytest.approx(_losses(t_all), rel=1e-5, abs=1e-7)
    assert any(loss != 0 for loss in _losses(t_all))
    moved = 0
    for (name, a), b, c in zip(m_all.state_dict().items(), m_skip.state_dict().values(), tiny[0].state_dict().values()):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6), name
        moved += not torch.equal(a, c)
    assert moved > 0  # the update did something, in both runs


def test_skipping_zero_advantage_rows_only_where_exact(tiny):
    one_step = dict(per_device_train_batch_size=4, generation_batch_size=4)  # one optimizer step per generation
    assert _bare_trainer(tiny, **one_step)._skip_zero
    for cfg in (dict(num_iterations=2), dict(loss_type="sapo"), dict(skip_zero_advantage=False),
                dict(generation_batch_size=8), dict(top_entropy_quantile=0.5)):
        assert not _bare_trainer(tiny, **{**one_step, **cfg})._skip_zero, cfg
    base = dict(output_dir=OUT, use_cpu=True, report_to="none", **one_step, num_generations=2)
    assert rl.skips_zero_advantage(MGPOConfig(**base))
    assert not rl.skips_zero_advantage(MGPOConfig(**base, beta=0.1))  # the KL term moves every row
    assert not rl.skips_zero_advantage(MGPOConfig(**base), entropy_bonus=True)


def test_drop_zero_advantage_rows_scales_and_trims():
    """Rows with advantage 0 go, the rest are scaled by kept/total (so the mean over sequences is the
    same), trailing all-padding completion columns go, non-row entries stay, and at least one row stays."""
    batch = {"prompt_ids": torch.arange(8).reshape(4, 2), "prompt_mask": torch.ones(4, 2, dtype=torch.long),
             "completion_ids": torch.arange(20).reshape(4, 5),
             "completion_mask": torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0], [1, 1, 1, 0, 0]]),
             "advantages": torch.tensor([0.0, 2.0, 0.0, 1.0]), "num_items_in_batch": torch.tensor(11)}
    out = drop_zero_advantage_rows(batch)
    assert torch.equal(out["advantages"], torch.tensor([1.0, 0.5]))
    assert torch.equal(out["prompt_ids"], batch["prompt_ids"][[1, 3]])
    assert torch.equal(out["completion_ids"], batch["completion_ids"][[1, 3], :3])  # row 0's long tail is gone
    assert torch.equal(out["completion_mask"], torch.tensor([[1, 1, 0], [1, 1, 1]]))
    assert out["num_items_in_batch"] is batch["num_items_in_batch"]
    # the mean over sequences of advantage x (per-sequence token mean of 1) is unchanged
    assert out["advantages"].sum() / 2 == batch["advantages"].sum() / 4
    assert drop_zero_advantage_rows({**batch, "advantages": torch.ones(4)})["advantages"].shape == (4,)
    none = drop_zero_advantage_rows({**batch, "advantages": torch.zeros(4)})
    assert none["advantages"].tolist() == [0.0] and none["completion_ids"].shape == (1, 5)


def test_config_and_trainer_errors(tiny):
    with pytest.raises(ValueError, match="mgpo_accuracy_reward"):
        MGPOConfig(output_dir=OUT, use_cpu=True, mgpo_lambda=1.0, report_to="none")
    with pytest.raises(ValueError, match="mgpo_lambda"):
        MGPOConfig(output_dir=OUT, use_cpu=True, mgpo_lambda=-1.0, report_to="none")
    with pytest.raises(ValueError, match="not one of this trainer's reward functions"):
        _bare_trainer(tiny, mgpo_lambda=1.0, mgpo_accuracy_reward="acc")


# ----------------------------------------------------------------------------- solvability filter

def test_filter_solvable_drops_zero_and_one(monkeypatch):
    """Generation is stubbed so the test pins the bookkeeping: 0/n and n/n prompts go, the rest stay."""
    ds = datasets.Dataset.from_list([{"id": f"q{i}", "prompt": f"p{i}", "answer": str(i)} for i in range(5)])
    n_right = [0, 4, 2, 1, 3]  # correct samples out of 4 per prompt

    def fake_generate(model, tokenizer, prompts, *, n=1, **kw):
        assert prompts == [f"p{i}" for i in range(5)] and kw == {"seed": 3}
        return [{"prompt_index": i, "sample_index": j, "text": "ok" if j < n_right[i] else "no",
                 "n_tokens": 1, "truncated": False} for i in range(len(prompts)) for j in range(n)]

    from vtkit import generate
    monkeypatch.setattr(generate, "generate", fake_generate)
    kept, rep = rl.filter_solvable(None, None, ds, n_rollouts=4, grade_fn=lambda rec, c: c == "ok", seed=3)
    assert kept["id"] == ["q2", "q3", "q4"]
    assert {k: rep[k] for k in ("n_in", "n_all_correct", "n_all_wrong", "n_kept")} == \
        {"n_in": 5, "n_all_correct": 1, "n_all_wrong": 1, "n_kept": 3}
    assert rep["accuracy"] == [0.0, 1.0, 0.5, 0.25, 0.75]
    with pytest.raises(ValueError, match="n_rollouts"):
        rl.filter_solvable(None, None, ds, n_rollouts=1)


def test_filter_solvable_with_real_generation(tiny):
    """Through vtkit.generate on the tiny model: the report matches a direct tally of the same samples."""
    from vtkit.generate import generate
    ds = datasets.Dataset.from_list([{"id": f"q{i}", "prompt": f"what is {i} plus {i}?"} for i in range(6)])

    def grade(rec, text):  # a deterministic stand-in verifier: right about half the time
        return zlib.crc32((rec["id"] + text).encode()) % 2 == 0

    gen = dict(max_new_tokens=6, seed=5, temperature=1.0)
    kept, rep = rl.filter_solvable(tiny[0], tiny[1], ds, n_rollouts=3, grade_fn=grade, **gen)
    outs = generate(tiny[0], tiny[1], ds["prompt"], n=3, **gen)
    acc = [sum(grade(ds[i], o["text"]) for o in outs if o["prompt_index"] == i) / 3 for i in range(6)]
    assert rep["accuracy"] == acc
    assert kept["id"] == [f"q{i}" for i in range(6) if 0 < acc[i] < 1]
    assert rep["n_all_correct"] + rep["n_all_wrong"] + rep["n_kept"] == rep["n_in"] == 6
    assert 0 < rep["n_kept"] < 6  # this seed drops some prompts and keeps others

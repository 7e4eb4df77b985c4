"""vtkit.reward_model: synthetic rubric pairs, the sequence-classification RM, RewardTrainer, the trl reward."""
from __future__ import annotations

import collections
import math
import warnings

import datasets
import numpy as np
import pytest
import torch

from vtkit import instructions
from vtkit import reward_model as rm

warnings.filterwarnings("ignore")


def _answer(conv) -> str:
    return conv[-1]["content"].split("</think>", 1)[1].strip() if "</think>" in conv[-1]["content"] else ""


# ----------------------------------------------------------------------------- synthetic data

def test_pairs_are_deterministic_and_cycle_kinds():
    a, b = rm.preference_pairs(12, seed=3), rm.preference_pairs(12, seed=3)
    assert a.to_list() == b.to_list()
    assert a.to_list() != rm.preference_pairs(12, seed=4).to_list()
    assert a["kind"] == list(rm.KINDS) * 3
    for r in a:
        assert r["prompt"][0]["role"] == "user" and r["chosen"][0]["role"] == "assistant"
        assert r["chosen"] != r["rejected"]
        assert r["topic"] in r["prompt"][0]["content"]


def test_each_rejected_kind_breaks_its_rubric_item():
    pairs = rm.preference_pairs(80, seed=0)
    for r in pairs:
        good, bad, t = _answer(r["chosen"]), _answer(r["rejected"]), r["topic"]
        sents = [s for s in good.split(".") if s.strip()]
        assert len(sents) == len(set(sents)) >= 2 and t in good  # chosen: distinct sentences on the topic
        if r["kind"] == "redundant":
            parts = [s.strip() for s in bad.split(".") if s.strip()]
            assert len(parts) >= 3 and len(set(parts)) == 1 and t in bad
        elif r["kind"] == "off_topic":
            assert f" {t} " not in f" {bad.replace('.', ' ')} " and bad
        elif r["kind"] == "incoherent":
            words = lambda s: collections.Counter(s.replace(".", "").lower().split())
            assert words(bad) == words(good) and bad.replace(".", "").lower() != good.replace(".", "").lower()
        else:
            assert r["kind"] == "no_answer" and bad == ""


def test_open_prompts_mix_with_constrained_prompts():
    op = rm.open_prompts(5, seed=1)
    assert set(op["subdomain"]) == {"open"} and all(ids == [] for ids in op["instruction_id_list"])
    mixed = datasets.concatenate_datasets([instructions.make_prompts(3, seed=0), op])
    assert len(mixed) == 8
    # the rule reward skips open rows (None), so the RM alone grades them
    sol = [s[0] for s in mixed["solutions"]]
    r = instructions.instruction_reward(sol, instruction_id_list=mixed["instruction_id_list"], kwargs=mixed["kwargs"])
    assert r[:3] == [1.0, 1.0, 1.0] and r[3:] == [None] * 5
    with pytest.raises(ValueError, match="kinds"):
        rm.preference_pairs(3, kinds=["rude"])


# ----------------------------------------------------------------------------- the model

@pytest.fixture(scope="module")
def tiny_rm():
    return rm.build("tiny-25k", seed=0)


def test_build_gives_one_output_and_pad(tiny_rm):
    model, tok = tiny_rm
    assert model.config.num_labels == 1 and tok.pad_token_id is not None
    assert model.config.pad_token_id == tok.pad_token_id
    m2, _ = rm.build("tiny-25k", seed=0)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), m2.parameters()))  # seeded
    with pytest.raises(ValueError, match="reward-model spec"):
        rm.build("not-a-model")


def test_batched_scores_match_one_at_a_time(tiny_rm):
    model, tok = tiny_rm
    pairs = rm.preference_pairs(6, seed=2)
    prompts = [r["prompt"] for r in pairs]
    comps = [r["rejected"] for r in pairs]  # lengths differ a lot (no_answer vs redundant): padding matters
    batched = rm.score(model, tok, prompts, comps, batch_size=6)
    single = np.array([rm.score(model, tok, [p], [c], batch_size=1)[0] for p, c in zip(prompts, comps)])
    assert np.allclose(batched, single, atol=1e-5)
    assert len(set(np.round(batched, 6))) > 1


def test_scores_read_the_whole_response_unless_capped(tiny_rm):
    model, tok = tiny_rm
    prompt = [{"role": "user", "content": "Describe the sea."}]
    body = " ".join(["The sea is worth a closer look."] * 120)
    a, b = "<think>\nok\n</think>\nNo. " + body, "<think>\nfine\n</think>\nYes! " + body   # differ at the start only
    n = len(rm._ids(tok, rm._messages(prompt, a)))
    assert n > 600
    capped = rm.score(model, tok, [prompt, prompt], [a, b], max_length=512)   # the old default: the last 512 tokens
    whole = rm.score(model, tok, [prompt, prompt], [a, b])                    # max_length None: every token
    assert capped[0] == pytest.approx(capped[1], abs=1e-6)                    # blind to how the response began
    assert abs(whole[0] - whole[1]) > 1e-5                                  # an untrained model: a small, real difference
    assert rm.score(model, tok, [prompt], [a], max_length=n)[0] == pytest.approx(whole[0], abs=1e-5)
    with pytest.raises(ValueError, match="max_length must be >= 1"):
        rm.score(model, tok, [prompt], [a], max_length=0)


def test_place_puts_the_model_where_it_scores():
    model, _ = rm.build("tiny-25k", seed=0, device="cpu", dtype="bfloat16")
    assert next(model.parameters()).dtype == torch.bfloat16 and next(model.parameters()).device.type == "cpu"
    rm.place(model, "auto", "auto")     # no GPU here: the CPU in fp32
    assert next(model.parameters()).dtype == torch.float32 and rm.place_cuda("cpu") is False


def test_reward_fn_scores_open_rows_only(tiny_rm):
    model, tok = tiny_rm
    f = rm.make_reward(model, tok)
    assert f.__name__ == "rubric_reward"
    prompts = [[{"role": "user", "content": "Describe the sea."}]] * 3
    comps = [[{"role": "assistant", "content": "<think>\nok\n</think>\nThe sea is worth a closer look."}]] * 3
    out = f(comps, prompts=prompts, subdomain=["open", "constrained", "open"])
    assert out[1] is None and out[0] == out[2] and 0 < out[0] < 1
    raw = rm.score(model, tok, prompts[:1], comps[:1])[0]
    assert out[0] == pytest.approx(1 / (1 + math.exp(-raw)))
    assert all(v is not None for v in f(comps, prompts=prompts))  # no subdomain column: every row
    with pytest.raises(ValueError, match="prompts"):
        f(comps)


def test_reward_trainer_learns_the_rubric(tmp_path):
    model, tok = rm.build("tiny-50k", seed=1)
    train = rm.preference_pairs(64, seed=0, kinds=["no_answer", "redundant"])
    test = rm.preference_pairs(40, seed=9, kinds=["no_answer", "redundant"])
    before = rm.pair_accuracy(model, tok, test)  # the fresh model prefers the empty answer
    model, log = rm.train(model, tok, train, tmp_path / "rm", epochs=4, lr=5e-3, batch_size=16, logging_steps=4)
    losses = [h["loss"] for h in log if "loss" in h]
    after = rm.pair_accuracy(model, tok, test, by_kind=True)
    assert losses[-1] < losses[0]
    assert before < 0.5 and after["all"] >= 0.9 and min(after["no_answer"], after["redundant"]) >= 0.8

"""RL learns when the reward is the signal: a toy setting with a known answer (docs/LOG.md, "RL at tiny").

The start is a fresh tiny-100k fine-tuned for ~30 s on "a + b mod 7?" (a + b >= 7) where 2 of every 5
reference traces reduce mod 7 and 3 stop at the raw sum: a sampled trace is right about 40% of the
time, and the one token that decides it (" mod" or ".") is where the policy's entropy sits. RL must
move that choice to "reduce": (a) on 8 fixed prompts the training reward climbs from ~0.4 to ~0.9;
(b) on held-out pairs the true reward beats a random 0/1 reward over the same steps, and the random
reward leaves the model about where it was. Settings as the tiny RL preset (positive samples only,
8 prompts x G = 8) at the learning rate this smaller model takes (1e-3).
"""
from __future__ import annotations

import random
import warnings

import datasets
import pytest

from vtkit import evaluation, models, rl_phase, train
from vtkit.tasks.common import boxed_solution

warnings.filterwarnings("ignore")

PAIRS = [(a, b) for a in range(7) for b in range(7) if a + b >= 7]   # 21 pairs, every one needs the reduction
HELD = [(6, 1), (2, 5), (4, 6), (5, 3), (3, 6), (6, 4), (1, 6), (5, 2)]
TRAIN = [p for p in PAIRS if p not in HELD]                          # 13 pairs


def rec(a, b):
    return {"id": f"toy-{a}-{b}", "domain": "math", "subdomain": "add", "prompt": f"{a} + {b} mod 7?",
            "answer": str((a + b) % 7), "tests": "", "difficulty": 1, "meta": "{}"}


def trace(a, b, reduce):
    s = a + b
    return boxed_solution(f"{a} + {b} = {s}" + (f" mod 7 = {s % 7}." if reduce else "."), str(s % 7 if reduce else s))


@pytest.fixture(scope="module")
def start(tmp_path_factory):
    conv = [{"messages": [{"role": "user", "content": rec(a, b)["prompt"]},
                          {"role": "assistant", "content": trace(a, b, k < 2)}]} for a, b in PAIRS for k in range(5)]
    model, tok = models.load("tiny-100k", seed=0)
    train.sft(model, tok, datasets.Dataset.from_list(conv), tmp_path_factory.mktemp("sft"), epochs=1000, max_steps=700,
              lr=1e-2, batch_size=8, max_length=64, logging_steps=1000)
    return model.state_dict(), tok


def fresh(start):
    model, _ = models.load("tiny-100k", seed=0)
    model.load_state_dict(start[0])
    return model, start[1]


def rl(start, records, out, **kw):
    model, tok = fresh(start)
    kw = {"max_steps": 30, "lr": 1e-3, "prompts_per_step": 8, "num_generations": 8, "max_completion_length": 32,
          "negative_advantage_scale": 0.0, "save": False, **kw}
    return rl_phase.run_phase(model, tok, records, out, phase="math", **kw)


def test_fixed_batch_reward_rises_to_point_nine(start, tmp_path):
    res = rl(start, [rec(a, b) for a, b in TRAIN[:8]], tmp_path)
    r = [s["reward"] for s in res.steps if "reward" in s]
    assert len(r) == 30 and 0.2 <= r[0] <= 0.55          # the start: right about 40% of the time
    assert max(r) >= 0.9 and sum(r[-5:]) / 5 >= 0.85     # 0.34 -> 0.95 when measured (docs/LOG.md, "RL at tiny")


def random_reward(completions, **_):
    rng = random_reward.rng
    return [float(rng.random() < 0.4) for _ in completions]


@pytest.fixture(scope="module")
def control(start, tmp_path_factory):
    """Held-out (8 pairs x 16 samples at T = 1) before, after 30 steps of the true reward, after 30 of a random one."""
    out = tmp_path_factory.mktemp("control")
    held = [rec(a, b) for a, b in HELD]
    proto = evaluation.sampled(16, 1.0, 32, seed=0)
    before = evaluation.evaluate(fresh(start), held, proto)
    kw = dict(heldout=held, before=before, eval_samples=16, eval_temperature=1.0, eval_every=100)
    true = rl(start, [rec(a, b) for a, b in TRAIN], out / "true", **kw)
    random_reward.rng = random.Random(0)
    rand = rl(start, [rec(a, b) for a, b in TRAIN], out / "rand", rewards=[random_reward], **kw)
    print(f"held-out {before.acc:.3f} -> true {true.after.acc:.3f}, random {rand.after.acc:.3f}")
    return before, true.after, rand.after


def test_true_reward_beats_random_reward_on_held_out(control):
    before, true, rand = control
    assert 0.2 <= before.acc <= 0.6                       # 0.40 when measured
    assert true.acc >= before.acc + 0.1 and true.acc >= rand.acc + 0.1   # 0.59 vs 0.00 when measured


@pytest.mark.xfail(strict=True, reason="measured: positive samples only + the per-response token average "
                   "reinforce short responses when the reward carries no signal (0.40 -> 0.00, 5-token answers; "
                   "bnpo's token average: 0.18); docs/LOG.md, 'RL at tiny: Unit-test toy'")
def test_random_reward_does_not_destroy_the_model(control):
    before, _, rand = control
    assert rand.acc >= before.acc - 0.15

"""The RL presets' data settings (vtkit/presets/rl.yaml: tasks, n_prompts, n_heldout, data_seed).

Every preset must be able to draw its RL prompts and held-out problems (the code and STEM problem
spaces are small: a preset asking for more distinct problems than exist fails when the stage
starts), the two must not overlap (held-out means problems RL never sees), and they must not
depend on the RL seed (seeds vary only the RL).
"""
import pytest

from vtkit import tasks
from vtkit.stages import rl as stage

CAP = 2000   # the paper preset's 20000 math prompts take ~50 s to draw; its difficulty 4-8 space is far larger


@pytest.mark.parametrize("preset", ["tiny", "small", "paper"])
def test_presets_draw_disjoint_prompts_and_heldout_problems(preset):
    cfg = stage.Config.from_preset(preset, seed=0)
    for d in stage.domains(cfg):
        n_train, n_test = (n[d] if isinstance(n, dict) else n for n in (cfg.n_prompts, cfg.n_heldout))
        train = tasks.make_groups({d: cfg.tasks[d]}, min(n_train, CAP), seed=cfg.data_seed)[d]
        test = tasks.make_groups({d: cfg.tasks[d]}, n_test, seed=cfg.data_seed, split="test")[d]
        assert len(train) == min(n_train, CAP) and len(test) == n_test, (preset, d)
        assert len({r["prompt"] for r in train}) == len(train) and len({r["prompt"] for r in test}) == len(test)
        assert not {r["prompt"] for r in train} & {r["prompt"] for r in test}, (preset, d)


def test_prompts_and_heldout_do_not_depend_on_the_rl_seed():
    small = {"n_prompts": {"math": 16, "code": 4, "stem": 4}, "n_heldout": {"math": 8, "code": 4, "stem": 4}}
    a = stage.phase_data(stage.Config.from_preset("tiny", seed=0, overrides=small))
    assert stage.phase_data(stage.Config.from_preset("tiny", seed=7, overrides=small)) == a
    b = stage.phase_data(stage.Config.from_preset("tiny", seed=0, overrides={**small, "data_seed": 1}))
    assert [r["prompt"] for r in b[0]["math"]] != [r["prompt"] for r in a[0]["math"]]

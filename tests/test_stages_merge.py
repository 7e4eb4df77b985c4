"""vtkit.stages.merge: its config, checkpoint discovery, and a real run over saved tiny checkpoints."""
import json

import pandas as pd
import pytest
import torch

from vtkit import models, presets
from vtkit.stages import merge

ADD = {"subdomain": "add", "difficulty": 1, "mod": 7, "shuffle": False}
MUL = {**ADD, "subdomain": "mul"}
SMALL = {"probe": {"math/add": {"n": 3, **ADD}, "math/mul": {"n": 2, **MUL}},
         "test": {"math/add": {"n": 3, **ADD}, "math/mul": {"n": 2, **MUL}, "stem": {"n": 2, "difficulty": 1}},
         "k": 2, "max_new_tokens": 8}


def test_config_is_the_preset_schema():
    for preset in presets.PRESETS:
        cfg = merge.Config.from_preset(preset)
        assert cfg.to_dict() == {**presets.resolve(preset, "merge"), "seed": 0} and cfg.sft_dir is None
    cfg = merge.Config.from_preset("tiny", sft_dir="runs/sft", stages=["stage1"], weights=None)
    assert (cfg.sft_dir, cfg.stages, cfg.weights) == ("runs/sft", ["stage1"], None)


@pytest.fixture(scope="module")
def sft_dir(tmp_path_factory):
    """An SFT stage's folder with three untrained tiny checkpoints (different seeds)."""
    d = tmp_path_factory.mktemp("sft")
    for seed, sub in enumerate(["stage1/checkpoint-10", "stage1/checkpoint-2", "stage2/checkpoint-1"]):
        models.save(*models.load("tiny-25k", seed=seed), d / sub)
    (d / "stage1" / "checkpoint-x").mkdir()    # not a step: ignored
    return d


def test_find_checkpoints_in_stage_then_step_order(sft_dir, tmp_path):
    found = merge.find_checkpoints(sft_dir, ["stage1", "stage2"])
    assert [f"{p.parent.name}/{p.name}" for p in found] == ["stage1/checkpoint-2", "stage1/checkpoint-10",
                                                             "stage2/checkpoint-1"]
    assert [p.name for p in merge.find_checkpoints(sft_dir, ["stage2"])] == ["checkpoint-1"]
    with pytest.raises(FileNotFoundError, match=r"no checkpoint-\* folders under .*\{stage1\}.*save_steps"):
        merge.find_checkpoints(tmp_path, ["stage1"])


def test_run_scores_selects_merges_and_compares(sft_dir, tmp_path, capsys):
    cfg = merge.Config.from_preset("tiny", seed=0, sft_dir=str(sft_dir), overrides=SMALL)
    res = merge.run(cfg, tmp_path / "m")
    out = capsys.readouterr().out
    d = tmp_path / "m"
    m = json.loads((d / "metrics.json").read_text())
    assert {k: v for k, v in m.items() if k != "wall_s"} == {k: v for k, v in res.metrics.items() if k != "wall_s"}
    scores = pd.read_csv(d / "checkpoint_scores.csv")
    assert len(scores) == 3 * 2 and list(scores["label"].unique()) == ["stage1@2", "stage1@10", "stage2@1"]
    # untrained checkpoints solve nothing: every tie goes to the latest, which is also the last and best single
    assert m["n_checkpoints"] == 3 and m["n_specialists"] == 1 and (m["k"], m["rule"]) == (2, "distinct")
    assert m["last_checkpoint"] == m["best_single_checkpoint"] == "stage2@1"
    assert m["specialist/math/add/checkpoint"] == m["specialist/math/mul/checkpoint"] == "stage2@1"
    assert out.count("(no checkpoint solved a probe problem: ties go to the latest)") == 2
    info = json.loads((d / "model" / "merge.json").read_text())
    assert info == {"sources": [str(sft_dir / "stage2" / "checkpoint-1")], "weights": [1.0]}
    last = models.load(info["sources"][0])[0].state_dict()
    assert all(torch.equal(v, last[k]) for k, v in models.load(str(d / "model"))[0].state_dict().items())
    # one model under two names: the same samples, so the same scores and zero differences
    for name in ("mean@2", "pass@2", "distinct@2"):
        assert m[f"merged_minus_last/mean/{name}"] == 0 == m[f"merged_minus_best_single/mean/{name}"]
        for g in ("math/add", "math/mul", "stem"):
            assert m[f"merged/{g}/{name}"] == m[f"last/{g}/{name}"] == m[f"best_single/{g}/{name}"]
    assert set(res.results["specialist"]) == {"math/add", "math/mul"}   # specialists exist for probe groups
    assert "specialist/stem/mean@2" not in m and "merged/stem/mean@2" in m
    for f in ("merge_comparison.png", "merge_comparison.pdf", "checkpoint_scores.png", "config.json"):
        assert (d / f).exists(), f
    assert json.loads((d / "config.json").read_text())["sft_dir"] == str(sft_dir)

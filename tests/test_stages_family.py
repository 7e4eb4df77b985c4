"""vtkit.stages.family: the stage's settings, and its scores on a known case: fixed answerers (the
models' sampling replaced by scripted answers whose accuracy is known by construction, graded for
real) must score exactly that, in every output (metrics.json, family.csv, scores.csv, samples.jsonl)."""
import json

import pandas as pd
import pytest

from vtkit import family, generate, models, runinfo
from vtkit.stages import base
from vtkit.stages import family as stage

N_ITEMS = 4
# per model (by parameter count): the items it answers right, boxed (exact match), and the knowledge
# items it answers in a sentence (only the lenient match credits those)
RIGHT = {"tiny-25k": {"math": {0}, "countries": {0}}, "tiny-50k": {"math": {0, 1, 2, 3}, "countries": {0, 1, 2}}}
CHATTY = {"tiny-25k": {1}, "tiny-50k": {3}}


@pytest.fixture
def answerers(monkeypatch):
    """Scripted completions in place of sampling: sample 0 follows RIGHT / CHATTY, later samples are wrong."""
    benches = family.family_benchmarks(["math"], ["countries"], n_items=N_ITEMS, seed=0)
    item = {r["prompt"]: (name, i, r) for name, (_, recs) in benches.items() for i, r in enumerate(recs)}
    size = {models.param_count(models.load(m, seed=0)[0]): m for m in RIGHT}

    def fake(model, tok, prompts, n=1, **kw):
        who = size[models.param_count(model)]
        out = []
        for j, p in enumerate(prompts):
            bench, i, r = item[p]
            for s in range(n):
                if s == 0 and i in RIGHT[who][bench]:
                    text = r["solutions"][0] if bench == "math" else f"<think>\n</think>\n\\boxed{{{r['answer']}}}"
                elif s == 0 and bench == "countries" and i in CHATTY[who]:
                    text = f"<think>\n</think>\nIt is {json.loads(r['meta'])['aliases'][0]}, I think."
                else:
                    text = "<think>\nno idea\n</think>\n\\boxed{nothing}"
                out.append({"prompt_index": j, "sample_index": s, "prompt": p, "text": text, "n_tokens": 9,
                            "truncated": False})
        return out

    monkeypatch.setattr(generate, "generate", fake)


def _cfg(**over):
    return stage.Config.from_preset("tiny", seed=0, models=list(RIGHT), reasoning=["math"], knowledge=["countries"],
                                    n_items=N_ITEMS, overrides=over or None)


def test_the_family_stage_scores_fixed_answerers_exactly(answerers, tmp_path):
    res = stage.run(_cfg(), tmp_path)          # tiny: greedy, one sample per item
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m == {**res.metrics, "wall_s": m["wall_s"]}
    want = {"score/math/tiny-25k": 25.0, "score/countries/tiny-25k": 25.0,
            "score/math/tiny-50k": 100.0, "score/countries/tiny-50k": 75.0}
    assert {k: v for k, v in m.items() if k.startswith("score/")} == want
    assert (m["score_reasoning_mean"], m["score_knowledge_mean"]) == (62.5, 50.0)
    assert (m["lenient_reasoning_mean"], m["lenient_knowledge_mean"]) == (62.5, 75.0)   # 50 and 100: chatty credited
    assert (m["n_models"], m["n_benchmarks"]) == (2, 2)
    scores = pd.read_csv(tmp_path / "scores.csv")
    assert dict(zip("score/" + scores["benchmark"] + "/" + scores["model"], scores["score"])) == want
    assert (scores["family"] == "tiny-fresh").all() and (scores["setting"] == "vtkit n=1 T=0.0").all()
    assert scores["params_b"].tolist() == [24208 / 1e9] * 2 + [51488 / 1e9] * 2
    table = pd.read_csv(tmp_path / "family.csv")
    assert table["pass@1"].tolist() == table["score"].tolist() == list(want.values())
    samples = runinfo.read_jsonl(tmp_path / "samples.jsonl")
    assert len(samples) == 2 * 2 * N_ITEMS and sum(s["correct"] for s in samples) == 1 + 1 + 4 + 3
    assert (tmp_path / "fig_family.png").exists() and res.figures[-1] == tmp_path / "fig_family.png"


def test_the_family_score_is_mean_at_n_when_sampled(answerers, tmp_path):
    """Two samples at temperature 1, the second always wrong: every score halves, pass@2 keeps it."""
    stage.run(_cfg(n_samples=2, temperature=1.0), tmp_path)
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert {k: v for k, v in m.items() if k.startswith("score/")} == {
        "score/math/tiny-25k": 12.5, "score/countries/tiny-25k": 12.5,
        "score/math/tiny-50k": 50.0, "score/countries/tiny-50k": 37.5}
    table = pd.read_csv(tmp_path / "family.csv")
    assert table["pass@2"].tolist() == [25.0, 25.0, 100.0, 75.0]
    assert (pd.read_csv(tmp_path / "scores.csv")["setting"] == "vtkit n=2 T=1.0").all()


def test_family_settings_come_from_every_preset_and_are_checked(tmp_path):
    for preset in ("tiny", "small", "paper"):
        cfg = stage.Config.from_preset(preset)
        assert cfg.models and cfg.n_items > 0 and isinstance(cfg.paths, dict)
    with pytest.raises(base.ConfigError, match="did you mean 'n_items'"):
        stage.Config.from_preset("tiny", overrides={"n_item": 3})
    with pytest.raises(base.ConfigError, match="temperature"):
        stage.Config.from_preset("tiny", overrides={"temperature": "hot"})
    with pytest.raises(ValueError, match="models is empty"):
        stage.run(stage.Config.from_preset("tiny", overrides={"models": []}), tmp_path)

"""vtkit.selfdistill: rejection sampling keeps only verified, distinct traces; records for SFT; the band figure."""
from __future__ import annotations

import warnings

import pandas as pd
import pytest

from vtkit import distill, generate, models, selfdistill, tasks

warnings.filterwarnings("ignore")


def test_collect_keeps_only_verified_distinct_traces(monkeypatch):
    recs = [dict(r) for r in tasks.make("math", 3, seed=0, difficulty=1, mod=7)]
    right, wrong = recs[0]["solutions"][0], "<think>\nguess\n</think>\nThe answer is \\boxed{99}."

    def fake_generate(model, tok, prompts, n, **kw):  # scripted samples, real grading
        texts = [[right, right, wrong], [wrong, wrong, wrong], [recs[2]["solutions"][0], wrong, "<think>\nno end"]]
        return [{"prompt_index": p, "sample_index": s, "text": texts[p][s], "n_tokens": 10 + s,
                 "truncated": texts[p][s].endswith("no end")} for p in range(len(prompts)) for s in range(n)]

    monkeypatch.setattr(generate, "generate", fake_generate)
    df, rep = selfdistill.collect_verified(None, None, recs, n=3, source="math")
    assert rep == {"n_prompts": 3, "n_samples": 9, "n_correct": 3, "n_distinct": 2, "n_prompts_with_trace": 2}
    assert list(df["id"]) == [recs[0]["id"], recs[2]["id"]] and set(df["source"]) == {"math"}
    assert list(df["completion"]) == [right, recs[2]["solutions"][0]]
    out = selfdistill.to_records(df)
    assert out[0] == {"id": recs[0]["id"], "domain": "math", "prompt": recs[0]["prompt"], "solutions": [right]}
    with pytest.raises(ValueError, match="n must be"):
        selfdistill.collect_verified(None, None, recs, n=0)


def test_collect_from_a_real_model_runs_the_verifier():
    model, tok = models.load("tiny-25k", seed=0)
    recs = [dict(r) for r in tasks.make("stem", 2, seed=0, difficulty=1)]
    df, rep = selfdistill.collect_verified(model, tok, recs, n=2, max_new_tokens=8)
    assert rep["n_samples"] == 4 and rep["n_correct"] == len(df) == 0  # an untrained model answers nothing
    assert list(df.columns) == ["id", "domain", "prompt", "completion", "n_tokens", "source"]


def test_plot_band_marks_every_reason(tmp_path):
    rows = [{"domain": d, "n_tokens": 4 + i, "lp": (i * 7 % 11) / 10} for d in ("math", "code") for i in range(30)]
    mask = distill.band_mask(pd.DataFrame(rows), n_length_buckets=2, min_tokens=8, low_q=0.3, high_q=0.9)
    assert set(mask["reason"]) == {"kept", "below_band", "outlier", "short"}
    selfdistill.plot_band(mask, tmp_path / "band")
    assert (tmp_path / "band.png").stat().st_size > 0 and (tmp_path / "band.pdf").exists()
    with pytest.raises(ValueError, match="band_mask"):
        selfdistill.plot_band(pd.DataFrame(rows))

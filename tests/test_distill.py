"""vtkit.distill: rejection sampling keeps only verified, distinct traces (records for SFT); learning-potential
scores against an independent reference; band selection on built frames; the band figure."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from vtkit import distill, evaluation, models, stats, tasks


@pytest.fixture(scope="module")
def tiny():
    return models.load("tiny-100k", seed=1)


PROMPTS = ["What is 2+3?", "Add 17 and 25, then double it.", "x", "Name a prime number between 10 and 20."]
COMPLETIONS = ["<think>2+3=5</think> \\boxed{5}", "<think>17+25=42, 42*2=84</think>\n\\boxed{84}",
               "ok", "<think>11 is prime</think> The answer is \\boxed{11}."]


def _reference(model, tok, q, y):
    """HF's own causal-LM loss with the prompt masked: mean NLL over the completion tokens, one pair at a time."""
    ptext = tok.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True, tokenize=False)
    p_ids = tok(ptext, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([p_ids + tok(y, add_special_tokens=False)["input_ids"]])
    labels = ids.clone()
    labels[0, :len(p_ids)] = -100
    with torch.no_grad():
        return model(input_ids=ids, labels=labels).loss.item()


def test_learning_potential_matches_unbatched_reference(tiny):
    model, tok = tiny
    ref = np.array([_reference(model, tok, q, y) for q, y in zip(PROMPTS, COMPLETIONS)])
    for bs in (1, 3, 16):  # 3: batches that mix lengths, so padding is exercised
        got = distill.learning_potential(model, tok, PROMPTS, COMPLETIONS, batch_size=bs)
        assert got.shape == (4,)
        assert np.allclose(got, ref, rtol=1e-5, atol=1e-5), (bs, got, ref)
    assert np.all(ref > 0) and len(set(np.round(ref, 4))) == 4
    assert not model.training


def test_learning_potential_tracks_what_the_model_learned(tiny):
    """A few steps of SFT on one trace lower its score and leave an unrelated trace's score higher."""
    import copy
    model, tok = copy.deepcopy(tiny[0]), tiny[1]
    q, y = PROMPTS[1], COMPLETIONS[1]
    before = distill.learning_potential(model, tok, [q, q], [y, COMPLETIONS[3]])
    ptext = tok.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True, tokenize=False)
    p_ids = tok(ptext, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([p_ids + tok(y, add_special_tokens=False)["input_ids"]])
    labels = ids.clone()
    labels[0, :len(p_ids)] = -100
    opt = torch.optim.AdamW(model.parameters(), lr=5e-3)
    model.train()
    torch.manual_seed(0)
    for _ in range(20):
        opt.zero_grad()
        model(input_ids=ids, labels=labels).loss.backward()
        opt.step()
    after = distill.learning_potential(model, tok, [q, q], [y, COMPLETIONS[3]])
    assert after[0] < 0.5 * before[0]
    assert after[1] > after[0]


def test_learning_potential_errors(tiny):
    model, tok = tiny
    with pytest.raises(ValueError, match="one completion per prompt"):
        distill.learning_potential(model, tok, ["a", "b"], ["c"])
    with pytest.raises(ValueError, match="empty"):
        distill.learning_potential(model, tok, ["a"], [""])
    eos = distill.learning_potential(model, tok, ["a"], ["b"], append_eos=True)
    plain = distill.learning_potential(model, tok, ["a"], ["b"])
    assert eos[0] != plain[0]


def _frame():
    """Two domains; within each, length buckets whose scores are 0..9 (domain b shifted by +100)."""
    rows = []
    for dom, shift in (("a", 0.0), ("b", 100.0)):
        for bucket, base_len in enumerate((20, 200, 2000)):
            for k in range(10):
                rows.append({"domain": dom, "n_tokens": base_len + k, "lp": shift + k + 0.01 * bucket})
        rows.append({"domain": dom, "n_tokens": 3, "lp": shift + 5.0})  # very short trace, mid score
    return pd.DataFrame(rows)


def test_select_band_keeps_middle_to_high_band_per_bucket():
    df = _frame()
    kept, rep = distill.select_band(df, low_q=0.3, high_q=0.95, min_tokens=8)
    # per (domain, bucket): scores k = 0..9; quantile 0.3 -> 2.7, 0.95 -> 8.55: keep k = 3..8
    assert len(kept) == 2 * 3 * 6
    for (dom, b), g in kept.groupby(["domain", "length_bucket"]):
        ks = sorted(int(round(v - (100 if dom == "b" else 0) - 0.01 * b)) for v in g["lp"])
        assert ks == [3, 4, 5, 6, 7, 8], (dom, b, ks)
        assert g["n_tokens"].min() >= [20, 200, 2000][b] and g["n_tokens"].max() < [20, 200, 2000][b] + 10
    assert (kept["n_tokens"] >= 8).all()  # the short traces went, although their scores sit mid-band
    # domain-wise ranking: a global ranking would have dropped every trace of domain a
    assert (kept["domain"] == "a").sum() == 18
    r = rep.set_index(["domain", "length_bucket"])
    assert r.loc[("a", -1), "n_short"] == 1 and r.loc[("b", -1), "n"] == 1
    assert (r.loc[("a", 0), ["n", "n_kept", "n_below_band", "n_outlier"]].tolist() == [10, 6, 3, 1])
    assert rep["n"].sum() == len(df) and rep["n_kept"].sum() == len(kept)


def test_band_mask_reasons_and_buckets_are_quantiles_per_domain():
    df = _frame()
    m = distill.band_mask(df, n_length_buckets=3, min_tokens=8)
    assert set(m["reason"]) == {"kept", "short", "below_band", "outlier"}
    assert (m.loc[m["reason"] == "outlier", "lp"] % 100 > 8.5).all()
    # equal-count buckets per domain, ordered by length
    for dom, g in m[m["length_bucket"] >= 0].groupby("domain"):
        assert g.groupby("length_bucket").size().tolist() == [10, 10, 10]
        assert g.groupby("length_bucket")["n_tokens"].max().is_monotonic_increasing
    # one bucket: ranking over the whole domain, so bucket structure no longer protects short traces
    m1 = distill.band_mask(df, n_length_buckets=1, min_tokens=8)
    for dom, g in m1[m1["length_bucket"] >= 0].groupby("domain"):
        lo, hi = np.quantile(g["lp"], [0.3, 0.95])
        assert g["keep"].sum() == ((g["lp"] >= lo) & (g["lp"] <= hi)).sum() == 19
    assert m1.loc[m1["keep"], "length_bucket"].eq(0).all()


def test_select_band_errors():
    df = _frame()
    with pytest.raises(ValueError, match="low_q < high_q"):
        distill.select_band(df, low_q=0.9, high_q=0.5)
    with pytest.raises(ValueError, match="column 'score'"):
        distill.select_band(df, score_col="score")
    bad = df.copy()
    bad.loc[0, "lp"] = np.nan
    with pytest.raises(ValueError, match="no 'lp' score"):
        distill.select_band(bad)


# ----------------------------------------------------------------------------- collection and figure


def test_collect_keeps_only_verified_distinct_traces(monkeypatch):
    recs = [dict(r) for r in tasks.make("math", 3, seed=0, difficulty=1, mod=7)]
    right, wrong = recs[0]["solutions"][0], "<think>\nguess\n</think>\nThe answer is \\boxed{99}."
    texts = [[right, right, wrong], [wrong, wrong, wrong], [recs[2]["solutions"][0], wrong, "<think>\nno end"]]
    assert [evaluation.grade_one(r, t[0]) for r, t in zip(recs, texts)] == [True, False, True]

    def fake_generate(model, tok, prompts, n, **kw):  # scripted samples, real grading
        assert prompts == [r["prompt"] for r in recs]
        return [{"prompt_index": p, "sample_index": s, "text": texts[p][s], "n_tokens": 10 + s,
                 "truncated": texts[p][s].endswith("no end")} for p in range(len(prompts)) for s in range(n)]

    monkeypatch.setattr(distill, "generate", fake_generate)
    df, rep = distill.collect_verified(None, None, recs, n=3, source="math")
    assert rep == {"n_prompts": 3, "n_samples": 9, "n_correct": 3, "n_distinct": 2, "n_prompts_with_trace": 2}
    assert list(df["id"]) == [recs[0]["id"], recs[2]["id"]] and set(df["source"]) == {"math"}
    assert list(df["completion"]) == [right, recs[2]["solutions"][0]] and list(df["n_tokens"]) == [10, 10]
    out = distill.to_records(df)
    assert out[0] == {"id": recs[0]["id"], "domain": "math", "prompt": recs[0]["prompt"], "solutions": [right]}
    with pytest.raises(ValueError, match="n must be"):
        distill.collect_verified(None, None, recs, n=0)
    with pytest.raises(ValueError, match="need columns"):
        distill.to_records(df.drop(columns=["completion"]))
    empty, rep0 = distill.collect_verified(None, None, [], n=2)
    assert empty.empty and rep0["n_samples"] == 0 and list(empty.columns) == list(df.columns)


def test_collect_truncated_correct_samples_are_dropped(monkeypatch):
    """A sample that reached max_new_tokens is never kept, even when its answer verifies."""
    recs = [dict(r) for r in tasks.make("math", 1, seed=1, difficulty=1)]

    def fake_generate(model, tok, prompts, n, **kw):
        return [{"prompt_index": 0, "sample_index": s, "text": recs[0]["solutions"][0], "n_tokens": 9,
                 "truncated": s == 0} for s in range(n)]

    monkeypatch.setattr(distill, "generate", fake_generate)
    df, rep = distill.collect_verified(None, None, recs, n=2)
    assert rep["n_correct"] == 1 and rep["n_distinct"] == 1 and len(df) == 1


def test_collect_from_a_real_model_runs_the_verifier():
    model, tok = models.load("tiny-25k", seed=0)
    recs = [dict(r) for r in tasks.make("stem", 2, seed=0, difficulty=1)]
    df, rep = distill.collect_verified(model, tok, recs, n=2, max_new_tokens=8)
    assert rep["n_samples"] == 4 and rep["n_correct"] == len(df) == 0  # an untrained model answers nothing
    assert list(df.columns) == ["id", "domain", "prompt", "completion", "n_tokens", "source"]


def test_faithful_metrics_count_verified_and_kept_traces():
    recs = list(tasks.make("math", 6, seed=0, split="test", difficulty=1, mod=7, subdomain="add", shuffle=False))
    # per problem its reference trace (faithful) and the same trace boxing another number (not faithful:
    # the box is not the trace's result, though a verifier reading the box might have accepted it)
    rows = [{"id": r["id"], "domain": "math", "completion": c, "keep": keep}
            for i, r in enumerate(recs)
            for c, keep in ((r["solutions"][0], i < 2),
                            (r["solutions"][0].replace(f"\\boxed{{{r['answer']}}}",
                                                       f"\\boxed{{{(int(r['answer']) + 1) % 7}}}"), True))]
    rows.append({"id": "x", "domain": "code", "completion": "no arithmetic", "keep": True})   # other domain: ignored
    m = distill.faithful_metrics(pd.DataFrame(rows), recs)
    assert m["select/math/faithful_verified"] == 6 / 12 and m["select/math/faithful_kept"] == 2 / 8
    assert (m["select/math/faithful_verified_lo"], m["select/math/faithful_verified_hi"]) == stats.wilson(6, 12)
    assert (m["select/math/faithful_kept_lo"], m["select/math/faithful_kept_hi"]) == stats.wilson(2, 8)
    none_kept = distill.faithful_metrics(pd.DataFrame(rows).assign(keep=False), recs)
    assert none_kept["select/math/faithful_kept"] is None and none_kept["select/math/faithful_kept_hi"] is None
    assert none_kept["select/math/faithful_verified"] == 0.5
    with pytest.raises(ValueError, match="no record among the 5 given"):
        distill.faithful_metrics(pd.DataFrame(rows), recs[1:])


def test_plot_band_marks_every_reason(tmp_path):
    rows = [{"domain": d, "n_tokens": 4 + i, "lp": (i * 7 % 11) / 10} for d in ("math", "code") for i in range(30)]
    mask = distill.band_mask(pd.DataFrame(rows), n_length_buckets=2, min_tokens=8, low_q=0.3, high_q=0.9)
    assert set(mask["reason"]) == set(distill.REASONS) == {"kept", "below_band", "outlier", "short"}
    fig = distill.plot_band(mask, tmp_path / "band")
    assert (tmp_path / "band.png").stat().st_size > 0 and (tmp_path / "band.pdf").exists()
    assert [ax.get_title() for ax in fig.axes] == ["code", "math"]
    with pytest.raises(ValueError, match="band_mask"):
        distill.plot_band(pd.DataFrame(rows))

"""CLR: reliability, parsing, selection by summed reliability, subsampling, and end-to-end runs."""
import pytest

from vtkit import clr


def test_reliability_formula():
    assert clr.clr_reliability([1, 1, 0, 1, 1]) == pytest.approx(0.8 ** 5)
    assert clr.clr_reliability([1, 1, 1]) == 1.0
    assert clr.clr_reliability([1, 1], M=4) == pytest.approx(0.5 ** 4)   # missing claims are 0
    assert clr.clr_reliability([]) == 0.0 and clr.clr_reliability([], M=5) == 0.0
    assert clr.clr_reliability([0, 0, 0]) == 0.0
    with pytest.raises(ValueError, match="claim count"):
        clr.clr_reliability([1, 1, 1], M=2)


def test_parse_claims_is_robust_to_garbage():
    text = ("<think>1. a thought that is not a claim\n2. nor this</think>\n"
            "Here are the claims:\n1. x = 3 because 2x = 6\n  2) the triangle is right-angled\n"
            "**Claim 3:** so the area is \\boxed{6}\n1. a repeated number is ignored\n"
            "7. beyond M is ignored\n4.\n- 4: the answer is 6\nfinal \\boxed{6}")
    assert clr.parse_claims(text, M=5) == ["x = 3 because 2x = 6", "the triangle is right-angled",
                                           "so the area is 6", "the answer is 6"]
    assert clr.parse_claims(text, M=2) == ["x = 3 because 2x = 6", "the triangle is right-angled"]
    assert clr.parse_claims("no list here at all", M=5) == []
    assert clr.parse_claims("", M=5) == [] and clr.parse_claims(None, M=3) == []


@pytest.mark.parametrize("text,v", [
    ("\\boxed{1}", 1), ("\\boxed{0}", 0), ("It holds. VALID", 1), ("INVALID", 0),
    ("valid at first sight, but \\boxed{0}", 0), ("\\boxed{0} ... on reflection \\boxed{1}", 1),
    ("<think>\\boxed{1}</think> the claim is INVALID", 0), ("\\boxed{maybe}", 0), ("", 0),
    ("garbage 123", 0), (None, 0), ("\\boxed{ Valid }", 1),
])
def test_parse_verdict(text, v):
    assert clr.parse_verdict(text) == v


def exact(a, b):
    return a == b


def test_reliable_minority_beats_unreliable_majority():
    answers = ["5", "5", "5", "7"]
    rel = [0.01, 0.02, 0.01, 0.9]
    assert clr.clr_select(answers, rel, equiv=exact) == "7"
    assert clr.majority_select(answers, equiv=exact) == "5"
    # summed reliability, not the maximum: three fairly reliable "5"s beat one very reliable "7"
    assert clr.clr_select(answers, [0.4, 0.4, 0.4, 0.9], equiv=exact) == "5"


def test_selection_ties_none_answers_and_fallback():
    assert clr.clr_select(["3", "4", "4"], [0.0, 0.0, 0.0], equiv=exact) == "4"   # size breaks tie
    assert clr.clr_select(["3", "4"], [0.5, 0.5], equiv=exact) == "3"             # then first seen
    assert clr.clr_select([None, "3", None], [1.0, 0.1, 1.0], equiv=exact) == "3"
    assert clr.clr_select([None, ""], [1.0, 1.0], equiv=exact) is None
    with pytest.raises(ValueError, match="reliabilities"):
        clr.clr_select(["1"], [0.1, 0.2])


def test_equivalence_clustering_with_math_verify():
    labels = clr.cluster(["1/2", "0.5", "\\frac{1}{2}", "3", None, "0.50"])
    assert labels == [0, 0, 0, 1, None, 0]
    # the "1/2" cluster sums 0.3 + 0.3 > 0.5 for the lone "3"
    assert clr.clr_select(["0.5", "3", "1/2"], [0.3, 0.5, 0.3]) == "0.5"
    assert clr.majority_select(["3", "1/2", "0.5"]) == "1/2"


def test_subsamples_deterministic_by_seed():
    a = clr.subsamples(10, 4, R=8, seed=0)
    assert a == clr.subsamples(10, 4, R=8, seed=0)
    assert a != clr.subsamples(10, 4, R=8, seed=1)
    assert all(len(s) == 4 == len(set(s)) and all(0 <= j < 10 for j in s) for s in a)
    assert len({tuple(s) for s in a}) > 1                       # the R draws differ
    assert clr.subsamples(3, 3, R=2, seed=5) == [[0, 1, 2], [0, 1, 2]]
    with pytest.raises(ValueError, match="K=4"):
        clr.subsamples(3, 4, R=1, seed=0)


def traj(tag, ans):
    return f"<think>work {tag}</think>\nso the result is \\boxed{{{ans}}}"


# problem 1: gold 6, majority says 5 (3 of 5) but the two "6" trajectories make valid claims
# problem 2: gold 2, all agree; problem 3: gold 9, one right trajectory among five
PROBLEMS = [{"prompt": "p1", "answer": "6", "meta": '{"question": "Q1"}'},
            {"prompt": "p2", "answer": "2", "meta": "{}"},
            {"prompt": "p3", "answer": "9", "meta": "{}"}]
TRAJ = [[traj("bad-a", 5), traj("good-a", 6), traj("bad-b", 5), traj("good-b", 6), traj("bad-c", 5)],
        [traj(f"good-{i}", 2) for i in range(5)],
        [traj("bad-d", 8), traj("bad-e", 7), traj("good-c", 9), traj("bad-f", 8), traj("bad-g", 7)]]


def scripted_generate(model, tok, prompts, **kw):
    """The model's part, scripted: claims name the trajectory; 'good' claims verify as valid."""
    out = []
    for p in prompts:
        if p.startswith(clr.CLAIM_EXTRACTION_PROMPT[:40]):
            tag = p.split("<think>work ")[1].split("</think>")[0]
            out.append({"text": f"1. step one of {tag}\n2. step two of {tag}\n\\boxed{{0}}"})
        else:
            out.append({"text": "\\boxed{1}" if "of good" in p else "INVALID"})
    return out


def test_run_clr_aggregates_on_identical_subsamples(monkeypatch):
    from vtkit import generate
    monkeypatch.setattr(generate, "generate", scripted_generate)
    out = clr.run_clr(None, None, PROBLEMS, TRAJ, K=[1, 3, 5], M=2, R=6, seed=0, n_boot=200)
    m = out["metrics"]
    # K = all five: no subsampling freedom, so exact values
    assert m["clr@5"] == 1.0                               # the valid minority wins problems 1 and 3
    assert m["majority@5"] == pytest.approx(1 / 3)         # only problem 2
    assert m["mean1@5"] == pytest.approx((2 / 5 + 1 + 1 / 5) / 3)
    # K = 1: every method returns the single answer, so all three agree on every subsample
    assert m["clr@1"] == pytest.approx(m["majority@1"]) == pytest.approx(m["mean1@1"])
    assert m["clr@3"] >= m["majority@3"]
    assert out["items"][0]["question"] == "Q1"
    assert out["items"][0]["reliability"] == [0.0, 1.0, 0.0, 1.0, 0.0]
    assert out["items"][0]["claims"][1] == ["step one of good-a", "step two of good-a"]
    for row in out["per_k"]:
        for name in ("clr", "majority", "mean1"):
            assert row[f"{name}_lo"] <= row[name] <= row[f"{name}_hi"]
    again = clr.run_clr(None, None, PROBLEMS, TRAJ, K=[1, 3, 5], M=2, R=6, seed=0, n_boot=200)
    assert again["metrics"] == m


def test_run_clr_input_errors(monkeypatch):
    from vtkit import generate
    monkeypatch.setattr(generate, "generate", scripted_generate)
    with pytest.raises(ValueError, match="K=6 exceeds"):
        clr.run_clr(None, None, PROBLEMS, TRAJ, K=6)
    with pytest.raises(ValueError, match="golds"):
        clr.run_clr(None, None, ["Q"], [["\\boxed{1}"]], K=1)
    with pytest.raises(ValueError, match="trajectory lists"):
        clr.run_clr(None, None, PROBLEMS, TRAJ[:2], K=1)


def test_run_clr_end_to_end_on_a_tiny_model():
    from vtkit import models
    model, tok = models.load("tiny-100k", seed=0)
    kw = dict(K=[1, 2, 4], M=3, R=4, seed=0, extract_tokens=24, verify_tokens=8, n_boot=100)
    out = clr.run_clr(model, tok, PROBLEMS[:2], [t[:4] for t in TRAJ[:2]], **kw)
    m = out["metrics"]
    assert out["metrics"] == clr.run_clr(model, tok, PROBLEMS[:2], [t[:4] for t in TRAJ[:2]],
                                         **kw)["metrics"]
    assert m["n_problems"] == 2 and [r["K"] for r in out["per_k"]] == [1, 2, 4]
    assert m["mean1@4"] == pytest.approx((2 / 4 + 1) / 2)         # answers come from trajectories
    assert m["majority@4"] == pytest.approx(1 / 2)                # problem 1: a 2-2 tie, "5" first
    if m["mean_reliability"] == 0:      # a random model lists no claims: CLR is majority vote
        assert all(m[f"clr@{k}"] == m[f"majority@{k}"] for k in (1, 2, 4))
    for it in out["items"]:
        assert len(it["claims"]) == 4 and all(len(c) <= 3 for c in it["claims"])
        assert all(0.0 <= r <= 1.0 for r in it["reliability"])
        assert [len(v) for v in it["verdicts"]] == [len(c) for c in it["claims"]]

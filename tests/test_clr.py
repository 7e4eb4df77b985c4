"""CLR: reliability, parsing, selection by summed reliability, subsampling, and end-to-end runs."""
import re

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
    for name in ("clr", "majority", "mean1"):            # per-problem scores average to the metric
        for k in (1, 3, 5):
            vals = [it["scores"][f"{name}@{k}"] for it in out["items"]]
            assert sum(vals) / 3 == pytest.approx(m[f"{name}@{k}"])
    assert [it["scores"]["clr@5"] for it in out["items"]] == [1.0, 1.0, 1.0]
    for row in out["per_k"]:
        for name in ("clr", "majority", "mean1"):
            assert row[f"{name}_lo"] <= row[name] <= row[f"{name}_hi"]
    again = clr.run_clr(None, None, PROBLEMS, TRAJ, K=[1, 3, 5], M=2, R=6, seed=0, n_boot=200)
    assert again["metrics"] == m


def test_run_clr_reads_claims_from_the_trajectory_lines_when_asked(monkeypatch):
    """extract="lines": no extraction prompt reaches the model; each trajectory's claims are its last
    M computation lines; the verdicts are still the model's."""
    from vtkit import generate
    seen = []

    def record(model, tok, prompts, **kw):
        seen.extend(prompts)
        return [{"text": "\\boxed{1}" if "= 6." in p else "\\boxed{0}"} for p in prompts]
    monkeypatch.setattr(generate, "generate", record)
    def trace(a, b):
        return f"<think>\nx = a + b = {a} + {b} = {a + b}.\ny = x * 1 = {a + b} * 1 = {a + b}.\n</think>\n\\boxed{{{a + b}}}"
    problems = [{"prompt": "p", "answer": "6", "meta": "{}"}]
    trajs = [[trace(2, 3), trace(2, 4), trace(1, 4)]]      # answers 5, 6, 5: majority says 5
    out = clr.run_clr(None, None, problems, trajs, K=[3], M=2, R=1, seed=0, n_boot=10,
                      verify_prompt="claim", extract="lines")
    assert not any(p.startswith(clr.CLAIM_EXTRACTION_PROMPT[:40]) for p in seen)
    assert out["items"][0]["claims"][1] == ["x = a + b = 2 + 4 = 6.", "y = x * 1 = 6 * 1 = 6."]
    assert out["items"][0]["verdicts"] == [[0, 0], [1, 1], [0, 0]]
    assert out["metrics"]["clr@3"] == 1.0 and out["metrics"]["majority@3"] == 0.0
    assert clr.diagnostics(out["items"], trajs, 2)["claims_exact"] == 1.0
    with pytest.raises(ValueError, match="extract"):
        clr.run_clr(None, None, problems, trajs, K=[3], extract="copy")
    with pytest.raises(ValueError, match="answer_from"):
        clr.run_clr(None, None, problems, trajs, K=[3], extract="lines", answer_from="extraction")


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


# ------------------------------------------------------------- teaching the two skills (SFT data)

LINE = "Ann's coins = Dan's coins - Fay's coins = 12 - 14 = -2 mod 23 = 21."
TRACE = ("<think>\nBob's coins = Fay's coins + Eve's coins = 14 + 0 = 14.\n" + LINE + "\n"
         "Fay's apples = Bob's coins * Ann's coins = 14 * 21 = 294 mod 23 = 18.\n</think>\n"
         "The answer is \\boxed{18}.")


def numbers(s):
    import re
    return re.findall(r"\d+", s)


def test_computation_lines_and_expected_claims():
    lines = clr.computation_lines(TRACE)
    assert lines[1] == LINE and len(lines) == 3
    assert clr.expected_claims(TRACE, 2) == lines[1:] and clr.expected_claims(TRACE, 9) == lines
    # prose without a computed number after '=' is not a claim; no think block: the whole text
    assert clr.computation_lines("<think>\nLet x = the eggs.\nx = 3 + 4 = 7\n</think>\\boxed{7}") \
        == ["x = 3 + 4 = 7"]
    assert clr.computation_lines("Cold water mile = 21 minutes\nso") == ["Cold water mile = 21 minutes"]
    assert clr.computation_lines("") == [] and clr.computation_lines(None) == []


def test_diagnostics_separate_right_and_wrong_trajectories():
    lines = clr.computation_lines(TRACE)
    items = [{"verdicts": [[1, 1], [1, 0], [0, 0]], "reliability": [1.0, 0.25, 0.0], "correct": [True, False, False],
              "claims": [lines[-2:], lines[:2], ["x"]]}]
    d = clr.diagnostics(items, [[TRACE, TRACE, "no computation here"]], M=2)
    assert d["valid_rate_correct_traj"] == 1.0 and d["valid_rate_wrong_traj"] == 0.25
    assert d["reliability_correct_traj"] == 1.0 and d["reliability_wrong_traj"] == 0.125
    assert d["claims_exact"] == 0.5          # the two trajectories with lines: one exact, one not
    assert d["arithmetic_right_correct_traj"] == 1.0 and d["arithmetic_right_wrong_traj"] == 1.0
    assert d["verifier_agrees_own"] == 0.75  # 4 true lines judged 1, 1, 1, 0; "x" is not arithmetic
    bad = LINE.replace("= 21.", "= 20.")
    wrong = [{"verdicts": [[1], [0], [1]], "reliability": [1.0, 0.0, 1.0], "correct": [True, False, False],
              "claims": [[LINE], [bad], [LINE]]}]
    w = clr.diagnostics(wrong, [[TRACE] * 3], M=1, mod=23)
    assert w["arithmetic_right_correct_traj"] == 1.0 and w["arithmetic_right_wrong_traj"] == 0.5
    assert w["verifier_agrees_own"] == 1.0
    empty = clr.diagnostics([{"verdicts": [], "reliability": [], "correct": [], "claims": []}], [[]], M=2)
    assert all(v != v for v in empty.values())   # NaN where nothing applies


def test_corrupt_claim_changes_exactly_one_number_never_the_modulus():
    import random
    rng = random.Random(0)
    for kind in ("result", "step"):
        for _ in range(50):
            bad = clr.corrupt_claim(LINE, rng, kind=kind, mod=23)
            old, new = numbers(LINE), numbers(bad)
            diff = [i for i, (a, b) in enumerate(zip(old, new)) if a != b]
            assert len(old) == len(new) and len(diff) == 1, bad
            assert bad.startswith("Ann's coins = Dan's coins - Fay's coins = ")
            assert "mod 23" in bad                                       # the modulus is kept
            if kind == "result":
                assert diff == [len(old) - 1] and 0 <= int(new[-1]) < 23   # a wrong value mod 23
            else:
                assert diff[0] in (0, 1, 2)                  # 12, 14 or the raw 2 (before mod)
    # decimals keep their form; without mod, any other non-negative number
    assert clr.corrupt_claim("took 225.0-105=120.0 min", random.Random(1)).endswith(".0 min")
    assert clr.corrupt_claim("took 225.0-105=120.0 min", random.Random(1)) != "took 225.0-105=120.0 min"
    with pytest.raises(ValueError, match="no number after"):
        clr.corrupt_claim("x = y", random.Random(0))
    with pytest.raises(ValueError, match="kind"):
        clr.corrupt_claim(LINE, random.Random(0), kind="operand")


def test_extraction_target_round_trips_through_the_parsers():
    target = clr.extraction_target(TRACE, M=2)
    assert target.splitlines()[0] == "1. " + LINE
    assert clr.parse_claims(target, 2) == clr.expected_claims(TRACE, 2)
    from vtkit.verify import extract_answer
    assert extract_answer(target) == "18"
    assert clr.parse_verdict(clr.verification_target(1, LINE)) == 1
    assert clr.parse_verdict(clr.verification_target(0, LINE)) == 0
    assert clr.verification_target(0) == "\\boxed{0}"


def math_records(n=6, difficulty=2, split="train", seed=0):
    from vtkit import tasks
    return list(tasks.make("math", n, seed=seed, difficulty=difficulty, split=split))


def test_training_conversations_teach_both_skills_with_true_labels():
    from vtkit import verify
    from vtkit.tasks.math import apply
    recs = math_records()
    ds = clr.training_conversations(recs, seed=0, M=3, solve_per_record=1, corrupt_fraction=0.5)
    kinds = ds["kind"]
    assert kinds.count("extract") == 6 and kinds.count("solve") == 6 and kinds.count("verify") == 12
    assert ds.filter(lambda r: r["kind"] == "verify")["label"].count(1) == 6   # balanced classes
    by_id = {r["id"]: r for r in recs}
    for row in ds:
        user, reply = row["messages"][0]["content"], row["messages"][1]["content"]
        rec = by_id[row["id"]]
        assert row["messages"][0]["role"] == "user" and row["messages"][1]["role"] == "assistant"
        if row["kind"] == "verify":
            assert user.startswith(clr.CLAIM_VERIFICATION_PROMPT[:40])
            claim = user.split("Claim:\n")[1].split("\n")[0]
            assert row["claim"] == claim                              # the taught claim, kept apart
            assert clr.parse_verdict(reply) == row["label"]
            # the label is the truth: recompute the claim's arithmetic from the problem's graph
            import json
            meta = json.loads(rec["meta"])
            nodes = {nd["name"]: nd for nd in meta["nodes"]}
            target = nodes[claim.split(" = ")[0]]
            a, b = (meta["nodes"][j] for j in target["args"])
            raw = apply(target["op"], a["value"], b["value"])
            truth = f"{target['name']} = {a['name']} {target['op']} {b['name']} = {a['value']} " \
                    f"{target['op']} {b['value']} = {raw}"
            truth += f" mod 23 = {raw % 23}." if raw != raw % 23 else "."
            assert (claim == truth) == bool(row["label"]), (claim, truth, row["label"])
            # the recomputation: the claim's own operands, each stated number against the truth
            nums = [int(x) for x in re.findall(r"-?\d+", claim.split(" = ", 2)[2])]
            x, y = (nums[1], nums[0]) if target["op"] in "+*" else (nums[0], nums[1])   # swapped
            think = reply.split("<think>\n")[1].split("\n</think>")[0].splitlines()
            raw = apply(target["op"], x, y)
            assert think[0] == f"{x} {target['op']} {y} = {raw} vs {nums[2]}: " + \
                ("yes" if raw == nums[2] else "no")
            if "mod" in claim:
                assert think[1] == f"{raw} mod 23 = {raw % 23} vs {nums[-1]}: " + \
                    ("yes" if raw % 23 == nums[-1] else "no")
            assert all(t.endswith("yes") for t in think) == bool(row["label"])   # checkable
        elif row["kind"] == "extract":
            assert user.startswith(clr.CLAIM_EXTRACTION_PROMPT[:40])
            traj = user.split("Attempted solution:\n")[1].split("\n\nWrite the claims")[0]
            assert clr.parse_claims(reply, 3) == clr.expected_claims(traj, 3)
            assert verify.extract_answer(reply) == verify.extract_answer(traj)   # copied, even if wrong
        else:
            assert user == rec["prompt"] and reply in rec["solutions"]
        if row["kind"] != "verify":
            assert row["claim"] == ""
    # deterministic by seed; another seed shuffles and corrupts differently
    assert ds["messages"] == clr.training_conversations(recs, seed=0, M=3, solve_per_record=1,
                                                         corrupt_fraction=0.5)["messages"]
    assert ds["messages"] != clr.training_conversations(recs, seed=1, M=3, solve_per_record=1,
                                                         corrupt_fraction=0.5)["messages"]
    # the other recomputations: the correct line (not knowable from the claim), or none
    ref = clr.training_conversations(recs, seed=0, M=3, recompute="reference")
    none = clr.training_conversations(recs, seed=0, M=3, recompute=None)
    for a, b in zip(ref.filter(lambda r: r["kind"] == "verify"), none.filter(lambda r: r["kind"] == "verify")):
        claim = a["messages"][0]["content"].split("Claim:\n")[1].split("\n")[0]
        think = a["messages"][1]["content"].split("<think>\n")[1].split("\n</think>")[0]
        assert (think == claim) == bool(a["label"]) and b["messages"][1]["content"] == "\\boxed{%d}" % b["label"]


def test_training_conversations_corrupt_extraction_copies_the_wrong_answer():
    from vtkit import verify
    recs = math_records(n=30, difficulty=1)
    ds = clr.training_conversations(recs, seed=0, M=3, verify_per_record=0, corrupt_fraction=1.0)
    wrong = 0
    for row, rec in zip(sorted(ds, key=lambda r: r["id"]), sorted(recs, key=lambda r: r["id"])):
        ans = verify.extract_answer(row["messages"][1]["content"])
        wrong += ans != rec["answer"]
    assert wrong == 30     # difficulty 1: the one line is the result, so every answer changed


def test_training_conversations_and_verification_input_errors():
    recs = math_records(n=2)
    with pytest.raises(ValueError, match="computation lines"):
        clr.training_conversations([{**recs[0], "solutions": ["<think>no steps</think>\\boxed{1}"]}])
    with pytest.raises(ValueError, match="M must be"):
        clr.training_conversations(recs, M=0)
    with pytest.raises(ValueError, match="probabilities"):
        clr.training_conversations(recs, corrupt_fraction=1.5)
    with pytest.raises(ValueError, match="recompute"):
        clr.training_conversations(recs, recompute=True)
    with pytest.raises(ValueError, match="no labelled claims"):
        clr.verifier_accuracy(None, None, [])


def test_verifier_accuracy_scores_verdicts(monkeypatch):
    from vtkit import generate
    ex = clr.verification_examples(math_records(n=5), seed=0)
    assert [e["label"] for e in ex] == [1, 0] * 5
    assert all((e["claim"] == e["reference"]) == bool(e["label"]) for e in ex)

    def says_valid_when_digit_sum_even(model, tok, prompts, **kw):   # an imperfect scripted judge
        return [{"text": "\\boxed{%d}" % (sum(map(int, numbers(p.split("Claim:\n")[1].split("\n")[0]))) % 2 == 0)}
                for p in prompts]
    monkeypatch.setattr(generate, "generate", says_valid_when_digit_sum_even)
    got = clr.verifier_accuracy(None, None, ex)
    pred = [int(sum(map(int, numbers(e["claim"]))) % 2 == 0) for e in ex]
    k = sum(p == e["label"] for p, e in zip(pred, ex))
    assert got["verifier_acc"] == pytest.approx(k / 10)
    assert (got["verifier_acc_lo"], got["verifier_acc_hi"]) == pytest.approx(clr.wilson_interval(k, 10))
    assert got["verifier_acc_lo"] < got["verifier_acc"] < got["verifier_acc_hi"] or k in (0, 10)
    assert got["verifier_recall_valid"] == pytest.approx(
        sum(p == 1 for p, e in zip(pred, ex) if e["label"] == 1) / 5)
    assert got["verifier_recall_invalid"] == pytest.approx(
        sum(p == 0 for p, e in zip(pred, ex) if e["label"] == 0) / 5)
    assert got["verifier_unreadable"] == 0 and got["verifier_n"] == 10 and "replies" not in got
    assert "verifier_acc_novel" not in got                     # no teaching claims given
    split = clr.verifier_accuracy(None, None, ex, teaching=ex[:4])
    assert {k: split[k] for k in got} == got                   # the same keys, plus the split
    assert split["verifier_n_seen"] >= 4 and split["verifier_n_seen"] + split["verifier_n_novel"] == 10
    assert split == {**got, **clr.seen_novel_accuracy(ex, pred, ex[:4])}
    monkeypatch.setattr(generate, "generate", lambda m, t, prompts, **kw: [{"text": "hmm"}] * len(prompts))
    got = clr.verifier_accuracy(None, None, ex, return_replies=True)
    assert got["verifier_unreadable"] == 1 and got["verifier_acc"] == 0.5   # unreadable = invalid
    assert got["verifier_recall_invalid"] == 1 and got["verifier_recall_valid"] == 0
    assert got["replies"] == ["hmm"] * 10


def test_arithmetic_key_strips_names():
    assert clr.arithmetic_key("Dan's cups = Fay's eggs * Gus's coins = 2 * 6 = 12 mod 7 = 5.") == "2 * 6 = 12 mod 7 = 5"
    assert clr.arithmetic_key("Eve's pens = Bob's cups * Al's hats = 2 * 6 = 12 mod 7 = 5.") == "2 * 6 = 12 mod 7 = 5"
    assert clr.arithmetic_key("x = a + b = 3 + 5 = 8.") == "3 + 5 = 8"
    assert clr.arithmetic_key("x = b + a = 5 + 3 = 8.") == "5 + 3 = 8"        # the claim's order: another string
    assert clr.arithmetic_key("the triangle is right-angled") is None
    assert clr.arithmetic_key(LINE) == "12 - 14 = -2 mod 23 = 21"


def test_seen_novel_accuracy_and_the_lookup_baseline():
    taught = [{"claim": "A = B + C = 3 + 4 = 7 mod 7 = 0.", "label": 1},
              {"claim": "D = E * F = 2 * 6 = 13 mod 7 = 6.", "label": 0},
              {"claim": "G = H + I = 1 + 1 = 3.", "label": 0},       # taught twice invalid, once valid
              {"claim": "J = K + L = 1 + 1 = 3.", "label": 0},
              {"claim": "M = N + O = 1 + 1 = 3.", "label": 1},
              {"claim": "P = Q + R = 2 + 2 = 5.", "label": 0},       # a tie: the table says valid
              {"claim": "S = T + U = 2 + 2 = 5.", "label": 1},
              {"claim": "no arithmetic here", "label": 1}]
    assert clr.arithmetic_lookup(taught) == {"3 + 4 = 7 mod 7 = 0": 1, "2 * 6 = 13 mod 7 = 6": 0,
                                             "1 + 1 = 3": 0, "2 + 2 = 5": 1}
    held = [("x = y + z = 3 + 4 = 7 mod 7 = 0.", 1, 1),     # seen, table right, verdict right
            ("x = y * z = 2 * 6 = 13 mod 7 = 6.", 0, 1),    # seen, table right, verdict wrong
            ("x = y + z = 1 + 1 = 3.", 0, 0),               # seen, table right, verdict right
            ("x = y + z = 2 + 2 = 5.", 0, 0),               # seen, table wrong (tie: valid), verdict right
            ("x = y * z = 6 * 2 = 13 mod 7 = 6.", 0, 0),    # novel (operands swapped), table guesses valid
            ("x = y + z = 4 + 3 = 7 mod 7 = 0.", 1, 0),     # novel, table right, verdict wrong
            ("x = y + z = 5 + 5 = 10 mod 7 = 3.", 1, 1),    # novel, table right, verdict right
            ("no arithmetic here", 1, 0)]                    # no arithmetic: novel, table right, verdict wrong
    ex = [{"claim": c, "label": y} for c, y, _ in held]
    got = clr.seen_novel_accuracy(ex, [v for _, _, v in held], taught)
    assert (got["verifier_n_seen"], got["verifier_n_novel"]) == (4, 4)
    assert (got["verifier_n_seen_valid"], got["verifier_n_novel_valid"]) == (1, 3)
    assert got["verifier_acc_seen"] == 3 / 4 and got["verifier_acc_novel"] == 2 / 4
    assert got["verifier_lookup_acc"] == 6 / 8
    assert (got["verifier_acc_novel_lo"], got["verifier_acc_novel_hi"]) == clr.wilson_interval(2, 4)
    assert (got["verifier_acc_seen_lo"], got["verifier_acc_seen_hi"]) == clr.wilson_interval(3, 4)
    assert (got["verifier_lookup_acc_lo"], got["verifier_lookup_acc_hi"]) == clr.wilson_interval(6, 8)
    untaught = clr.seen_novel_accuracy(ex, [v for _, _, v in held], [])   # nothing taught: all new
    assert untaught["verifier_n_seen"] == 0 and untaught["verifier_acc_seen"] != untaught["verifier_acc_seen"]
    assert untaught["verifier_acc_novel"] == 5 / 8 and untaught["verifier_lookup_acc"] == 4 / 8
    with pytest.raises(ValueError, match="verdicts"):
        clr.seen_novel_accuracy(ex, [1], taught)


def test_held_out_claims_of_a_small_task_mostly_repeat_taught_arithmetic():
    """mod-7 difficulty-1 claims, taught as the tiny preset does (1000 records x 4): few distinct
    strings, so most held-out ones were taught, with the same label (the label is a function of
    the string: a lookup table is right on every seen claim)."""
    from vtkit import tasks
    kw = dict(difficulty=1, mod=7, subdomain=["add", "mul"])
    taught = clr.verification_examples(tasks.make("math", 1000, seed=4, split="train", **kw), seed=0, per_record=4)
    held = clr.verification_examples(tasks.make("math", 40, seed=2, split="validation", **kw), seed=2)
    table = clr.arithmetic_lookup(taught)
    got = clr.seen_novel_accuracy(held, [table.get(clr.arithmetic_key(e["claim"]), 1) for e in held], taught)
    assert got["verifier_n_seen"] + got["verifier_n_novel"] == len(held) == 80
    assert got["verifier_n_seen"] >= 0.85 * 80 and got["verifier_n_novel"] > 0
    assert got["verifier_acc_seen"] == 1.0 and got["verifier_lookup_acc"] > 0.9


def test_wilson_interval():
    lo, hi = clr.wilson_interval(85, 100)
    assert lo == pytest.approx(0.767, abs=1e-3) and hi == pytest.approx(0.907, abs=1e-3)
    assert clr.wilson_interval(0, 20)[0] == 0 and clr.wilson_interval(20, 20)[1] == pytest.approx(1)
    for n in (20, 100, 200):     # exactly 1 at k = n: a recall of 1.0 lies inside its own interval
        assert clr.wilson_interval(n, n)[1] == 1.0 and clr.wilson_interval(0, n)[0] == 0.0
    assert clr.wilson_interval(10, 20)[0] == pytest.approx(1 - clr.wilson_interval(10, 20)[1])
    assert all(v != v for v in clr.wilson_interval(0, 0))


@pytest.mark.parametrize("claim,mod,think,v", [
    ("Dan's cups = Fay's eggs * Gus's coins = 2 * 6 = 12 mod 7 = 5.", 7,
     "6 * 2 = 12 vs 12: yes\n12 mod 7 = 5 vs 5: yes", 1),
    ("Dan's cups = Fay's eggs * Gus's coins = 2 * 6 = 13 mod 7 = 5.", 7,
     "6 * 2 = 12 vs 13: no\n12 mod 7 = 5 vs 5: yes", 0),
    ("Dan's cups = Fay's eggs * Gus's coins = 2 * 5 = 12 mod 7 = 5.", None,       # a wrong operand
     "5 * 2 = 10 vs 12: no\n10 mod 7 = 3 vs 5: no", 0),
    ("Gus's eggs = Dan's cups + Eve's apples = 0 + 6 = 6.", 7, "6 + 0 = 6 vs 6: yes", 1),
    ("x = a + b = 3 + 5 = 8.", 7, "5 + 3 = 8 vs 8: yes\n8 mod 7 = 1 vs 8: no", 0),  # unreduced
    ("x = a + b = 3 + 5 = 8.", None, "5 + 3 = 8 vs 8: yes", 1),             # no modulus known
    (LINE, None, "12 - 14 = -2 vs -2: yes\n-2 mod 23 = 21 vs 21: yes", 1),
])
def test_recompute_claim_checks_the_claims_own_arithmetic(claim, mod, think, v):
    assert clr.recompute_claim(claim, mod) == (think, v)
    plain = clr.recompute_claim(claim, mod, swap=False)        # operands in the claim's order
    assert plain[1] == v and plain[0].splitlines()[1:] == think.splitlines()[1:]
    assert plain[0].split(" = ")[0] == claim.split(" = ")[-2 if "mod" not in claim else -3]
    assert clr.parse_verdict(clr.verification_target(v, think)) == v


def test_recompute_claim_needs_arithmetic():
    assert clr.recompute_claim("the triangle is right-angled", 7) is None
    assert clr.recompute_claim("Cold water mile = 21 minutes", 7) is None
    assert clr.parse_arithmetic("y = 4 * 3 = 12 mod 7 = 5.") == {"a": 4, "op": "*", "b": 3, "raw": 12,
                                                                  "mod": 7, "result": 5}


def test_verification_examples_are_checkable_and_balanced():
    from vtkit import tasks
    recs = list(tasks.make("math", 60, seed=3, difficulty=(1, 2), split="validation",
                           mod=7, subdomain=["add", "mul"]))
    ex = clr.verification_examples(recs, seed=2, per_record=4)
    assert len(ex) == 240 and sum(e["label"] for e in ex) == 120
    for e in ex:
        nums = [int(x) for x in re.findall(r"\d+", e["claim"].split(" = ", 2)[2])]
        a, op, b = nums[0], e["claim"].split(" = ", 2)[2].split()[1], nums[1]
        raw = a + b if op == "+" else a * b
        right = nums[2] == raw and (nums[-1] == raw % 7 if len(nums) > 3 else raw < 7)
        assert right == bool(e["label"]), e            # invalid claims: wrong arithmetic, always
    # without the check some corruptions keep the arithmetic right (0 * 4 = 0 -> 0 * 6 = 0)
    loose = clr.verification_examples(recs, seed=2, per_record=4, checkable=False)
    assert any(e["label"] == 0 and clr.recompute_claim(e["claim"], 7)[1] == 1 for e in loose)


def test_claim_only_verification_prompt(monkeypatch):
    from vtkit import generate
    seen = []

    def record(model, tok, prompts, **kw):
        seen.extend(p for p in prompts if not p.startswith(clr.CLAIM_EXTRACTION_PROMPT[:40]))
        return scripted_generate(model, tok, prompts, **kw)
    monkeypatch.setattr(generate, "generate", record)
    out = clr.run_clr(None, None, PROBLEMS, TRAJ, K=[5], M=2, R=1, seed=0, n_boot=10, verify_prompt="claim")
    assert out["metrics"]["clr@5"] == 1.0                  # the same verdicts, so the same choice
    assert seen and all(p.startswith("Is this claim correct?") and "Q1" not in p for p in seen)
    assert seen[2] == clr.CLAIM_CHECK_PROMPT.format(claim="step one of good-a")
    ds = clr.training_conversations(math_records(n=3), M=2, verify_prompt="claim")
    for row in ds.filter(lambda r: r["kind"] == "verify"):
        user = row["messages"][0]["content"]
        assert user.startswith("Is this claim correct?") and "Work mod" not in user
    assert clr.verify_prompt_template("Is {claim} right?") == "Is {claim} right?"
    with pytest.raises(ValueError, match="verify_prompt"):
        clr.verify_prompt_template("nonsense")


def test_training_conversations_draw_verification_from_other_records():
    recs, more = math_records(n=3), math_records(n=20, seed=5)
    ds = clr.training_conversations(recs, M=2, verify_per_record=4, verify_records=more)
    verify = ds.filter(lambda r: r["kind"] == "verify")
    assert len(verify) == 80 and set(verify["id"]) <= {r["id"] for r in more}
    assert sum(verify["label"]) == 40
    assert {r["id"] for r in ds.filter(lambda r: r["kind"] == "extract")} == {r["id"] for r in recs}

"""Claim-Level Reliability (CLR): test-time selection among K sampled answers, as in the 3B report.

    from vtkit import clr
    out = clr.run_clr(model, tok, problems, trajectories, K=[2, 4, 8], M=5, R=8, seed=0)
    out["metrics"]     # {"clr@8": ..., "clr@8_lo": ..., "majority@8": ..., "mean1@8": ..., ...}

Per problem and trajectory, the model itself (through `vtkit.generate`)
1. reads the trajectory and lists M decision-relevant claims (`CLAIM_EXTRACTION_PROMPT`);
2. judges each claim against the problem: a binary verdict v_m (`CLAIM_VERIFICATION_PROMPT`);
then reliability r_k = ((1/M) sum_m v_km) ** M (`clr_reliability`), answers are clustered by
equivalence and the cluster with the largest summed reliability wins (`clr_select`). Claims and
verdicts are computed once per trajectory; then R times, K of the trajectories are subsampled
(without replacement, seeded), and CLR, majority vote (cons@K) and mean@1 are scored on the very
same subsample, so the three differ only in how they pick an answer.

Teaching the skills to a small model (`training_conversations`, `verification_examples`,
`verifier_accuracy`; see the section near the end): SFT data for extraction and verification built
from task records' reference traces, for models too small to follow the prompts zero-shot. The
report teaches nothing; the CLR stage (`vtkit.stages.clr`, notebooks/06_clr.ipynb) uses this at the
tiny preset and says so.
`seen_novel_accuracy` splits held-out claims by whether their arithmetic string (`arithmetic_key`,
names stripped) was among the teaching claims: most held-out claims of a small task repeat a taught
string with the same label, so a lookup table (`verifier_lookup_acc`) scores about as well as the
verifier there; `verifier_acc_novel` is the accuracy on arithmetic it was never shown.

Choices where the report is silent (it publishes no prompts, and no decoding settings for CLR):
- The prompts below are ours. Extraction asks for numbered claims "1." .. "M." and the final
  answer in \\boxed{}; verification asks for \\boxed{1} (valid) or \\boxed{0} (invalid), and the
  words VALID/INVALID are accepted too.
- Parsing is robust to garbage: claims are numbered lines (1. / 1) / 1: / Claim 1:), taken after
  `</think>` when the model thinks, first occurrence of each number, at most M. A claim the model
  did not produce, and a verdict that cannot be parsed, count as unverified (v = 0). So a model
  that writes nothing useful gets reliability 0 for every trajectory, and CLR falls back to its
  tie-break, which is majority vote.
- The answer of a trajectory is its own graded answer (`vtkit.verify.extract_answer`, the last
  \\boxed{} after `</think>`), the same one mean@1 and majority vote use (`answer_from="trajectory"`);
  `answer_from="extraction"` uses the answer the extraction step reports instead.
- `extract="lines"` skips step 1: the claims are the trajectory's last M computation lines
  (`expected_claims`, the lines extraction is taught to list), for models that cannot copy them
  faithfully (a tiny-400k taught on 800 extractions invents names and numbers instead; docs/LOG.md).
- Claims and verdicts are decoded greedily (temperature 0): the verifier should be a fixed
  function of the claim. Both are parameters.
- Clustering: answers are grouped greedily in order, each joining the first cluster whose first
  member is equivalent to it (`equiv(first, answer)`, gold-first like math-verify). In `run_clr`
  the clusters are formed once over all of a problem's trajectories, and subsamples reuse them.
- Ties in summed reliability go to the larger cluster, then to the cluster seen first; majority
  vote breaks ties by first appearance. None answers (nothing extracted) are never selected.
"""
from __future__ import annotations

import json
import random
import re
from typing import Callable, Sequence

import datasets

from vtkit import generate as gen
from vtkit import metrics as vm
from vtkit.verify import extract_answer, is_equivalent

CLAIM_EXTRACTION_PROMPT = (
    "Below is a problem and one attempted solution. List exactly {M} claims from the attempt that "
    "its final answer depends on: intermediate results, formulas applied, case distinctions, and "
    "conclusions drawn. Each claim must be a single self-contained statement that can be checked "
    "on its own against the problem.\n\n"
    "Problem:\n{problem}\n\nAttempted solution:\n{trajectory}\n\n"
    "Write the claims as a numbered list, one per line, \"1.\" to \"{M}.\". Then give the "
    "attempt's final answer within \\boxed{{}}.")
CLAIM_VERIFICATION_PROMPT = (
    "Below is a problem and one claim made while solving it. Check carefully whether the claim is "
    "correct as a statement about this problem.\n\n"
    "Problem:\n{problem}\n\nClaim:\n{claim}\n\n"
    "If the claim is correct, answer \\boxed{{1}} (VALID); if it is wrong or unjustified, answer "
    "\\boxed{{0}} (INVALID).")
CLAIM_CHECK_PROMPT = (   # short: a tiny verifier is taught on thousands of these
    "Is this claim correct?\n{claim}\nAnswer \\boxed{{1}} (yes) or \\boxed{{0}} (no).")
VERIFY_PROMPTS = {"problem": CLAIM_VERIFICATION_PROMPT, "claim": CLAIM_CHECK_PROMPT}

_CLAIM_LINE = re.compile(r"^\s*(?:[-*]\s*)?(?:\*\*)?(?:claim\s*)?(\d{1,3})\s*(?:\*\*)?[.):\]]\s*"
                         r"(?:\*\*)?\s*(.+?)\s*$", re.IGNORECASE)
_BOXED = re.compile(r"\\boxed\{\s*([^{}]*?)\s*\}")
_VALID_WORDS = {"1": 1, "valid": 1, "true": 1, "yes": 1, "correct": 1,
                "0": 0, "invalid": 0, "false": 0, "no": 0, "incorrect": 0}


def verify_prompt_template(verify_prompt: str) -> str:
    """A verification prompt by name ("problem": the claim with its problem, the default; "claim":
    the claim alone, `CLAIM_CHECK_PROMPT`, for claims that carry everything needed to check them)
    or a template of its own with a {claim} field (and optionally {problem})."""
    if verify_prompt in VERIFY_PROMPTS:
        return VERIFY_PROMPTS[verify_prompt]
    if "{claim}" not in verify_prompt:
        raise ValueError(f"verify_prompt must be one of {sorted(VERIFY_PROMPTS)} or a template with "
                         f"a {{claim}} field, got {verify_prompt!r}")
    return verify_prompt


def _answer_part(text: str) -> str:
    return (text or "").rsplit("</think>", 1)[-1]


def parse_claims(text: str | None, M: int) -> list[str]:
    """Numbered claims 1..M from an extraction reply (fewer when the model wrote fewer)."""
    found: dict[int, str] = {}
    for line in _answer_part(text).splitlines():
        m = _CLAIM_LINE.match(line)
        if m and 1 <= int(m[1]) <= M and int(m[1]) not in found:
            claim = _BOXED.sub(lambda b: b[1], m[2]).strip()
            if claim:
                found[int(m[1])] = claim
    return [found[k] for k in sorted(found)]


def parse_verdict(text: str | None) -> int:
    """1 for a valid claim, 0 for invalid or no readable verdict (the last \\boxed{}, else the
    last VALID/INVALID word)."""
    tail = _answer_part(text)
    for b in reversed(_BOXED.findall(tail)):
        v = _VALID_WORDS.get(b.strip().lower())
        if v is not None:
            return v
    words = re.findall(r"\b(INVALID|VALID)\b", tail, re.IGNORECASE)
    return int(words[-1].upper() == "VALID") if words else 0


def clr_reliability(verdicts: Sequence[int], M: int | None = None) -> float:
    """r = (mean of verdicts) ** M; with M > len(verdicts) the missing claims count as 0."""
    verdicts = [int(bool(v)) for v in verdicts]
    M = len(verdicts) if M is None else M
    if M < len(verdicts):
        raise ValueError(f"M={M} but {len(verdicts)} verdicts were given; M is the claim count")
    if M == 0:
        return 0.0
    return (sum(verdicts) / M) ** M


def _equiv_default():
    return is_equivalent


def cluster(answers: Sequence[str | None], equiv: Callable | None = None) -> list[int | None]:
    """Cluster label per answer (None for None); labels number clusters by first appearance."""
    equiv = equiv or _equiv_default()
    reps: list[str] = []
    labels: list[int | None] = []
    memo: dict[str, int] = {}
    for a in answers:
        if a is None or not str(a).strip():
            labels.append(None)
            continue
        a = str(a).strip()
        if a not in memo:
            memo[a] = next((j for j, r in enumerate(reps) if r == a or equiv(r, a)), len(reps))
            if memo[a] == len(reps):
                reps.append(a)
        labels.append(memo[a])
    return labels


def _pick(labels, weights, by_weight: bool) -> int | None:
    """Winning label: max (summed weight, size, -first index) or max (size, -first index)."""
    stats: dict[int, list] = {}
    for i, (lab, w) in enumerate(zip(labels, weights)):
        if lab is None:
            continue
        s = stats.setdefault(lab, [0.0, 0, -i])
        s[0] += w
        s[1] += 1
    if not stats:
        return None
    key = (lambda k: tuple(stats[k])) if by_weight else (lambda k: tuple(stats[k][1:]))
    return max(stats, key=key)


def clr_select(answers: Sequence[str | None], reliabilities: Sequence[float],
               equiv: Callable | None = None) -> str | None:
    """The answer (its cluster's first member) whose cluster has the largest summed reliability."""
    if len(answers) != len(reliabilities):
        raise ValueError(f"{len(answers)} answers but {len(reliabilities)} reliabilities")
    labels = cluster(answers, equiv)
    win = _pick(labels, list(reliabilities), by_weight=True)
    return None if win is None else str(answers[labels.index(win)]).strip()


def majority_select(answers: Sequence[str | None], equiv: Callable | None = None) -> str | None:
    """Majority vote over equivalence clusters (ties: first seen)."""
    labels = cluster(answers, equiv)
    win = _pick(labels, [0.0] * len(labels), by_weight=False)
    return None if win is None else str(answers[labels.index(win)]).strip()


def subsamples(n_available: int, K: int, R: int, seed: int) -> list[list[int]]:
    """R seeded subsets of K indices out of n_available (without replacement within a subset)."""
    if not 1 <= K <= n_available:
        raise ValueError(f"K={K} must be between 1 and the {n_available} trajectories available")
    rng = random.Random(f"clr-{seed}-{n_available}-{K}")
    return [sorted(rng.sample(range(n_available), K)) for _ in range(R)]


def _text(t) -> str:
    return t["text"] if isinstance(t, dict) else str(t)


def _problem_text(p) -> str:
    if isinstance(p, str):
        return p
    meta = p.get("meta") or "{}"
    meta = json.loads(meta) if isinstance(meta, str) else meta
    return meta.get("question") or p["prompt"]


def _clip(text: str, max_chars: int | None) -> str:
    """Keep the end of a long trajectory (its conclusions), marking the cut."""
    if max_chars is None or len(text) <= max_chars:
        return text
    return "[...]\n" + text[-max_chars:]


def run_clr(model, tokenizer, problems, trajectories, K, M: int = 5, R: int = 8, seed: int = 0, *,
            golds: Sequence[str] | None = None, equiv: Callable | None = None,
            answer_from: str = "trajectory", temperature: float = 0.0,
            extract_tokens: int = 1024, verify_tokens: int = 512, batch_size: int = 64,
            max_trajectory_chars: int | None = None, n_boot: int = 1000,
            verify_prompt: str = "problem", extract: str = "model") -> dict:
    """CLR vs majority vote vs mean@1 on the same subsamples; see the module docstring.

    problems: records (with `answer`, and `meta["question"]` or `prompt`) or question strings
    with `golds`; trajectories: per problem, a list of completions (strings or generate records);
    K: an int or a list of ints. extract_tokens/verify_tokens: max_new_tokens of the two steps
    (the report's model thinks first, so give it room); max_trajectory_chars: clip long
    trajectories in the extraction prompt to their last characters (None: whole); verify_prompt:
    see `verify_prompt_template`. extract: "model" (the report: the model lists the claims) or
    "lines" (the claims are the trajectory's last M computation lines, `expected_claims`, read
    directly: what extraction is taught to produce, for a model that cannot copy them faithfully;
    the verdicts still come from the model).
    Returns {"metrics": flat scalars, "per_k": rows, "items": per-problem details, with `scores`
    {"clr@K": accuracy over the R subsamples, ...} to pool problems across runs}.
    """
    equiv = equiv or _equiv_default()
    problems = list(problems)
    trajectories = [[_text(t) for t in ts] for ts in trajectories]
    if len(problems) != len(trajectories):
        raise ValueError(f"{len(problems)} problems but {len(trajectories)} trajectory lists")
    if golds is None:
        if any(isinstance(p, str) for p in problems):
            raise ValueError("problems given as strings need golds=[...]")
        golds = [p["answer"] for p in problems]
    if answer_from not in ("trajectory", "extraction"):
        raise ValueError(f"answer_from must be 'trajectory' or 'extraction', got {answer_from!r}")
    if extract not in ("model", "lines"):
        raise ValueError(f"extract must be 'model' or 'lines', got {extract!r}")
    if extract == "lines" and answer_from == "extraction":
        raise ValueError("answer_from='extraction' needs the model's extraction; use extract='model'")
    Ks = [K] if isinstance(K, int) else list(K)
    if M < 1 or R < 1:
        raise ValueError(f"M and R must be >= 1 (got M={M}, R={R})")
    for k in Ks:
        if not all(k <= len(ts) for ts in trajectories):
            raise ValueError(f"K={k} exceeds the trajectories of some problem (min "
                             f"{min(map(len, trajectories))}); sample more or lower K")
    questions = [_problem_text(p) for p in problems]
    vprompt = verify_prompt_template(verify_prompt)

    # 1. claims (and the extraction's answer) once per trajectory
    flat = [(i, j) for i, ts in enumerate(trajectories) for j in range(len(ts))]
    gen_kw = dict(n=1, temperature=temperature, batch_size=batch_size, seed=seed)
    if extract == "lines":
        ex_text = {}      # no extraction replies (answer_from="extraction" is refused above)
        claims = {(i, j): expected_claims(trajectories[i][j], M) for i, j in flat}
    else:
        ex = gen.sharded_generate(model, tokenizer, [CLAIM_EXTRACTION_PROMPT.format(
            M=M, problem=questions[i], trajectory=_clip(trajectories[i][j], max_trajectory_chars))
            for i, j in flat], max_new_tokens=extract_tokens, **gen_kw)
        ex_text = {ij: r["text"] for ij, r in zip(flat, ex)}
        claims = {ij: parse_claims(text, M) for ij, text in ex_text.items()}
    # 2. one verdict per claim
    asks = [(ij, c) for ij in flat for c in claims[ij]]
    vr = gen.sharded_generate(model, tokenizer, [vprompt.format(
        problem=questions[ij[0]], claim=c) for ij, c in asks],
        max_new_tokens=verify_tokens, **gen_kw) if asks else []
    verdicts: dict = {ij: [] for ij in flat}
    for (ij, _), r in zip(asks, vr):
        verdicts[ij].append(parse_verdict(r["text"]))

    # 3. per problem: answers, clusters over all trajectories, correctness per cluster
    items = []
    for i, ts in enumerate(trajectories):
        if answer_from == "extraction":
            answers = [extract_answer(ex_text[(i, j)]) for j in range(len(ts))]
        else:
            answers = [extract_answer(t) for t in ts]
        rel = [clr_reliability(verdicts[(i, j)], M) for j in range(len(ts))]
        labels = cluster(answers, equiv)
        first = {lab: answers[j] for j, lab in reversed(list(enumerate(labels))) if lab is not None}
        ok_cluster = {lab: bool(equiv(golds[i], a)) for lab, a in first.items()}
        correct = [lab is not None and ok_cluster[lab] for lab in labels]
        items.append({"question": questions[i], "gold": golds[i], "answers": answers,
                      "labels": labels, "claims": [claims[(i, j)] for j in range(len(ts))],
                      "verdicts": [verdicts[(i, j)] for j in range(len(ts))],
                      "reliability": rel, "correct": correct, "ok_cluster": ok_cluster})

    # 4. R subsamples of K per problem; the same subsample for all three methods
    per_k, flat_metrics = [], {}
    for it in items:
        it["scores"] = {}     # per problem: each method's accuracy at each K over the R subsamples
    for k in Ks:
        acc = {"clr": [], "majority": [], "mean1": []}
        for i, it in enumerate(items):
            got = {"clr": 0.0, "majority": 0.0, "mean1": 0.0}
            for sub in subsamples(len(it["answers"]), k, R, seed + 7919 * i):
                labs = [it["labels"][j] for j in sub]
                w = [it["reliability"][j] for j in sub]
                for name, lab in (("clr", _pick(labs, w, True)),
                                  ("majority", _pick(labs, w, False))):
                    got[name] += lab is not None and it["ok_cluster"][lab]
                got["mean1"] += sum(it["correct"][j] for j in sub) / k
            for name in acc:
                acc[name].append(got[name] / R)
                it["scores"][f"{name}@{k}"] = got[name] / R
        row = {"K": k}
        for name, vals in acc.items():
            lo, hi = vm.bootstrap_ci(vals, n_boot=n_boot, seed=seed)
            row[name], row[f"{name}_lo"], row[f"{name}_hi"] = sum(vals) / len(vals), lo, hi
            flat_metrics.update({f"{name}@{k}": row[name], f"{name}@{k}_lo": lo,
                                 f"{name}@{k}_hi": hi})
        per_k.append(row)
    all_rel = [r for it in items for r in it["reliability"]]
    flat_metrics.update({"n_problems": len(items), "M": M, "R": R,
                         "mean_reliability": sum(all_rel) / max(1, len(all_rel)),
                         "claims_per_trajectory": sum(len(c) for it in items for c in it["claims"])
                         / max(1, len(all_rel))})
    return {"metrics": flat_metrics, "per_k": per_k, "items": items}


# ------------------------------------------------------------------ teaching a small model the two skills
#
# The report's model extracts and judges claims zero-shot. A tiny model trained from scratch has
# never seen either request, so its CLR would be noise. `training_conversations` builds SFT data
# for both skills from task records with reference traces, so that "the same model verifies"
# after a brief fine-tune (a departure from the report, which teaches nothing; vtkit's CLR notebook
# says so). Claims are a trace's computation lines: lines of the reasoning that state a result
# ("Eve's eggs = Fay's pens + Bob's eggs = 18 + 7 = 25 mod 23 = 2."). Invalid claims are a valid
# line with one number changed: its result (`kind="result"`) or an operand or intermediate value
# after the first '=' (`kind="step"`); the changed number is never the modulus.

_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w])")


def computation_lines(trajectory: str) -> list[str]:
    """Lines of the reasoning (inside <think>, else before the last line) that state a computed
    result: they contain '=' and a number after the last '='."""
    text = trajectory or ""
    think = text.split("</think>", 1)[0] if "</think>" in text else text
    lines = [ln.strip() for ln in think.replace("<think>", "").splitlines()]
    return [ln for ln in lines if "=" in ln and _NUMBER.search(ln.rsplit("=", 1)[1])]


def expected_claims(trajectory: str, M: int) -> list[str]:
    """The claims extraction should list for a trajectory: its last M computation lines (the ones
    nearest the final answer, which depends on them most directly)."""
    return computation_lines(trajectory)[-M:] if M > 0 else []


def diagnostics(items, trajectories, M: int, mod: int | None = None) -> dict:
    """How the verifier treated the model's own trajectories, and how faithful extraction was.

    items: `run_clr(...)["items"]`; trajectories: per problem, the texts they were computed from.
    Returns the share of claims judged valid on right and on wrong trajectories, their mean
    reliabilities (a verifier that verifies separates them), and `claims_exact`: the share of
    trajectories with computation lines whose extracted claims equal `expected_claims` (NaN where
    nothing applies). For arithmetic claims it also gives the truth (`recompute_claim`, with the
    task's `mod`): `arithmetic_right_correct_traj` / `_wrong_traj`, the share of right- and of
    wrong-answer trajectories whose claims are all really right (CLR can only help where these
    differ: where the trace carries the answer), and `verifier_agrees_own`, the share of the
    model's own claims whose verdict matches the truth."""
    flat = [(v, r, ok, c, traj) for it, ts in zip(items, trajectories)
            for v, r, ok, c, traj in zip(it["verdicts"], it["reliability"], it["correct"], it["claims"], ts)]

    def mean(xs):
        xs = list(xs)
        return sum(xs) / len(xs) if xs else float("nan")

    with_lines = [(c, traj) for _, _, _, c, traj in flat if computation_lines(traj)]
    truth = [(v, ok, [(recompute_claim(x, mod) or (None, None))[1] for x in c]) for v, _, ok, c, _ in flat]
    checked = [(ok, all(t == 1 for t in ts if t is not None)) for _, ok, ts in truth
               if any(t is not None for t in ts)]
    return {"arithmetic_right_correct_traj": mean(right for ok, right in checked if ok),
            "arithmetic_right_wrong_traj": mean(right for ok, right in checked if not ok),
            "verifier_agrees_own": mean(int(x) == t for v, _, ts in truth for x, t in zip(v, ts) if t is not None),
            "valid_rate_correct_traj": mean(x for v, _, ok, _, _ in flat if ok for x in v),
            "valid_rate_wrong_traj": mean(x for v, _, ok, _, _ in flat if not ok for x in v),
            "reliability_correct_traj": mean(r for _, r, ok, _, _ in flat if ok),
            "reliability_wrong_traj": mean(r for _, r, ok, _, _ in flat if not ok),
            "claims_exact": mean(c == expected_claims(traj, M) for c, traj in with_lines)}


_ARITH = re.compile(r"(?<![\w.])(\d+) ([+*-]) (\d+) = (-?\d+)(?: mod (\d+) = (-?\d+))?\.?\s*$")


def parse_arithmetic(claim: str) -> dict | None:
    """The arithmetic a claim ends with, `a op b = raw` and optionally `mod p = result`
    ("Dan's cups = Fay's eggs * Gus's coins = 2 * 6 = 12 mod 7 = 5." -> a=2, op="*", b=6, raw=12,
    mod=7, result=5); None when the claim states no such step (integers, +, -, * only)."""
    m = _ARITH.search((claim or "").strip())
    if not m:
        return None
    a, op, b, raw, mod, res = m.groups()
    return {"a": int(a), "op": op, "b": int(b), "raw": int(raw),
            "mod": int(mod) if mod else None, "result": int(res) if res else None}


def recompute_claim(claim: str, mod: int | None = None, swap: bool = True) -> tuple[str, int] | None:
    """(recomputation, verdict) for an arithmetic claim, computed from the claim's own operands.

    One line per number the claim states, each the true value, the claimed one and yes/no:
        "6 * 2 = 12 vs 13: no" then "12 mod 7 = 5 vs 5: yes"
    swap: write + and * with their operands swapped ("6 * 2" for the claim's "2 * 6"), so that the
    line cannot be completed by copying the claim's own "2 * 6 = 13" (a tiny verifier taught on
    unswapped lines learns that copy, right for every valid claim, instead of the sum).
    The second line is there when the claim reduces mod p, or when `mod` (the task's modulus) is
    given and the true value lies outside 0..mod-1 (an unreduced result is wrong in a mod-p task).
    verdict 1 when every line says yes. This is the check a verifier can make from the claim alone:
    it catches wrong results and operands that do not give the stated result, not a wrong operand
    that happens to give it (0 * 4 = 0 stated as 0 * 6 = 0). None for non-arithmetic claims."""
    c = parse_arithmetic(claim)
    if c is None:
        return None
    a, op, b = c["a"], c["op"], c["b"]
    raw = a + b if op == "+" else a - b if op == "-" else a * b
    x, y = (b, a) if swap and op in "+*" else (a, b)
    lines = [f"{x} {op} {y} = {raw} vs {c['raw']}: {'yes' if raw == c['raw'] else 'no'}"]
    p = c["mod"] or mod
    if c["mod"] is not None or (p and not 0 <= raw < p):
        claimed = c["result"] if c["result"] is not None else c["raw"]
        lines.append(f"{raw} mod {p} = {raw % p} vs {claimed}: "
                     f"{'yes' if raw % p == claimed else 'no'}")
    return "\n".join(lines), int(all(ln.endswith("yes") for ln in lines))


def arithmetic_key(claim: str) -> str | None:
    """The arithmetic a claim states, names stripped and spacing normalised: "2 * 6 = 12 mod 7 = 5"
    for "Dan's cups = Fay's eggs * Gus's coins = 2 * 6 = 12 mod 7 = 5." (`parse_arithmetic`; the
    operands in the claim's order, so "6 * 2" is another string); None for a claim without."""
    c = parse_arithmetic(claim)
    if c is None:
        return None
    key = f"{c['a']} {c['op']} {c['b']} = {c['raw']}"
    return key + (f" mod {c['mod']} = {c['result']}" if c["mod"] is not None else "")


def arithmetic_lookup(teaching) -> dict[str, int]:
    """The memorisation baseline's table: arithmetic string (`arithmetic_key`) -> the label it had
    among the teaching claims (rows with `claim` and `label`); the majority label where a string
    was taught with both, ties valid (1). Claims without arithmetic are left out."""
    votes: dict[str, list[int]] = {}
    for t in teaching:
        key = arithmetic_key(t["claim"])
        if key is not None:
            votes.setdefault(key, [0, 0])[int(t["label"])] += 1
    return {key: int(v[1] >= v[0]) for key, v in votes.items()}


def seen_novel_accuracy(examples, verdicts, teaching) -> dict:
    """The verifier's accuracy apart on held-out claims whose arithmetic string (`arithmetic_key`)
    appears among the teaching claims (seen) and on those whose arithmetic is new (novel; claims
    without arithmetic count as novel), and the memorisation baseline on all of them.

    examples: labelled held-out claims (`claim`, `label`); verdicts: the verifier's, in their order;
    teaching: the labelled claims it was taught (rows with `claim`, `label`; [] when untaught).
    Returns `verifier_acc_seen` / `verifier_acc_novel` with Wilson 95% intervals (`_lo`, `_hi`) and
    counts (`verifier_n_seen`, `verifier_n_novel`; of them valid: `verifier_n_seen_valid`,
    `verifier_n_novel_valid`: corrupted claims make new strings more often than valid ones, so novel
    claims are mostly invalid and a verifier that always says invalid scores high there), and
    `verifier_lookup_acc` (with `_lo`, `_hi`):
    a table that answers a seen claim with its string's label in teaching (`arithmetic_lookup`) and
    guesses valid for a novel one. A verifier no better than the table on seen claims, and worse on
    novel ones, has memorised its teaching rather than learned to check arithmetic."""
    if len(examples) != len(verdicts):
        raise ValueError(f"{len(examples)} held-out claims but {len(verdicts)} verdicts")
    table = arithmetic_lookup(teaching)
    keys = [arithmetic_key(e["claim"]) for e in examples]
    labels = [int(e["label"]) for e in examples]
    right = [int(v) == y for v, y in zip(verdicts, labels)]
    seen = [k is not None and k in table for k in keys]
    out = {}
    for part, want in (("seen", True), ("novel", False)):
        idx = [i for i, s in enumerate(seen) if s == want]
        k, n = sum(right[i] for i in idx), len(idx)
        out[f"verifier_acc_{part}"] = k / n if n else float("nan")
        out[f"verifier_acc_{part}_lo"], out[f"verifier_acc_{part}_hi"] = wilson_interval(k, n)
        out[f"verifier_n_{part}"] = n
        out[f"verifier_n_{part}_valid"] = sum(labels[i] for i in idx)
    k = sum((table[key] if s else 1) == y for key, s, y in zip(keys, seen, labels))
    out["verifier_lookup_acc"] = k / len(labels) if labels else float("nan")
    out["verifier_lookup_acc_lo"], out["verifier_lookup_acc_hi"] = wilson_interval(k, len(labels))
    return out


def _other_number(old: str, rng: random.Random, mod: int | None) -> str:
    whole, dot, frac = old.partition(".")
    v = int(whole)
    if mod and v < mod and mod > 1:
        new = rng.choice([x for x in range(mod) if x != v])
    else:
        step = rng.randint(1, max(3, v // 2))
        new = v + step if rng.random() < 0.5 or v - step < 0 else v - step
    return f"{new}{dot}{frac}"


def corrupt_claim(claim: str, rng: random.Random, *, kind: str = "result",
                  mod: int | None = None) -> str:
    """`claim` with one number changed (see the section comment); mod: draw the new value from
    0..mod-1 when the old one lies there (vtkit's math works mod a prime)."""
    if kind not in ("result", "step"):
        raise ValueError(f"kind must be 'result' or 'step', got {kind!r}")
    if "=" not in claim:
        raise ValueError(f"cannot corrupt {claim!r}: a claim needs '=' and a number after it")
    first = claim.index("=")
    spans = [m for m in _NUMBER.finditer(claim)
             if m.start() > first and not claim[:m.start()].rstrip().endswith("mod")]
    if not spans:
        raise ValueError(f"cannot corrupt {claim!r}: no number after its first '='")
    target = spans[-1] if kind == "result" or len(spans) == 1 else rng.choice(spans[:-1])
    return claim[:target.start()] + _other_number(target.group(), rng, mod) + claim[target.end():]


def _mod_of(record) -> int | None:
    meta = record.get("meta") or "{}"
    meta = json.loads(meta) if isinstance(meta, str) else meta
    mod = meta.get("mod") if isinstance(meta, dict) else None
    return mod if isinstance(mod, int) else None


def extraction_target(trajectory: str, M: int) -> str:
    """The reply CLAIM_EXTRACTION_PROMPT asks for: numbered claims, then the boxed final answer."""
    claims = expected_claims(trajectory, M)
    answer = extract_answer(trajectory)
    body = "\n".join(f"{i}. {c}" for i, c in enumerate(claims, 1))
    return body + (f"\n\\boxed{{{answer}}}" if answer is not None else "")


def verification_target(label: int, recomputation: str | None = None) -> str:
    """The reply CLAIM_VERIFICATION_PROMPT asks for, after an optional <think> recomputation."""
    think = f"<think>\n{recomputation}\n</think>\n" if recomputation else ""
    return f"{think}\\boxed{{{int(label)}}}"


def verification_examples(records, seed: int = 0, per_record: int = 2,
                          step_fraction: float = 0.5, checkable: bool = True) -> list[dict]:
    """Labelled claims from records' reference traces: per record `per_record` claims, alternately
    a valid computation line and a corrupted one (kind "step" with probability step_fraction).
    checkable=True redraws a corruption (up to 20 times, else drops it) until the claim's own
    arithmetic is wrong (`recompute_claim` says 0), so that every invalid claim can be told from
    the claim itself (a wrong operand can leave it right: 0 * 4 = 0 -> 0 * 6 = 0); claims that
    state no arithmetic are kept as drawn. Rows: {id, question, claim, label (1 valid / 0
    invalid), reference (the valid line)}."""
    rng = random.Random(f"clr-verify-{seed}")
    rows = []
    for r in records:
        lines = [ln for s in r["solutions"] for ln in computation_lines(s)]
        if not lines:
            continue
        mod = _mod_of(r)
        for j in range(per_record):
            ref = rng.choice(lines)
            label = int(j % 2 == 0) if per_record > 1 else rng.randint(0, 1)
            claim = ref
            for _ in range(20 if not label else 0):
                kind = "step" if rng.random() < step_fraction else "result"
                claim = corrupt_claim(ref, rng, kind=kind, mod=mod)
                check = recompute_claim(claim, mod) if checkable else None
                if check is None or check[1] == 0:
                    break
            else:
                if not label:
                    continue          # no checkable corruption of this line
            rows.append({"id": r["id"], "question": _problem_text(r), "claim": claim,
                         "label": label, "reference": ref})
    return rows


def _corrupted_trajectory(trajectory: str, rng: random.Random, mod: int | None) -> str:
    """A trajectory with one computation line's result changed (and its boxed answer, when that
    was the last line's result), so extraction learns to copy rather than to correct."""
    lines = computation_lines(trajectory)
    if not lines:
        return trajectory
    i = rng.randrange(len(lines))
    bad = corrupt_claim(lines[i], rng, kind="result", mod=mod)
    out = trajectory.replace(lines[i], bad, 1)
    ans = extract_answer(trajectory)
    old_last = _NUMBER.findall(lines[i])[-1]
    if i == len(lines) - 1 and ans is not None and ans == old_last:
        new_last = _NUMBER.findall(bad)[-1]
        head, sep, tail = out.rpartition(f"\\boxed{{{ans}}}")
        out = f"{head}\\boxed{{{new_last}}}{tail}" if sep else out
    return out


def training_conversations(records, seed: int = 0, *, M: int = 5, extract_per_record: int = 1,
                           verify_per_record: int = 2, solve_per_record: int = 0,
                           corrupt_fraction: float = 0.25, step_fraction: float = 0.5,
                           recompute: str | None = "arithmetic",
                           max_trajectory_chars: int | None = None, verify_prompt: str = "problem",
                           verify_records=None):
    """SFT conversations that teach claim extraction and claim verification in CLR's own prompts.

    records: task records with reference `solutions`. Per record: `extract_per_record` extraction
    examples (a reference trace, corrupted with probability corrupt_fraction, -> its last M
    computation lines numbered, then its boxed answer); `verify_per_record` verification examples
    (alternately valid and corrupted claims whose own arithmetic is wrong, see
    verification_examples) with a <think> block before the verdict: recompute="arithmetic" (the
    default) recomputes the claim from its own operands, number by number against what it states
    (`recompute_claim`; the reference line for claims without arithmetic), "reference" writes the
    correct line (which the verifier cannot know), None writes no think block;
    `solve_per_record` of the record's own solving conversations, so the model keeps solving.
    verify_prompt: the verification prompt (`verify_prompt_template`), the one run_clr will use.
    verify_records: other records to draw the verification examples from (default: `records`),
    so that many short verification examples need not bring as many long extraction ones.
    Returns a shuffled datasets.Dataset with columns messages, id, kind (extract/verify/solve),
    label (verdict for verify rows, -1 otherwise) and claim (the claim of verify rows, "" otherwise:
    what `seen_novel_accuracy` compares held-out claims with); vtkit.train.sft takes it as is.
    """
    if M < 1:
        raise ValueError(f"M must be >= 1, got {M}")
    if not 0 <= corrupt_fraction <= 1 or not 0 <= step_fraction <= 1:
        raise ValueError("corrupt_fraction and step_fraction are probabilities in [0, 1]")
    if recompute not in ("arithmetic", "reference", None):
        raise ValueError(f"recompute must be 'arithmetic', 'reference' or None, got {recompute!r}")
    vprompt = verify_prompt_template(verify_prompt)
    records = [dict(r) for r in records]
    usable = [r for r in records if any(computation_lines(s) for s in r.get("solutions") or [])]
    if not usable:
        raise ValueError("no record has a reference trace with computation lines ('... = 3.'); "
                         "pass records from vtkit.tasks.make('math', ...) or another set whose "
                         "`solutions` state their steps")
    rng = random.Random(f"clr-train-{seed}")
    rows = []

    def add(r, kind, user, reply, label=-1, claim=""):
        rows.append({"messages": [{"role": "user", "content": user},
                                  {"role": "assistant", "content": reply}],
                     "id": r["id"], "kind": kind, "label": label, "claim": claim})
    for r in usable:
        q = _problem_text(r)
        sols = [s for s in r["solutions"] if computation_lines(s)]
        for _ in range(extract_per_record):
            traj = rng.choice(sols)
            if rng.random() < corrupt_fraction:
                traj = _corrupted_trajectory(traj, rng, _mod_of(r))
            add(r, "extract", CLAIM_EXTRACTION_PROMPT.format(
                M=M, problem=q, trajectory=_clip(traj, max_trajectory_chars)),
                extraction_target(traj, M))
        for _ in range(solve_per_record):
            add(r, "solve", r["prompt"], rng.choice(list(r["solutions"])))
    vrecs = usable if verify_records is None else \
        [r for r in verify_records if any(computation_lines(s) for s in r.get("solutions") or [])]
    mods = {r["id"]: _mod_of(r) for r in vrecs}
    for ex in verification_examples(vrecs, seed=seed, per_record=verify_per_record,
                                    step_fraction=step_fraction):
        think = None
        if recompute == "arithmetic":
            check = recompute_claim(ex["claim"], mods[ex["id"]])
            think = check[0] if check is not None else ex["reference"]
        elif recompute == "reference":
            think = ex["reference"]
        add({"id": ex["id"]}, "verify", vprompt.format(
            problem=ex["question"], claim=ex["claim"]),
            verification_target(ex["label"], think), ex["label"], ex["claim"])
    rng.shuffle(rows)
    return datasets.Dataset.from_list(rows)


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion k/n (95% by default); (nan, nan) for n = 0.
    `vtkit.stats.wilson` at the normal quantile z."""
    from vtkit import stats
    return stats.wilson(k, n, z=z)


def verifier_accuracy(model, tokenizer, examples, *, max_new_tokens: int = 128,
                      batch_size: int = 64, seed: int = 0, return_replies: bool = False,
                      verify_prompt: str = "problem", teaching=None) -> dict:
    """How well the model's greedy verdicts (the `verify_prompt`) match labelled claims
    (verification_examples): `verifier_acc`, `verifier_recall_valid`, `verifier_recall_invalid`,
    each with a Wilson 95% interval (`_lo`, `_hi`), the share of replies with no readable verdict
    (`verifier_unreadable`, counted as invalid) and `verifier_n`; with teaching (the labelled
    claims the model was taught, [] for none), also the accuracy on claims whose arithmetic was
    taught and on new arithmetic, and the lookup baseline (`seen_novel_accuracy`); with
    return_replies, also `replies` (the model's texts, in the order of examples)."""
    if not examples:
        raise ValueError("no labelled claims to check the verifier on")
    vprompt = verify_prompt_template(verify_prompt)
    outs = gen.sharded_generate(model, tokenizer, [vprompt.format(
        problem=e["question"], claim=e["claim"]) for e in examples], n=1, temperature=0.0,
        max_new_tokens=max_new_tokens, batch_size=batch_size, seed=seed)
    got = [parse_verdict(o["text"]) for o in outs]
    labels = [int(e["label"]) for e in examples]
    out = {}
    for name, idx in (("verifier_acc", range(len(labels))),
                      ("verifier_recall_valid", [i for i, y in enumerate(labels) if y == 1]),
                      ("verifier_recall_invalid", [i for i, y in enumerate(labels) if y == 0])):
        k, n = sum(got[i] == labels[i] for i in idx), len(idx)
        out[name] = k / n if n else float("nan")
        out[f"{name}_lo"], out[f"{name}_hi"] = wilson_interval(k, n)
    readable = [bool(_BOXED.findall(_answer_part(o["text"])) or
                     re.search(r"\b(INVALID|VALID)\b", _answer_part(o["text"]), re.I)) for o in outs]
    out.update({"verifier_unreadable": 1 - sum(readable) / len(readable), "verifier_n": len(labels)})
    if teaching is not None:
        out.update(seen_novel_accuracy(examples, got, teaching))
    if return_replies:
        out["replies"] = [o["text"] for o in outs]
    return out

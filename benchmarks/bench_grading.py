"""Grading throughput: answer checks/s (extract + math-verify) and sandbox programs/s.

Run: `.venv/bin/python benchmarks/run.py grading`.

Checks: 3000 seeded synthetic math completions, a mix of right answers in the gold's spelling,
right answers in another spelling (1/2 vs \\frac{1}{2}, 0.5), wrong answers, answers only inside
<think>, truncated completions and several boxed answers; each graded by `extract_answer` and,
when an answer is found, `is_equivalent` on the main thread (math-verify with its timeouts).
Numbers are drawn widely so math-verify's parse cache rarely hits.

Sandbox: 40 distinct small programs (assertion tests and stdin/stdout cases, a quarter of them
wrong) through `vtkit.sandbox.run_many` at 1 and 2 workers, under bubblewrap and without it.
"""
from __future__ import annotations

import os
import random
import time
import warnings

from vtkit import sandbox, verify

N_CHECKS = 3000   # completions graded: a few GRPO batches, a few seconds on one core
N_PROGRAMS = 40   # programs per sandbox timing: amortises thread start-up, ~10 s on 2 cores


def _completions(n: int, seed: int = 0):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        kind = rng.choice(["int", "frac", "expr"])
        if kind == "int":
            v = rng.randint(-10**6, 10**6)
            gold, alt, wrong = str(v), f"{v}.0", str(v + rng.randint(1, 9))
        elif kind == "frac":
            a, b = rng.randint(1, 999), rng.choice([2, 4, 5, 8, 10, 20, 25])
            gold, alt, wrong = f"\\frac{{{a}}}{{{b}}}", f"{a / b:g}", f"\\frac{{{a + 1}}}{{{b}}}"
        else:
            a, b = rng.randint(2, 99), rng.randint(1, 99)
            gold, alt, wrong = f"{a}x^2+{b}", f"{b}+{a}x^{{2}}", f"{a}x^2-{b}"
        case = rng.choices(["same", "alt", "wrong", "think_only", "truncated", "several"],
                           weights=[3, 3, 3, 1, 1, 1])[0]
        think = f"<think>\nLet me work it out: {rng.randint(0, 99)} steps.\n</think>\n"
        text = {"same": f"{think}The answer is \\boxed{{{gold}}}.",
                "alt": f"{think}So \\boxed{{{alt}}}.",
                "wrong": f"{think}So \\boxed{{{wrong}}}.",
                "think_only": f"<think>maybe \\boxed{{{gold}}}</think>\nI am not sure.",
                "truncated": f"<think>\nLet me work it out: \\boxed{{{gold}}} and then",
                "several": f"{think}\\boxed{{{wrong}}} or rather \\boxed{{{gold}}}"}[case]
        out.append((gold, text, case in ("same", "alt", "several")))
    return out


def _grading_rows() -> list[dict]:
    items = _completions(N_CHECKS)
    t0 = time.perf_counter()
    preds = [verify.extract_answer(t) for _, t, _ in items]
    t_extract = time.perf_counter() - t0
    t0 = time.perf_counter()
    got = [p is not None and verify.is_equivalent(g, p) for (g, _, _), p in zip(items, preds)]
    t_equiv = time.perf_counter() - t0
    agree = sum(g == want for g, (_, _, want) in zip(got, items))
    return [
        {"benchmark": "grading checks/s (extract_answer + is_equivalent)", "value": N_CHECKS / (t_extract + t_equiv),
         "unit": "checks/s", "goal": ">= 100 (a 1024-completion GRPO batch graded in < 10 s)",
         "note": f"{agree}/{N_CHECKS} verdicts as constructed; mixed int/fraction/polynomial, 1 thread"},
        {"benchmark": "answer extraction/s (extract_answer only)", "value": N_CHECKS / t_extract,
         "unit": "completions/s", "goal": "", "note": "last \\boxed{} after </think>, nested braces"},
    ]


def _programs(n: int):
    items, want = [], []
    for i in range(n):
        wrong = i % 4 == 3
        if i % 2 == 0:
            code = f"def f(x):\n    return x * {i + 2}{' + 1' if wrong else ''}\n"
            tests = "".join(f"assert f({x}) == {x * (i + 2)}\n" for x in range(3))
        else:
            code = f"a, b = map(int, input().split())\nprint(a + b + {i}{' + 1' if wrong else ''})\n"
            tests = [{"input": f"{x} {x + 1}\n", "output": str(2 * x + 1 + i)} for x in range(2)]
        items.append((code, tests))
        want.append(not wrong)
    return items, want


def _sandbox_rows() -> list[dict]:
    items, want = _programs(N_PROGRAMS)
    rows = []
    for isolate, label in ((None, "bwrap"), (False, "no bwrap")):
        if isolate is None and not sandbox.bwrap_available():
            continue
        if isolate is False and os.geteuid() == 0 and os.environ.get(sandbox.ALLOW_ROOT_ENV) != "1":
            continue   # unisolated as root needs the opt-in (benchmarks/bench_sandbox.py measures it on trusted code)
        for workers in (1, 2):
            with warnings.catch_warnings():  # the unisolated run warns by design
                warnings.simplefilter("ignore")
                t0 = time.perf_counter()
                res = sandbox.run_many(items, workers=workers, isolate=isolate)
                dt = time.perf_counter() - t0
            ok = sum(r.passed == w for r, w in zip(res, want))
            rows.append({"benchmark": f"sandbox programs/s, {workers} worker{'s' * (workers > 1)}, {label}",
                         "value": N_PROGRAMS / dt, "unit": "programs/s",
                         "goal": "2 workers > 1 worker" if workers == 2 else "",
                         "note": f"{ok}/{N_PROGRAMS} verdicts right; half assertion, half 2 stdin cases"})
    return rows


def run() -> list[dict]:
    return _grading_rows() + _sandbox_rows()


if __name__ == "__main__":
    for r in run():
        print(r)

"""Evaluation throughput: code problems/s through the sandbox (1 and 2 workers), math grading items/s.

Run: `.venv/bin/python benchmarks/run.py eval`.

Code: LiveCodeBench-style problems from the test fixtures (stdin programs with 3 cases, a
functional `Solution` with 3 cases), each graded with a correct program through
`vtkit.evaluation.grade` (`vtkit.sandbox.run_many`, bubblewrap where it works; each problem copy
has its own id, since `grade` runs a repeated (record, program) pair once). Math: the grading half
of `vtkit.evaluation.evaluate` (`grade`: last \\boxed{} after </think>, math-verify against the
gold) on synthetic completions, a quarter of them in an equivalent but different spelling.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from vtkit import evalsets, evaluation

FIX = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "evalsets"
SOLUTIONS = {
    "stdin": "a, b = map(int, input().split())\nprint(a + b)\n",
    "functional": "class Solution:\n    def sumPlus(self, nums: List[int], k: int) -> int:\n"
                  "        return sum(nums) + k\n",
}
N_CODE = 16  # programs per timing: enough to amortise pool start-up, a few seconds on 2 cores


def _code_rate(workers: int) -> tuple[float, int]:
    ds = evalsets.load("livecodebench", path=FIX / "livecodebench", version_tag="v6",
                       end_date="2025-05-01")
    items = [{**ds[i % len(ds)], "id": f"{ds[i % len(ds)]['id']}-copy{i}"} for i in range(N_CODE)]
    texts = [f"<think>ok</think>\n```python\n{SOLUTIONS[r['subdomain']]}```" for r in items]
    proto = evaluation.get("vibethinker-code", n=1)
    t0 = time.perf_counter()
    grades = evaluation.grade(items, texts, workers=workers, timeout_s=proto.timeout_s, memory_mb=proto.memory_mb)
    dt = time.perf_counter() - t0
    return N_CODE / dt, sum(g["correct"] for g in grades)


def _math_rate(n_items: int = 400) -> tuple[float, int]:
    items, texts = [], []
    for i in range(n_items):
        a, b = i % 17 + 1, i % 5 + 2
        gold = f"\\frac{{{a}}}{{{b}}}"
        pred = f"{a}/{b}" if i % 4 == 0 else gold if i % 4 != 3 else f"{a + 1}/{b}"
        items.append({"id": f"m{i}", "domain": "math", "prompt": "p", "answer": gold, "meta": json.dumps({})})
        texts.append(f"<think>work \\boxed{{0}}</think>\nso \\boxed{{{pred}}}")
    t0 = time.perf_counter()
    grades = evaluation.grade(items, texts, workers=1)
    return n_items / (time.perf_counter() - t0), sum(g["correct"] for g in grades)


def run() -> list[dict]:
    rows = []
    for w in (1, 2):
        rate, ok = _code_rate(w)
        rows.append({"benchmark": f"code problems/s, sandbox, {w} worker{'s' * (w > 1)}",
                     "value": rate, "unit": "problems/s", "goal": "2 workers > 1 worker",
                     "note": f"{ok}/{N_CODE} passed (all should); LCB fixture problems, 3 tests each"})
    rate, ok = _math_rate()
    rows.append({"benchmark": "math grading items/s (extract + math-verify)", "value": rate,
                 "unit": "items/s", "goal": "", "note": f"{ok}/400 correct (300 expected)"})
    return rows


if __name__ == "__main__":
    for r in run():
        print(r)

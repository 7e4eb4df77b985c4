"""Speed of two guards that tests check for behaviour only: the tiny tokenizer's corpus builder and
math-verify's refusal of answers that would make sympy explode (exponent towers, huge factorials),
on two threads as the RL rewards run them. A regression shows here as seconds instead of
milliseconds; a loaded machine cannot fail the test suite with it.

    .venv/bin/python benchmarks/run.py guards
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from vtkit import tasks, verify

EXPLODING = [("1", "9^{9^{9}}"), ("2", "10^{10000}"), ("1", "(10^{100})!"), ("3", "2**(2**(2**64))")]


def _best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def run() -> list[dict]:
    corpus = _best_of(lambda: tasks.tokenizer_corpus(100))

    def refuse():
        with ThreadPoolExecutor(2) as ex:
            assert list(ex.map(lambda gp: verify.is_equivalent(*gp), EXPLODING)) == [False] * 4
    guard = _best_of(refuse)
    return [
        {"benchmark": "tokenizer_corpus(100)", "value": corpus, "unit": "s", "goal": "< 2 s",
         "note": "best of 3"},
        {"benchmark": "refuse 4 exploding answers (2 threads)", "value": guard, "unit": "s", "goal": "< 2 s",
         "note": "string comparison only; sympy never sees them"},
    ]

"""Trace faithfulness: does a math completion's reasoning carry its answer?

    from vtkit import faithful
    faithful.trace_faithful(record, completion)   # {"arithmetic_right": True, ..., "faithful": True}
    faithful.faithful_rate(records, completions)  # {"faithful": 0.41, "faithful_lo": ..., "faithful_hi": ...}
    faithful.from_eval(records, eval_result)      # the same over an EvalResult's graded samples

The reward and every accuracy in vtkit read only the boxed answer, so accuracy can rise while the
reasoning comes apart (issue 26: RL raised greedy accuracy while greedy traces with correct arithmetic
on the problem's numbers fell from 72 to 22 of 128). This module measures the trace beside the answer.

Definition. A trace is the completion's computation lines (`vtkit.clr.computation_lines`: lines of the
reasoning, before `</think>` when there is one, that state `= number`), each read as an arithmetic step
`a op b = raw` with an optional `mod p = result` (`vtkit.clr.parse_arithmetic`, the parser CLR's
diagnostics use), the form of vtkit's math traces ("6 + 4 = 10 mod 7 = 3.", with or without the names
before it). A step's value is its `result` when it reduces, else its `raw`. The trace is **faithful**
when it has at least one arithmetic step and
1. `arithmetic_right`: every computation line is an arithmetic step and every step is right as the task
   writes it (`vtkit.clr.recompute_claim` with the record's `meta["mod"]`): raw = a op b over the
   integers, the reduction raw mod p is right, and a result outside 0..p-1 is reduced (so "6 + 4 = 3"
   and "6 + 4 = 10." are wrong in a mod-7 task: the task writes "6 + 4 = 10 mod 7 = 3.");
2. `uses_problem_numbers`: every step's operands are numbers the problem states (the integers of the
   prompt, the "mod p" phrase left out) or values of earlier steps;
3. `answer_matches_trace`: the boxed answer (`vtkit.verify.extract_answer`, the one graded) equals the
   value of the last step, as integers.
A completion with no arithmetic step fails all three. Only numbers are checked: a line that names the
wrong quantities but computes on the right numbers passes, and a trace need not use every given
number nor reach the asked quantity (the answer's correctness is accuracy's business, not this one's).

`faithful_rate` counts traces (every sample of every item) and gives a Wilson 95% interval
(`vtkit.stats.wilson`). With several samples per item the traces of one item are not independent
draws, so this interval is narrower than a bootstrap over items would be; read it as the spread of
the trace count, not of the benchmark.

Where it departs from the issue's audit: the audit counted greedy traces; the RL stage reports this
on the held-out samples it already draws (mean@n at the evaluation temperature), so no extra sampling.
"""
from __future__ import annotations

import re
from typing import Sequence

from vtkit import stats
from vtkit.clr import _mod_of, computation_lines, parse_arithmetic, recompute_claim
from vtkit.verify import extract_answer

CRITERIA = ("arithmetic_right", "uses_problem_numbers", "answer_matches_trace")
_INT = re.compile(r"(?<![\w.])\d+(?!\w)")
_MOD_PHRASE = re.compile(r"\bmod(?:ulo)?\s+\d+", re.IGNORECASE)


def problem_numbers(record: dict) -> set[int]:
    """The integers the problem states: those of the prompt, with the "mod p" phrase left out."""
    if not isinstance(record, dict) or not isinstance(record.get("prompt"), str):
        raise ValueError("trace faithfulness needs a task record with a `prompt` string (vtkit.tasks.make('math', ...))")
    return {int(x) for x in _INT.findall(_MOD_PHRASE.sub(" ", record["prompt"]))}


def _int(text) -> int | None:
    try:
        return int(str(text).strip())
    except (TypeError, ValueError):
        return None


def trace_faithful(record: dict, completion: str) -> dict:
    """The three criteria of the module docstring for one completion, and `faithful` (all three);
    also `n_steps` (arithmetic steps), `trace_result` (the last step's value, None without steps)
    and `boxed` (the graded answer, None without one)."""
    if not isinstance(completion, str):
        raise ValueError(f"completion must be the model's text (a str), got {type(completion).__name__}")
    given, mod = problem_numbers(record), _mod_of(record)
    lines = computation_lines(completion)
    steps = [parse_arithmetic(ln) for ln in lines]
    right = bool(steps) and all(s is not None and recompute_claim(ln, mod)[1] == 1 for ln, s in zip(lines, steps))
    steps = [s for s in steps if s is not None]
    known, uses = set(given), bool(steps)
    for s in steps:
        uses = uses and s["a"] in known and s["b"] in known
        known.add(s["result"] if s["result"] is not None else s["raw"])
    result = (steps[-1]["result"] if steps[-1]["result"] is not None else steps[-1]["raw"]) if steps else None
    boxed = extract_answer(completion)
    matches = result is not None and _int(boxed) == result
    flags = {"arithmetic_right": right, "uses_problem_numbers": uses, "answer_matches_trace": matches}
    return {**flags, "faithful": all(flags.values()), "n_steps": len(steps), "trace_result": result, "boxed": boxed}


def faithful_rate(records: Sequence[dict], completions: Sequence) -> dict:
    """The share of faithful traces with a Wilson 95% interval (`faithful`, `faithful_lo`,
    `faithful_hi`), the share meeting each criterion, and `n_traces`.

    completions[i] belongs to records[i]: a string, or a list of strings (the record's samples)."""
    records, completions = list(records), list(completions)
    if len(records) != len(completions):
        raise ValueError(f"{len(records)} records but {len(completions)} completions: give one completion "
                         "(or one list of samples) per record")
    pairs = [(r, c) for r, cs in zip(records, completions) for c in ([cs] if isinstance(cs, str) else cs)]
    if not pairs:
        raise ValueError("no completions to check: faithful_rate needs at least one trace")
    checks = [trace_faithful(r, c) for r, c in pairs]
    n, k = len(checks), sum(c["faithful"] for c in checks)
    lo, hi = stats.wilson(k, n)
    return {"faithful": k / n, "faithful_lo": lo, "faithful_hi": hi, "n_traces": n,
            **{c: sum(x[c] for x in checks) / n for c in CRITERIA}}


def from_eval(records: Sequence[dict], result) -> dict:
    """`faithful_rate` over an EvalResult's graded samples (`vtkit.evaluation.evaluate` of `records`):
    each sample's text against the record at its item position."""
    records = list(records)
    if not result.samples:
        raise ValueError("the EvalResult has no samples; evaluate the records with vtkit.evaluation.evaluate")
    per_item: list[list[str]] = [[] for _ in records]
    for s in result.samples:
        if not 0 <= s["item"] < len(records) or records[s["item"]]["id"] != s["id"]:
            raise ValueError(f"sample of item {s['item']} (id {s['id']!r}) does not match the records given; "
                             "pass the records the EvalResult was evaluated on, in the same order")
        per_item[s["item"]].append(s["text"])
    return faithful_rate(records, per_item)

"""Reward functions in trl's signature, and a registry of them by name.

    from vtkit.rewards import REWARDS
    trainer = GRPOTrainer(..., reward_funcs=[REWARDS["accuracy"], REWARDS["format"]])
    REWARDS["accuracy"](["<think>..</think> \\boxed{4}"], answer=["4"], domain=["math"])  # [1.0]

Each is `fn(completions, **kwargs) -> list[float | None]`: `completions` are strings or trl's
conversational lists (`[{"role": "assistant", "content": ...}]`); dataset columns (`answer`,
`tests`, `domain`, `meta`, ...) arrive as lists aligned with the completions. A missing `domain`
column means every row is math (code for the code rewards). A reward that does not apply to a row
(`code_tests` on a math row) returns None there, which trl's GRPOTrainer skips (nan, then nansum).

- `accuracy`: 1.0 iff `vtkit.evaluation.grade` says right, per row's domain; the answer counted is the
  LAST boxed one after `</think>` (several boxed answers are not penalised here, `format` does
  that); nothing inside `<think>` counts; a truncated completion (no `</think>`) scores 0; code
  rows run the sandbox, in parallel over the batch.
- `format`: 1.0 iff the completion is exactly one `<think>`...`</think>` pair at its start, with
  non-empty thinking, followed by exactly one final answer: one `\\boxed{}` for non-code rows, one
  fenced python block (and no other fence) for code rows. Several boxed answers, repeated or
  stray tags, or an answer only inside the think part give 0.
- `code_tests`: BINARY, 1.0 iff every test passes under the harness's verdict (the paper's
  verifiable reward is binary); `code_tests_fraction`: passed cases / all cases, for shaping.
  A program that exits 0 before its tests run scores 0 in both.
- `stem`: option letter or value-with-unit check for stem rows, None elsewhere.
Departure from open-r1: no length or repetition penalties here; MGPO's weighting lives in vtkit.rl.
"""
from __future__ import annotations

from vtkit import evaluation, sandbox, verify

CODE_TIMEOUT_S = 10.0   # seconds per program (all its tests): generous for tiny tasks, bounds a hang
CODE_MEMORY_MB = 1024   # address space per process: the evaluation protocols' limit
CODE_WORKERS = None     # parallel sandboxes per batch; None = CPU count


def _texts(completions) -> list[str]:
    return [verify.completion_text(c) for c in completions]


def _column(kwargs, name, n, default=None, required=False) -> list:
    col = kwargs.get(name)
    if col is None:
        if required:
            raise ValueError(f"this reward needs the dataset column {name!r}; trl passes dataset columns as "
                             f"keyword lists, so keep {name!r} in the training dataset (got {sorted(kwargs)})")
        return [default] * n
    col = list(col)
    if len(col) != n:
        raise ValueError(f"column {name!r} has {len(col)} values for {n} completions")
    return col


def _run_code(texts, tests, metas) -> list[sandbox.SandboxResult | None]:
    """Sandbox results for each (completion, tests) pair; None where the completion holds no code."""
    jobs, where = [], []
    for i, (t, tst, meta) in enumerate(zip(texts, tests, metas)):
        code = verify.extract_code(t)
        if code is not None:
            prefix = verify.record_meta({"meta": meta}).get("code_prefix", "")
            jobs.append((prefix + code, tst))
            where.append(i)
    out: list = [None] * len(texts)
    for i, r in zip(where, sandbox.run_many(jobs, workers=CODE_WORKERS, timeout_s=CODE_TIMEOUT_S,
                                             memory_mb=CODE_MEMORY_MB)):
        out[i] = r
    return out


def _rows(kwargs, n, default_domain) -> list[dict]:
    """The dataset columns of each completion's row as a record for vtkit.evaluation.grade."""
    cols = {"answer": _column(kwargs, "answer", n, required=True), "domain": _column(kwargs, "domain", n, default_domain),
            "meta": _column(kwargs, "meta", n, ""), "tests": _column(kwargs, "tests", n, "")}
    for extra in ("instruction_id_list", "kwargs", "id"):
        if extra in kwargs:
            cols[extra] = _column(kwargs, extra, n)
    return [{k: v[i] for k, v in cols.items()} for i in range(n)]


def accuracy_reward(completions, **kwargs) -> list[float]:
    """1.0 iff the completion's final answer is right for its row's domain (math/stem/knowledge/code/gym)."""
    rows = _rows(kwargs, len(completions), "math")
    grades = evaluation.grade(rows, _texts(completions), workers=CODE_WORKERS or 2, timeout_s=CODE_TIMEOUT_S,
                              memory_mb=CODE_MEMORY_MB)
    return [float(g["correct"]) for g in grades]


def format_ok(text: str, domain: str = "math") -> bool:
    """The format rule of `format_reward` for one completion text."""
    if text.count("<think>") != 1 or text.count("</think>") != 1:
        return False
    body = text.lstrip()
    if not body.startswith("<think>"):
        return False
    think, after = body[len("<think>"):].split("</think>")
    if not think.strip():
        return False
    if domain == "code":
        return after.count("```") == 2 and verify.extract_code(text) is not None
    return len(verify.BOXED_RE.findall(after)) == 1 and verify.extract_answer(text) is not None


def format_reward(completions, **kwargs) -> list[float]:
    """1.0 iff exactly one leading think block and exactly one final answer after it."""
    n = len(completions)
    domains = _column(kwargs, "domain", n, "math")
    return [float(format_ok(t, d)) for t, d in zip(_texts(completions), domains)]


def _code_reward(completions, fraction: bool, kwargs) -> list[float | None]:
    n = len(completions)
    tests = _column(kwargs, "tests", n, required=True)
    domains = _column(kwargs, "domain", n, "code")
    metas = _column(kwargs, "meta", n, "")
    texts = _texts(completions)
    rows = [i for i in range(n) if domains[i] == "code"]
    out: list[float | None] = [None] * n
    results = _run_code([texts[i] for i in rows], [tests[i] for i in rows], [metas[i] for i in rows])
    for i, r in zip(rows, results):
        if r is None:
            out[i] = 0.0
        elif fraction:
            out[i] = r.n_passed / r.n_total if r.passed or r.status == "failed" else 0.0
        else:
            out[i] = float(r.passed)
    return out


def code_tests_reward(completions, **kwargs) -> list[float | None]:
    """Binary: 1.0 iff the last python block after </think> passes all tests; None on non-code rows."""
    return _code_reward(completions, False, kwargs)


def code_tests_fraction_reward(completions, **kwargs) -> list[float | None]:
    """Fraction of test cases passed (0 when the program crashed, timed out or exited early)."""
    return _code_reward(completions, True, kwargs)


def stem_reward(completions, **kwargs) -> list[float | None]:
    """1.0 iff a stem row's letter (meta has choices) or value-with-unit is right; None on other rows."""
    rows = _rows(kwargs, len(completions), "stem")
    texts = _texts(completions)
    stem = [i for i, r in enumerate(rows) if r["domain"] == "stem"]
    out: list[float | None] = [None] * len(rows)
    for i, g in zip(stem, evaluation.grade([rows[i] for i in stem], [texts[i] for i in stem])):
        out[i] = float(g["correct"])
    return out


def _prompt_text(prompt) -> str:
    """A trl prompt (chat messages or a string) as the problem text."""
    if isinstance(prompt, str):
        return prompt
    return "\n".join(m.get("content", "") for m in prompt if isinstance(m, dict) and m.get("role") != "system")


def faithful_accuracy_reward(completions, prompts=None, **kwargs) -> list[float]:
    """1.0 iff the answer is right (`accuracy_reward`) and the trace carries it (`vtkit.faithful`: every
    arithmetic step right under the task's modulus, operands from the problem or earlier steps, the boxed
    answer = the trace's last result). Math rows only (others: accuracy alone). Needs trl's `prompts`."""
    from vtkit import faithful
    acc = accuracy_reward(completions, **kwargs)
    if prompts is None:
        raise ValueError("faithful_accuracy_reward needs the prompts (trl passes them as `prompts`)")
    rows, texts = _rows(kwargs, len(completions), "math"), _texts(completions)
    out = []
    for a, row, p, t in zip(acc, rows, prompts, texts):
        if a and row["domain"] == "math":
            a = float(faithful.trace_faithful({"prompt": _prompt_text(p), "meta": row["meta"]}, t)["faithful"])
        out.append(a)
    return out


REWARDS = {
    "accuracy": accuracy_reward,
    "faithful_accuracy": faithful_accuracy_reward,
    "format": format_reward,
    "code_tests": code_tests_reward,
    "code_tests_fraction": code_tests_fraction_reward,
    "stem": stem_reward,
}

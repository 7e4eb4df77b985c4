"""IFEval as the reference defines it: input data, response files, strict/loose grading, the four metrics.

    from vtkit import ifeval
    items = ifeval.load_input_data()                       # Google's 541 prompts (shipped in vtkit/data)
    responses = ifeval.read_responses("responses.jsonl", items)   # {"prompt", "response"} per line
    strict, loose = ifeval.grade(items, responses)         # Google's OutputExample dicts, per item
    ifeval.metrics(strict, loose)                          # prompt_level_strict_acc, inst_level_strict_acc, ...
    ifeval.write_results(strict, loose, "out/")            # eval_results_{strict,loose}.jsonl + metrics.json

The checkers are `vtkit.ifeval_checks` (IFEval's semantics, see its docstring); this module adds what
Google's `evaluation_main` / lm-eval's `ifeval` task do around them:
- responses are matched to prompts by the prompt text (Google's `read_prompt_to_response_dict`);
- per item, `follow_instruction_list` (one bool per instruction) and `follow_all_instructions`;
- metrics with lm-eval's names and IFEval's definitions: prompt level = share of items whose every
  instruction is followed; instruction level = all followed instructions over all instructions
  (pooled, not a mean of per-item shares). With several samples per item every (item, sample) pair
  counts once, as lm-eval does with repeats.

Departures: kwargs drop None values (the hub's parquet fills unused arguments with None); lm-eval
drops every falsy value (0, ""), which only differs for kwargs IFEval never writes. Responses that
contain `</think>` are graded on the text after it (vtkit.ifeval_checks.answer_text); IFEval's own
responses never contain it.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

from vtkit import ifeval_checks

METRICS = ("prompt_level_strict_acc", "inst_level_strict_acc", "prompt_level_loose_acc", "inst_level_loose_acc")
INPUT_FIELDS = ("key", "prompt", "instruction_id_list", "kwargs")


class IFEvalError(ValueError):
    """Bad IFEval input: the message names the file, the line and the fix."""


def default_input_data() -> Path:
    """Google's IFEval `input_data.jsonl` (541 prompts, Apache-2.0), shipped with vtkit."""
    return Path(str(resources.files("vtkit") / "data" / "ifeval_input_data.jsonl"))


def jsonl_rows(path, what: str, error: type = IFEvalError):
    """(line number, dict) for every non-blank line of a JSON-lines file; `error` (naming the file,
    the line and the fix) for a line that is not a JSON object (vtkit.runinfo.jsonl_rows)."""
    from vtkit import runinfo
    return runinfo.jsonl_rows(path, what, error)


def load_input_data(path=None) -> list[dict]:
    """IFEval items (`key`, `prompt`, `instruction_id_list`, `kwargs`) from Google's input_data.jsonl
    or the hub's rows saved as jsonl; every instruction id must be one vtkit can check."""
    path = Path(path) if path is not None else default_input_data()
    items = []
    for n, row in jsonl_rows(path, "IFEval input data"):
        missing = [k for k in ("prompt", "instruction_id_list", "kwargs") if k not in row]
        if missing:
            raise IFEvalError(f"{path}:{n}: missing field(s) {missing}; IFEval input data has {list(INPUT_FIELDS)} "
                              "per line (Google's data/input_data.jsonl)")
        ids = list(row["instruction_id_list"])
        kwargs = row["kwargs"]
        if not isinstance(kwargs, list) or len(kwargs) != len(ids):
            raise IFEvalError(f"{path}:{n}: {len(ids)} instruction ids but kwargs is {kwargs!r:.80}; give one "
                              "dict of arguments per instruction id")
        unknown = [i for i in ids if i not in ifeval_checks.CHECKERS]
        if unknown:
            raise IFEvalError(f"{path}:{n}: unknown instruction id(s) {unknown}; vtkit checks IFEval's 25 ids "
                              "(vtkit.ifeval_checks.CHECKERS); other benchmarks' constraints need their own checkers")
        items.append({"key": row.get("key", n), "prompt": row["prompt"], "instruction_id_list": ids,
                      "kwargs": [{k: v for k, v in (d or {}).items() if v is not None} for d in kwargs],
                      "line": n})
    if not items:
        raise IFEvalError(f"{path}: no items; expected Google's IFEval input_data.jsonl")
    return items


def read_responses(path, items: list[dict]) -> list[str]:
    """Responses in IFEval's `input_response_data` format (`{"prompt", "response"}` per line), one per
    item of `items`, matched by prompt text. Errors name the line: a missing field, a prompt not in
    the data, two different responses to one prompt, or an item without a response."""
    path = Path(path)
    by_prompt: dict[str, tuple[int, str]] = {}
    known = {it["prompt"] for it in items}
    for n, row in jsonl_rows(path, "response"):
        missing = [k for k in ("prompt", "response") if k not in row]
        if missing:
            raise IFEvalError(f"{path}:{n}: missing field(s) {missing}; each line must be "
                              '{"prompt": <the IFEval prompt, verbatim>, "response": <the model\'s text>}')
        if not isinstance(row["response"], str):
            raise IFEvalError(f"{path}:{n}: response must be a string, got {type(row['response']).__name__}")
        p = row["prompt"]
        if p not in known:
            raise IFEvalError(f"{path}:{n}: prompt {p[:60]!r}... is not in the IFEval data; the response file "
                              "must come from the same input_data.jsonl (pass it with --data), prompts verbatim")
        if p in by_prompt and by_prompt[p][1] != row["response"]:
            raise IFEvalError(f"{path}:{n}: a second, different response to the prompt of line {by_prompt[p][0]}; "
                              "keep one response per prompt")
        by_prompt[p] = (n, row["response"])
    lacking = [it for it in items if it["prompt"] not in by_prompt]
    if lacking:
        first = lacking[0]
        raise IFEvalError(f"{path}: no response for {len(lacking)} of {len(items)} prompts (first: key "
                          f"{first['key']}, data line {first['line']}: {first['prompt'][:60]!r}...); give one line "
                          "per prompt of the data file")
    return [by_prompt[it["prompt"]][1] for it in items]


def grade_one(item: dict, response: str, *, options=None) -> tuple[dict, dict]:
    """Google's OutputExample (as a dict) for one response, strict and loose."""
    out = []
    for check in (ifeval_checks.check_strict, ifeval_checks.check_loose):
        follow = check(response, item["instruction_id_list"], item["kwargs"], options=options)
        out.append({"instruction_id_list": list(item["instruction_id_list"]), "prompt": item["prompt"],
                    "response": response, "follow_all_instructions": all(follow),
                    "follow_instruction_list": follow})
    return out[0], out[1]


def grade(items: list[dict], responses: list[str], *, options=None) -> tuple[list[dict], list[dict]]:
    """Strict and loose results, one per item, in Google's eval_results format."""
    if len(items) != len(responses):
        raise IFEvalError(f"{len(items)} items but {len(responses)} responses; give one response per item")
    pairs = [grade_one(it, r, options=options) for it, r in zip(items, responses)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def metrics(strict: list, loose: list) -> dict:
    """The four IFEval metrics (lm-eval's names) from per-item follow lists (or OutputExample dicts)."""
    def follows(rows):
        return [r["follow_instruction_list"] if isinstance(r, dict) else list(r) for r in rows]
    out = {}
    for level, rows in (("strict", follows(strict)), ("loose", follows(loose))):
        if not rows:
            raise IFEvalError("no graded items: nothing to average")
        n_inst = sum(len(f) for f in rows)
        out[f"prompt_level_{level}_acc"] = sum(all(f) for f in rows) / len(rows)
        out[f"inst_level_{level}_acc"] = sum(sum(f) for f in rows) / n_inst if n_inst else 0.0
    return {k: out[k] for k in METRICS}


def write_results(strict: list[dict], loose: list[dict], out_dir) -> dict:
    """eval_results_strict.jsonl / eval_results_loose.jsonl (Google's format) and metrics.json
    (the four metrics and n_items) in `out_dir`; returns the metrics."""
    from vtkit import runinfo
    out = Path(out_dir)
    for name, rows in (("strict", strict), ("loose", loose)):   # Google's key order, text as UTF-8
        runinfo.write_jsonl(out / f"eval_results_{name}.jsonl", rows, sort_keys=False, ensure_ascii=False)
    m = {**metrics(strict, loose), "n_items": len(strict)}
    runinfo.write_json(out / "metrics.json", m)
    return m


def per_instruction(strict: list[dict]) -> dict[str, tuple[int, int]]:
    """{instruction id: (followed, total)} over graded items (for tables)."""
    out: dict[str, list[int]] = {}
    for r in strict:
        for iid, ok in zip(r["instruction_id_list"], r["follow_instruction_list"]):
            c = out.setdefault(iid, [0, 0])
            c[0] += bool(ok)
            c[1] += 1
    return {k: (v[0], v[1]) for k, v in sorted(out.items())}

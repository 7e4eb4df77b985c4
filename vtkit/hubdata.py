"""Training data from the hub: public math and code datasets in vtkit's record schema.

    from vtkit import hubdata
    ds = hubdata.load("deepscaler", n=2000, seed=0, benchmarks=["aime24", "aime25"])  # RL prompts
    test = hubdata.load("deepscaler", split="test", n=500)         # held-out, never in train
    ds = hubdata.load("openr1_math", path="OpenR1-Math-220k/")     # a local copy (hub snapshot)
    groups = hubdata.make_groups({"math": {"source": "openr1_math", "n": 4000, "n_heldout": 256}},
                                 {"math/add": {...}, "stem": {...}}, split="train")

`make_groups(hub, spec, ...)` is `vtkit.tasks.make_groups(spec, ...)` with the groups of the hub
groups' domains read from the hub: a hub group replaces every group of `spec` of its domain (the
name before "/" or `domain:`), and is not read when `spec` has none; the other groups stay
generated; `hub` None is tasks.make_groups itself. The stages' `hub_data` setting is its `hub`
argument (set at the paper presets of vtkit/presets/sft.yaml and rl.yaml). A hub group: `source` (a
name of `SOURCES`), `n` (train rows), `n_heldout` (held-out rows; both default to make_groups' `n`,
as RL's n_prompts / n_heldout), `path` (a local copy), `benchmarks` (vtkit.evalsets names to
decontaminate against), `overlap_n` (n-gram length, default 10; None = whole texts).

Sources (`SOURCES`; the columns as on the hub):
- `deepscaler`: agentica-org/DeepScaleR-Preview-Dataset (`deepscaler.json`: problem, answer,
  solution). Math RL prompts (AIME/AMC/Omni-MATH/STILL); `solutions` is the human solution in a
  think block when there is one.
- `openr1_math`: open-r1/OpenR1-Math-220k, config `default` (`data/train-*.parquet`: problem,
  solution, answer, problem_type, question_type, source, uuid, is_reasoning_complete, generations,
  correctness_math_verify, correctness_llama, finish_reasons, correctness_count, messages). Math
  SFT: `solutions` are the DeepSeek-R1 generations that math-verify verified
  (correctness_math_verify), complete (is_reasoning_complete, finish reason `stop`) and with a
  boxed answer after `</think>`; a problem with none is skipped; `subdomain` is problem_type.
- `verifiable_coding`: open-r1/verifiable-coding-problems-python (`data/train-*.parquet`: source,
  task_type, in_source_id, problem_statement, gold_standard_solution, problem_id, metadata{difficulty,
  memory_limit, memory_limit_bytes, problem_url, time_limit}, verification_info{language,
  test_cases[{fn_name, input, output, type}]}). Code with tests vtkit.sandbox runs: `tests` is the
  JSON list of stdin/stdout cases (the docs/contracts.md form; the sandbox compares output lines
  without trailing whitespace, close to open-r1's line-by-line code reward); `answer` is the gold
  program; `difficulty` 1-3 from metadata.difficulty (introductory/easy, interview/medium, hard/
  competition), 0 when unnamed. Chosen over assert-style sets because its cases are plain
  stdin/stdout pairs from competitive programming (the LiveCodeBench kind the reports evaluate on).

Where the rows come from, in order (as vtkit.evalsets): `path` (a `save_to_disk` folder; a hub
snapshot folder, e.g. from `hf download REPO --repo-type dataset --local-dir DIR`, whose files of
the source's config are read, `SOURCES[name].files`; a data file; or a `datasets.load_dataset`
data_files glob), `$VTKIT_DATA_DIR/<name>` (a folder, or a file `<name>.<parquet|jsonl|json>`), the
hub through `datasets.load_dataset`. With the hub unreachable
(HF_HUB_OFFLINE, no network) the error says how to make and pass a local copy.

Splits and decontamination: a problem's split is `vtkit.tasks.split_of` of its normalised text
(10% test, 10% validation, 80% train, the same for every source and seed, so a problem held out in
one source is held out in all). Duplicated problems are read once. Rows of the train split are
dropped when they share an `overlap_n`-gram with any test- or validation-split problem of the source
(the held-out splits, `n_heldout` rows) or with a prompt of `benchmarks`, after vtkit's and the
benchmarks' answer-format instructions are removed (`IGNORE`), the way `vtkit.tasks.decontaminate`
treats the generated tasks; the counts are printed. `n` rows are then taken in a seeded order
(`seed`); asking for more than are left is an error that gives the counts.

Where it departs from the hub data: prompts are the problem plus vtkit's answer instruction
(`vtkit.tasks` BOXED_INSTRUCTION for math, `CODE_SUFFIX` for code), not DeepScaleR's "Let's think
step by step ..." (the benchmarks' `evalsets.MATH_SUFFIX`: a training prompt ending in it would share
a 10-gram with every benchmark prompt in a decontamination that does not remove it); the code
statements lose the dataset's "Solve the following coding problem ..." header and "The input will
be stdin ... return the code." trailer (shared by every row: a 10-gram match of all with all).
Code problems whose cases are `function_call` (a call on `fn_name`) are skipped, not converted (their
argument encoding is not documented); cases are compared exactly (no checker for problems with
several right outputs). Code rows carry no reasoning trace (`solutions` is empty): SFT on them needs
the stage's teacher. DeepScaleR answers are taken as given (a few hub answers are reported wrong).
"""
from __future__ import annotations

import glob
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import datasets

from vtkit import evalsets, tasks, verify
from vtkit.tasks.common import BOXED_INSTRUCTION, SPLITS, boxed_solution, normalize, split_of, stable_int

CODE_SUFFIX = "Answer with a ```python program."   # five words: a 10-gram cannot sit inside it
IGNORE = tasks.BOILERPLATE + tuple(re.escape(s) for s in (
    CODE_SUFFIX, evalsets.MATH_SUFFIX, evalsets.GPQA_SUFFIX, evalsets.KNOWLEDGE_SUFFIX))
SPEC_KEYS = ("source", "n", "n_heldout", "path", "benchmarks", "overlap_n")
_DATA_EXT = {".parquet": "parquet", ".jsonl": "json", ".json": "json", ".gz": "json"}
_CODE_HEAD = re.compile(r"\A\s*Solve the following coding problem using the programming language \w+\s*:\s*", re.I)
_CODE_TAIL = re.compile(r"\s*(The input will be [^\n]*?stdout[^\n]*)?\s*"
                        r"(Now solve the problem and return the code\.?)?\s*\Z", re.I)
_FENCE = re.compile(r"\A\s*```[ \t]*(?:python3?|py)?[ \t]*\n(.*?)\n?```\s*\Z", re.S)
_CODE_LEVEL = {"introductory": 1, "easy": 1, "interview": 2, "medium": 2, "medium_hard": 2, "hard": 3,
               "very_hard": 3, "competition": 3}


@dataclass(frozen=True)
class Source:
    hub: str                            # hub dataset id
    config: str | None                  # hub config
    files: tuple                        # the config's data files in a hub snapshot (globs)
    domain: str                         # record domain: how vtkit grades it
    text: tuple                         # the problem column (first present)
    required: tuple                     # other columns a copy must have to be in the hub's format
    convert: Callable                   # hub row -> record fields, or None when the row is unusable


def _answer(a) -> str:
    """A gold answer as the math grader reads it: `$...$` and a whole `\\boxed{...}` unwrapped."""
    a = str(a or "").strip()
    if len(a) > 1 and a[0] == a[-1] == "$":
        a = a.strip("$").strip()
    m = re.fullmatch(r"\\boxed\s*\{(.*)\}", a, re.S)
    return m[1].strip() if m else a


def _problem(text) -> str:
    return str(text or "").strip()


def _deepscaler(row: dict) -> dict | None:
    problem, answer = _problem(row["problem"]), _answer(row.get("answer"))
    if not problem or not answer:
        return None
    sol = str(row.get("solution") or "").strip()
    return dict(subdomain="", prompt=f"{problem}\n{BOXED_INSTRUCTION}", answer=answer,
                solutions=[boxed_solution(sol, answer)] if sol else [], meta={"question": problem})


def _trace(g: str) -> str | None:
    """An R1 generation as a vtkit completion: `<think>...</think>` then a boxed answer; else None."""
    g = str(g or "").strip()
    if "</think>" not in g:
        return None
    if not g.startswith("<think>"):
        g = "<think>\n" + g
    return g if verify.extract_answer(g) is not None else None


def _verified(row: dict) -> list[str]:
    ok, done, finish = (list(row.get(k) or []) for k in ("correctness_math_verify", "is_reasoning_complete",
                                                         "finish_reasons"))
    out = []
    for i, g in enumerate(row.get("generations") or []):
        if not (i < len(ok) and ok[i]) or (i < len(done) and not done[i]) \
                or (i < len(finish) and finish[i] not in (None, "stop")):
            continue
        t = _trace(g)
        if t is not None and t not in out:
            out.append(t)
    return out


def _openr1(row: dict) -> dict | None:
    problem, answer = _problem(row["problem"]), _answer(row.get("answer"))
    sols = _verified(row)
    if not problem or not answer or not sols:
        return None
    return dict(subdomain=str(row.get("problem_type") or ""), prompt=f"{problem}\n{BOXED_INSTRUCTION}",
                answer=answer, solutions=sols,
                meta={"question": problem, "source_id": row.get("uuid"), "origin": row.get("source"),
                      "question_type": row.get("question_type"), "n_generations": len(row.get("generations") or [])})


def code_statement(text) -> str:
    """The problem statement without the dataset's shared header and trailer."""
    return _CODE_TAIL.sub("", _CODE_HEAD.sub("", str(text or ""))).strip()


def _program(src) -> str:
    src = str(src or "")
    m = _FENCE.match(src)
    return (m[1] if m else src).strip("\n") + "\n"


def _maybe_json(v):
    return json.loads(v) if isinstance(v, str) else v


def _coding(row: dict) -> dict | None:
    statement = code_statement(_get(row, CODING_TEXT))
    info = _maybe_json(row.get("verification_info")) or {}
    cases = _maybe_json(info.get("test_cases")) or []
    if not statement or not cases or str(info.get("language", "python")).lower() != "python":
        return None
    if any(c.get("type", "stdin_stdout") != "stdin_stdout" or c.get("fn_name") for c in cases):
        return None   # function_call cases: skipped (module docstring)
    meta = _maybe_json(row.get("metadata")) or {}
    level = str(meta.get("difficulty") or "").strip()
    tests = json.dumps([{"input": str(c["input"]), "output": str(c["output"])} for c in cases])
    return dict(subdomain="stdin", prompt=f"{statement}\n\n{CODE_SUFFIX}",
                answer=_program(row.get("gold_standard_solution")), tests=tests, solutions=[],
                difficulty=_CODE_LEVEL.get(level.lower().replace(" ", "_"), 0),
                meta={"question": statement, "source_id": row.get("problem_id"), "origin": row.get("source"),
                      "in_source_id": row.get("in_source_id"), "level": level, "url": meta.get("problem_url"),
                      "time_limit": meta.get("time_limit"), "memory_limit": meta.get("memory_limit"),
                      "n_tests": len(cases)})


CODING_TEXT = ("problem_statement", "problem", "prompt")   # the hub's name, then older revisions'
SOURCES = {
    "deepscaler": Source("agentica-org/DeepScaleR-Preview-Dataset", None, ("deepscaler.json",), "math",
                         ("problem",), ("answer",), _deepscaler),
    "openr1_math": Source("open-r1/OpenR1-Math-220k", "default", ("data/train-*.parquet",), "math",
                          ("problem",), ("answer", "generations", "correctness_math_verify"), _openr1),
    "verifiable_coding": Source("open-r1/verifiable-coding-problems-python", None, ("data/train-*.parquet",),
                                "code", CODING_TEXT, ("gold_standard_solution", "verification_info"), _coding),
}


def _get(row: dict, keys):
    for k in keys:
        if row.get(k) is not None:
            return row[k]
    raise KeyError(f"none of the columns {list(keys)} in a row with columns {sorted(row)}")


# --------------------------------------------------------------------------- where rows come from

def _source(name: str) -> Source:
    if name not in SOURCES:
        raise ValueError(f"unknown hub source {name!r}; valid names: {', '.join(SOURCES)}")
    return SOURCES[name]


def need_local(name: str, why: str) -> str:
    """The error text for a source the hub could not give: how to make and pass a local copy."""
    src = _source(name)
    cfg = f", {src.config!r}" if src.config else ""
    return (f"hub dataset {src.hub!r} (vtkit.hubdata source {name!r}) could not be loaded: {why}. "
            f"It needs a local copy in the hub's format: where the network allows, run `hf download "
            f"{src.hub} --repo-type dataset --local-dir DIR` (or `datasets.load_dataset({src.hub!r}{cfg}, "
            f"split='train').save_to_disk(DIR)`); then put it at $VTKIT_DATA_DIR/{name} (a folder, or a file "
            f"{name}.<parquet|jsonl|json>), or pass its path: a stage's hub_data group takes `path: DIR` (e.g. "
            f"--set 'hub_data={{math: {{source: {name}, path: DIR, n: ..., n_heldout: ...}}}}'), Python "
            f"vtkit.hubdata.load({name!r}, path=DIR); a path may also be a datasets.load_dataset data_files glob "
            f"such as 'DIR/{src.files[0]}'")


def _data_files(src: Source, path: str) -> list[str]:
    """The data files a local path names: a glob, a file, or a folder (the source's own files first)."""
    if glob.has_magic(path):
        files = sorted(glob.glob(path, recursive=True))
        if not files:
            raise FileNotFoundError(f"no file matches {path!r}")
        return files
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"local copy {p} does not exist")
    if p.is_file():
        return [str(p)]
    for pattern in src.files:
        files = sorted(str(f) for f in p.glob(pattern) if f.is_file())
        if files:
            return files
    files = sorted(str(f) for f in p.rglob("*") if f.is_file() and f.suffix in _DATA_EXT
                   and not any(part.startswith(".") for part in f.relative_to(p).parts))
    if not files:
        raise ValueError(f"{p} holds neither {list(src.files)} (the hub's files) nor other data files "
                         f"({', '.join(_DATA_EXT)}) and is not a save_to_disk folder")
    return files


def _read_local(src: Source, path) -> datasets.Dataset:
    p = Path(str(path))
    if p.is_dir() and (p / "dataset_dict.json").exists():
        dd = datasets.load_from_disk(str(p))
        if "train" not in dd and len(dd) != 1:
            raise ValueError(f"{p} holds splits {list(dd)}; vtkit reads `train` (or a single split)")
        return dd["train"] if "train" in dd else next(iter(dd.values()))
    if p.is_dir() and (p / "state.json").exists():
        return datasets.load_from_disk(str(p))
    files = _data_files(src, str(path))
    kinds = {_DATA_EXT.get(Path(f).suffix) for f in files}
    if len(kinds) != 1 or None in kinds:
        raise ValueError(f"{path}: data files of one kind expected (parquet or json/jsonl), got {files[:5]}")
    return datasets.load_dataset(kinds.pop(), data_files=files, split="train")


def _hub_reachable() -> bool:
    return evalsets._reachable(*evalsets._hub_addr())


def read(name: str, path=None) -> datasets.Dataset:
    """The raw rows of source `name` (the hub's columns) as a datasets.Dataset (module docstring: from where)."""
    src = _source(name)
    path = path if path is not None else evalsets._local_default(name, _DATA_EXT)
    if path is not None:
        ds = _read_local(src, path)
    else:
        try:
            with evalsets._offline(not _hub_reachable()):
                ds = datasets.load_dataset(src.hub, src.config, split="train")
        except Exception as e:  # noqa: BLE001 - every failure here means "use a local copy"
            raise RuntimeError(need_local(name, f"{type(e).__name__}: {e}")) from e
    missing = [c for c in src.required if c not in ds.column_names]
    if missing or not any(c in ds.column_names for c in src.text):
        raise ValueError(f"{name}: the data at {path or src.hub} has columns {ds.column_names}, not the hub's "
                         f"{src.hub} format (needs {list(src.required)} and one of {list(src.text)}); see "
                         "vtkit.hubdata's docstring")
    return ds


# ------------------------------------------------------------------------------------ selection

def _prompt_text(src: Source, text: str) -> str:
    """What decontamination compares: the problem as the prompt shows it."""
    return code_statement(text) if src.domain == "code" else _problem(text)


def select(name: str, split: str = "train", n: int | None = None, seed: int = 0, *, path=None,
           benchmarks=(), overlap_n: int | None = 10, against=()) -> tuple[list[dict], dict]:
    """(records, counts): `n` records (None = all) of `split`; train is decontaminated.

    `benchmarks`: vtkit.evalsets names; `against`: more evaluation records or prompts to
    decontaminate against. Counts: rows, distinct, in_split, overlap_heldout, overlap_benchmarks,
    unusable (rows the converter skipped), out."""
    src = _source(name)
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: use one of {sorted(SPLITS)}")
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 0):
        raise ValueError(f"n must be a non-negative int or None (all rows), got {n!r}")
    ds = read(name, path)
    col = next(c for c in src.text if c in ds.column_names)
    texts = [_prompt_text(src, t) for t in ds[col]]
    first: dict[str, int] = {}
    for i, t in enumerate(texts):
        k = normalize(t)
        if k:
            first.setdefault(k, i)
    cand = [(k, i) for k, i in first.items() if split_of(k) == split]
    counts = {"rows": len(ds), "distinct": len(first), "in_split": len(cand), "overlap_heldout": 0,
              "overlap_benchmarks": 0}
    if split == "train":
        held = [texts[i] for k, i in first.items() if split_of(k) != "train"]
        bench = [r["prompt"] for b in benchmarks for r in evalsets.load(b)]
        bench += [r if isinstance(r, str) else r["prompt"] for r in against]
        for what, ref in (("overlap_heldout", held), ("overlap_benchmarks", bench)):
            if ref and cand:
                kept = tasks.decontaminate([{"prompt": texts[i], "k": k, "i": i} for k, i in cand], ref,
                                           n=overlap_n, ignore=IGNORE)
                counts[what] = len(cand) - len(kept)
                cand = [(r["k"], r["i"]) for r in kept]
    cand.sort(key=lambda ki: stable_int("hubdata", name, seed, split, ki[0]))
    out, unusable = [], 0
    for k, i in cand:
        if n is not None and len(out) == n:
            break
        fields = src.convert(dict(ds[i]))
        if fields is None:
            unusable += 1
            continue
        out.append(_record(name, src, split, k, **fields))
    counts.update(unusable=unusable, out=len(out))
    if n is not None and len(out) < n:
        raise ValueError(f"{name}: only {len(out)} usable {split} rows, {n} asked ({counts}); ask for fewer, "
                         "or (train) decontaminate less: fewer benchmarks or a longer overlap_n")
    return out, counts


def _record(name, src, split, key, *, subdomain, prompt, answer, solutions, meta, tests="", difficulty=0) -> dict:
    meta = {"hub": src.hub, "source": name, **{k: v for k, v in meta.items() if v is not None}}
    return {"id": f"{name}-{split}-{stable_int(key) % 16**10:010x}", "domain": src.domain, "subdomain": subdomain,
            "prompt": prompt, "answer": str(answer), "tests": tests, "difficulty": int(difficulty),
            "solutions": list(solutions), "meta": json.dumps(meta, ensure_ascii=False, sort_keys=True)}


def load(name: str, split: str = "train", n: int | None = None, seed: int = 0, **kw):
    """`select`'s records as a datasets.Dataset (the record schema of docs/contracts.md); prints the counts."""
    records, counts = select(name, split, n, seed, **kw)
    print(f"hub {name} {split}: {json.dumps(counts)}")
    return tasks.to_dataset(records)


# ---------------------------------------------------------------------------------------- groups

def check_spec(hub: dict) -> dict:
    """A stage's `hub_data`: {group: {source, n, n_heldout, path, benchmarks, overlap_n}}, checked."""
    if not isinstance(hub, dict) or not hub:
        raise ValueError(f"hub_data must be a non-empty dict group -> {{source: NAME, n: ..., n_heldout: ...}}, "
                         f"got {hub!r}")
    for g, s in hub.items():
        if not isinstance(s, dict) or "source" not in s:
            raise ValueError(f"hub_data[{g!r}] needs `source` (one of {', '.join(SOURCES)}), got {s!r}")
        _source(s["source"])
        bad = sorted(set(s) - set(SPEC_KEYS))
        if bad:
            raise ValueError(f"hub_data[{g!r}] has unknown key(s) {bad}; valid keys: {', '.join(SPEC_KEYS)}")
        if not isinstance(s.get("benchmarks") or [], list):
            raise ValueError(f"hub_data[{g!r}].benchmarks must be a list of vtkit.evalsets names, "
                             f"got {s['benchmarks']!r}")
    return hub


def _domain(name, settings) -> str:
    return (settings or {}).get("domain", str(name).split("/")[0])


def _count(group: str, s: dict, n, split: str) -> int:
    key = "n" if split == "train" else "n_heldout"
    own = s.get(key)
    if own is None and isinstance(n, dict):
        own = n.get(group)
    elif own is None:
        own = n
    if own is None:
        raise ValueError(f"hub_data[{group!r}] needs `{key}` (rows of the {split} split), or pass n= per group")
    return own


def make_groups(hub: dict | None, spec: dict, n: int | dict | None = None, seed: int = 0,
                split: str = "train") -> dict[str, list[dict]]:
    """`vtkit.tasks.make_groups(spec, n, seed, split)` with every group of a hub group's domain
    replaced by that hub group's records (read only when `spec` has a group of its domain; `n` and
    `n_heldout` default to `n`). `hub` None: tasks.make_groups itself."""
    if hub is None:
        return tasks.make_groups(spec, n, seed=seed, split=split)
    hub = check_spec(hub)
    if not isinstance(spec, dict) or not spec:
        raise ValueError(f"spec must be a non-empty dict group -> settings, got {spec!r}")
    by_domain: dict[str, list[str]] = {}
    for g, s in hub.items():
        by_domain.setdefault(SOURCES[s["source"]].domain, []).append(g)
    out: dict[str, list[dict]] = {}
    for name, settings in spec.items():
        d = _domain(name, settings)
        if d not in by_domain:
            out.update(tasks.make_groups({name: settings}, n, seed=seed, split=split))
            continue
        for g in by_domain[d]:
            if g in out:
                continue
            s = hub[g]
            recs, counts = select(s["source"], split, _count(g, s, n, split), seed, path=s.get("path"),
                                  benchmarks=s.get("benchmarks") or (), overlap_n=s.get("overlap_n", 10))
            print(f"hub {g} ({s['source']}, {split}) replaces the generated {d} groups: {json.dumps(counts)}")
            out[g] = recs
    return out

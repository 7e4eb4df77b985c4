"""Shared plumbing of the task generators: seeded RNGs, split partitioning, difficulty parsing,
text normalisation and the record schema of docs/contracts.md.

Splits. A problem's split is a pure function of its canonical key (a string that names the problem
up to presentation, e.g. a math graph with its statements sorted): sha256(key) mod 100 falls in
test [0, 10), validation [10, 20) or train [20, 100). Generators draw candidates from an RNG seeded
by (domain, seed, split) and keep only candidates whose key lands in the requested split, so a
`test` problem never appears in `train` for any seed, not only for the same one.
"""
import hashlib
import json
import random
import re

SPLITS = {"test": (0, 10), "validation": (10, 20), "train": (20, 100)}  # 10% / 10% / 80% of each problem space
BOXED_INSTRUCTION = "Answer with \\boxed{...}."
FIELDS = ("id", "domain", "subdomain", "prompt", "answer", "tests", "difficulty", "solutions", "meta")


def stable_int(*parts) -> int:
    """A 64-bit integer from the parts, identical on every machine and Python run (unlike hash())."""
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def rng_for(domain: str, seed: int, split: str, *extra) -> random.Random:
    """The generator's RNG: the split (and `extra`, e.g. the difficulty range) is mixed in, so
    train and test, or two difficulty ranges, draw independent streams."""
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {seed!r}")
    return random.Random(stable_int(domain, seed, split, *extra))


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: use one of {sorted(SPLITS)}")
    return split


def split_of(key: str) -> str:
    """The split a problem with this canonical key belongs to (same answer everywhere, forever)."""
    bucket = stable_int("split", key) % 100
    for name, (lo, hi) in SPLITS.items():
        if lo <= bucket < hi:
            return name
    raise AssertionError(bucket)


def difficulty_range(difficulty, default, levels=None, domain="") -> tuple[int, int]:
    """Normalise `difficulty` (None, an int, or a (lo, hi) pair, inclusive) to (lo, hi).

    `levels` is the (min, max) a domain supports; None means unbounded above (math)."""
    if difficulty is None:
        difficulty = default
    if isinstance(difficulty, bool):
        raise TypeError(f"difficulty must be an int or a (lo, hi) pair, got {difficulty!r}")
    if isinstance(difficulty, int):
        lo = hi = difficulty
    elif isinstance(difficulty, (tuple, list)) and len(difficulty) == 2 and all(
            isinstance(d, int) and not isinstance(d, bool) for d in difficulty):
        lo, hi = difficulty
    else:
        raise TypeError(f"difficulty must be an int or a (lo, hi) pair of ints, got {difficulty!r}")
    if lo < 1 or hi < lo:
        raise ValueError(f"difficulty {difficulty!r} for {domain}: need 1 <= lo <= hi")
    if levels is not None and (lo < levels[0] or hi > levels[1]):
        raise ValueError(f"{domain} has difficulty levels {levels[0]}..{levels[1]}, got {difficulty!r}")
    return lo, hi


_PUNCT = re.compile(r"[^\w\s]|_")
_SPACE = re.compile(r"\s+")


def normalize(text: str) -> str:
    """Lowercase, punctuation -> space (so '5+7' stays two tokens), whitespace collapsed."""
    return _SPACE.sub(" ", _PUNCT.sub(" ", text.lower())).strip()


def boxed_solution(think: str, answer: str) -> str:
    """A reference completion in the form the verifiers grade: think block, then the boxed answer."""
    return f"<think>\n{think.strip()}\n</think>\nThe answer is \\boxed{{{answer}}}."


def record(domain, split, seed, index, difficulty, key, subdomain, prompt, answer, solutions,
           meta, tests="") -> dict:
    """One row of the schema; the id ends with a short hash of the canonical key so ids from
    different make() calls (other difficulty ranges, say) never collide for different problems."""
    rid = f"{domain}-{split}-s{seed}-d{difficulty}-{index:05d}-{stable_int(key) % 16**6:06x}"
    return {"id": rid, "domain": domain, "subdomain": subdomain, "prompt": prompt, "answer": str(answer),
            "tests": tests, "difficulty": int(difficulty), "solutions": list(solutions),
            "meta": json.dumps(meta, sort_keys=True)}


def draw(n: int, split: str, sample, what: str, max_tries: int | None = None) -> list:
    """Call sample() -> (key, item) until n items with distinct keys that belong to `split`.

    `item` may be a zero-argument callable: it is then called only for accepted keys, so the
    expensive part of a problem (solutions, tests) is built only for problems that are kept; an item
    of None is a candidate the generator rejected (e.g. held-out arithmetic) and is skipped.

    Raises a clear error when the problem space of this configuration is (nearly) exhausted."""
    check_split(split)
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")
    max_tries = max_tries or 200 * n + 2000
    seen, out = set(), []
    for _ in range(max_tries):
        if len(out) == n:
            return out
        key, item = sample()
        if key is None:  # the source ran dry
            break
        if item is None or key in seen or split_of(key) != split:
            continue
        seen.add(key)
        out.append(item() if callable(item) else item)
    if len(out) == n:
        return out
    raise ValueError(f"only {len(out)} distinct {what} problems found for split {split!r} after "
                     f"{max_tries} draws, {n} asked: the problem space of this configuration is too "
                     f"small; ask for fewer, raise the difficulty, or widen the parameters")

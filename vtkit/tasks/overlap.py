"""n-gram overlap between training and evaluation text: the decontamination check.

VibeThinker-1.5B decontaminates with 10-gram overlap after text normalisation; `ngram_overlap`
does the same: lowercase, punctuation to spaces, whitespace collapsed, then word n-grams. vtkit's
own answer-format instructions (`BOILERPLATE`) are removed first, since every prompt shares them.
A text shorter than n words counts as one n-gram of its whole length, so short duplicates (a
knowledge question) are still caught; `n=None` compares whole normalised texts (problem level).

Which n proves what, for vtkit's generators (OVERLAP_N; tests/test_tasks.py checks each):
- every domain is disjoint at the problem level by construction (hash partition of canonical keys),
  so whole normalised prompts (n=None) never repeat across splits;
- `knowledge` test prompts share no 10-gram with train (different people, full names);
- `math`, `code`, `stem` are templated, so different problems legitimately share long word runs.
  Measured test-vs-train fractions (5000 train / 500 test math prompts; 3000 / 300 stem; 400 / 60
  code): math d=1 0.34 at n=10, 0.002 at n=20 (two problems differing in the last number), 0 at
  n=25; math d=3-8 1.0 at n=10, 0.002 at n=20; stem 0.95 at n=10, 0.13 at n=25, 0 at n=30; code
  1.0 at n=13, 0.83 at n=20. For these the check is on whole prompts (n=None) and n-grams are a
  diagnostic only; decontaminating vtkit's own splits at n=10 would delete most of train.
"""
import re

from .common import BOXED_INSTRUCTION, normalize

BOILERPLATE = (re.escape(BOXED_INSTRUCTION), r"Work mod \d+\.", r"Give the value with its unit\.",
               r"Answer with the letter of the correct option in \\boxed\{\.\.\.\}\.",
               r"Write the function in a ```python code block\.")
# n at which test prompts share no n-gram with train prompts (see module docstring); None = whole text
OVERLAP_N = {"math": None, "code": None, "stem": None, "knowledge": 10}


def _pattern(ignore):
    return re.compile("|".join(ignore)) if ignore else None


def _grams(text: str, n, pat) -> set:
    if pat is not None:
        text = pat.sub(" ", text)
    words = normalize(text).split()
    if n is None or len(words) < n:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i:i + n]) for i in range(len(words) - n + 1)}


def _check_n(n):
    if n is not None and (not isinstance(n, int) or n < 1):
        raise ValueError(f"n must be a positive int (n-gram length) or None (whole texts), got {n!r}")


def ngram_overlap(train_texts, test_texts, n=10, ignore=BOILERPLATE, max_examples=5) -> dict:
    """How many test texts share at least one normalised n-gram with any train text."""
    _check_n(n)
    train_texts, test_texts, pat = _texts(train_texts), _texts(test_texts), _pattern(ignore)
    seen = set()
    for t in train_texts:
        seen |= _grams(t, n, pat)
    hits, examples = 0, []
    for i, t in enumerate(test_texts):
        common = _grams(t, n, pat) & seen
        if common:
            hits += 1
            if len(examples) < max_examples:
                examples.append({"test_index": i, "ngram": min(common), "text": t[:200]})
    return {"n_test": len(test_texts), "n_overlapping": hits,
            "fraction": hits / len(test_texts) if test_texts else 0.0, "examples": examples}


def _texts(x, field=None) -> list[str]:
    """Strings from a Dataset, a list of records (dicts) or a list of strings."""
    if isinstance(x, str):
        raise TypeError("expected a collection of texts, got a single string: wrap it in a list")
    if field is not None and hasattr(x, "column_names"):
        if field not in x.column_names:
            raise KeyError(f"field {field!r} not in the dataset; columns: {x.column_names}")
        x = x[field]
    out = []
    for r in x:
        if isinstance(r, dict):
            if field is None or field not in r:
                raise KeyError(f"records need the field {field!r}; pass field= one of {sorted(r)}")
            r = r[field]
        if isinstance(r, (list, tuple)):  # e.g. the solutions column
            r = "\n".join(r)
        if not isinstance(r, str):
            raise TypeError(f"expected text, got {type(r).__name__}")
        out.append(r)
    return out


def assert_disjoint(train, test, n=10, field="prompt", ignore=BOILERPLATE):
    """Raise AssertionError, with examples, when any test item shares an n-gram with train."""
    r = ngram_overlap(_texts(train, field), _texts(test, field), n, ignore)
    if r["n_overlapping"]:
        ex = "\n".join(f"  test[{e['test_index']}] shares {e['ngram']!r}" for e in r["examples"])
        raise AssertionError(f"{r['n_overlapping']}/{r['n_test']} test items ({r['fraction']:.1%}) share a "
                             f"{'whole text' if n is None else f'{n}-gram'} ({field}) with train:\n{ex}")
    return r


def decontaminate(train, test, n=10, field="prompt", ignore=BOILERPLATE):
    """`train` without the items that share an n-gram with `test` (a Dataset stays a Dataset)."""
    _check_n(n)
    banned, pat = set(), _pattern(ignore)
    for t in _texts(test, field):
        banned |= _grams(t, n, pat)
    keep = [i for i, t in enumerate(_texts(train, field)) if not (_grams(t, n, pat) & banned)]
    if hasattr(train, "select"):
        return train.select(keep)
    return [train[i] for i in keep]

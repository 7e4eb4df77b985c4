"""An offline real-world knowledge set: questions about countries, from the facts `countryinfo` ships.

    from vtkit.facts import make, alias_match
    ds = make(n=200, seed=0)                        # datasets.Dataset, vtkit's record schema
    ds[0]["prompt"]  # 'What is the capital of France? Answer with \\boxed{...}.'
    alias_match("paris.", json.loads(ds[0]["meta"])["aliases"])   # True

Why: the family probe (notebooks/11) needs a knowledge benchmark that runs with no network, next to
reasoning-gym for reasoning. The PyPI package `countryinfo` (MIT) ships one JSON file per country;
we read it through its public `CountryInfo.all()` and ask five kinds of question:
  capital       "What is the capital of X?"                     aliases: the capital ("A / B" -> each)
  continent     "... Africa, Americas, Asia, Europe or Oceania?" the UN region (Americas also "America")
  currency      "What is the ISO 4217 code of the currency ..." every listed code (e.g. Cuba: CUC, CUP)
  calling_code  "What is the international calling code ..."    every listed code ("+33" matches "33")
  demonym       "What is the demonym for people from X?"        the demonym ("A,B" -> "A and B", each part)

Which entries: the package also holds historical and partial entries, so we keep those with an ISO
3166-1 numeric code, drop the dissolved Serbia and Montenegro, and keep one entry per ISO alpha-2
code (the most complete; the package lists Palestine and the Vatican twice). About 250 countries and
territories, about 1,200 questions. A question is asked only where the package has the value.

Record fields: domain "knowledge-countries", subdomain the attribute, answer the first alias, meta a
JSON object {"aliases": [...], "country", "iso2", "attribute", "population"}. difficulty is the
population decile of the country among those kept (0 = the most populous tenth, 9 = the least or
unknown): a rough proxy for how long-tail the fact is, which is what the compression-coverage
hypothesis is about. The facts are the package's, as shipped: a few are dated (Mauritania's currency
is listed as MRO, replaced by MRU in 2018); treat scores as agreement with countryinfo 1.0.1.

Grading: `alias_match` is SQuAD's exact match (lowercase, drop punctuation and the articles a/an/the,
collapse whitespace) against any alias. Departures from SQuAD: we fold accents (NFKD, drop the
combining marks), so "Bogota" matches "Bogotá"; dashes and "/" become spaces ("Guinea-Bissau" ==
"Guinea Bissau"), other punctuation is deleted as in SQuAD ("Washington D.C." == "Washington DC");
and "St." reads as "Saint".
"""
from __future__ import annotations

import json
import random
import re
import string
import unicodedata

import datasets

from vtkit.tasks import to_dataset
from vtkit.tasks.common import BOXED_INSTRUCTION, boxed_solution

DOMAIN = "knowledge-countries"
SUFFIX = BOXED_INSTRUCTION  # the answer-format instruction every vtkit task uses; the last \boxed{} is graded
ATTRIBUTE_NAMES = ("capital", "continent", "currency", "calling_code", "demonym")
CONTINENTS = ("Africa", "Americas", "Asia", "Europe", "Oceania")
_DISSOLVED = {"CS"}  # Serbia and Montenegro (2006); its ISO code is withdrawn

_QUESTIONS = {
    "capital": "What is the capital of {country}?",
    "continent": "On which continent (UN region) is {country}: Africa, Americas, Asia, Europe or Oceania?",
    "currency": "What is the ISO 4217 code (three letters) of the currency of {country}?",
    "calling_code": "What is the international calling code of {country}?",
    "demonym": "What is the demonym for people from {country}?",
}
_STATEMENTS = {
    "capital": "The capital of {country} is {answer}.",
    "continent": "{country} is in the UN region {answer}.",
    "currency": "The currency of {country} has the ISO 4217 code {answer}.",
    "calling_code": "The international calling code of {country} is +{answer}.",
    "demonym": "People from {country} are called {answer}.",
}


def _strings(value) -> list[str]:
    values = value if isinstance(value, list) else [value]
    return [v.strip() for v in values if isinstance(v, str) and v.strip()]


def _aliases(attribute: str, entry: dict) -> list[str]:
    """The accepted answers for one attribute of one country, first = the gold answer; [] if unknown."""
    if attribute == "capital":
        out = []
        for cap in _strings(entry.get("capital")):
            out += [cap] + [part.strip() for part in cap.split(" / ")] if " / " in cap else [cap]
        return out
    if attribute == "continent":
        region = (entry.get("region") or "").strip()
        return [] if region not in CONTINENTS else [region, "America"] if region == "Americas" else [region]
    if attribute == "currency":
        return [c for c in _strings(entry.get("currencies")) if re.fullmatch(r"[A-Z]{3}", c)]
    if attribute == "calling_code":
        codes = [c.lstrip("+") for c in _strings(entry.get("callingCodes")) if re.fullmatch(r"\+?[0-9-]+", c)]
        return [alias for c in codes for alias in (c.replace("-", ""), c)]  # "1876" and "1-876"
    if attribute == "demonym":
        out = []
        for dem in _strings(entry.get("demonym")):
            parts = [p.strip() for p in re.split(r"[,/]", dem) if p.strip()]
            out += [dem] + ([" and ".join(parts)] + parts if len(parts) > 1 else [])
        return out
    raise ValueError(f"unknown attribute {attribute!r}; choose from {ATTRIBUTE_NAMES}")


def countries() -> list[dict]:
    """The kept countryinfo entries (see the module docstring), sorted by name."""
    try:
        from countryinfo import CountryInfo
    except ImportError as err:
        raise ImportError("vtkit.facts needs the `countryinfo` package: pip install countryinfo") from err
    best: dict[str, tuple] = {}  # alpha-2 -> ((fields filled, name), entry)
    for entry in CountryInfo.all().values():
        iso = entry.get("ISO") or {}
        code = iso.get("alpha2") or ""
        if not iso.get("numeric") or not code or code in _DISSOLVED:
            continue
        filled = sum(v not in (None, "", [], {}) for v in entry.values())
        if code not in best or (filled, entry["name"]) > best[code][0]:
            best[code] = ((filled, entry["name"]), entry)
    return sorted((e for _, e in best.values()), key=lambda e: e["name"])


def _deciles(entries: list[dict]) -> dict[str, int]:
    """Population decile per ISO alpha-2 code: 0 = most populous tenth; unknown population -> 9."""
    known = sorted((e for e in entries if isinstance(e.get("population"), int) and e["population"] > 0),
                   key=lambda e: (-e["population"], e["name"]))
    out = {e["ISO"]["alpha2"]: 9 for e in entries}
    for rank, e in enumerate(known):
        out[e["ISO"]["alpha2"]] = min(9, rank * 10 // len(known))
    return out


def make(n: int | None = None, seed: int = 0, attributes=ATTRIBUTE_NAMES) -> datasets.Dataset:
    """Country questions in vtkit's record schema, shuffled by seed; n=None keeps all of them."""
    attributes = tuple(attributes)
    for a in attributes:
        if a not in ATTRIBUTE_NAMES:
            raise ValueError(f"unknown attribute {a!r}; choose from {ATTRIBUTE_NAMES}")
    entries = countries()
    decile = _deciles(entries)
    pool = []
    for entry in entries:
        for attribute in attributes:
            aliases = list(dict.fromkeys(_aliases(attribute, entry)))  # dedupe, keep order
            if aliases:
                pool.append((entry, attribute, aliases))
    random.Random(seed).shuffle(pool)
    if n is not None:
        if not 0 < n <= len(pool):
            raise ValueError(f"n={n} but there are {len(pool)} questions for attributes {attributes}; "
                             "pass n=None for all of them or a smaller n")
        pool = pool[:n]
    rows = []
    for i, (entry, attribute, aliases) in enumerate(pool):
        country, answer = entry["name"], aliases[0]
        rows.append({
            "id": f"countries-s{seed}-{i:05d}",
            "domain": DOMAIN,
            "subdomain": attribute,
            "prompt": f"{_QUESTIONS[attribute].format(country=country)} {SUFFIX}",
            "answer": answer,
            "tests": "",
            "difficulty": decile[entry["ISO"]["alpha2"]],
            "solutions": [boxed_solution(_STATEMENTS[attribute].format(country=country, answer=answer), answer)],
            "meta": json.dumps({"aliases": aliases, "country": country, "iso2": entry["ISO"]["alpha2"],
                                "attribute": attribute, "population": entry.get("population")},
                               ensure_ascii=False),
        })
    return to_dataset(rows)  # the same explicit plain-typed features as vtkit.tasks.make


_ARTICLES = re.compile(r"\b(a|an|the)\b")
_SAINT = re.compile(r"\bst\b")


def normalize_answer(text: str) -> str:
    """SQuAD normalisation plus accent folding: 'The São Tomé.' -> 'sao tome'; 'St. Helier' -> 'saint helier'."""
    text = unicodedata.normalize("NFKD", str(text))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    text = "".join(" " if unicodedata.category(ch) == "Pd" or ch in "/" else  # dashes, slash: a space
                   "" if unicodedata.category(ch).startswith("P") or ch in string.punctuation else ch  # SQuAD
                   for ch in text)
    text = _SAINT.sub("saint", _ARTICLES.sub(" ", text))
    return " ".join(text.split())


def alias_match(pred: str | None, aliases) -> bool:
    """True when pred equals any alias after `normalize_answer`; aliases: a list or a JSON-encoded list.

    An empty or missing prediction never matches (not even an alias that normalises to empty).
    """
    if isinstance(aliases, str):
        try:
            decoded = json.loads(aliases)
        except json.JSONDecodeError:
            decoded = aliases
        aliases = decoded if isinstance(decoded, list) else [aliases]
    if pred is None:
        return False
    p = normalize_answer(pred)
    return bool(p) and any(p == normalize_answer(a) for a in aliases)

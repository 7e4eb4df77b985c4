"""Knowledge: bioS-style synthetic people (Allen-Zhu & Li, Physics of LMs 3.1 / 3.3).

Each person has a unique name (first x middle x last from fixed synthetic lists) and attributes
drawn independently and uniformly from value sets of known size, so the information a model can
store about a person is exactly sum(log2 |set|) bits (`KNOWLEDGE_BITS_PER_PERSON`, ~47.6 with the
paper's sizes: birth date 12 x 28 x 200, city 200, university 300, major 100, employer 263,
gender 2). All value lists are generated procedurally from syllables by a fixed internal seed, so
they are identical everywhere; `value_sets={"birth_city": 10, ...}` shrinks (or grows) a set to
probe small models (a set of size k is the first k values of the full list; dates enumerate
year, month, day from 1 Jan 1900).

`people(n, seed)` is prefix-stable (people(10) == people(100)[:10]). `make("knowledge", ...)`
asks one question per (person, attribute); the split partitions the *people* of the seed's
population by a hash of the name, so test questions are about people never asked about in train
(all of them can still appear in `biographies`, as in the paper's QA-finetune / test split).
Difficulty is 1 for every record (one-hop recall).

Departures: bioS writes a person's later sentences with pronouns; here every sentence uses the
full name (the paper's "fullname" augmentation, which helps knowledge extraction), and gender is
stated in its own sentence. Names are syllable-made, not drawn from real name lists.
"""
import itertools
import math
import random

from .common import BOXED_INSTRUCTION, boxed_solution, check_split, difficulty_range, record, split_of, stable_int

ATTRIBUTES = {"birth_date": 12 * 28 * 200, "birth_city": 200, "university": 300, "major": 100,
              "employer": 263, "gender": 2}
KNOWLEDGE_BITS_PER_PERSON = sum(math.log2(s) for s in ATTRIBUTES.values())
NAME_SIZES = {"first": 400, "middle": 400, "last": 1000}  # 160M unique full names
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")
MAX_SET = 100_000  # the syllable space is far larger; this keeps generation fast

TEMPLATES = {
    "birth_date": ["{name} was born on {v}.", "{name} came into this world on {v}.", "{name}'s birthday is {v}.",
                   "The birth date of {name} is {v}.", "{name} entered life on {v}.", "{name} was born on the day {v}."],
    "birth_city": ["{name} was born in {v}.", "{name} spent the early years in {v}.", "{name}'s birthplace is {v}.",
                   "{name} comes from {v}.", "The home town of {name} is {v}.", "{name} first saw the light of day in {v}."],
    "university": ["{name} studied at {v}.", "{name} graduated from {v}.", "{name} received an education at {v}.",
                   "{name} attended {v}.", "The alma mater of {name} is {v}.", "{name} completed a degree at {v}."],
    "major": ["{name} majored in {v}.", "{name} specialized in {v}.", "{name} chose {v} as a field of study.",
              "{name} focused on {v}.", "The major of {name} was {v}.", "{name} earned a degree in {v}."],
    "employer": ["{name} works for {v}.", "{name} is employed by {v}.", "{name} has a job at {v}.",
                 "{name} earns a living at {v}.", "The employer of {name} is {v}.", "{name} is on the staff of {v}."],
    "gender": ["{name} is {v}.", "{name}'s gender is {v}.", "By gender, {name} is {v}.",
               "{name} identifies as {v}.", "The gender of {name} is {v}.", "As for gender, {name} is {v}."],
}
QUESTIONS = {"birth_date": "What is the birth date of {name}?", "birth_city": "In which city was {name} born?",
             "university": "Which university did {name} attend?", "major": "What did {name} major in?",
             "employer": "Which company does {name} work for?", "gender": "What is the gender of {name}?"}

_ONSETS = "b c d f g h j k l m n p r s t v w z br cr dr gr pr tr st sh ch th fl gl pl sl".split()
_VOWELS = "a e i o u a e i o u ai ou".split()
_CODAS = ["", "", "", "n", "r", "l", "s", "m", "th", "x"]
_FLAVOUR = {  # how each category turns a syllable word into a value
    "first": lambda w, r: w, "middle": lambda w, r: w, "last": lambda w, r: w,
    "birth_city": lambda w, r: w + r.choice(["ford", "holm", "ton", "vale", "burg", "port", "field", "wick"]),
    "university": lambda w, r: w + r.choice([" University", " College", " Institute"]),
    "major": lambda w, r: w + r.choice([" Studies", " Science", " Engineering"]),
    "employer": lambda w, r: w + r.choice([" Corp", " Labs", " Group", " Works", " Systems"]),
}
_cache: dict = {}


def _values(category: str, size: int) -> list[str]:
    """The first `size` values of a category: deterministic, distinct, prefix-stable."""
    if category == "birth_date":
        if size > ATTRIBUTES["birth_date"]:
            raise ValueError(f"birth_date has at most {ATTRIBUTES['birth_date']} values (12 x 28 x 200), got {size}")
        dates = itertools.product(range(1900, 2100), range(12), range(1, 29))
        return [f"{d} {MONTHS[m]} {y}" for y, m, d in itertools.islice(dates, size)]
    if category == "gender":
        if size > 2:
            raise ValueError(f"gender has at most 2 values, got {size}")
        return ["female", "male"][:size]
    if size > MAX_SET:
        raise ValueError(f"{category}: value sets up to {MAX_SET} are supported, got {size}")
    have = _cache.get(category, [])
    if len(have) < size:  # regenerate from the start: one RNG stream, so prefixes never change
        rng = random.Random(stable_int("knowledge-values", category))
        have, seen = [], set()
        while len(have) < size:
            n_syl = rng.choice((1, 2)) if category == "birth_city" else 2  # short names: few tokens
            w = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) for _ in range(n_syl))
            v = _FLAVOUR[category](w.capitalize(), rng)
            if v not in seen:
                seen.add(v)
                have.append(v)
        _cache[category] = have
    return have[:size]


def value_set_sizes(value_sets: dict | None = None) -> dict:
    """ATTRIBUTES with the overrides applied (unknown attribute names are an error)."""
    sizes = dict(ATTRIBUTES)
    for k, v in (value_sets or {}).items():
        if k not in ATTRIBUTES:
            raise ValueError(f"unknown attribute {k!r} in value_sets: use any of {list(ATTRIBUTES)}")
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"value_sets[{k!r}] must be an int >= 1, got {v!r}")
        sizes[k] = v
    return sizes


def value_sets(overrides: dict | None = None) -> dict[str, list[str]]:
    """attribute -> the list of its possible values (sizes from ATTRIBUTES or the overrides)."""
    return {a: _values(a, s) for a, s in value_set_sizes(overrides).items()}


def _iter_people(seed: int, overrides: dict | None):
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {seed!r}")
    sets = value_sets(overrides)
    names = {k: _values(k, s) for k, s in NAME_SIZES.items()}
    rng = random.Random(stable_int("people", seed))
    used = set()
    for index in itertools.count():
        while True:
            parts = [rng.choice(names[k]) for k in NAME_SIZES]
            name = " ".join(parts)
            if name not in used:
                used.add(name)
                break
        person = {"index": index, "name": name, "first": parts[0], "middle": parts[1], "last": parts[2]}
        person.update({a: rng.choice(vals) for a, vals in sets.items()})
        yield person


def people(n: int, seed: int = 0, value_sets: dict | None = None) -> list[dict]:
    """n people with unique names and uniformly drawn attributes; prefix-stable in n."""
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")
    return list(itertools.islice(_iter_people(seed, value_sets), n))


def biographies(people: list[dict], seed: int = 0, templates: int = 1, permute: bool = False,
                per_person: int = 1) -> list[str]:
    """bioS-style biographies: one sentence per attribute, each from the first `templates`
    paraphrases of its attribute (chosen at random per sentence); `permute` shuffles sentence
    order; `per_person` biographies per person (bioS "multi"), grouped by person."""
    k_max = min(len(t) for t in TEMPLATES.values())
    if not isinstance(templates, int) or not 1 <= templates <= k_max:
        raise ValueError(f"templates must be an int in 1..{k_max}, got {templates!r}")
    rng = random.Random(stable_int("biographies", seed))
    out = []
    for p in people:
        for _ in range(per_person):
            sents = [rng.choice(TEMPLATES[a][:templates]).format(name=p["name"], v=p[a]) for a in ATTRIBUTES if a in p]
            if permute:
                rng.shuffle(sents)
            out.append(" ".join(sents))
    return out


def generate(n, seed=0, difficulty=None, split="train", value_sets=None, attributes=None,
             population=None) -> list[dict]:
    """n questions, one per (person, attribute), people of `split` only, in population order.

    `population` (a list from people()) replaces the seed's endless population."""
    check_split(split)
    difficulty_range(difficulty, 1, (1, 1), "knowledge")
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")
    attrs = list(ATTRIBUTES) if attributes is None else [attributes] if isinstance(attributes, str) else list(attributes)
    bad = [a for a in attrs if a not in ATTRIBUTES]
    if bad or not attrs:
        raise ValueError(f"unknown attributes {bad or attrs}: use any of {list(ATTRIBUTES)}")
    sizes = value_set_sizes(value_sets)
    source = _iter_people(seed, value_sets) if population is None else iter(population)
    out = []
    for p in source:
        if len(out) >= n:
            break
        key = f"knowledge|{p['name']}"
        if split_of(key) != split:
            continue
        for a in attrs:
            if len(out) >= n:
                break
            v = p[a]
            meta = {"person": p["name"], "person_index": p.get("index"), "attribute": a, "value": v,
                    "value_set_size": sizes[a], "bits": math.log2(sizes[a])}
            prompt = f"{QUESTIONS[a].format(name=p['name'])} {BOXED_INSTRUCTION}"
            sol = boxed_solution(TEMPLATES[a][0].format(name=p["name"], v=v), v)
            out.append(record("knowledge", split, seed, len(out), 1, key + "|" + a, a, prompt, v, [sol], meta))
    if len(out) < n:
        raise ValueError(f"the given population holds only {len(out)} {split} questions, {n} asked: "
                         f"pass a larger population (or none)")
    return out

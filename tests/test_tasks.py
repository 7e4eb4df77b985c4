"""vtkit.tasks: schema, determinism, difficulty control, gold answers recomputed independently,
multiple solutions, knowledge value sets, the reasoning-gym adapter and the split overlap check."""
import json
import math
import re

import pytest

import vtkit.tasks as T
from vtkit.tasks import code as code_mod
from vtkit.tasks import stem as stem_mod

DOMAINS = ["math", "code", "stem", "knowledge"]


# ---------- helpers written independently of the generators ----------

def boxed_after_think(text):
    """The last \\boxed{...} after </think> (nested braces), or None."""
    tail = text.split("</think>")[-1] if "</think>" in text else None
    if tail is None:
        return None
    start = tail.rfind("\\boxed{")
    if start < 0:
        return None
    i, depth = start + len("\\boxed{"), 1
    for j in range(i, len(tail)):
        depth += {"{": 1, "}": -1}.get(tail[j], 0)
        if depth == 0:
            return tail[i:j]
    return None


def code_after_think(text):
    blocks = re.findall(r"```python\n(.*?)```", text.split("</think>")[-1], flags=re.S)
    return blocks[-1] if blocks else None


def passes(program, tests):
    try:
        exec(program + "\n" + tests, {})  # our own generated programs only
        return True
    except Exception:
        return False


@pytest.fixture(scope="module")
def small():
    return {d: T.make(d, 40, seed=0) for d in DOMAINS}


# ---------- schema, determinism, errors ----------

@pytest.mark.parametrize("domain", DOMAINS)
def test_schema_and_final_answers(small, domain):
    ds = small[domain]
    assert ds.column_names == list(T.FIELDS)
    assert len(ds) == 40 and len(set(ds["id"])) == 40
    for r in ds:
        assert r["domain"] == domain and r["id"].startswith(f"{domain}-train-s0-d{r['difficulty']}-")
        assert isinstance(r["difficulty"], int) and r["difficulty"] >= 1
        assert isinstance(json.loads(r["meta"]), dict)
        assert r["solutions"] and len(set(r["solutions"])) == len(r["solutions"])
        assert (r["tests"] != "") == (domain == "code")
        for s in r["solutions"]:
            assert s.startswith("<think>") and s.count("</think>") == 1
            if domain == "code":
                assert code_after_think(s) is not None
                assert "```python" in r["prompt"]
            else:
                assert boxed_after_think(s) == r["answer"]
                assert "\\boxed{...}" in r["prompt"]


@pytest.mark.parametrize("domain", DOMAINS)
def test_deterministic_by_seed_and_split(domain):
    a, b = T.make(domain, 12, seed=3), T.make(domain, 12, seed=3)
    assert a.to_list() == b.to_list()
    assert a["prompt"] != T.make(domain, 12, seed=4)["prompt"]
    assert not set(a["prompt"]) & set(T.make(domain, 12, seed=3, split="test")["prompt"])


def test_empty_request_keeps_the_schema():
    for domain in DOMAINS:
        ds = T.make(domain, 0)
        assert len(ds) == 0 and ds.column_names == list(T.FIELDS)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="code.*knowledge.*math.*stem"):
        T.make("physics", 3)
    with pytest.raises(ValueError, match="split"):
        T.make("math", 3, split="dev")
    with pytest.raises(TypeError, match="unknown keyword.*modulus"):
        T.make("math", 3, modulus=7)
    with pytest.raises(ValueError, match="levels 1..3"):
        T.make("code", 3, difficulty=4)
    with pytest.raises(ValueError, match="non-negative"):
        T.make("stem", -1)
    with pytest.raises(TypeError, match="seed"):
        T.make("math", 3, seed=1.5)
    with pytest.raises(ValueError, match="lo <= hi"):
        T.make("math", 3, difficulty=(3, 2))
    with pytest.raises(TypeError, match="difficulty"):
        T.make("math", 3, difficulty="easy")
    with pytest.raises(ValueError, match="mod"):
        T.make("math", 3, mod=1)
    with pytest.raises(ValueError, match="subdomain"):
        T.make("math", 3, subdomain="div")
    with pytest.raises(ValueError, match="knowledge has difficulty levels 1..1"):
        T.make("knowledge", 3, difficulty=2)
    with pytest.raises(ValueError, match="too small"):  # ~30 level-2 code problems are in test
        T.make("code", 200, difficulty=2, split="test")


# ---------- math ----------

STATEMENT = re.compile(r"(\w+) has (\d+) (\w+)\.|(\w+) has as many (\w+) as (\w+)'s (\w+) (plus|minus|times) (\w+)'s (\w+)\.")
STEP = re.compile(r"^(.+?) = (.+?) ([-+*]) (.+?) = (\d+) [-+*] (\d+) = (-?\d+)(?: mod (\d+) = (\d+))?\.$")


def solve_prompt(prompt, mod):
    """Parse the statements back into a graph and evaluate it by fixed-point iteration."""
    given, defs = {}, {}
    for m in STATEMENT.finditer(prompt):
        if m.group(1):
            given[f"{m.group(1)}'s {m.group(3)}"] = int(m.group(2))
        else:
            p, item, a1, i1, word, a2, i2 = m.groups()[3:]
            defs[f"{p}'s {item}"] = (f"{a1}'s {i1}", word, f"{a2}'s {i2}")
    q = re.search(r"How many (\w+) does (\w+) have\?", prompt)
    values = dict(given)
    while len(values) < len(given) + len(defs):
        for k, (a, w, b) in defs.items():
            if k not in values and a in values and b in values:
                x, y = values[a], values[b]
                values[k] = {"plus": x + y, "minus": x - y, "times": x * y}[w] % mod
    return values[f"{q.group(2)}'s {q.group(1)}"], len(defs)


def check_trace(solution, prompt, mod, d):
    """Every step is arithmetic done right on values that are given or computed earlier."""
    known = {f"{m.group(1)}'s {m.group(3)}": int(m.group(2)) for m in STATEMENT.finditer(prompt) if m.group(1)}
    lines = solution.split("</think>")[0].replace("<think>", "").strip().splitlines()
    assert len(lines) == d
    for line in lines:
        m = STEP.match(line)
        assert m, line
        name, a, op, b, x, y, raw, p, red = m.groups()
        assert known[a] == int(x) and known[b] == int(y), line
        assert int(raw) == {"+": int(x) + int(y), "-": int(x) - int(y), "*": int(x) * int(y)}[op]
        value = int(red) if p else int(raw)
        assert value == int(raw) % mod and (p is None) == (0 <= int(raw) < mod)
        known[name] = value
    return value


@pytest.mark.parametrize("d", [1, 2, 3, 5, 9, 25])
def test_math_difficulty_is_op_count_and_answers_recompute(d):
    ds = T.make("math", 15, seed=1, difficulty=d)
    multi = 0
    for r in ds:
        meta = json.loads(r["meta"])
        ops = [nd for nd in meta["nodes"] if "op" in nd]
        assert r["difficulty"] == d == meta["n_ops"] == len(ops)
        answer, n_defs = solve_prompt(r["prompt"], 23)
        assert n_defs == d and str(answer) == r["answer"]
        # the meta graph evaluates to the same value
        vals = {}
        for nd in meta["nodes"]:
            if "op" in nd:
                x, y = (vals[meta["nodes"][i]["name"]] for i in nd["args"])
                vals[nd["name"]] = {"+": x + y, "-": x - y, "*": x * y}[nd["op"]] % meta["mod"]
            else:
                vals[nd["name"]] = nd["value"]
        assert str(vals[meta["target"]]) == r["answer"]
        for s in r["solutions"]:
            assert str(check_trace(s, r["prompt"], 23, d)) == r["answer"]
        multi += len(r["solutions"]) > 1
        assert len(r["solutions"]) <= 4
    if d >= 3:
        assert multi > 0  # branching graphs give several distinct orders


def test_math_mod_subdomains_and_short_easy_end():
    ds = T.make("math", 60, seed=2, difficulty=1, mod=7, subdomain="add")
    for r in ds:
        assert int(r["answer"]) < 7 and "Work mod 7." in r["prompt"] and " plus " in r["prompt"]
        assert len((r["prompt"] + " " + r["solutions"][0]).split()) < 120
        assert str(solve_prompt(r["prompt"], 7)[0]) == r["answer"]
    mul = T.make("math", 20, seed=2, difficulty=3, subdomain="mul")
    assert all(" plus " not in p and " minus " not in p for p in mul["prompt"])
    assert set(mul["subdomain"]) == {"mul"}
    mixed = T.make("math", 200, seed=0, difficulty=(1, 4))
    assert set(mixed["subdomain"]) == {"add", "mul", "mixed"} and set(mixed["difficulty"]) == {1, 2, 3, 4}


# ---------- code ----------

def test_code_every_template_reference_passes_and_wrong_fails():
    for name, t in code_mod.TEMPLATES.items():
        ds = T.make("code", 2, seed=0, difficulty=t.level, templates=name)
        for r in ds:
            meta = json.loads(r["meta"])
            assert r["difficulty"] == t.level and r["subdomain"] == t.subdomain
            assert r["tests"].count("assert ") == meta["n_tests"] >= 5
            assert passes(r["answer"], r["tests"]), name
            impls = [code_after_think(s) for s in r["solutions"]]
            assert len(set(impls)) == len(impls) >= 2 and impls[0].strip() == r["answer"]
            assert all(passes(p, r["tests"]) for p in impls), name
            assert not passes(meta["wrong"], r["tests"]), f"{name}: tests miss the planted bug"
            assert not passes(f"def {name}(*a):\n    return None", r["tests"])
            assert f"`{name}(" in r["prompt"]


def test_code_space_and_levels():
    assert all(code_mod.space_size(level) >= 250 for level in (1, 2, 3))
    ds = T.make("code", 60, seed=5)
    assert set(ds["difficulty"]) == {1, 2, 3} and set(ds["subdomain"]) == {"lists", "strings", "numbers"}


def test_code_max_param_bounds_every_parameter_and_programs_still_pass():
    ds = T.make("code", 100, seed=0, difficulty=1, max_param=9)
    names = set()
    for r in ds:
        meta = json.loads(r["meta"])
        t = code_mod.TEMPLATES[meta["template"]]
        names.add(t.name)
        derived = t.derive(dict(meta["params"]))
        assert all(abs(v) <= 9 for v in derived.values() if isinstance(v, int)), meta
        assert all(passes(code_after_think(sol), r["tests"]) for sol in r["solutions"])
        assert not passes(meta["wrong"], r["tests"])
    assert len(names) >= 5  # the bound keeps most level-1 templates
    unbounded = T.make("code", 100, seed=0, difficulty=1)
    big = [max(abs(v) for v in json.loads(r["meta"])["params"].values() if isinstance(v, int)) for r in unbounded
           if any(isinstance(v, int) for v in json.loads(r["meta"])["params"].values())]
    assert max(big) > 9  # without the bound the templates' own ranges apply
    assert T.make("code", 5, seed=0, difficulty=1, max_param=None)["id"] == T.make("code", 5, seed=0, difficulty=1)["id"]
    with pytest.raises(ValueError, match="max_param must be an int"):
        T.make("code", 5, seed=0, max_param=0)
    with pytest.raises(ValueError, match="raise max_param"):
        T.make("code", 5, seed=0, templates="sum_divisible", max_param=1)  # its divisors start at 2


# ---------- stem ----------

PHYSICS = {  # each target from the givens, written independently of the templates' routes
    "speed": lambda g: g["d"] / g["t"], "force": lambda g: g["m"] * g["a"], "work": lambda g: g["F"] * g["d"],
    "power": lambda g: g["W"] / g["t"], "voltage": lambda g: g["I"] * g["R"], "charge": lambda g: g["I"] * g["t"],
    "moles": lambda g: g["mass"] / g["M"], "density": lambda g: g["m"] / g["V"], "pressure": lambda g: g["F"] / g["A"],
    "momentum": lambda g: g["m"] * g["v"], "concentration": lambda g: g["n"] / g["V"],
    "kinetic": lambda g: 0.5 * g["m"] * g["v"] ** 2,
    "momentum_from_trip": lambda g: g["m"] * g["d"] / g["t"], "force_from_speedup": lambda g: g["m"] * g["v"] / g["t"],
    "power_from_push": lambda g: g["F"] * g["d"] / g["t"], "resistor_power": lambda g: g["I"] ** 2 * g["R"],
    "concentration_from_mass": lambda g: g["mass"] / g["M"] / g["V"], "pressure_from_mass": lambda g: g["m"] * 10 / g["A"],
    "resistor_energy": lambda g: g["I"] ** 2 * g["R"] * g["t"], "lifting_power": lambda g: g["m"] * 10 * g["h"] / g["t"],
    "work_from_acceleration": lambda g: 0.5 * g["m"] * (g["a"] * g["t"]) ** 2,
}


def test_stem_values_units_and_choices():
    assert set(PHYSICS) == set(stem_mod.TEMPLATES)
    seen_templates, letters, multi = set(), [], 0
    ds = T.make("stem", 300, seed=0)
    for r in ds:
        meta = json.loads(r["meta"])
        g, value, unit = meta["givens"], meta["value"], meta["unit"]
        assert PHYSICS[meta["template"]](g) == value > 0
        for k, v in g.items():
            assert str(v) in r["prompt"], k
        seen_templates.add(meta["template"])
        assert r["difficulty"] == len(stem_mod.TEMPLATES[meta["template"]].routes[0])
        for s in r["solutions"]:  # every step's arithmetic is right, the last one gives the value
            steps = [line for line in s.split("</think>")[0].splitlines() if " = " in line]
            assert 1 <= len(steps) <= 3
            for line in steps:
                m = re.match(r"^\w+ = .+? = (.+?) = (\d+) \S+$", line)
                assert m and eval(m.group(1).replace("^", "**")) == int(m.group(2)), line
            assert int(m.group(2)) == value
        multi += len(r["solutions"]) > 1
        if r["subdomain"] == "numeric":
            assert r["answer"] == f"{value} {unit}"
        else:
            choices = meta["choices"]
            assert len(set(choices)) == 4 and r["answer"] in "ABCD"
            assert choices["ABCD".index(r["answer"])] == f"{value} {unit}"
            for letter, c in zip("ABCD", choices):
                assert f"{letter}) {c}" in r["prompt"]
            letters.append(r["answer"])
    assert seen_templates == set(PHYSICS) and multi > 0
    assert all(letters.count(x) > len(letters) / 8 for x in "ABCD")  # the shuffle spreads the gold letter


def test_stem_max_value_bounds_givens_steps_and_answer():
    ds = T.make("stem", 150, seed=0, difficulty=1, subdomain="numeric", max_value=12)
    for r in ds:
        meta = json.loads(r["meta"])
        assert PHYSICS[meta["template"]](meta["givens"]) == meta["value"] <= 12
        assert all(v <= 12 for v in meta["givens"].values() if isinstance(v, int))
        for s in r["solutions"]:
            numbers = [int(x) for x in re.findall(r"\d+", s.split("</think>")[0])]
            assert numbers and max(numbers) <= 12, s
    assert len({json.loads(r["meta"])["template"] for r in ds}) >= 8
    assert max(json.loads(r["meta"])["value"] for r in T.make("stem", 150, seed=0, difficulty=1, subdomain="numeric")) > 12
    with pytest.raises(ValueError, match="max_value must be an int"):
        T.make("stem", 5, seed=0, max_value=1)
    with pytest.raises(ValueError, match="raise max_value"):
        T.make("stem", 5, seed=0, templates="lifting_power", max_value=12)  # g = 10 times a mass >= 1 lifted >= 2 m


def test_stem_same_problem_same_split_both_forms():
    numeric = T.make("stem", 30, seed=0, subdomain="numeric", difficulty=2)
    mc = T.make("stem", 30, seed=0, subdomain="mc", difficulty=2)
    assert set(numeric["subdomain"]) == {"numeric"} and set(mc["subdomain"]) == {"mc"}
    assert set(numeric["difficulty"]) == {2}
    key = lambda r: (json.loads(r["meta"])["template"], json.dumps(json.loads(r["meta"])["givens"], sort_keys=True))
    test_keys = {key(r) for r in T.make("stem", 100, seed=0, split="test")}
    train_keys = {key(r) for r in T.make("stem", 600, seed=0)}
    assert not test_keys & train_keys


# ---------- knowledge ----------

def test_knowledge_value_sets_and_bits():
    assert T.ATTRIBUTES == {"birth_date": 67200, "birth_city": 200, "university": 300, "major": 100,
                            "employer": 263, "gender": 2}
    assert T.KNOWLEDGE_BITS_PER_PERSON == pytest.approx(47.59, abs=0.01)
    sets = T.value_sets()
    for a, size in T.ATTRIBUTES.items():
        assert len(sets[a]) == len(set(sets[a])) == size
    small = T.value_sets({"birth_city": 5, "birth_date": 30})
    assert small["birth_city"] == sets["birth_city"][:5] and small["birth_date"] == sets["birth_date"][:30]
    with pytest.raises(ValueError, match="unknown attribute"):
        T.value_sets({"height": 3})


def test_people_unique_uniform_and_prefix_stable():
    ps = T.people(3000, seed=1)
    assert len({p["name"] for p in ps}) == 3000
    assert T.people(50, seed=1) == ps[:50]
    sets = T.value_sets()
    for a in T.ATTRIBUTES:
        assert all(p[a] in sets[a] for p in ps)
    assert 1350 < sum(p["gender"] == "female" for p in ps) < 1650
    small = T.people(400, seed=1, value_sets={"birth_city": 4})
    assert {p["birth_city"] for p in small} == set(sets["birth_city"][:4])


def test_biographies_templates_and_permute():
    ps = T.people(30, seed=0)
    one = T.biographies(ps, seed=0, templates=1)
    assert one == T.biographies(ps, seed=0, templates=1)
    for p, b in zip(ps, one):
        assert b.startswith(p["name"] + " was born on ") and all(p[a] in b for a in T.ATTRIBUTES)
        assert b.count(p["name"]) == len(T.ATTRIBUTES)
    many = T.biographies(ps, seed=0, templates=6, permute=True, per_person=2)
    assert len(many) == 60 and len(set(many)) == 60 and not set(many) & set(one)
    with pytest.raises(ValueError, match="templates"):
        T.biographies(ps, templates=99)


def test_knowledge_questions_match_people_and_split_people():
    ds = T.make("knowledge", 120, seed=2, value_sets={"birth_city": 10})
    pop = {p["name"]: p for p in T.people(400, seed=2, value_sets={"birth_city": 10})}
    for r in ds:
        meta = json.loads(r["meta"])
        assert r["subdomain"] == meta["attribute"] and r["answer"] == pop[meta["person"]][meta["attribute"]]
        size = 10 if meta["attribute"] == "birth_city" else T.ATTRIBUTES[meta["attribute"]]
        assert meta["value_set_size"] == size and meta["bits"] == pytest.approx(math.log2(size))
        assert meta["person"] in r["prompt"]
    test = T.make("knowledge", 60, seed=2, split="test")
    people_of = lambda d: {json.loads(m)["person"] for m in d["meta"]}
    assert not people_of(ds) & people_of(test)
    assert len(people_of(test)) == 10  # six attributes per person


# ---------- reasoning-gym ----------

def test_reasoning_gym_adapter_offline():
    ar = T.from_reasoning_gym("basic_arithmetic", 20, seed=0)
    assert ar.column_names == list(T.FIELDS)
    for r in ar:
        meta = json.loads(r["meta"])
        assert r["domain"] == "gym:basic_arithmetic" and r["prompt"].endswith("\\boxed{...}.")
        assert float(eval(meta["expression"])) == pytest.approx(float(r["answer"]))
    gsm = T.from_reasoning_gym("gsm_symbolic", 10, seed=0)
    for r in gsm:
        assert len(r["solutions"]) == 1 and boxed_after_think(r["solutions"][0]) == r["answer"]
        assert str(json.loads(r["meta"])["answer_value"]) == r["answer"]
    assert gsm.to_list() == T.from_reasoning_gym("gsm_symbolic", 10, seed=0).to_list()
    test = T.from_reasoning_gym("gsm_symbolic", 10, seed=0, split="test")
    assert not set(test["prompt"]) & set(T.from_reasoning_gym("gsm_symbolic", 100, seed=0)["prompt"])
    with pytest.raises(ValueError, match="unknown reasoning-gym dataset.*basic_arithmetic"):
        T.from_reasoning_gym("no_such_dataset", 3)


# ---------- overlap ----------

def test_ngram_overlap_normalises_and_finds_planted_copies():
    train = ["The quick brown fox jumps over the lazy dog near the river bank today.", "Short one."]
    test = ["the QUICK brown fox, jumps over   the lazy dog near the river!", "A wholly different sentence "
            "about nothing at all that shares no ten words.", "short one"]
    r = T.ngram_overlap(train, test, n=10)
    assert r["n_test"] == 3 and r["n_overlapping"] == 2 and r["fraction"] == pytest.approx(2 / 3)
    assert {e["test_index"] for e in r["examples"]} == {0, 2}
    assert T.ngram_overlap(train, test, n=13)["n_overlapping"] == 1  # only the whole short text still matches
    with pytest.raises(AssertionError, match="(?s)share a 10-gram.*test\\[0\\]"):
        T.assert_disjoint([{"prompt": t} for t in train], [{"prompt": t} for t in test], n=10)
    kept = T.decontaminate([{"prompt": t} for t in train], [{"prompt": test[0]}], n=10)
    assert [k["prompt"] for k in kept] == train[1:]
    with pytest.raises(ValueError, match="n must be"):
        T.ngram_overlap(train, test, n=0)


def canonical(domain, prompt):
    """Problem identity independent of presentation: math statements in any order are one problem."""
    if domain == "math":
        return " ".join(sorted(re.findall(r"[^.?]+[.?]", prompt)))
    return prompt


@pytest.mark.parametrize("domain", DOMAINS)
def test_train_and_test_splits_are_disjoint(domain):
    n_train = {"code": 600, "knowledge": 1200}.get(domain, 1500)
    kw = {"difficulty": (1, 2)} if domain == "math" else {}  # the easy end is where collisions would be
    train = T.make(domain, n_train, seed=0, **kw)
    test = T.make(domain, 100, seed=0, split="test", **kw)
    other_seed = T.make(domain, 300, seed=7, **kw)
    for tr in (train, other_seed):
        T.assert_disjoint([canonical(domain, p) for p in tr["prompt"]],
                          [canonical(domain, p) for p in test["prompt"]], n=None, field=None)
        T.assert_disjoint(tr, test, n=T.OVERLAP_N[domain])
    if domain == "knowledge":
        T.assert_disjoint(train, test, n=10)


# ---------- tokenizer corpus ----------

def test_tokenizer_corpus_deterministic_and_complete():   # its speed: benchmarks/bench_guards.py
    corpus = T.tokenizer_corpus(100)
    assert corpus == T.tokenizer_corpus(100)
    text = "\n".join(corpus)
    for marker in ("Work mod 23", "Work mod 7", "```python", ") ", "was born on", "</think>", "\\boxed{"):
        assert marker in text
    assert all(isinstance(t, str) and t for t in corpus)


def test_make_groups_per_domain_spec():
    tasks = T
    got = tasks.make_groups({"math": {"difficulty": [1, 2], "mod": 7}, "stem": {}}, {"math": 3, "stem": 2}, split="test")
    assert [len(got["math"]), len(got["stem"])] == [3, 2]
    assert got["math"] == [dict(r) for r in tasks.make("math", 3, difficulty=(1, 2), mod=7, split="test")]
    sub = tasks.make_groups({"math": {"n": 5, "difficulty": 1, "subdomains": ["add", "mul"]}})
    assert {g: len(v) for g, v in sub.items()} == {"math/add": 3, "math/mul": 2}
    assert {r["subdomain"] for r in sub["math/mul"]} == {"mul"}
    ins = tasks.make_groups({"instruct": {"n": 2, "n_constraints": [1, 1]}}, split="test")["instruct"]
    assert len(ins) == 2 and all(len(r["instruction_id_list"]) == 1 for r in ins)
    with pytest.raises(ValueError, match="non-empty dict"):
        tasks.make_groups({}, 3)
    with pytest.raises(ValueError, match="needs `n`"):
        tasks.make_groups({"math": {}})


def _pairs(rec):
    """A math record's operand pairs (op, a, b) from its meta graph."""
    nodes = json.loads(rec["meta"])["nodes"]
    return [(n["op"], nodes[n["args"][0]]["value"], nodes[n["args"][1]]["value"]) for n in nodes if "op" in n]


def test_math_holdout_arith_keeps_held_operand_pairs_out_of_training():
    from vtkit.tasks.math import arith_split, held_split
    kw = dict(difficulty=(1, 2), mod=7, subdomain="add", shuffle=False, holdout_arith=20)
    train = T.make("math", 600, seed=0, split="train", **kw)
    val = T.make("math", 150, seed=0, split="validation", **kw)
    test = T.make("math", 150, seed=0, split="test", **kw)
    held = {s: {(a, b) for a in range(7) for b in range(7) if held_split("+", a, b, 7, 20) == s} for s in ("test", "validation")}
    assert held["test"] and held["validation"] and not held["test"] & held["validation"]
    assert all((b, a) in held["test"] for a, b in held["test"])  # + is held as an unordered pair
    train_pairs = {(a, b) for r in train for _, a, b in _pairs(r)}
    assert not train_pairs & (held["test"] | held["validation"])      # training never computes a held pair
    assert not {(a, b) for r in val for _, a, b in _pairs(r)} & held["test"]
    assert not {(a, b) for r in test for _, a, b in _pairs(r)} & held["validation"]
    seen, new = arith_split(list(test))
    assert new and seen and sorted(seen + new) == list(range(len(test)))
    for i in new:   # new arithmetic: a step training never saw; seen: every step in training
        assert any((a, b) in held["test"] for _, a, b in _pairs(test[i]))
    for i in seen:
        assert all((a, b) in train_pairs for _, a, b in _pairs(test[i]))
    # off by default and at 0: the same records as before the option existed, and no new_arith in meta
    plain = T.make("math", 50, seed=0, split="test", difficulty=1, mod=7)
    assert list(plain) == list(T.make("math", 50, seed=0, split="test", difficulty=1, mod=7, holdout_arith=0))
    assert "new_arith" not in json.loads(plain[0]["meta"]) and arith_split(list(plain)) == (list(range(50)), [])
    with pytest.raises(ValueError, match="holdout_arith is a percentage"):
        T.make("math", 5, holdout_arith=0.2)


def test_arith_metrics_split_the_held_out_rate_and_gain_by_arithmetic():
    from vtkit import evaluation
    from vtkit.tasks.math import arith_split
    recs = list(T.make("math", 60, seed=1, split="test", difficulty=1, mod=7, subdomain="add", shuffle=False,
                       holdout_arith=20))
    seen, new = arith_split(recs)
    proto = evaluation.sampled(2, 1.0, 8)

    def result(correct):   # every item's 2 samples right or wrong as `correct(i)` says
        return evaluation.summarize_samples([
            {"item": i, "id": r["id"], "sample_index": j, "correct": correct(i), "pred": "0", "gold": r["answer"],
             "n_tokens": 3, "truncated": False, "domain": "math"} for i, r in enumerate(recs) for j in range(2)], proto)
    before, after = result(lambda i: False), result(lambda i: i in seen)   # learns seen arithmetic only
    m = evaluation.arith_metrics("final/math/", recs, after, start=before)
    assert m["final/math/seen_arith/mean@2"] == 1.0 and m["final/math/new_arith/mean@2"] == 0.0
    assert (m["final/math/seen_arith/n_items"], m["final/math/new_arith/n_items"]) == (len(seen), len(new))
    assert m["final/math/seen_arith/heldout_gain"] == 1.0 and m["final/math/new_arith/heldout_gain"] == 0.0
    assert m["final/math/new_arith/heldout_gain_lo"] == 0.0 == m["final/math/new_arith/heldout_gain_hi"]
    assert evaluation.arith_metrics("x/", list(T.make("math", 10, seed=1, split="test", mod=7)), result(bool)) == {}

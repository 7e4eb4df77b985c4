"""vtkit.facts: the offline country-knowledge set and SQuAD-style alias matching."""
import json

import pytest

from vtkit.tasks.common import BOXED_INSTRUCTION

from vtkit.facts import ATTRIBUTE_NAMES, DOMAIN, alias_match, countries, make, normalize_answer

FIELDS = {"id": str, "domain": str, "subdomain": str, "prompt": str, "answer": str, "tests": str,
          "difficulty": int, "solutions": list, "meta": str}


@pytest.fixture(scope="module")
def full():
    return make(seed=0)


def _lookup(ds, country, attribute):
    for row in ds:
        meta = json.loads(row["meta"])
        if meta["country"] == country and meta["attribute"] == attribute:
            return row, meta
    raise AssertionError(f"no {attribute} question for {country}")


def test_records_follow_the_contract_schema(full):
    assert len(full) > 1000
    assert set(full.column_names) == set(FIELDS)
    for row in full.select(range(50)):
        for name, kind in FIELDS.items():
            assert isinstance(row[name], kind), (name, row[name])
        meta = json.loads(row["meta"])
        assert row["domain"] == DOMAIN and row["subdomain"] == meta["attribute"] in ATTRIBUTE_NAMES
        assert row["answer"] == meta["aliases"][0] and row["tests"] == ""
        assert 0 <= row["difficulty"] <= 9
        assert row["prompt"].endswith(BOXED_INSTRUCTION) and meta["country"] in row["prompt"]
        assert row["solutions"][0].startswith("<think>\n") and row["solutions"][0].endswith(f"\\boxed{{{row['answer']}}}.")
    assert len(set(full["id"])) == len(full)
    keys = [(json.loads(m)["iso2"], s) for m, s in zip(full["meta"], full["subdomain"])]
    assert len(set(keys)) == len(keys), "each (country, attribute) is asked once"


def test_deterministic_by_seed_and_seeds_differ():
    a, b, c = make(n=40, seed=3), make(n=40, seed=3), make(n=40, seed=4)
    assert a.to_list() == b.to_list()
    assert a["prompt"] != c["prompt"]
    assert set(make(seed=3)["prompt"]) == set(make(seed=4)["prompt"]), "the seed only orders the same pool"


def test_known_facts(full):
    row, meta = _lookup(full, "France", "capital")
    assert row["prompt"].startswith("What is the capital of France?") and row["answer"] == "Paris"
    assert _lookup(full, "Japan", "capital")[0]["answer"] == "Tokyo"
    assert _lookup(full, "Brazil", "continent")[1]["aliases"] == ["Americas", "America"]
    assert _lookup(full, "Germany", "currency")[0]["answer"] == "EUR"
    assert _lookup(full, "France", "calling_code")[0]["answer"] == "33"
    assert _lookup(full, "Cuba", "currency")[1]["aliases"] == ["CUC", "CUP"]
    assert {"1876", "1-876"} <= set(_lookup(full, "Jamaica", "calling_code")[1]["aliases"])
    assert _lookup(full, "China", "capital")[0]["difficulty"] == 0  # the most populous tenth
    assert _lookup(full, "Tokelau", "capital")[0]["difficulty"] == 9


def test_entry_filtering_drops_duplicates_and_dissolved_states():
    names = [c["name"] for c in countries()]
    codes = [c["ISO"]["alpha2"] for c in countries()]
    assert len(codes) == len(set(codes))
    assert "Serbia and Montenegro" not in names and "Serbia" in names
    assert "Burma" not in names and "Myanmar" in names  # Burma is a partial duplicate without ISO numeric


def test_subset_and_bad_arguments():
    assert set(make(n=30, seed=0, attributes=["capital"])["subdomain"]) == {"capital"}
    with pytest.raises(ValueError, match="unknown attribute 'population'"):
        make(attributes=["population"])
    with pytest.raises(ValueError, match="n=100000 .* pass n=None"):
        make(n=100_000)


@pytest.mark.parametrize("pred,aliases,expected", [
    ("Paris", ["Paris"], True),
    ("  the PARIS. ", ["Paris"], True),
    ("Bogota", ["Bogotá"], True),
    ("Washington DC", ["Washington D.C."], True),
    ("Guinea Bissau", ["Guinea-Bissau"], True),
    ("Saint George's", ["St. George's"], True),
    ("+33", ["33"], True),
    ("America", '["Americas", "America"]', True),  # meta's JSON-encoded list
    ("Paris, France", ["Paris"], False),
    ("Pari", ["Paris"], False),
    ("Lyon", ["Paris", "Paris "], False),
    ("", ["Paris"], False),
    ("the", ["The"], False),  # both normalise to empty: never a match
    (None, ["Paris"], False),
])
def test_alias_match_edge_cases(pred, aliases, expected):
    assert alias_match(pred, aliases) is expected


def test_normalize_answer():
    assert normalize_answer("The São Tomé!") == "sao tome"
    assert normalize_answer("An  apple\ta day") == "apple day"
    assert normalize_answer("St. Peter Port") == "saint peter port"

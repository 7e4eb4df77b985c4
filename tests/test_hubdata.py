"""Hub training data (vtkit.hubdata) on small fixtures in each hub dataset's own files and columns
(tests/fixtures/hub, made by its make_fixtures.py): the record schema, splits, decontamination,
grading with the kit's graders, the offline error, and the stages' `hub_data` setting."""
import json
import shutil
from pathlib import Path

import datasets
import pytest
import yaml

from vtkit import evaluation, hubdata, sandbox, tasks
from vtkit.tasks.common import BOXED_INSTRUCTION, FIELDS

FIX = Path(__file__).resolve().parent / "fixtures" / "hub"
EVALSETS = Path(__file__).resolve().parent / "fixtures" / "evalsets"
ROOT = Path(__file__).resolve().parents[1]


def meta(r):
    return json.loads(r["meta"])


def boxed(answer):
    return f"<think>\nworked it out\n</think>\nThe answer is \\boxed{{{answer}}}."


def program(src):
    return f"<think>\nplan\n</think>\n```python\n{src}\n```"


def test_deepscaler_rows_become_records_that_the_math_grader_checks():
    ds = hubdata.load("deepscaler", path=FIX / "deepscaler")     # a hub snapshot folder: reads deepscaler.json
    assert isinstance(ds, datasets.Dataset) and ds.column_names == list(FIELDS)
    assert ds.features == tasks.to_dataset([]).features
    recs = list(ds)
    assert len({r["id"] for r in recs}) == len(recs) == 7         # 12 rows: 1 duplicate, 2 test, 1 no answer, 1 overlap
    assert all(r["domain"] == "math" and r["prompt"].endswith(BOXED_INSTRUCTION) and r["tests"] == "" for r in recs)
    by_q = {meta(r)["question"]: r for r in recs}
    assert "Prove that there are infinitely many primes." not in by_q                   # empty answer: skipped
    assert not any("Give your answer as an integer" in q for q in by_q)                  # shares a 10-gram with test
    dist = by_q["Find the distance between the points $(0,0)$ and $(3,3)$."]
    assert dist["answer"] == "3\\sqrt{2}"                          # the hub's "$3\sqrt{2}$", unwrapped
    assert evaluation.grade_one(dist, boxed("\\sqrt{18}")) and not evaluation.grade_one(dist, boxed("3\\sqrt{3}"))
    frac = by_q["Compute the value of $\\frac{10}{4} - \\frac{10}{8}$."]
    assert evaluation.grade_one(frac, boxed("1.25")) and not evaluation.grade_one(frac, boxed("\\frac{5}{8}"))
    with_solution = [r for r in recs if r["solutions"]]
    assert len(with_solution) == 5                                # the human solution, in a think block
    assert all(s.startswith("<think>") and evaluation.grade_one(r, s) for r in with_solution for s in r["solutions"])


def test_splits_are_disjoint_seeded_and_counted(capsys):
    train, counts = hubdata.select("deepscaler", "train", path=FIX / "deepscaler")
    test, _ = hubdata.select("deepscaler", "test", path=FIX / "deepscaler")
    assert counts == {"rows": 12, "distinct": 11, "in_split": 9, "overlap_heldout": 1, "overlap_benchmarks": 0,
                      "unusable": 1, "out": 7}
    assert sorted(r["answer"] for r in test) == ["121", "40320"]
    assert all(r["id"].startswith("deepscaler-test-") for r in test)
    tasks.assert_disjoint(train, test, n=10, ignore=hubdata.IGNORE)
    a = hubdata.select("deepscaler", "train", 3, seed=0, path=FIX / "deepscaler")[0]
    assert a == hubdata.select("deepscaler", "train", 3, seed=0, path=FIX / "deepscaler")[0]
    orders = {tuple(r["id"] for r in hubdata.select("deepscaler", "train", 7, seed=s, path=FIX / "deepscaler")[0])
              for s in range(4)}
    assert len(orders) > 1 and len({frozenset(o) for o in orders}) == 1   # the seed orders, n picks the first n
    with pytest.raises(ValueError, match=r"only 7 usable train rows, 8 asked"):
        hubdata.select("deepscaler", "train", 8, path=FIX / "deepscaler")
    hubdata.load("deepscaler", split="test", path=FIX / "deepscaler")
    assert '"out": 2' in capsys.readouterr().out


def test_benchmark_decontamination_removes_a_respelled_benchmark_problem(monkeypatch):
    monkeypatch.setenv("VTKIT_DATA_DIR", str(EVALSETS))              # evalsets.load("aime25") reads the fixture
    recs, counts = hubdata.select("deepscaler", "train", path=FIX / "deepscaler", benchmarks=["aime25"])
    assert counts["overlap_benchmarks"] == 1 and counts["out"] == 6
    assert not any("A square has area" in r["prompt"] for r in recs)
    # why IGNORE holds the benchmarks' suffix: without it the 8-word problem is no 10-gram of the benchmark prompt
    from vtkit import evalsets
    bench = [r["prompt"] for r in evalsets.load("aime25")]
    row = [{"prompt": "A square has area 50. Find its diagonal.\n" + BOXED_INSTRUCTION}]
    assert tasks.decontaminate(row, bench, n=10) == row
    assert tasks.decontaminate(row, bench, n=10, ignore=hubdata.IGNORE) == []
    again, _ = hubdata.select("deepscaler", "train", path=FIX / "deepscaler", against=bench)
    assert [r["id"] for r in again] == [r["id"] for r in recs]


def test_openr1_keeps_only_verified_complete_generations():
    recs, counts = hubdata.select("openr1_math", "train", path=FIX / "openr1_math")   # snapshot: data/ only
    assert counts["rows"] == 6 and counts["unusable"] == 1                 # llama-only verified: no trace
    by_q = {meta(r)["question"]: r for r in recs}
    assert "Find the largest prime factor of 85." not in by_q              # the `extended` config's file
    assert [len(by_q[q]["solutions"]) for q in (
        "Let $x$ satisfy $3x - 5 = 16$. Find $x$.",                        # the wrong one is not verified
        "Find the area of a square whose diagonal has length $4$.",        # the third: llama only
        "Find the largest prime factor of 91.",                            # two identical: one
        "Find the positive root of $x^2 = 49$.")] == [2 - 1, 2, 1, 1]      # truncated one dropped
    assert by_q["Find the area of a square whose diagonal has length $4$."]["subdomain"] == "Geometry"
    assert meta(by_q["Find the largest prime factor of 91."])["source_id"] == "3f1c0a52-0004"
    for r in recs:
        assert all(s.startswith("<think>\n") and "</think>" in s and evaluation.grade_one(r, s) for s in r["solutions"])
    test, _ = hubdata.select("openr1_math", "test", path=FIX / "openr1_math")
    assert [r["answer"] for r in test] == ["\\frac{5}{6}"] and evaluation.grade_one(test[0], boxed("5/6"))
    ext, _ = hubdata.select("openr1_math", "train", path=str(FIX / "openr1_math" / "extended" / "train-*.parquet"))
    assert [meta(r)["question"] for r in ext] == ["Find the largest prime factor of 85."]   # a data_files glob


def test_coding_problems_carry_stdin_tests_the_sandbox_runs():
    recs, counts = hubdata.select("verifiable_coding", "train", path=FIX / "verifiable_coding")
    assert counts["unusable"] == 1 and len(recs) == 3                     # the function_call problem: skipped
    for r in recs:
        assert r["domain"] == "code" and r["prompt"].endswith(hubdata.CODE_SUFFIX) and r["solutions"] == []
        assert "Solve the following coding problem" not in r["prompt"] and "Now solve" not in r["prompt"]
        assert sandbox.parse_tests(r["tests"])[0] == "stdio"
    by_id = {meta(r)["source_id"]: r for r in recs}
    assert {k: r["difficulty"] for k, r in by_id.items()} == {"vfc_1001": 1, "vfc_1002": 2, "vfc_1003": 3}
    golds = [program(r["answer"]) for r in recs]
    res = evaluation.grade(recs, golds)                                   # the hub's gold programs pass
    assert [g["correct"] for g in res] == [True] * 3                     # (vfc_1003's output has a trailing space)
    wrong = program("print(input().split()[0])")
    assert not any(g["correct"] for g in evaluation.grade(recs, [wrong] * 3))
    test, _ = hubdata.select("verifiable_coding", "test", path=FIX / "verifiable_coding")
    assert [meta(r)["source_id"] for r in test] == ["vfc_1005"]


def test_local_copy_from_data_dir_and_clear_errors(monkeypatch, tmp_path):
    shutil.copy(FIX / "deepscaler" / "deepscaler.json", tmp_path / "deepscaler.json")
    monkeypatch.setenv("VTKIT_DATA_DIR", str(tmp_path))
    assert len(hubdata.load("deepscaler")) == 7
    with pytest.raises(ValueError, match="valid names: deepscaler, openr1_math, verifiable_coding"):
        hubdata.load("numina")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        hubdata.load("deepscaler", path=tmp_path / "nope")
    with pytest.raises(ValueError, match=r"not the hub's open-r1/verifiable-coding-problems-python format"):
        hubdata.load("verifiable_coding", path=FIX / "deepscaler")
    monkeypatch.delenv("VTKIT_DATA_DIR")
    monkeypatch.setattr(hubdata, "_hub_reachable", lambda: False)        # as here: HF_HUB_OFFLINE / no network
    local = r"needs a local copy.*hf download open-r1/OpenR1-Math-220k.*VTKIT_DATA_DIR/openr1_math.*path: DIR"
    with pytest.raises(RuntimeError, match=local):
        hubdata.load("openr1_math")

    def refused(*a, **k):
        raise ConnectionError("connection refused")
    monkeypatch.setattr(hubdata, "_hub_reachable", lambda: True)
    monkeypatch.setattr(datasets, "load_dataset", refused)
    with pytest.raises(RuntimeError, match=r"ConnectionError: connection refused.*--set 'hub_data=\{math: \{source"):
        hubdata.load("deepscaler")


def test_make_groups_replaces_the_generated_groups_of_hub_domains():
    hub = {"math": {"source": "deepscaler", "path": str(FIX / "deepscaler"), "n": 3, "n_heldout": 2},
           "code": {"source": "verifiable_coding", "path": "not/read", "n": 1}}   # no code group in spec: unread
    spec = {"math/add": {"n": 6, "subdomain": "add", "difficulty": 1, "mod": 7},
            "hard": {"domain": "math", "n": 2, "difficulty": 2}, "stem": {"n": 4, "difficulty": 1}}
    train = hubdata.make_groups(hub, spec, seed=0)
    assert list(train) == ["math", "stem"]
    assert len(train["math"]) == 3 and all(r["id"].startswith("deepscaler-train-") for r in train["math"])
    assert [r["domain"] for r in train["stem"]] == ["stem"] * 4
    test = hubdata.make_groups(hub, spec, seed=0, split="test")
    assert sorted(r["answer"] for r in test["math"]) == ["121", "40320"]
    rl_hub = {"math": {"source": "deepscaler", "path": str(FIX / "deepscaler")}}   # counts from the stage's n
    assert len(hubdata.make_groups(rl_hub, {"math": {"difficulty": 1}, "stem": {"difficulty": 1}},
                                   {"math": 2, "stem": 3})["math"]) == 2
    with pytest.raises(ValueError, match=r"hub_data\['math'\] needs `n_heldout`"):
        hubdata.make_groups(rl_hub, {"math": {"n": 3}}, split="test")
    with pytest.raises(ValueError, match="unknown key.*valid keys: source, n, n_heldout"):
        hubdata.make_groups({"math": {"source": "deepscaler", "split": "train"}}, spec)


def test_stages_read_hub_data_when_set():
    from vtkit.stages import rl, sft
    hub = {"math": {"source": "deepscaler", "path": str(FIX / "deepscaler"), "n": 5, "n_heldout": 2}}
    cfg = sft.Config.from_preset("tiny", overrides={
        "hub_data": hub, "mixture": {"math": {"n": 10, "difficulty": 1}, "code": {"n": 2, "difficulty": 1}},
        "eval": {"math/add": {"n": 4, "subdomain": "add", "difficulty": 1}, "code": {"n": 2, "difficulty": 1}}})
    data1, heldout, m = sft.stage1_data(cfg, seed=0)
    assert sorted(heldout) == ["code", "math"] and len(heldout["math"]) == 2
    picked, _ = hubdata.select("deepscaler", "train", 5, seed=0, path=FIX / "deepscaler")
    assert m["stage1/filter/queries_in"] == 5 + 2                   # 5 hub math rows + 2 generated code tasks
    assert sorted(r["id"] for r in data1 if r["domain"] == "math") == sorted(r["id"] for r in picked if r["solutions"])
    cfg = rl.Config.from_preset("tiny", overrides={"hub_data": {"math": {"source": "deepscaler",
                                                                         "path": str(FIX / "deepscaler")}},
                                                   "phases": ["math", "code"], "n_prompts": {"math": 4, "code": 3},
                                                   "n_heldout": {"math": 2, "code": 2}})
    train_sets, held = rl.phase_data(cfg)
    assert [r["id"].split("-")[:2] for r in train_sets["math"]] == [["deepscaler", "train"]] * 4
    assert len(held["math"]) == 2 and [r["domain"] for r in train_sets["code"]] == ["code"] * 3


@pytest.mark.parametrize("stage", ["sft", "rl"])
def test_presets_read_the_hub_at_paper_only(stage):
    data = yaml.safe_load((ROOT / "vtkit" / "presets" / f"{stage}.yaml").read_text())
    assert data["tiny"]["hub_data"] is None and data["small"]["hub_data"] is None
    hub = hubdata.check_spec(data["paper"]["hub_data"])
    assert {hubdata.SOURCES[s["source"]].domain for s in hub.values()} == {"math", "code"}

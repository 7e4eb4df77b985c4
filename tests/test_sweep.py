"""The sweep runner on real notebooks: local pool, pipeline, failures, timeouts, kill + resume, submitit.

Fixture notebooks (tests/fixtures) are tiny and import nothing heavy, so each run costs about
kernel start-up. Every sweep here executes for real through papermill and the `vtkit` kernel.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pandas as pd
import psutil
import pytest

from vtkit import cli, experiment as xp, runinfo, sweep as sw

FIX = Path(__file__).parent / "fixtures"
METRICS = FIX / "metrics.ipynb"


def exp_file(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "exp.yaml"
    p.write_text(text)
    return p


def marked_processes(mark: str) -> list:
    """Live processes (other than this one) whose environment carries VTKIT_TEST_MARK=mark."""
    found = []
    for p in psutil.process_iter():
        try:
            if p.pid != os.getpid() and p.environ().get("VTKIT_TEST_MARK") == mark and p.status() != psutil.STATUS_ZOMBIE:
                found.append(p)
        except psutil.Error:
            pass
    return found


@pytest.fixture
def mark(monkeypatch):
    """A unique marker in the environment every process of this test's sweeps inherits."""
    value = uuid.uuid4().hex
    monkeypatch.setenv("VTKIT_TEST_MARK", value)
    return value


def test_local_sweep_records_runs_and_skips_finished_ones(tmp_path, mark):
    exp = xp.load(exp_file(tmp_path, f"""
name: grid
notebook: {METRICS}
grid: {{x: [1.0, 2.0], seed: [0, 1]}}
jobs: 2
resources: {{gpus: 1, cpus: 2}}
"""))
    res = sw.sweep(exp, tmp_path / "runs", gpu_ids=["0", "1"], progress=False)  # two pretend GPUs
    assert res.ok and sorted(res.executed) == sorted(r.run_id for r in res.runs)
    df = pd.read_parquet(tmp_path / "runs/grid/results.parquet")
    assert len(df) == 4 and set(df.status) == {"ok"} and set(df.stage) == {"metrics"}
    assert list(df.columns[:4]) == ["run_id", "stage", "x", "seed"]
    for _, row in df.iterrows():  # the notebook saw its parameters, its thread cap and one GPU of the pool
        assert row.x_seen == row.x and 0 <= row.y - row.x ** 2 < 0.01
        assert row.omp_threads == "2" and row.vtkit_threads == "2" and row.cuda_visible in {"0", "1"}
        assert row.wall_s > 0 and row.error is None
        d = Path(row.out_dir)
        assert d.parent == tmp_path.resolve() / "runs/grid" and d.name == row.run_id
        for f in ("params.json", "config.json", "runinfo.json", "executed.ipynb", "log.txt", "timings.json",
                  "metrics.json", "_DONE"):
            assert (d / f).is_file(), f
        assert json.loads((d / "params.json").read_text())["out_dir"] == str(d)
        info = json.loads((d / "runinfo.json").read_text())
        assert info["packages"]["papermill"] and info["python"] and info["threads"]["OMP_NUM_THREADS"] == "2"
        assert len(info["git"]["commit"]) == 40 and isinstance(info["git"]["dirty"], bool)  # this checkout
        assert f"working on x={row.x}" in (d / "log.txt").read_text()  # printed output went to the log
    assert pd.read_csv(tmp_path / "runs/grid/results.csv").shape == df.shape
    for r in res.runs:  # each finished run is also reachable by its varied values alone
        assert (tmp_path / "runs/grid" / r.run_id.rsplit("-", 1)[0]).resolve() == r.dir.resolve()
    seeds = df.groupby("x").y.agg(list)
    assert seeds[1.0][0] != seeds[1.0][1]  # the seed reached random.seed

    done_times = {r.run_id: (r.dir / "_DONE").stat().st_mtime_ns for r in res.runs}
    again = sw.sweep(exp, tmp_path / "runs", gpu_ids=["0", "1"], progress=False)  # resume: nothing to do
    assert again.executed == [] and len(again.skipped) == 4
    assert {r.run_id: (r.dir / "_DONE").stat().st_mtime_ns for r in again.runs} == done_times
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "runs/grid/results.parquet"), df)
    assert marked_processes(mark) == []


def test_failing_run_does_not_stop_the_others(tmp_path, capsys, mark):
    path = exp_file(tmp_path, f"""
name: faults
notebook: {METRICS}
zip: {{x: [1.0, 2.0, 3.0], fail: [false, true, false]}}
jobs: 1
""")
    out = str(tmp_path / "runs")
    assert cli.main(["sweep", str(path), "--out", out, "--no-progress"]) == 1  # jobs 1: x=3 runs after the failure
    err = capsys.readouterr().err
    runs = xp.plan(xp.load(path), out)
    bad = runs[1]
    assert f"{bad.run_id}: metrics: ValueError: fixture failure for x=2.0" in err
    df = pd.read_parquet(Path(out) / "faults/results.parquet").set_index("run_id")
    assert list(df.status) == ["ok", "failed", "ok"]
    assert df.loc[bad.run_id, "error"] == "ValueError: fixture failure for x=2.0 (cell [3])"
    assert pd.isna(df.loc[bad.run_id, "y"]) and df.loc[runs[2].run_id, "y"] > 9
    failed = json.loads((bad.dir / "_FAILED").read_text())
    assert "raise ValueError" in failed["traceback"] and not (bad.dir / "_DONE").exists()
    assert not (Path(out) / "faults" / bad.run_id.rsplit("-", 1)[0]).exists()  # no link to a failed run
    executed = json.loads((bad.dir / "executed.ipynb").read_text())  # kept, with the error in it
    assert any(o.get("ename") == "ValueError" for c in executed["cells"] for o in c.get("outputs", []))
    assert "fixture failure" in (bad.dir / "log.txt").read_text()

    exp = xp.load(path)  # without --rerun-failed a failed run is reported, not rerun
    again = sw.sweep(exp, out, progress=False)
    assert again.executed == [] and list(again.failed) == [bad.run_id]
    before = failed["finished"], (bad.dir / "_FAILED").stat().st_mtime_ns
    rerun = sw.sweep(exp, out, rerun_failed=True, progress=False)
    assert rerun.executed == [bad.run_id] and list(rerun.failed) == [bad.run_id]
    assert (bad.dir / "_FAILED").stat().st_mtime_ns != before[1]


def test_pipeline_second_stage_reads_the_first(tmp_path, mark):
    exp = xp.load(exp_file(tmp_path, f"""
name: chain
pipeline:
  - {{name: write, notebook: {FIX / 'stage_write.ipynb'}, parameters: {{text: abc}}}}
  - {{name: read, notebook: {FIX / 'stage_read.ipynb'}, parameters: {{model_dir: "{{stages.write.out_dir}}/model"}}}}
grid: {{seed: [0, 1]}}
jobs: 2
"""))
    res = sw.sweep(exp, tmp_path / "runs", progress=False)
    assert res.ok
    df = pd.read_parquet(tmp_path / "runs/chain/results.parquet")
    assert list(zip(df.stage, df.seed)) == [("write", 0), ("read", 0), ("write", 1), ("read", 1)]
    reads = df[df.stage == "read"]
    assert list(reads.read) == ["abc-0", "abc-1"] and reads.seed_matches.all()
    for run in res.runs:
        assert (run.dir / "write/model/weights.txt").is_file() and (run.dir / "read/_DONE").is_file()
        assert df.loc[(df.run_id == run.run_id) & (df.stage == "read"), "model_dir"].item() == str(run.dir / "write/model")


def test_progress_line_names_each_runs_stage():
    line = sw.progress_line("demo", 7, 20, [("seed=0", "rl", 190.0), ("seed=1", "merge", 45.0)], elapsed=723.0)
    assert line == "demo: 7/20 stages, 12:03 | seed=0: rl 3:10 | seed=1: merge 0:45"
    line = sw.progress_line("grid", 3, 12, [("lr=0.1,seed=1", None, 5.0)], failed=1, elapsed=4000.0, unit="runs")
    assert line == "grid: 3/12 runs, 1 failed, 1:06:40 | lr=0.1,seed=1 0:05"
    assert sw.progress_line("demo", 0, 20, []) == "demo: 0/20 stages"
    run = xp.Run("a" * 40, {"stage.mgpo_lambda": 0.5, "seed": 1}, Path("."), [])
    assert sw.run_label(run) == "mgpo_lambda=0.5,seed=1"
    assert sw.run_label(xp.Run("r" * 40, {}, Path("."), [])) == "r" * 27 + "~"


def test_progress_follows_the_stages_of_a_pipeline(tmp_path, mark, monkeypatch, capsys):
    """The runner's line counts stages and names the stage each run is in, as the workers move on."""
    exp = xp.load(exp_file(tmp_path, f"""
name: twostage
pipeline:
  - {{name: first, notebook: {METRICS}}}
  - {{name: second, notebook: {METRICS}}}
parameters: {{sleep_s: 1.0}}
grid: {{seed: [0, 1]}}
jobs: 2
"""))
    seen = []
    real = sw.progress_line

    def record(name, done, total, active, **kw):
        seen.append((done, total, {(label, stage) for label, stage, _ in active}))
        return real(name, done, total, active, **kw)

    monkeypatch.setattr(sw, "progress_line", record)
    monkeypatch.setattr(sw, "POLL_S", 0.1)
    assert sw.sweep(exp, tmp_path / "runs", progress=True).ok
    shown = set().union(*(a for _, _, a in seen))
    assert {("seed=0", "first"), ("seed=0", "second"), ("seed=1", "first"), ("seed=1", "second")} <= shown
    dones = [d for d, _, _ in seen]
    assert {t for _, t, _ in seen} == {4} and dones == sorted(dones) and dones[-1] == 4
    assert any(("seed=0", "second") in a and d in (1, 2, 3) for d, _, a in seen)  # counted while running
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.rsplit("\r", 1)[-1].startswith("twostage: 4/4 stages, 0:")
    assert 3 <= err.count("\r") <= 20  # redrawn when a stage starts or a run ends, not every poll
    for run in xp.plan(exp, tmp_path / "runs"):  # the worker's last word: finished
        assert sw.read_stage_status(tmp_path / "runs/twostage/_sweep" / f"{run.run_id}.stage") == (2, None)


def test_timeout_kills_kernel_and_children(tmp_path, mark):
    exp = xp.load(exp_file(tmp_path, f"name: slow\nnotebook: {FIX / 'sleeper.ipynb'}\ntimeout_s: 10\n"))
    res = sw.sweep(exp, tmp_path / "runs", progress=False)   # the notebook would sleep 600 s and succeed
    run = res.runs[0]
    assert list(res.failed) == [run.run_id] and "timeout" in res.failed[run.run_id]
    assert "timeout_s=10" in json.loads((run.dir / "_FAILED").read_text())["error"]
    child = int((run.dir / "child.pid").read_text())  # started in its own session by the notebook
    gone = not psutil.pid_exists(child) or psutil.Process(child).status() == psutil.STATUS_ZOMBIE
    assert gone and marked_processes(mark) == []  # no worker, kernel or child left


def test_resume_after_the_runner_is_killed(tmp_path, mark, monkeypatch):
    """Kill the runner's process group mid-sweep, run again: every run completes exactly once.

    Each run appends `<phase> <run> <token>` to a ledger as the last thing its notebook does and
    reports the same token in metrics.json. A run that had its `_DONE` before the kill must not run
    again; every other run must run exactly once in the second phase, and the final metrics of
    every run must come from the execution the ledger counts.
    """
    ledger = tmp_path / "ledger.txt"
    path = exp_file(tmp_path, f"""
name: resume
notebook: {METRICS}
parameters: {{sleep_s: 0.5, ledger: "{ledger}"}}
grid: {{x: [1.0, 2.0], seed: [0, 1]}}
jobs: 2
""")
    out = tmp_path / "runs"
    runs = xp.plan(xp.load(path), out)
    cmd = [sys.executable, "-m", "vtkit.cli", "sweep", str(path), "--out", str(out), "--no-progress"]
    proc = subprocess.Popen(cmd, env={**os.environ, "VTKIT_TEST_PHASE": "first"}, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not any((r.dir / "_DONE").exists() for r in runs) and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = {r.run_id for r in runs if (r.dir / "_DONE").exists()}
    assert 1 <= len(done_before) < len(runs), "the kill should land mid-sweep"
    t0 = time.time()  # kernels notice their worker is gone (ipykernel polls its parent every second)
    while marked_processes(mark) and time.time() - t0 < 15:
        time.sleep(0.2)
    assert marked_processes(mark) == [], "processes of the killed sweep are still running"

    monkeypatch.setenv("VTKIT_TEST_PHASE", "second")  # the same command again, in this process
    assert cli.main(cmd[3:]) == 0
    lines = [line.split() for line in ledger.read_text().splitlines()]
    df = pd.read_parquet(out / "resume/results.parquet").set_index("run_id")
    assert sorted(df.index) == sorted(r.run_id for r in runs) and set(df.status) == {"ok"}
    for run in runs:
        first = [tok for phase, rid, tok in lines if rid == run.run_id and phase == "first"]
        again = [tok for phase, rid, tok in lines if rid == run.run_id and phase == "second"]
        if run.run_id in done_before:
            assert again == [] and len(first) == 1, run.run_id  # finished runs are not redone
            completed = first
        else:
            assert len(again) == 1, run.run_id  # unfinished runs are redone once
            completed = again
        assert df.loc[run.run_id, "token"] == completed[0]  # the table shows the counted execution


def test_submitit_path_with_the_local_executor(tmp_path, mark):
    exp = xp.load(exp_file(tmp_path, f"""
name: cluster
notebook: {METRICS}
zip: {{x: [1.0, 2.0], fail: [false, true]}}
jobs: 2
timeout_s: 120
executor: slurm
slurm: {{cluster: local, partition: debug}}
"""))
    res = sw.sweep(exp, tmp_path / "runs", progress=False)
    ok, bad = res.runs
    assert list(res.failed) == [bad.run_id] and "fixture failure for x=2.0" in res.failed[bad.run_id]
    df = pd.read_parquet(tmp_path / "runs/cluster/results.parquet")
    assert list(df.status) == ["ok", "failed"] and df.y[0] == pytest.approx(1.0, abs=0.01)
    assert (ok.dir / "_DONE").is_file() and (ok.dir / "executed.ipynb").is_file()
    assert any((tmp_path / "runs/cluster/_sweep/submitit").rglob("*_log.out"))  # submitit's own job logs


def test_resource_and_executor_errors(tmp_path, monkeypatch):
    base = f"name: res\nnotebook: {METRICS}\n"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    exp = xp.load(exp_file(tmp_path, base + "resources: {gpus: 1}\n"))
    with pytest.raises(sw.SweepError, match=r"resources.gpus=1 but this machine offers 0 GPU"):
        sw.sweep(exp, tmp_path / "runs", progress=False)
    if not __import__("shutil").which("sbatch"):
        exp = xp.load(exp_file(tmp_path, base + "executor: slurm\n"))
        with pytest.raises(sw.SweepError, match="needs SLURM's sbatch"):
            sw.sweep(exp, tmp_path / "runs", progress=False)
    exp = xp.load(exp_file(tmp_path, base + "executor: slurm\nslurm: {cluster: local, partitoin: x}\n"))
    with pytest.raises(sw.SweepError, match="Unknown argument 'partitoin'.*partition"):
        sw.sweep(exp, tmp_path / "runs", progress=False)
    exp = xp.load(exp_file(tmp_path, base + "kernel: no-such-kernel\n"))
    with pytest.raises(sw.SweepError, match="kernel 'no-such-kernel' is not installed"):
        sw.sweep(exp, tmp_path / "runs", progress=False)
    exp = xp.load(exp_file(tmp_path, base))
    with sw._lock(tmp_path / "runs/res/_sweep/lock"):  # a second sweep on the same folder is refused
        with pytest.raises(sw.SweepError, match="another vtkit sweep is running"):
            sw.sweep(exp, tmp_path / "runs", progress=False)


def test_results_table_renames_clashing_columns(tmp_path):
    d = tmp_path / "r1"
    d.mkdir()
    runinfo.write_metrics(d, {"wall_s": 1.5, "x": 2.0, "acc": 0.5})
    runinfo.write_json(d / "_DONE", {"wall_s": 3.0})
    run = xp.Run("r1", {"x": 1.0}, d, [xp.StageRun("main", METRICS, {"x": 1.0, "lst": [1, 2], "out_dir": str(d)}, d)])
    df, roles = sw.results_table([run])
    assert list(df.columns) == ["run_id", "stage", "param_x", "lst", "status", "error", "wall_s", "vtkit_source",
                                "out_dir", "metric_wall_s", "x", "acc"]
    row = df.iloc[0]
    assert (row.param_x, row.x, row.wall_s, row.metric_wall_s, row.lst) == (1.0, 2.0, 3.0, 1.5, "[1, 2]")
    assert roles["varied"] == ["param_x"] and roles["metrics"] == ["metric_wall_s", "x", "acc"]


def test_runinfo_metrics_and_seeds(tmp_path, monkeypatch):
    import numpy as np
    import torch

    runinfo.write_metrics(tmp_path, {"a": np.float32(0.5), "n": np.int64(3), "ok": True, "name": "x"})
    runinfo.write_metrics(tmp_path, {"b": float("nan")})  # merges; NaN becomes null
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"a": 0.5, "n": 3, "ok": True, "name": "x", "b": None}
    with pytest.raises(TypeError, match="metric 'curve' is a list"):
        runinfo.write_metrics(tmp_path, {"fine": 1, "curve": [1, 2]})
    assert "fine" not in json.loads((tmp_path / "metrics.json").read_text())  # nothing half-written
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # no temp files left behind
    runinfo.save(tmp_path / "s", {"lr": 1e-3, "path": tmp_path})
    assert json.loads((tmp_path / "s/config.json").read_text()) == {"lr": 1e-3, "path": str(tmp_path)}
    monkeypatch.setenv("VTKIT_NUM_THREADS", "1")  # what the sweep runner sets for `cpus: 1`
    threads, draws = torch.get_num_threads(), []
    try:
        for _ in range(2):
            runinfo.seed_everything(7)
            draws.append((torch.rand(3).tolist(), np.random.rand(), __import__("random").random()))
        assert draws[0] == draws[1]
        assert torch.are_deterministic_algorithms_enabled() and torch.get_num_threads() == 1
    finally:  # global torch state: leave it as found for other tests
        torch.use_deterministic_algorithms(False)
        torch.set_num_threads(threads)


def test_run_env_sets_threads_and_keeps_freed_memory_unless_the_user_chose(monkeypatch):
    for k in sw.MALLOC_ENV:
        monkeypatch.delenv(k, raising=False)
    env = sw.run_env(1)
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == env["VTKIT_NUM_THREADS"] == "1"
    assert int(env["MALLOC_TRIM_THRESHOLD_"]) >= 1 << 30 and int(env["MALLOC_TOP_PAD_"]) > 0
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "131072")
    env = sw.run_env(2)
    assert "MALLOC_TRIM_THRESHOLD_" not in env and env["OMP_NUM_THREADS"] == "2"  # the user's value stays


def test_link_latest_follows_the_newest_finished_run_and_never_replaces_a_folder(tmp_path):
    old, new = tmp_path / "seed=0-0123456789", tmp_path / "seed=0-abcdefabcd"
    old.mkdir(), new.mkdir()
    assert sw.link_latest(old, old.name) == tmp_path / "seed=0" and (tmp_path / "seed=0").resolve() == old
    assert sw.link_latest(new, new.name) == tmp_path / "seed=0" and (tmp_path / "seed=0").resolve() == new
    assert os.readlink(tmp_path / "seed=0") == new.name  # relative: the experiment folder can move
    (tmp_path / "lr=0.1").mkdir()
    assert sw.link_latest(tmp_path / "lr=0.1-0123456789", "lr=0.1-0123456789") is None  # a real folder stays
    assert (tmp_path / "lr=0.1").is_dir() and not (tmp_path / "lr=0.1").is_symlink()
    assert sw.link_latest(tmp_path / "0123456789", "0123456789") is None  # nothing varied: no readable name
    cut = "x=" + "1" * 46 + "-0123456789"  # a readable part at the length run_id cuts to may not be unique
    assert xp.readable_name(cut) is None and sw.link_latest(tmp_path / cut, cut) is None


def test_source_hash_covers_modules_presets_and_data_not_caches_or_docs(tmp_path):
    src = tmp_path / "vtkit"
    shutil.copytree(runinfo.SOURCE_ROOT, src, ignore=shutil.ignore_patterns("__pycache__"))
    h = runinfo.source_hash(src)
    assert h == runinfo.source_hash() and len(h) == 16  # the content counts, not where the package lives
    files = {f.relative_to(src).as_posix() for f in runinfo.source_files(src)}
    assert {"sweep.py", "stages/base.py", "presets/rl.yaml", "data/HumanEval.jsonl.gz"} <= files
    (src / "__pycache__").mkdir(exist_ok=True)
    (src / "__pycache__" / "x.pyc").write_bytes(b"\0")
    (src / "data" / "README.md").write_text("notes")
    assert runinfo.source_hash(src) == h  # bytecode caches and docs are not the source
    for edit in ("stages/base.py", "presets/rl.yaml", "data/published_scores.csv"):
        f = src / edit
        before = f.read_bytes()
        f.write_bytes(before + b"\n")
        assert runinfo.source_hash(src) != h, edit
        f.write_bytes(before)
    assert runinfo.source_hash(src) == h
    assert runinfo.collect()["vtkit_source"] == h  # runinfo.json records it


def test_a_library_edit_reruns_finished_runs_unless_reuse_stale(tmp_path, mark, monkeypatch, capsys):
    """Finished runs made by other vtkit code run again (from their first stale stage); --reuse-stale
    keeps them and names them; with unchanged code a sweep skips everything finished."""
    src = tmp_path / "vtkit"  # a copy of the package stands for the library: the test edits the copy
    shutil.copytree(runinfo.SOURCE_ROOT, src, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(runinfo, "SOURCE_ROOT", src)
    path = exp_file(tmp_path, f"""
name: stale
pipeline:
  - {{name: first, notebook: {METRICS}}}
  - {{name: second, notebook: {METRICS}}}
grid: {{seed: [0]}}
""")
    out = tmp_path / "runs"
    exp = xp.load(path)
    run = xp.plan(exp, out)[0]
    first, second = (st.out_dir for st in run.stages)
    token = lambda d: json.loads((d / "metrics.json").read_text())["token"]  # new for every execution

    res = sw.sweep(exp, out, progress=False)
    old = runinfo.source_hash(src)
    assert res.ok and res.executed == [run.run_id] and res.stale == {} and res.source == old
    assert sw.stage_source(first) == sw.stage_source(second) == old
    tokens = token(first), token(second)
    again = sw.sweep(exp, out, progress=False)  # unchanged code: a resumed sweep skips finished stages
    assert again.executed == [] and again.skipped == [run.run_id] and (token(first), token(second)) == tokens

    (src / "metrics.py").write_text((src / "metrics.py").read_text() + "\nCHANGED = 1\n")  # a library edit
    new = runinfo.source_hash(src)
    assert new != old and xp.plan(exp, out)[0].run_id == run.run_id  # same run, other code
    capsys.readouterr()
    assert cli.main(["sweep", str(path), "--out", str(out), "--dry-run"]) == 0
    plan = capsys.readouterr().out
    assert f"run  stale    {run.run_id}" in plan and f"stale: first, second made by vtkit source {old} (now {new})" in plan
    assert cli.main(["sweep", str(path), "--out", str(out), "--dry-run", "--reuse-stale"]) == 0
    assert f"skip stale    {run.run_id}" in capsys.readouterr().out

    kept = sw.sweep(exp, out, progress=False, reuse_stale=True)  # asked to: the old results stay, named
    assert kept.executed == [] and kept.reused_stale == [run.run_id] and kept.stale == {run.run_id: ["first", "second"]}
    assert f"{run.run_id}: first, second made by vtkit source {old}" in capsys.readouterr().err
    assert (token(first), token(second)) == tokens
    assert set(pd.read_parquet(out / "stale/results.parquet").vtkit_source) == {old}

    redone = sw.sweep(exp, out, progress=False)  # the default: run it again with the current code
    assert redone.ok and redone.executed == [run.run_id] and "running them again" in capsys.readouterr().err
    assert token(first) != tokens[0] and token(second) != tokens[1]
    assert sw.stage_source(first) == sw.stage_source(second) == new
    df = pd.read_parquet(out / "stale/results.parquet")
    assert set(df.vtkit_source) == {new} and set(df.status) == {"ok"}

    # a stage finished by other code (here: before vtkit recorded it) is redone with every later stage only
    tokens = token(first), token(second)
    marker = json.loads((second / sw.DONE).read_text())
    del marker["source"]
    runinfo.write_json(second / sw.DONE, marker)
    assert sw.first_to_run([first, second], new) == 1 and sw.first_to_run([first, second], new, reuse_stale=True) is None
    res = sw.sweep(exp, out, progress=False)
    assert res.stale == {run.run_id: ["second"]} and res.executed == [run.run_id]
    assert token(first) == tokens[0] and token(second) != tokens[1] and sw.stage_source(second) == new
    assert marked_processes(mark) == []


NB = Path(__file__).resolve().parents[1] / "notebooks"


def test_gpu_runs_are_planned_first_and_refused_when_a_stage_cannot_fit(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the model's shapes from the repository's table
    path = exp_file(tmp_path, f"""
name: plan-gate
parameters: {{preset: tiny}}
resources: {{gpus: 1}}
pipeline:
  - {{name: big, notebook: {NB / '00_quickstart.ipynb'}, parameters: {{model: Qwen/Qwen2.5-Math-1.5B}}}}
  - {{name: small, notebook: {NB / 'evaluate.ipynb'}, parameters: {{model: tiny-25k}}}}
""")
    out = tmp_path / "runs"
    # 1.5B parameters with AdamW need ~23 GiB of model states alone: refused at 8 GiB, naming only that stage
    assert cli.main(["sweep", str(path), "--out", str(out), "--gpu-mem", "8", "--no-progress"]) == 2
    got = capsys.readouterr()
    assert "plan (1 GPU(s) x 8 GiB per run" in got.out and "cannot fit in 8 GiB per GPU by the plan: big;" in got.err
    rows = {line.split()[0]: line.split() for line in got.out.splitlines() if line.startswith("  ")}
    assert rows["big"][2] == "NO" and float(rows["big"][1]) > 20 and rows["small"][2] == "yes"
    assert rows["total"][2] == "NO" and float(rows["total"][3]) >= float(rows["big"][3]) > 0
    assert not (out / "plan-gate").exists() or not any((out / "plan-gate").glob("*/big"))  # nothing ran
    assert cli.main(["sweep", str(path), "--out", str(out), "--gpu-mem", "8", "--dry-run"]) == 2   # dry run: same verdict
    assert "big" in capsys.readouterr().err
    # forced: it goes on (a dry run, so nothing executes); at 80 GiB every stage fits and nothing is refused
    assert cli.main(["sweep", str(path), "--out", str(out), "--gpu-mem", "8", "--dry-run", "--force-plan"]) == 0
    got = capsys.readouterr().out
    assert "plan: big cannot fit in 8 GiB per GPU; going on (--force-plan)" in got and "big:" in got
    v = sw.check_plan(xp.load(path), gpu_mem=80)
    assert v.not_fitting == [] and [e["stage"] for e in v.entries] == ["big", "small", "total"]


def test_cpu_runs_are_not_planned_and_an_unplannable_gpu_run_goes_on(tmp_path, monkeypatch, capsys):
    from vtkit import plan

    def boom(*a, **k):
        raise AssertionError("a CPU-only experiment must not be planned")

    monkeypatch.setattr(plan, "plan_experiment", boom)
    cpu = exp_file(tmp_path, f"name: cpu\nnotebook: {METRICS}\nparameters: {{x: 1.0}}\nresources: {{gpus: 0}}\n")
    assert cli.main(["sweep", str(cpu), "--out", str(tmp_path / "runs"), "--dry-run", "--gpu-mem", "8"]) == 0
    assert "plan" not in capsys.readouterr().out.replace("experiment cpu", "")
    assert sw.check_plan(xp.load(cpu), gpu_mem=8) is None
    monkeypatch.undo()
    # a GPU experiment the plan cannot size (the fixture notebook is no stage): said, and nothing is blocked
    gpu = exp_file(tmp_path, f"name: gpu\nnotebook: {METRICS}\nparameters: {{x: 1.0}}\nresources: {{gpus: 1}}\n")
    assert cli.main(["sweep", str(gpu), "--out", str(tmp_path / "runs"), "--dry-run", "--gpu-mem", "8"]) == 0
    got = capsys.readouterr().out
    assert "plan: not computed, running without it (stage 'metrics': the plan knows no stage for notebook metrics" in got
    assert "  run  pending" in got


# ---------------------------------------------------------------------------------- data parallel runs
NOTEBOOKS = Path(__file__).parents[1] / "notebooks"
QUICKSTART = NOTEBOOKS / "00_quickstart.ipynb"


def test_a_run_given_two_processes_runs_its_stage_as_two_and_writes_one_metrics_file(tmp_path, mark):
    """resources.processes: 2 on CPU: the quickstart stage (SFT of tiny-25k on 32 problems, 4 steps at a
    global batch of 8, then sharded evaluation) under torchrun with 2 gloo processes (~40-60 s)."""
    exp = xp.load(exp_file(tmp_path, f"""
name: dp
notebook: {QUICKSTART}
parameters: {{model: tiny-25k, n_train: 32, n_test: 4, epochs: 1, n_samples: 1, max_new_tokens: 4,
             overrides: {{batch_size: 8, max_length: 64}}}}
resources: {{processes: 2, cpus: 2}}
timeout_s: 300
"""))
    res = sw.sweep(exp, tmp_path / "runs", progress=False)
    assert res.ok, res.failed
    (run,) = res.runs
    d = run.dir
    launch = json.loads((d / "launch.json").read_text())
    assert (launch["launcher"], launch["processes"], launch["nodes"], launch["world_size"]) == \
        ("torch.distributed.run", 2, 1, 2)
    cmd = launch["command"]
    assert cmd[1:5] == ["-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone"]
    assert cmd[5:7] == ["-m", "vtkit.stages.quickstart"] and cmd[cmd.index("--out-dir") + 1] == str(d)
    log = (d / "log.txt").read_text()
    assert "vtkit run quickstart: rank 0 of 2" in log and "vtkit run quickstart: rank 1 of 2" in log
    assert log.count("quickstart: wrote") == 1                       # rank 0 alone writes
    assert not (d / "executed.ipynb").exists() and (d / "_DONE").is_file()
    metrics = json.loads((d / "metrics.json").read_text())
    assert metrics["params"] == 24_208 and metrics["train_steps"] >= 1 and 0 <= metrics["greedy_acc"] <= 1
    config = json.loads((d / "config.json").read_text())             # the stage's settings, as --set gave them
    assert (config["section"], config["model"], config["n_train"], config["batch_size"]) == ("quickstart", "tiny-25k", 32, 8)
    # the global batch of 8 is kept: 2 processes x 4 rows, so one epoch of 32 rows is 4 steps, as in one process
    last = json.loads((d / "sft" / "trainer_log.json").read_text())[-1]
    assert (last["step"], last["epoch"]) == (4, 1.0)
    df = pd.read_parquet(tmp_path / "runs/dp/results.parquet")
    assert list(df.status) == ["ok"] and df.params[0] == 24_208


def test_stage_command_passes_the_notebooks_parameters_to_the_stage_config(tmp_path):
    from vtkit import stages
    from vtkit.stages import base

    sft_nb = NOTEBOOKS / "01_sft_curriculum.ipynb"
    args = sw.stage_command(sft_nb, {"init_model": "runs/m", "lr": 1e-5, "seed": 3, "epochs1": None,
                                     "overrides": {"n_rollouts": 3, "lr": 2e-5}, "out_dir": "/o"})
    assert args[:4] == ["-m", "vtkit.stages.sft", "--out-dir", "/o"]
    assert args[args.index("--preset") + 1] == "tiny" and args[args.index("--seed") + 1] == "3"
    sets = base._parse_set([a for i, a in enumerate(args) if i and args[i - 1] == "--set"])
    assert sets == {"model": "runs/m", "lr": 2e-5, "n_rollouts": 3}   # notebook name -> field; overrides last
    cfg = stages.sft.Config.from_preset("tiny", seed=3, overrides=sets)  # what the stage's command line builds
    assert (cfg.model, cfg.lr, cfg.n_rollouts) == ("runs/m", 2e-5, 3)
    merge = sw.stage_call(NOTEBOOKS / "02_spectrum_merge.ipynb")        # `merge.Config`, not `stages.merge.Config`
    assert merge["stage"] == "merge" and merge["fields"]["sft_dir"] == "sft_dir"
    with pytest.raises(sw.SweepError, match=r"exactly one `<stage>.Config.from_preset\(...\)` call"):
        sw.stage_command(METRICS, {"x": 1.0, "out_dir": "/o"})          # a notebook that is no stage
    with pytest.raises(xp.ExperimentError, match="processes = 4 is more than resources.gpus = 2"):
        xp.load(exp_file(tmp_path, f"name: r\nnotebook: {QUICKSTART}\nresources: {{gpus: 2, processes: 4}}\n"))
    exp = xp.load(exp_file(tmp_path, f"name: r\nnotebook: {QUICKSTART}\nresources: {{processes: 2, nodes: 2}}\n"))
    with pytest.raises(sw.SweepError, match="nodes = 2 needs executor: slurm"):
        sw.LocalExecutor(exp, tmp_path, 1)


def test_slurm_data_parallel_run_is_one_task_per_node_with_torchrun_inside(tmp_path, monkeypatch):
    """No SLURM here: submitit's SLURM executor is built with sbatch/srun faked on PATH, and the run
    function is called as each node's task would call it, with the launcher's subprocess recorded."""
    import shutil as _shutil

    from submitit.slurm.slurm import _make_sbatch_string

    which = _shutil.which
    monkeypatch.setattr(_shutil, "which", lambda name: f"/fake/{name}" if name in ("sbatch", "srun") else which(name))
    exp = xp.load(exp_file(tmp_path, f"""
name: big
notebook: {QUICKSTART}
parameters: {{model: tiny-25k}}
resources: {{gpus: 8, cpus: 32, processes: 8, nodes: 2}}
executor: slurm
slurm: {{partition: gpu}}
"""))
    ex = sw.SubmititExecutor(exp, tmp_path / "work", jobs=1)
    assert {k: ex.params[k] for k in ("nodes", "tasks_per_node", "gpus_per_node", "cpus_per_task")} == \
        {"nodes": 2, "tasks_per_node": 1, "gpus_per_node": 8, "cpus_per_task": 32}
    script = _make_sbatch_string(command="python -m x", folder=str(tmp_path), **ex.executor._executor.parameters)
    assert "#SBATCH --nodes=2" in script and "#SBATCH --ntasks-per-node=1" in script and "#SBATCH --gpus-per-node=8" in script

    env = {"SLURM_JOB_ID": "123456", "SLURM_JOB_NUM_NODES": "2", "SLURM_JOB_NODELIST": "gpu[007-008]"}
    assert sw.slurm_rendezvous({**env, "SLURM_NODEID": "1"}) == \
        {"nnodes": 2, "node_rank": 1, "master_addr": "gpu007", "master_port": 23456}
    with pytest.raises(sw.SweepError, match="needs a SLURM job"):
        sw.slurm_rendezvous({})
    (run,) = xp.plan(exp, tmp_path / "runs")
    spec = sw.run_spec(run, exp)
    calls, real_run = [], subprocess.run

    def fake_run(cmd, **kw):                                            # the launcher only (runinfo runs git)
        if sw.LAUNCHER not in cmd:
            return real_run(cmd, **kw)
        calls.append((cmd, kw["env"]))
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(sw.subprocess, "run", fake_run)
    monkeypatch.setattr(sw.nbk, "execute", lambda *a, **k: pytest.fail("a data-parallel stage runs no notebook"))
    for node in (1, 0):                                                 # the follower first: it writes nothing
        for k, v in {**env, "SLURM_NODEID": str(node)}.items():
            monkeypatch.setenv(k, v)
        assert sw.execute_run(spec) == {"run_id": run.run_id, "ok": True, "error": None}
        if node == 1:
            assert not run.dir.exists()
    cmds = [c for c, _ in calls]
    for node, cmd in enumerate(reversed(cmds)):
        assert cmd[1:8] == ["-m", "torch.distributed.run", "--nproc_per_node=8", "--nnodes=2", f"--node_rank={node}",
                            "--master_addr=gpu007", "--master_port=23456"]
        assert cmd[8:10] == ["-m", "vtkit.stages.quickstart"] and 'model="tiny-25k"' in cmd
    assert calls[0][1]["OMP_NUM_THREADS"] == "4" and "ACCELERATE_USE_CPU" not in calls[0][1]   # 32 cpus / 8
    assert json.loads((run.dir / "launch.json").read_text())["world_size"] == 16
    assert (run.dir / "_DONE").is_file()

"""vtkit.sandbox: verdicts come from the harness; limits, isolation and clean-up hold against hostile programs."""
import json
import os
import socket
import sys
import time
import warnings
from pathlib import Path

import pytest

from vtkit import sandbox as S

ADD = "def add(a, b):\n    return a + b\n"
ADD_TESTS = "assert add(1, 2) == 3\nassert add(-1, 1) == 0\n"
REPO = Path(__file__).resolve().parents[1]


def gone(r):
    """No process of the run is left: neither in its process group nor under its uid."""
    return S.leftover(pgid=r.pid, uid=r.uid) == []


def test_passing_and_failing_programs():
    r = S.run_tests(ADD, ADD_TESTS)
    assert (r.passed, r.status, r.n_passed, r.n_total) == (True, "passed", 2, 2)
    assert [d["status"] for d in r.details] == ["passed", "passed"]
    assert r.isolated == S.bwrap_available() and r.duration_s > 0
    r = S.run_tests("def add(a, b):\n    return a * b\n", ADD_TESTS)
    assert (r.passed, r.status, r.n_passed, r.n_total) == (False, "failed", 0, 2)
    r = S.run_tests("def add(a, b):\n    return 1 if a == 1 else a + b\n", ADD_TESTS)
    assert (r.status, r.n_passed) == ("failed", 1) and "case 0" in r.message


def test_syntax_and_runtime_errors_and_missing_code():
    r = S.run_tests("def add(a, b)\n    return a + b", ADD_TESTS)
    assert r.status == "syntax_error" and not r.passed and "SyntaxError" in r.message
    r = S.run_tests("import nonexistent_module_xyz\n" + ADD, ADD_TESTS)
    assert r.status == "error" and "ModuleNotFoundError" in r.message
    r = S.run_tests(ADD, "assert add(1, 2) == 3\nassert add('a', 1) == 0\n")
    assert r.status == "failed" and r.details[1]["status"] == "error" and "TypeError" in r.details[1]["message"]
    for code in (None, "", "   \n"):
        assert S.run_tests(code, ADD_TESTS).status == "no_code"


def test_exit_before_tests_is_a_fail():
    r = S.run_tests("import sys\nsys.exit(0)\n" + ADD, ADD_TESTS)
    assert not r.passed and r.status == "error" and "SystemExit(0)" in r.message
    r = S.run_tests("import os\nos._exit(0)\n" + ADD, ADD_TESTS)
    assert not r.passed and r.status == "no_verdict"
    # exiting from inside the function under test, while the tests run
    r = S.run_tests("import os\ndef add(a, b):\n    os._exit(0)\n", ADD_TESTS)
    assert not r.passed and r.status == "no_verdict"


def test_printing_or_writing_fake_success_is_a_fail():
    fake = json.dumps({"final": True, "status": "passed", "message": "", "nonce": "0" * 32, "pid": 1})
    code = ("import os\n"
            "def add(a, b):\n    return 0\n"
            f"print('PASSED')\nprint({fake!r})\n"
            "for fd in range(3, 64):\n"
            "    try:\n"
            f"        os.write(fd, ({fake!r} + '\\n').encode())\n"
            "    except OSError:\n"
            "        pass\n")
    r = S.run_tests(code, ADD_TESTS)
    assert not r.passed and r.status == "failed" and "PASSED" in r.stdout


def test_rebinding_builtins_or_forking_guesses_does_not_pass():
    r = S.run_tests("import builtins\nbuiltins.exec = lambda *a, **k: None\ndef add(a, b):\n    return 0\n", ADD_TESTS)
    assert r.status == "failed"
    # each forked child evaluates the tests with its own guess; only the harness process may speak
    guess = "import os\nfor k in range(4):\n    if os.fork() == 0:\n        break\nelse:\n    k = 99\ndef add(a, b):\n    return k\n"
    r = S.run_tests(guess, "assert add(1, 2) == 3\n")
    assert r.status == "failed" and gone(r)
    # a program that edits the records the harness serialises (it sees the nonce there) changes nothing
    patch = ("import json\n_enc = json.JSONEncoder.encode\n"
             "def enc(self, o):\n"
             "    if isinstance(o, dict) and 'status' in o:\n"
             "        o = dict(o, status='passed')\n"
             "    return _enc(self, o)\n"
             "json.JSONEncoder.encode = enc\njson.dumps = lambda o, **k: enc(None, o)\n"
             "def add(a, b):\n    return -5\n")
    r = S.run_tests(patch, ADD_TESTS)
    assert r.status == "failed" and r.n_passed == 0


def test_infinite_loop_times_out_and_leaves_no_process():
    t0 = time.monotonic()
    r = S.run_tests("import os\nos.fork()\nwhile True:\n    pass\n", "assert True", timeout_s=1.0)
    assert r.status == "timeout" and not r.passed
    assert time.monotonic() - t0 < 1.0 + S.GRACE_S + 2.5
    assert gone(r)


def test_fork_bomb_is_bounded_by_the_process_limit():
    code = ("import os, time\nn = 0\n"
            "for _ in range(400):\n"
            "    try:\n"
            "        if os.fork() == 0:\n"
            "            time.sleep(30)\n"
            "            os._exit(0)\n"
            "        n += 1\n"
            "    except OSError:\n"
            "        break\n")
    r = S.run_tests(code, "assert n < 40, n\nassert n > 0, n", nproc=16, timeout_s=5)
    assert r.passed, r  # the harness saw the fork fail after fewer than 40 children
    assert gone(r)


def test_memory_hog_is_bounded():
    r = S.run_tests("x = bytearray(3 * 1024 ** 3)\n" + ADD, ADD_TESTS, memory_mb=256)
    assert not r.passed and r.status in ("error", "no_verdict") and "MemoryError" in r.message
    r = S.run_tests("chunks = []\nwhile True:\n    chunks.append(bytearray(16 << 20))\n", ADD_TESTS, memory_mb=256)
    assert not r.passed and "MemoryError" in r.message and gone(r)


def alive(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in "ZX"
    except OSError:
        return False


def test_grandchild_that_leaves_the_group_is_killed(monkeypatch):
    # a great-grandchild in a session of its own reports its pid, then sleeps; the program waits for it
    code = ("import os, time\n"
            "r, w = os.pipe()\n"
            "if os.fork() == 0:\n"
            "    os.setsid()\n"
            "    if os.fork() == 0:\n"
            "        print('GC=%d' % os.getpid(), flush=True)\n"
            "        os.write(w, b'x')\n"
            "        time.sleep(60)\n"
            "    os._exit(0)\n"
            "os.read(r, 1)\n" + ADD)
    r = S.run_tests(code, ADD_TESTS)
    assert r.passed and "GC=" in r.stdout and gone(r)
    monkeypatch.setenv(S.ALLOW_ROOT_ENV, "1")   # unisolated as root needs the opt-in
    with warnings.catch_warnings():  # unisolated: found by the private HOME it was started with
        warnings.simplefilter("ignore")
        r = S.run_tests(code, ADD_TESTS, isolate=False)
    assert r.passed and not r.isolated
    pid = int(r.stdout.split("GC=")[1].split()[0])  # a host pid here: no pid namespace
    assert not alive(pid) and gone(r)


def test_environment_is_scrubbed_and_cwd_private(monkeypatch):
    monkeypatch.setenv("VTKIT_TEST_SECRET", "s3cret")
    code = ("import os\n"
            "env = dict(os.environ)\n"
            "cwd = os.getcwd()\n"
            "uid = os.getuid()\n")
    tests = ("assert 'VTKIT_TEST_SECRET' not in env\n"
             "assert set(env) <= {'PATH', 'LANG', 'HOME', 'TMPDIR', 'PWD'}, sorted(env)\n"
             "assert env['HOME'] == env['TMPDIR'] == cwd and 'vtkit-sbx-' in cwd\n"
             f"assert {os.geteuid()} != 0 or uid != 0\n")
    r = S.run_tests(code, tests)
    assert r.passed, r


@pytest.mark.parametrize("where", ["interpreter", "repository"])
def test_cannot_write_outside_the_private_dir(where):
    """The interpreter's folder is always visible, read-only; the repository is read-only too, or
    hidden behind the private /tmp when the checkout itself lives under /tmp."""
    folder = Path(sys.prefix) if where == "interpreter" else REPO / "tests"
    target = folder / f"_sandbox_escape_{os.getpid()}.txt"
    code = f"def attempt():\n    open({str(target)!r}, 'w').write('x')\n    return True\n"
    r = S.run_tests(code, "assert attempt()")
    assert not r.passed and r.details[0]["status"] == "error"
    refused = ["Read-only file system", "Permission denied"]
    if where == "repository" and REPO.resolve().is_relative_to("/tmp"):
        refused.append("No such file or directory")
    assert any(m in r.details[0]["message"] for m in refused), r.details[0]["message"]
    assert not target.exists()
    r = S.run_tests("open('scratch.txt', 'w').write('ok')\n", "assert open('scratch.txt').read() == 'ok'")
    assert r.passed


def test_network_is_unreachable_under_bwrap(monkeypatch):
    with socket.socket() as srv:  # a listener on the host's loopback that the program must not reach
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        port = srv.getsockname()[1]
        code = ("import socket\n"
                "def reach():\n"
                "    try:\n"
                f"        socket.create_connection(('127.0.0.1', {port}), timeout=2).close()\n"
                "        return True\n"
                "    except OSError:\n"
                "        return False\n")
        r = S.run_tests(code, "assert reach() is False", isolate=True)
        assert r.passed and r.isolated, r
        monkeypatch.setenv(S.ALLOW_ROOT_ENV, "1")
        with warnings.catch_warnings():  # the same program unisolated does reach it: the test can fail
            warnings.simplefilter("ignore")
            assert S.run_tests(code, "assert reach() is False", isolate=False).status == "failed"


def test_stdin_stdout_cases():
    prog = "a, b = map(int, input().split())\nprint(a + b)   \nprint()\n"
    cases = [{"input": "1 2\n", "output": "3"}, {"input": "5 5", "output": "10\n"}]
    r = S.run_tests(prog, cases)
    assert (r.passed, r.n_passed, r.n_total) == (True, 2, 2)
    assert S.run_tests(prog, json.dumps(cases)).passed                      # JSON string form
    assert S.run_tests("print(int(input()) * 2)", [{"input": ["21"], "output": ["42"]}]).passed  # line lists
    r = S.run_tests("a, b = map(int, input().split())\nprint(a * b)\n", cases)
    assert (r.status, r.n_passed) == ("failed", 0) and "expected" in r.details[0]["message"]
    r = S.run_tests("import sys\nprint(3)\nsys.exit(1)\n", cases[:1])          # right output, bad exit
    assert r.status == "failed" and r.details[0]["status"] == "error"
    r = S.run_tests("import sys\nprint('3')\nsys.exit(0)\n", [{"input": "", "output": "3"}])
    assert r.passed                                                        # exiting 0 after answering is fine
    r = S.run_tests("while True:\n    pass\n", cases, timeout_s=1.0)
    assert r.status == "failed" and r.details[0]["status"] == "timeout" and gone(r)


@pytest.mark.parametrize("tests,match", [
    ([], "empty list"), ([{"input": "1"}], "keys 'input' and 'output'"), ("[not json", "JSON"),
    ("assert (", "does not parse"), ("def f():\n    pass\nx = 1\n", "no test statement"), (42, "assertion source"),
])
def test_bad_tests_raise_clear_errors(tests, match):
    with pytest.raises(ValueError, match=match):
        S.run_tests(ADD, tests)


def test_bad_limits_raise():
    with pytest.raises(ValueError, match="timeout_s"):
        S.run_tests(ADD, ADD_TESTS, timeout_s=0)
    with pytest.raises(ValueError, match="memory_mb"):
        S.run_tests(ADD, ADD_TESTS, memory_mb=8)


def test_run_many_keeps_order_and_runs_in_parallel():
    items = [(ADD, ADD_TESTS), ("def add(a, b):\n    return 0\n", ADD_TESTS), {"code": None, "tests": ADD_TESTS},
             {"code": ADD, "tests": [{"input": "", "output": ""}]}]
    assert [r.status for r in S.run_many(items, workers=2)] == ["passed", "failed", "no_code", "passed"]
    sleepy = [("import time\ntime.sleep(0.8)\n" + ADD, ADD_TESTS)] * 4
    t0 = time.monotonic()
    rs = S.run_many(sleepy, workers=4)
    assert all(r.passed for r in rs) and time.monotonic() - t0 < 3.0  # one at a time needs >= 3.2 s
    assert S.run_many([]) == []
    with pytest.raises(ValueError, match="'code' and 'tests'"):
        S.run_many([{"code": ADD}])


def test_unisolated_as_root_needs_the_opt_in(monkeypatch):
    monkeypatch.delenv(S.ALLOW_ROOT_ENV, raising=False)
    if os.geteuid() == 0:
        with pytest.raises(RuntimeError, match=S.ALLOW_ROOT_ENV):
            S.run_tests(ADD, ADD_TESTS, isolate=False)
        monkeypatch.setenv(S.ALLOW_ROOT_ENV, "1")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = S.run_tests(ADD, ADD_TESTS, isolate=False)
    assert r.passed and not r.isolated


@pytest.mark.parametrize("isolate", [None, False])
def test_big_output_and_memory_within_the_default_limits_pass(isolate, monkeypatch):
    monkeypatch.setenv(S.ALLOW_ROOT_ENV, "1")
    if isolate is None and not S.bwrap_available():
        pytest.skip("bubblewrap is not available here; the isolate=False case covers the unisolated path")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = S.run_tests("print('x' * (20 << 20))\n" + ADD, ADD_TESTS, isolate=isolate)   # 20 MB of output
        assert r.passed, r.message
        assert r.stdout_bytes > 20 << 20 and r.output_truncated and len(r.stdout) <= S.TAIL
        r = S.run_tests("x = bytearray(600 << 20)\n" + ADD, ADD_TESTS, isolate=isolate)    # 600 MB < 1 GiB
        assert r.passed, r.message
        big = [{"input": "", "output": "y" * (20 << 20)}]                                   # stdin/stdout case
        assert S.run_tests("print('y' * (20 << 20))", big, isolate=isolate).passed
        r = S.run_tests("print('short')\n" + ADD, ADD_TESTS, isolate=isolate)
        assert r.passed and not r.output_truncated and r.stdout == "short\n"


def test_one_default_memory_limit():
    import inspect

    from vtkit import evaluation, rewards
    assert S.MEMORY_MB == 1024
    assert inspect.signature(S.run_tests).parameters["memory_mb"].default == S.MEMORY_MB
    assert evaluation.Protocol.memory_mb == rewards.CODE_MEMORY_MB == S.MEMORY_MB
    assert inspect.signature(evaluation.grade).parameters["memory_mb"].default == S.MEMORY_MB


def test_runs_in_one_sandbox_do_not_see_each_other():
    if not S.bwrap_available():
        pytest.skip("needs bubblewrap (the pre-forked sandbox)")
    leave = ("import os, subprocess, sys\n"
             "open('/tmp/left_behind', 'w').write('x') if os.access('/tmp', os.W_OK) else None\n"
             "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], start_new_session=True)\n" + ADD)
    r = S.run_tests(leave, ADD_TESTS)
    assert r.passed and r.isolated
    look = ("import os\n"
            "pids = [p for p in os.listdir('/proc') if p.isdigit()]\n"
            "tmp = os.listdir('/tmp')\n")
    r = S.run_tests(look, "assert not os.path.exists('/tmp/left_behind'), tmp\nassert len(pids) <= 3, pids")
    assert r.passed, r   # bwrap's init, the server and this program: the sleeper was killed, /tmp wiped


# ---- where the interpreter lives: the sandbox works for a checkout anywhere (issue item 5) ----------

# A run from another interpreter: vtkit from this checkout, the program's verdicts and where it ran as JSON.
FROM_VENV = r"""
import json, sys, warnings
warnings.simplefilter("ignore")
from vtkit import sandbox as S
code = "import sys\nEXE = sys.executable\n" + {add!r}
asserts = S.run_tests(code, "assert add(1, 2) == 3\nassert EXE == %r, EXE" % sys.executable, isolate=True)
stdio = S.run_tests("print(int(input()) * 2)", [{{"input": "21", "output": "42"}}], isolate=True)
print(json.dumps({{k: [r.status, r.isolated, r.uid, r.message] for k, r in (("asserts", asserts), ("stdio", stdio))}}))
"""


@pytest.fixture(scope="module")
def open_tmp():
    """A world-readable folder right under /tmp: the folder the sandbox replaces with its own."""
    import shutil
    import tempfile
    d = Path(tempfile.mkdtemp(prefix="vtkit-test-", dir="/tmp"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def make_venv(where: Path) -> Path:
    """A venv at `where` (no pip: 0.3 s); its python is a link to this interpreter's base."""
    import subprocess
    import sys
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True, timeout=60)
    return where / "bin" / "python"


def run_from(python: Path, script: str = FROM_VENV.format(add=ADD)) -> str:
    import subprocess
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO), "HOME": os.environ.get("HOME", "/")}
    p = subprocess.run([str(python), "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    return p.stdout


@pytest.mark.parametrize("place", ["clone", "with spaces", "closed home"])
def test_isolated_runs_from_a_venv_under_tmp(open_tmp, place):
    # `git clone REPO /tmp/x && cd /tmp/x && make demo`: the venv sits in a folder anyone may read, under
    # the /tmp the sandbox mounts afresh; also a folder name with spaces, and a home other uids cannot enter
    root = {"clone": open_tmp / "x", "with spaces": open_tmp / "my checkout" / "a venv",
            "closed home": open_tmp / "home" / "proj"}[place]
    if place == "closed home":
        (open_tmp / "home").mkdir(mode=0o700)
        (open_tmp / "home").chmod(0o700)
    python = make_venv(root / ".venv")
    got = json.loads(run_from(python))
    for kind in ("asserts", "stdio"):   # stdio: the program runs as the fresh uid from the venv's interpreter
        status, isolated, uid, message = got[kind]
        assert (status, isolated) == ("passed", True), (kind, message)
        assert (uid is not None) == (os.geteuid() == 0)


def test_when_isolation_cannot_start_the_error_names_the_cause(open_tmp, monkeypatch, tmp_path):
    # the original bug, for real: without binding /tmp back, the venv's interpreter vanishes inside; the
    # message is bwrap's own, not "install bubblewrap"
    python = make_venv(open_tmp / "hidden" / ".venv")
    out = run_from(python, "from vtkit import sandbox as S\nS.MASKED = ()\nprint(S.bwrap_available(), S.bwrap_problem())")
    assert out.startswith("False") and "execvp" in out and str(python) in out and "apt-get" not in out
    # bwrap installed but refused by the kernel (a fake bwrap that fails as AppArmor makes it fail)
    fake = tmp_path / "bin"
    fake.mkdir()
    err = "bwrap: No permissions to create a new namespace, likely because the kernel does not allow it"
    (fake / "bwrap").write_text(f"#!/bin/sh\necho '{err}' >&2\nexit 1\n")
    (fake / "bwrap").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")
    monkeypatch.setattr(S, "_bwrap_ok", None)
    monkeypatch.setattr(S, "_bwrap_why", None)
    monkeypatch.delenv(S.ALLOW_ROOT_ENV, raising=False)
    with pytest.warns(RuntimeWarning, match="No permissions to create a new namespace"):
        assert not S.bwrap_available()
    assert err in S.bwrap_problem() and "unprivileged_userns" in S.bwrap_problem()
    with pytest.raises(RuntimeError, match="No permissions to create a new namespace") as e:
        S.run_tests(ADD, ADD_TESTS, isolate=True)
    assert "apt-get" not in str(e.value)
    if os.geteuid() == 0:
        with pytest.raises(RuntimeError, match=f"Cause: bubblewrap is installed.*{S.ALLOW_ROOT_ENV}=1") as e:
            S.run_tests(ADD, ADD_TESTS)
        assert "apt-get" not in str(e.value)
    # bwrap missing: then, and only then, the fix is to install it
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(S, "_bwrap_ok", None)
    with pytest.warns(RuntimeWarning, match="not on PATH"):
        assert not S.bwrap_available()
    with pytest.raises(RuntimeError, match="apt-get install bubblewrap"):
        S.run_tests(ADD, ADD_TESTS, isolate=True)

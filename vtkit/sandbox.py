"""Run untrusted Python programs against tests, and say from the harness whether they passed.

    from vtkit import sandbox
    r = sandbox.run_tests("def add(a, b):\\n    return a + b", "assert add(1, 2) == 3")
    r.passed, r.status, r.n_passed, r.n_total          # True, 'passed', 1, 1
    sandbox.run_tests(prog, [{"input": "1 2\\n", "output": "3"}])  # stdin/stdout cases
    sandbox.run_many([(code, tests), ...], workers=2)  # parallel, results in order

`tests` is either Python assertion source, run after the program in the same module, or a list
(or a JSON string of a list) of stdin/stdout cases `{"input": ..., "output": ...}`: the program
runs once per case and its output must match after stripping trailing whitespace on each line
(and trailing blank lines), with exit status 0.

How a run is contained:
- a child process in its own session, with RLIMIT_CPU, RLIMIT_AS (memory, 1 GiB by default:
  `MEMORY_MB`, the protocols' value too), RLIMIT_FSIZE, RLIMIT_NOFILE, RLIMIT_CORE and RLIMIT_NPROC
  (as root the harness sets RLIMIT_NPROC, see below); a wall-clock timeout; a scrubbed environment
  (PATH, LANG, a private HOME and TMPDIR, PWD under bwrap); a private temporary directory as cwd,
  deleted afterwards. stdout and stderr go to pipes that the kit drains, so a program may print any
  amount: the result keeps tails and byte counts (`output_truncated`), never a failure by itself;
- bubblewrap where `bwrap` works: read-only root, private /tmp, /dev and /proc, new network
  (no network at all), pid, ipc and uts namespaces, killed with its parent. Starting bwrap and an
  interpreter per program costs ~0.15 s, so each worker starts one sandbox holding a pre-forked
  server (`ZYGOTE`) that has imported the harness, and forks one child per program: fresh rlimits,
  directory and uid per child; when it ends the server kills every other process in the sandbox's
  pid namespace and wipes /tmp, so runs do not see each other (about 8 ms per program). The
  interpreter's folders (its venv, standard library, site-packages) that lie under /tmp (a checkout
  cloned there) are bound back read-only over the private /tmp; folder names may hold spaces. Where
  bwrap is missing or fails, a loud warning names the cause (bwrap's own error: `bwrap_problem()`)
  and says the program runs unisolated, one fresh interpreter per program; when the kit runs as
  root that needs the opt-in VTKIT_SANDBOX_ALLOW_UNISOLATED_ROOT=1 (`ALLOW_ROOT_ENV`), otherwise
  `run_tests` raises, naming the cause and its fix (`apt-get install bubblewrap` when it is missing);
- when the kit runs as root the harness drops to a fresh unprivileged uid per run before it
  touches the program (the kernel exempts root from RLIMIT_NPROC, so a fork bomb is only
  bounded this way); under bwrap, a directory of the interpreter that only root may enter
  (pyenv under /root, a venv in a home of mode 0700) is re-exposed read-only on a tmpfs so the new
  uid can still import;
- on return the whole process group is SIGKILLed, every process left with the run's uid too
  (a grandchild that called setsid), and under bwrap the pid namespace dies with it.

The verdict comes from the harness, never from the program's output or exit status: the parent
hands the harness a random per-run nonce through a file descriptor that is closed before the
program runs; the harness reports each test case and a final record, each tagged with the nonce,
to a second inherited descriptor. No final record with the right nonce means no pass: a program
that calls `sys.exit(0)` or `os._exit(0)` before its tests, or prints "PASSED", fails.

Limits (known, documented rather than hidden): the program runs in the harness's interpreter in
assertion mode, so a deliberate attack on the interpreter (walking `gc` to find the nonce, or
returning an object whose `__eq__` is always true) is not stopped; stdin/stdout cases run the
program in a separate process and compare text, which closes both. Without bwrap a program can
read what its uid can read, and without root no fresh uid is available: then, under bwrap, the
program shares its uid with its sandbox's server and may kill it (its own run then has no verdict;
the server is not reused).
"""
from __future__ import annotations

import ast
import atexit
import json
import logging
import os
import secrets
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

TAIL = 2000              # characters of stdout/stderr kept on a result: enough to debug, small to store
GRACE_S = 1.0            # wall-clock allowance for interpreter and bwrap start-up on a busy machine
UID_BASE = 200_000       # fresh per-run uids come from [UID_BASE, UID_BASE + UID_SPAN): far from real users
UID_SPAN = 100_000
# top-level test statements that set up rather than test; every other statement is one case
_SETUP = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom,
          ast.Assign, ast.AnnAssign, ast.AugAssign, ast.Pass)


@dataclass
class SandboxResult:
    passed: bool                    # every test case ran and passed, as reported by the harness
    status: str                     # passed|failed|error|timeout|syntax_error|no_verdict|no_code
    n_passed: int = 0
    n_total: int = 0
    message: str = ""               # one line saying why it did not pass
    stdout: str = ""                # tails of the program's streams
    stderr: str = ""
    duration_s: float = 0.0
    details: list[dict] = field(default_factory=list)   # one dict per case: case, status, message
    isolated: bool = False          # ran under bubblewrap
    pid: int | None = None          # the child's pid, which is also its process-group id (None under
                                    # bubblewrap: the program's pid lives in the sandbox's namespace)
    uid: int | None = None          # the fresh uid the program ran as, when the kit runs as root
    stdout_bytes: int = 0           # what the program wrote, in bytes; stdout/stderr keep only tails
    stderr_bytes: int = 0
    output_truncated: bool = False  # the tails are not the whole output (never a failure by itself)


# The harness is the first and only trusted code in the child. It reads the job (and the nonce)
# from one descriptor and closes it, sets RLIMIT_NPROC and drops to the fresh uid, then runs the
# program and the tests, reporting each case to the result descriptor. Every builtin it needs is
# bound before the program runs, so a program that rebinds `exec` or `print` changes nothing here.
HARNESS = r'''
import ast, builtins, json, os, resource, subprocess, sys, time
def run_job(job, out_fd, _exec=exec, _compile=compile, _write=os.write,
            _str=str, _repr=repr, _isinstance=isinstance, _mono=time.monotonic,
            _BaseException=BaseException, _AssertionError=AssertionError, _SystemExit=SystemExit,
            _Module=ast.Module, _exit=os._exit, _getpid=os.getpid, _type=type, _int=int,
            _esc=json.encoder.encode_basestring_ascii):
    nonce = job.pop("nonce")
    start = _mono()
    def emit(rec):  # JSON by hand with a C escaper bound above: a patched json module cannot edit verdicts
        rec["nonce"], rec["pid"] = nonce, _getpid()
        val = lambda v: (_esc(v) if _type(v) is _str else "true" if v is True else "false" if v is False
                         else "null" if v is None else _str(_int(v)))
        _write(out_fd, ("{" + ",".join(_esc(k) + ":" + val(v) for k, v in rec.items()) + "}\n").encode())
    _streams = (sys.stdout, sys.stderr)
    def finish(rec):
        emit(rec)
        for s in _streams + (sys.stdout, sys.stderr):
            try:
                s.flush()
            except _BaseException:
                pass
        _exit(0)
    def short(e):
        s = _str(e)
        return (type(e).__name__ + (": " + s if s else ""))[:300]
    if job["uid"] is not None:
        resource.setrlimit(resource.RLIMIT_NPROC, (job["nproc"], job["nproc"]))
        os.setgroups([]); os.setgid(job["uid"]); os.setuid(job["uid"])
    os.chdir(job["workdir"])
    emit({"start": True})
    try:
        code = _compile(job["code"], "solution.py", "exec")
    except _BaseException as e:
        finish({"final": True, "status": "syntax_error", "message": "program: " + short(e)})
    if job["mode"] == "asserts":
        stmts = ast.parse(job["tests"]).body
        setup = tuple(getattr(ast, n) for n in job["setup"])
        units = [(_compile(_Module([s], []), "tests.py", "exec"), not _isinstance(s, setup)) for s in stmts]
        ns = {"__name__": "solution", "__builtins__": builtins}
        try:
            _exec(code, ns)
        except _SystemExit as e:
            finish({"final": True, "status": "error", "message": "program raised SystemExit(%s) before the tests ran" % _repr(e.code)})
        except _BaseException as e:
            finish({"final": True, "status": "error", "message": "program: " + short(e)})
        case, ok, n_ok = 0, True, 0
        for unit, is_case in units:
            try:
                _exec(unit, ns)
                st, msg = "passed", ""
            except _AssertionError as e:
                st, msg = "failed", short(e)
            except _BaseException as e:
                st, msg = "error", short(e)
            if is_case:
                emit({"case": case, "status": st, "message": msg}); case += 1
                n_ok += st == "passed"
            elif st != "passed":
                emit({"case": None, "status": st, "message": "test set-up: " + msg})
            ok = ok and st == "passed"
        finish({"final": True, "status": "passed" if ok and n_ok == case else "failed", "message": ""})
    prog = os.path.join(job["workdir"], "solution.py")
    with open(prog, "w") as f:
        f.write(job["code"])
    norm = lambda s: "\n".join(l.rstrip() for l in s.rstrip().splitlines())
    ok = True
    for i, c in enumerate(job["cases"]):
        left = job["timeout_s"] - (_mono() - start)
        if left <= 0:
            emit({"case": i, "status": "timeout", "message": "no time left"}); ok = False; continue
        try:  # output through a pipe: the file-size limit does not cap what a case may print
            p = subprocess.run([sys.executable, *job["py_flags"], prog], input=c["input"].encode(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=left, cwd=job["workdir"])
            got = p.stdout.decode("utf-8", "replace")
            if p.returncode != 0:
                st, msg = "error", "exit status %d: %s" % (p.returncode, p.stderr[-300:].decode("utf-8", "replace"))
            elif norm(got) == norm(c["output"]):
                st, msg = "passed", ""
            else:
                st, msg = "failed", "expected %r, got %r" % (c["output"][:100], got[:100])
        except subprocess.TimeoutExpired:
            st, msg = "timeout", "case ran past the time limit"
        except _BaseException as e:
            st, msg = "error", short(e)
        emit({"case": i, "status": st, "message": msg}); ok = ok and st == "passed"
    finish({"final": True, "status": "passed" if ok else "failed", "message": ""})
'''
# the harness as a script: the job (and the nonce) come from a descriptor that is closed before the program runs
HARNESS_MAIN = r'''
def main(in_fd, out_fd):
    with os.fdopen(in_fd, "rb") as f:
        job = json.loads(f.read())
    run_job(job, out_fd)
main(int(sys.argv[1]), int(sys.argv[2]))
'''
HARNESS_SCRIPT = HARNESS + HARNESS_MAIN

# The pre-forked server ("zygote") that runs inside one bubblewrap sandbox: it has imported what the
# harness needs once, then per job (a JSON line on stdin) forks a child that takes fresh rlimits, a
# private directory and (as root) a fresh uid, and runs `run_job`. When the child ends, or the wall
# clock runs out, the server SIGKILLs every other process in its pid namespace (it sees only its
# own), wipes /tmp but for its base directory, removes the job's directory, and answers one JSON
# line on stdout: the raw result records, tails and byte counts of the program's stdout/stderr.
ZYGOTE = HARNESS + r"""
import select, shutil, signal, tempfile
def _nodump():
    try:  # other processes of the same uid may not open this server's /proc entries (its pipes)
        import ctypes
        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)
    except Exception:
        pass
def _others():
    me = os.getpid()
    return [int(n) for n in os.listdir("/proc") if n.isdigit() and int(n) not in (1, me)]
def _kill_others(deadline):
    while True:
        left = []
        for pid in _others():
            try:
                with open("/proc/%d/stat" % pid) as f:
                    if f.read().rsplit(")", 1)[1].split()[0] in "ZX":
                        continue
                os.kill(pid, signal.SIGKILL)
                left.append(pid)
            except (OSError, IndexError):
                pass
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            pass
        if not left or time.monotonic() > deadline:
            return
        time.sleep(0.002)
def _wipe(folder, keep=None, mounts=()):
    # everything but `keep` and `mounts` (the interpreter's folders bound back under /tmp: never
    # walked); a folder above a mount stays, emptied of everything else
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        if path == keep or path in mounts:
            continue
        if any(m.startswith(path + "/") for m in mounts):
            _wipe(path, keep, mounts)
        elif os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            _unlink(path)
def _unlink(path):
    try:
        os.unlink(path)
    except OSError:
        pass
def _child(job, wd, res_w, out_w, err_w):
    os.setsid()
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0); os.dup2(out_w, 1); os.dup2(err_w, 2)
    os.set_inheritable(res_w, True)
    os.closerange(3, res_w); os.closerange(res_w + 1, 1 << 16)
    lim = job["limits"]
    for name, val in (("RLIMIT_CPU", lim["cpu_s"]), ("RLIMIT_AS", lim["as"]), ("RLIMIT_FSIZE", lim["fsize"]),
                      ("RLIMIT_NOFILE", 256), ("RLIMIT_CORE", 0)):
        soft = val
        hard = val + 1 if name == "RLIMIT_CPU" else val
        resource.setrlimit(getattr(resource, name), (soft, hard))
    if lim["nproc"] is not None:
        resource.setrlimit(resource.RLIMIT_NPROC, (lim["nproc"], lim["nproc"]))
    os.environ.clear()
    os.environ.update({"PATH": job["path"], "LANG": "C.UTF-8", "HOME": wd, "TMPDIR": wd, "PWD": wd})
    sys.stdout = open(1, "w", buffering=1, closefd=False, encoding="utf-8", errors="backslashreplace")
    sys.stderr = open(2, "w", buffering=1, closefd=False, encoding="utf-8", errors="backslashreplace")
    job["workdir"] = wd
    try:
        run_job(job, res_w)
    finally:
        os._exit(0)
def _serve(base, tail, mounts):
    _nodump()
    rd = os.fdopen(0, "rb", buffering=0)
    buf = b""
    while True:
        while b"\n" not in buf:
            chunk = rd.read(1 << 20)
            if not chunk:
                return
            buf += chunk
        line, buf = buf.split(b"\n", 1)
        job = json.loads(line)
        wd = tempfile.mkdtemp(prefix="vtkit-sbx-", dir=base)
        if job["uid"] is not None:
            os.chown(wd, job["uid"], job["uid"])
        pipes = [os.pipe() for _ in range(3)]
        sys.stdout.flush(); sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _child(job, wd, pipes[0][1], pipes[1][1], pipes[2][1])
        for _, w in pipes:
            os.close(w)
        start = time.monotonic()
        deadline = start + job["wall_s"]
        data = {pipes[0][0]: bytearray(), pipes[1][0]: bytearray(), pipes[2][0]: bytearray()}
        count = dict.fromkeys(data, 0)
        open_fds, status, timed_out = set(data), None, False
        def drain(fds):
            for fd in fds:
                try:
                    chunk = os.read(fd, 1 << 16)
                except OSError:
                    chunk = b""
                if not chunk:
                    open_fds.discard(fd)
                    continue
                count[fd] += len(chunk)
                b = data[fd]
                b += chunk
                keep = (1 << 22) if fd == pipes[0][0] else tail
                if len(b) > keep:
                    del b[: len(b) - keep]
        while status is None:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            r = select.select(list(open_fds), [], [], min(left, 0.05))[0] if open_fds else time.sleep(min(left, 0.005))
            if r:
                drain(r)
            got, st = os.waitpid(pid, os.WNOHANG)
            if got:
                status = st
        _kill_others(time.monotonic() + 2.0)
        if status is None:
            try:
                status = os.waitpid(pid, 0)[1]
            except ChildProcessError:
                status = -1
        while open_fds:   # every writer is dead now: read what is left
            r = select.select(list(open_fds), [], [], 0.5)[0]
            if not r:
                break
            drain(r)
        for fd in data:
            os.close(fd)
        _wipe(base)         # the job's directory and anything a same-uid program left beside it
        _wipe("/tmp", keep=base, mounts=mounts)
        res, out, err = (bytes(data[p[0]]) for p in pipes)
        reply = {"records": res.decode("utf-8", "replace"), "stdout": out.decode("utf-8", "replace")[-tail:],
                 "stderr": err.decode("utf-8", "replace")[-tail:], "stdout_bytes": count[pipes[1][0]],
                 "stderr_bytes": count[pipes[2][0]], "timed_out": timed_out, "status": status,
                 "duration_s": time.monotonic() - start, "workdir": wd}
        os.write(1, (json.dumps(reply) + "\n").encode())
_serve(sys.argv[1], int(sys.argv[2]), tuple(json.loads(sys.argv[3])))
"""


def parse_tests(tests) -> tuple[str, object, int]:
    """Validate `tests`: returns (mode, payload, n_cases) with mode `asserts` or `stdio`."""
    if isinstance(tests, str) and tests.lstrip().startswith("["):
        try:
            tests = json.loads(tests)
        except json.JSONDecodeError as e:
            raise ValueError(f"tests look like a JSON list of stdin/stdout cases but do not parse: {e}") from e
    if isinstance(tests, (list, tuple)):
        if not tests:
            raise ValueError("tests is an empty list: give at least one {'input': ..., 'output': ...} case")
        cases = []
        for i, c in enumerate(tests):
            if not isinstance(c, dict) or "input" not in c or "output" not in c:
                raise ValueError(f"stdin/stdout case {i} must be a dict with keys 'input' and 'output', got {c!r:.80}")
            cases.append({k: _text(c[k]) for k in ("input", "output")})
        return "stdio", cases, len(cases)
    if not isinstance(tests, str):
        raise ValueError(f"tests must be assertion source (str) or a list of stdin/stdout cases, got {type(tests).__name__}")
    try:
        body = ast.parse(tests).body
    except SyntaxError as e:
        raise ValueError(f"the test source does not parse ({e}); tests come from the dataset and must be valid Python") from e
    n = sum(not isinstance(s, _SETUP) for s in body)
    if n == 0:
        raise ValueError("the test source has no test statement (an assert or a call): a program with no tests cannot pass")
    return "asserts", tests, n


def _text(v) -> str:
    """A case's input/output as text: lists become lines."""
    if isinstance(v, (list, tuple)):
        return "".join(f"{x}\n" for x in v)
    return v if isinstance(v, str) else str(v)


# ---- isolation -------------------------------------------------------------------------------

_lock = threading.Lock()
_bwrap_ok: bool | None = None
_warned: set[str] = set()


def _warn_once(key: str, msg: str) -> None:
    with _lock:
        if key in _warned:
            return
        _warned.add(key)
    warnings.warn(msg, RuntimeWarning, stacklevel=3)
    log.warning(msg)


def _interpreter_paths() -> list[str]:
    """Directories the child's interpreter needs: prefixes and the executable's folders."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             os.path.dirname(sys.executable), os.path.dirname(os.path.realpath(sys.executable))}
    paths = sorted({os.path.realpath(p) for p in paths if p})
    return [p for p in paths if not any(p != q and p.startswith(q + os.sep) for q in paths)]


def _others_may(path: str, bits: int) -> bool:
    try:
        return os.stat(path).st_mode & bits == bits
    except OSError:
        return False


# what the sandbox mounts afresh over the host's (_bwrap_args): an interpreter under one of them
# (a checkout in /tmp and its .venv) would vanish inside, so it is bound back read-only
MASKED = ("/tmp", "/dev", "/proc")


def _ancestors(p: str) -> list[str]:
    parts = p.strip(os.sep).split(os.sep)
    return [os.sep + os.sep.join(parts[:i]) for i in range(1, len(parts))]


def _closed_to_others(paths: list[str]) -> bool | None:
    """None: another uid can use every path as it is; True: only where bwrap re-exposes a folder
    under an ancestor it may not enter (a 0700 home); False: never (a path itself is closed)."""
    if not all(_others_may(p, stat.S_IXOTH | stat.S_IROTH) for p in paths):
        return False
    return True if any(not _others_may(a, stat.S_IXOTH) for p in paths for a in _ancestors(p)) else None


def _reach_args(paths: list[str], other_uid: bool = True) -> list[str] | None:
    """bwrap arguments that let the sandboxed program import from `paths` (the interpreter's
    folders); None when that cannot work for another uid.

    A path under a folder the sandbox mounts afresh (MASKED: /tmp) is bound back read-only. With
    `other_uid` (the program runs as a fresh uid), for each path whose ancestors another uid may
    not enter (e.g. /root or a home of mode 0700), mount a tmpfs on the highest such ancestor,
    recreate the folders down to the path, and bind the path read-only; a path that is itself
    closed to others cannot be helped. Folder names may hold spaces: each is one argument.
    """
    tmpfs, dirs, binds = set(), set(), set()
    for p in paths:
        if other_uid and not _others_may(p, stat.S_IXOTH | stat.S_IROTH):
            return None
        ancestors = _ancestors(p)
        blocked = [i for i, a in enumerate(ancestors) if not _others_may(a, stat.S_IXOTH)] if other_uid else []
        mask = next((m for m in MASKED if p == m or p.startswith(m + os.sep)), None)
        if mask is not None:   # the folders above it on the fresh mount: 0755 (those bwrap makes itself are 0700)
            dirs.update(a for a in ancestors if a.startswith(mask + os.sep))
            binds.add(p)
        if blocked:
            top = blocked[0]
            tmpfs.add(ancestors[top])
            dirs.update(ancestors[top + 1:])
            binds.add(p)
    # outermost first: a folder exists (0755) before a tmpfs or a folder goes inside it
    args = []
    for kind, d in sorted([("--tmpfs", t) for t in tmpfs] + [("--dir", d) for d in dirs - tmpfs],
                          key=lambda kd: kd[1].count(os.sep)):
        args += ["--perms", "0755", kind, d]
    for b in sorted(binds, key=lambda s: s.count(os.sep)):
        args += ["--ro-bind", b, b]
    return args


def _bwrap_args(workdir: str, reach: list[str]) -> list[str]:
    return ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
            *reach, "--bind", workdir, workdir, "--chdir", workdir,
            "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent"]


_bwrap_why: str | None = None   # why bubblewrap cannot isolate programs here (None: it can)
MISSING_BWRAP = "`bwrap` is not on PATH: bubblewrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)"


def _hint(err: str) -> str:
    """What to do about bwrap's own error message."""
    low = err.lower()
    if "execvp" in low:
        return (f"the interpreter {sys.executable} is not visible inside the sandbox, although vtkit binds "
                f"its folders {_interpreter_paths()}; run the kit from an interpreter outside those mounts")
    if "loopback" in low or "rtm_newaddr" in low:
        return ("the container may not set up a network namespace: run it with --cap-add NET_ADMIN --cap-add "
                "SYS_ADMIN (or --privileged)")
    if "namespace" in low or "uid map" in low:
        return ("this kernel or container does not let bwrap create namespaces: allow unprivileged user namespaces "
                "(sysctl kernel.unprivileged_userns_clone=1; on Ubuntu >= 23.10 also "
                "kernel.apparmor_restrict_unprivileged_userns=0), or run the container with --privileged or "
                "--security-opt seccomp=unconfined --security-opt apparmor=unconfined")
    return "bwrap's message says what failed"


def _check_bwrap() -> str | None:
    """None when bwrap starts this interpreter in the sandbox the runs use; else the reason."""
    exe = shutil.which("bwrap")
    if not exe:
        return MISSING_BWRAP
    wd = tempfile.mkdtemp(prefix="vtkit-sbx-")
    try:
        reach = _reach_args(_interpreter_paths(), other_uid=os.geteuid() == 0) or \
            _reach_args(_interpreter_paths(), other_uid=False)
        p = subprocess.run(_bwrap_args(wd, reach) + [sys.executable, "-I", "-S", "-c", "pass"],
                           capture_output=True, timeout=30)
        if p.returncode == 0:
            return None
        err = p.stderr.decode(errors="replace").strip()[-500:] or f"exit status {p.returncode}, no message"
    except (OSError, subprocess.SubprocessError) as e:
        err = f"{type(e).__name__}: {e}"
    finally:
        shutil.rmtree(wd, ignore_errors=True)
    return f"bubblewrap is installed ({exe}) but could not start a sandbox: {err!r}; {_hint(err)}"


def bwrap_problem() -> str | None:
    """Why bubblewrap cannot isolate programs here (its own error and what to do), or None when it can."""
    bwrap_available()
    return _bwrap_why


def bwrap_available() -> bool:
    """Whether bubblewrap exists and can start a sandbox here (checked once, by starting this
    interpreter in the sandbox the runs use); `bwrap_problem()` says why not."""
    global _bwrap_ok, _bwrap_why
    with _lock:
        if _bwrap_ok is not None:
            return _bwrap_ok
        why = _check_bwrap()
        _bwrap_ok, _bwrap_why = why is None, why
    if why is not None:
        _warn_once(f"bwrap:{why}", f"vtkit.sandbox: no isolation: {why}. Untrusted code runs WITHOUT filesystem, "
                                   "network and pid isolation, with resource limits only.")
    return _bwrap_ok


# ---- processes -------------------------------------------------------------------------------

def _procs() -> list[tuple[int, int, int, int]]:
    """(pid, pgid, real uid, threads) for every live process, read from /proc (zombies are dead
    already and only wait for whoever reaps them, so they are left out)."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                rest = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{name}/status") as f:
                st = f.read()
            uid = int(st.split("\nUid:", 1)[1].split()[0])
            if rest[0] in "ZX":
                continue
            out.append((int(name), int(rest[2]), uid, int(rest[17])))
        except (OSError, IndexError, ValueError):
            continue
    return out


def leftover(pgid: int | None = None, uid: int | None = None) -> list[int]:
    """Pids still alive (not zombies) in process group `pgid` or owned by `uid`."""
    return [p for p, g, u, _ in _procs() if (pgid is not None and g == pgid) or (uid is not None and u == uid)]


def _marked(workdir: str) -> list[int]:
    """Pids whose start-up environment has HOME=workdir: the run's processes that left its group."""
    mark, out = f"HOME={workdir}".encode(), []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/environ", "rb") as f:
                    if mark in f.read().split(b"\0"):
                        out.append(int(name))
            except OSError:
                continue
    return out


def _kill_all(pgid: int, uid: int | None, workdir: str | None = None) -> None:
    """SIGKILL the group, every process of the run's uid and (unisolated, without a uid of its own)
    every process started with the run's private HOME; wait until they are gone (<= 2 s)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    deadline = time.monotonic() + 2.0
    while True:
        left = [p for p, g, u, _ in _procs() if g == pgid or (uid is not None and u == uid)]
        if workdir is not None:
            live = {p for p, *_ in _procs()}
            left += [p for p in _marked(workdir) if p in live and p != os.getpid()]
        for p in left:
            try:
                os.kill(p, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if not left or time.monotonic() > deadline:
            return
        time.sleep(0.01)


def _limits(cpu_s: int, memory_mb: int, fsize_mb: int, nproc: int | None):
    import resource

    def apply():  # runs in the child between fork and exec: C calls only
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
        resource.setrlimit(resource.RLIMIT_AS, (memory_mb << 20, memory_mb << 20))
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize_mb << 20, fsize_mb << 20))
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if nproc is not None:
            resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
    return apply


def _wait(proc: subprocess.Popen, timeout: float) -> bool:
    """Wait for `proc` to exit; False on timeout. A pidfd wakes us the moment it exits, where
    Popen.wait(timeout) polls with sleeps of up to 50 ms."""
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        try:
            proc.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            return False
    try:
        return bool(select.select([fd], [], [], timeout)[0])
    finally:
        os.close(fd)


def _tail(f) -> str:
    f.seek(0, os.SEEK_END)
    f.seek(max(0, f.tell() - 4 * TAIL))
    return f.read().decode("utf-8", "replace")[-TAIL:]


ALLOW_ROOT_ENV = "VTKIT_SANDBOX_ALLOW_UNISOLATED_ROOT"   # "1": run untrusted code as root without bubblewrap
MEMORY_MB = 1024          # address-space limit per process: the one default (protocols, grade, rewards)


class _Drain(threading.Thread):
    """Reads a pipe to its end, keeping a tail and counting bytes (so a program may print any amount)."""

    def __init__(self, fd: int, keep: int):
        super().__init__(daemon=True)
        self.fd, self.keep, self.buf, self.n = fd, keep, bytearray(), 0
        self.start()

    def run(self):
        while True:
            try:
                chunk = os.read(self.fd, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                break
            self.n += len(chunk)
            self.buf += chunk
            if len(self.buf) > self.keep:
                del self.buf[: len(self.buf) - self.keep]
        os.close(self.fd)

    def text(self, timeout: float = 2.0) -> str:
        self.join(timeout)
        return bytes(self.buf).decode("utf-8", "replace")


def _parse_records(raw: str, nonce: str) -> list[dict]:
    """The harness's records: right nonce, and only the harness process itself (a child the program
    forked carries the nonce too, but not the harness's pid)."""
    records = []
    for line in raw.splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict) and rec.pop("nonce", None) == nonce:
            records.append(rec)
    harness_pid = next((r["pid"] for r in records if r.get("start")), None)
    return [r for r in records if r.get("pid") == harness_pid and not r.get("start")]


def _result(records, n_total, timed_out, timeout_s, exit_desc, **kw) -> SandboxResult:
    """The verdict from the harness's records (never from the program's output or exit status)."""
    details = [{k: v for k, v in r.items() if k != "pid"} for r in records if "case" in r]
    final = next((r for r in reversed(records) if r.get("final")), None)
    n_passed = sum(d["status"] == "passed" and d["case"] is not None for d in details)
    if final is not None:
        status, message = final["status"], final.get("message", "")
        if status == "failed" and not message:
            bad = next((d for d in details if d["status"] != "passed"), None)
            message = f"case {bad['case']}: {bad['status']} {bad['message']}".strip() if bad else ""
    elif timed_out:
        status, message = "timeout", f"ran past the {timeout_s:g} s wall-clock limit"
    else:
        status = "no_verdict"
        message = f"the process ended ({exit_desc}) before the harness reported a verdict"
    if status == "passed" and n_passed != n_total:  # belt and braces: every counted case must have passed
        status, message = "failed", f"harness reported {n_passed} of {n_total} cases"
    return SandboxResult(passed=status == "passed", status=status, n_passed=n_passed, n_total=n_total,
                         message=message, details=details, **kw)


def _check_root_policy(root: bool, use_bwrap: bool, runs_as_root: bool, why: str | None = None) -> None:
    """Untrusted code without bubblewrap while the kit is root runs only with the explicit opt-in;
    `why`: the reason there is no isolation (bwrap_problem(), or isolate=False)."""
    if root and not use_bwrap and os.environ.get(ALLOW_ROOT_ENV) != "1":
        why = why or "isolate=False was asked"
        fix = ("install bubblewrap: apt-get install bubblewrap (or `make setup`, which installs it)"
               if why == MISSING_BWRAP else "fix that")
        raise RuntimeError(
            f"vtkit.sandbox: refusing to run untrusted code as root without bubblewrap isolation"
            f"{' (it would run AS ROOT: this interpreter is not reachable by other uids)' if runs_as_root else ''}. "
            f"Cause: {why}. To isolate, {fix}; or, knowing the program can then read and write what "
            f"{'root' if runs_as_root else 'any user'} can and reach the network, opt in with {ALLOW_ROOT_ENV}=1.")


def run_tests(code: str | None, tests, timeout_s: float = 10.0, memory_mb: int = MEMORY_MB, *,
              nproc: int = 32, fsize_mb: int = 16, isolate: bool | None = None,
              site_packages: bool = False) -> SandboxResult:
    """Run `code` against `tests` in a contained child process; see the module docstring.

    timeout_s: wall-clock limit for the whole run (all cases); memory_mb: address-space limit per
    process (1 GiB by default, as the protocols); nproc: processes (threads count) the program may
    add; fsize_mb: largest file it may write (its stdout and stderr go to pipes, not files: any
    amount may be printed, the result keeps tails and byte counts); isolate: None uses bwrap where
    it works (warning where not), True requires it, False skips it; as root, running without bwrap
    needs VTKIT_SANDBOX_ALLOW_UNISOLATED_ROOT=1. site_packages: let the program import the
    environment's packages (numpy, ...); off by default because tasks need the standard library only
    and `python -I -S` starts 3x faster. `code=None` (nothing extracted from a completion) is a fail
    with status `no_code`.
    """
    if timeout_s <= 0:
        raise ValueError(f"timeout_s must be positive, got {timeout_s}")
    if memory_mb < 64:
        raise ValueError(f"memory_mb={memory_mb} is too small for a Python interpreter; use at least 64")
    mode, payload, n_total = parse_tests(tests)
    if code is None or not isinstance(code, str) or not code.strip():
        return SandboxResult(False, "no_code", n_total=n_total, message="no program to run")
    if isolate is False:
        use_bwrap = False
    else:
        use_bwrap = bwrap_available()
        if isolate and not use_bwrap:
            raise RuntimeError(f"isolate=True but bubblewrap cannot isolate programs here: {_bwrap_why}. "
                               "Fix that, or pass isolate=None to run with resource limits only")
    root = os.geteuid() == 0
    paths = _interpreter_paths()
    reach = _reach_args(paths, other_uid=root)
    if reach is None:   # a folder closed to other uids: the program runs as root, the folders still visible
        reach = _reach_args(paths, other_uid=False)
    closed = _closed_to_others(paths) if root else None
    uid = None
    # a fresh uid needs an interpreter it can reach: directly, or re-exposed by bwrap
    if root and closed is not False and (use_bwrap or closed is None):
        uid = UID_BASE + secrets.randbelow(UID_SPAN)
    _check_root_policy(root, use_bwrap, runs_as_root=root and uid is None,
                       why="isolate=False was asked" if isolate is False else _bwrap_why)
    if root and uid is None:
        _warn_once("root", "vtkit.sandbox: running as root with an interpreter other uids cannot reach; programs "
                           "run AS ROOT and RLIMIT_NPROC does not bind root.")
    nonce = secrets.token_hex(16)
    py_flags = ["-I"] if site_packages else ["-I", "-S"]
    job = {"nonce": nonce, "mode": mode, "code": code, "timeout_s": timeout_s, "uid": uid, "nproc": nproc,
           "py_flags": py_flags, "tests": payload if mode == "asserts" else None,
           "cases": payload if mode == "stdio" else None, "setup": [c.__name__ for c in _SETUP]}
    if not root:  # RLIMIT_NPROC counts all of this uid's tasks: leave room above what already runs
        nproc_limit = sum(t for _, _, u, t in _procs() if u == os.getuid()) + nproc
    else:
        nproc_limit = None  # root is exempt; the harness sets it after dropping to `uid`
    limits = (int(timeout_s + GRACE_S) + 1, memory_mb, fsize_mb, nproc_limit)
    if use_bwrap:
        return _run_zygote(job, nonce, n_total, limits, reach, py_flags)
    return _run_process(job, nonce, n_total, limits, reach, py_flags)


def _run_process(job, nonce, n_total, limits, reach, py_flags) -> SandboxResult:
    """One fresh interpreter per program (no bubblewrap): the harness script in its own session."""
    uid, timeout_s = job["uid"], job["timeout_s"]
    workdir = tempfile.mkdtemp(prefix="vtkit-sbx-")
    if uid is not None:
        os.chown(workdir, uid, uid)
    job = {**job, "workdir": workdir}
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "HOME": workdir, "TMPDIR": workdir}
    cmd = [sys.executable, *py_flags, "-c", HARNESS_SCRIPT]
    t0 = time.monotonic()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    with tempfile.TemporaryFile() as f_in, tempfile.TemporaryFile() as f_res:
        f_in.write(json.dumps(job).encode())
        f_in.flush()
        f_in.seek(0)
        cmd += [str(f_in.fileno()), str(f_res.fileno())]
        proc = None
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out_w, stderr=err_w, env=env, cwd=workdir,
                                    start_new_session=True, pass_fds=(f_in.fileno(), f_res.fileno()),
                                    preexec_fn=_limits(*limits))
        finally:
            os.close(out_w)
            os.close(err_w)
        drains = (_Drain(out_r, TAIL), _Drain(err_r, TAIL))
        try:
            timed_out = not _wait(proc, timeout_s + GRACE_S)
        finally:
            _kill_all(proc.pid, uid, None if uid is not None else workdir)
            proc.wait()
            shutil.rmtree(workdir, ignore_errors=True)
        duration = time.monotonic() - t0
        f_res.seek(0)
        records = _parse_records(f_res.read().decode("utf-8", "replace"), nonce)
    stdout, stderr = (d.text() for d in drains)
    return _result(records, n_total, timed_out, timeout_s, f"exit status {proc.returncode}", stdout=stdout[-TAIL:],
                   stderr=stderr[-TAIL:], duration_s=duration, isolated=False, pid=proc.pid, uid=uid,
                   stdout_bytes=drains[0].n, stderr_bytes=drains[1].n,
                   output_truncated=drains[0].n > len(stdout.encode()) or drains[1].n > len(stderr.encode()))


# ---- the pre-forked sandbox (bubblewrap) --------------------------------------------------------

class _Zygote:
    """One bubblewrap sandbox holding a Python server that forks one child per program (ZYGOTE).

    Starting bwrap and an interpreter costs ~0.1-0.2 s; forking a warm server costs ~2 ms, so the
    sandbox is started once per worker and reused. Each job still gets fresh rlimits, a private
    directory, a fresh uid (as root), a scrubbed environment, and ends with every process in the
    sandbox's pid namespace but the server killed and /tmp wiped.
    """

    def __init__(self, reach: list[str], py_flags: list[str]):
        self.base = tempfile.mkdtemp(prefix="vtkit-sbx-")
        os.chmod(self.base, 0o711)
        # no --die-with-parent: it binds the sandbox to the thread that started it (a run_many worker
        # thread exits after each call); the server exits instead when its stdin closes, which also
        # happens when the kit dies, after at most the current job's wall-clock limit
        args = [a for a in _bwrap_args(self.base, reach) if a != "--die-with-parent"]
        mounts = [reach[i + 1] for i, a in enumerate(reach) if a == "--tmpfs"] + \
            [reach[i + 2] for i, a in enumerate(reach) if a == "--ro-bind"]
        cmd = args + [sys.executable, *py_flags, "-c", ZYGOTE, self.base, str(TAIL), json.dumps(mounts)]
        self.err = tempfile.TemporaryFile()   # bwrap's own errors, the server's traceback: said when it dies
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err,
                                     start_new_session=True, cwd=self.base)
        self.out = self.proc.stdout.fileno()
        self.buf = b""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def error(self) -> str:
        """The tail of what bwrap or the server wrote to stderr (empty while all is well)."""
        try:
            return _tail(self.err).strip()[-500:]
        except (OSError, ValueError):
            return ""

    def run(self, job: dict, timeout: float) -> dict | None:
        """Send one job; the server's reply, or None when it died or did not answer in `timeout`."""
        try:
            self.proc.stdin.write(json.dumps(job).encode() + b"\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            return None
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.out], [], [], left)[0]:
                return None
            chunk = os.read(self.out, 1 << 20)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def close(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout, self.err):
            try:
                f.close()
            except OSError:
                pass
        shutil.rmtree(self.base, ignore_errors=True)


_pool: dict[tuple, list[_Zygote]] = {}
_all_zygotes: list[_Zygote] = []


def _acquire(key: tuple, reach: list[str], py_flags: list[str]) -> _Zygote:
    with _lock:
        idle = _pool.setdefault(key, [])
        while idle:
            z = idle.pop()
            if z.alive():
                return z
            z.close()
    z = _Zygote(reach, py_flags)
    with _lock:
        _all_zygotes.append(z)
    return z


def _release(key: tuple, z: _Zygote) -> None:
    with _lock:
        _pool.setdefault(key, []).append(z)


def shutdown() -> None:
    """Stop every pre-forked sandbox (also done at exit)."""
    with _lock:
        zs, _all_zygotes[:] = list(_all_zygotes), []
        _pool.clear()
    for z in zs:
        z.close()


atexit.register(shutdown)


def _run_zygote(job, nonce, n_total, limits, reach, py_flags) -> SandboxResult:
    cpu_s, memory_mb, fsize_mb, nproc_limit = limits
    job = {**job, "workdir": None, "path": os.environ.get("PATH", "/usr/bin:/bin"),
           "wall_s": job["timeout_s"] + GRACE_S,
           "limits": {"cpu_s": cpu_s, "as": memory_mb << 20, "fsize": fsize_mb << 20, "nproc": nproc_limit}}
    key = (tuple(reach), tuple(py_flags))
    t0 = time.monotonic()
    z = _acquire(key, reach, py_flags)
    reply = z.run(job, job["wall_s"] + 30.0)
    if reply is None:   # the server died (a program of the same uid may kill it) or hung: never reuse it
        err = z.error()
        z.close()
        why = "the sandbox server stopped answering" + (f"; its stderr: {err!r}" if err else "")
        return _result([], n_total, False, job["timeout_s"], why,
                       duration_s=time.monotonic() - t0, isolated=True, uid=job["uid"])
    _release(key, z)
    status = reply["status"]
    exit_desc = (f"killed by signal {-status if status < 0 else os.WTERMSIG(status)}"
                 if status is not None and status != -1 and os.WIFSIGNALED(status)
                 else f"exit status {os.WEXITSTATUS(status) if status not in (None, -1) else '?'}")
    out, err = reply["stdout"], reply["stderr"]
    return _result(_parse_records(reply["records"], nonce), n_total, reply["timed_out"], job["timeout_s"], exit_desc,
                   stdout=out, stderr=err, duration_s=time.monotonic() - t0, isolated=True, pid=None,
                   uid=job["uid"], stdout_bytes=reply["stdout_bytes"], stderr_bytes=reply["stderr_bytes"],
                   output_truncated=reply["stdout_bytes"] > len(out.encode()) or reply["stderr_bytes"] > len(err.encode()))


def run_many(items, workers: int | None = None, **kwargs) -> list[SandboxResult]:
    """`run_tests` over `items` ((code, tests) pairs or dicts with `code`, `tests`) in parallel threads.

    workers: concurrent sandboxes (default: the CPU count, since each run is one busy process).
    kwargs go to every `run_tests` call; results come back in the order of `items`.
    """
    jobs = []
    for i, it in enumerate(items):
        if isinstance(it, dict):
            if "code" not in it or "tests" not in it:
                raise ValueError(f"item {i} must have keys 'code' and 'tests', got {sorted(it)}")
            jobs.append((it["code"], it["tests"]))
        else:
            code, tests = it
            jobs.append((code, tests))
    if not jobs:
        return []
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    if workers == 1:
        return [run_tests(c, t, **kwargs) for c, t in jobs]
    with ThreadPoolExecutor(workers) as ex:
        return list(ex.map(lambda ct: run_tests(ct[0], ct[1], **kwargs), jobs))

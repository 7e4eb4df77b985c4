"""Run provenance: resolved config, environment facts, metrics and seeds for one output directory.

Every stage directory carries the same three files (docs/contracts.md, "Run outputs"):

    config.json    the resolved parameters of the run (what the notebook actually used)
    runinfo.json   git commit (+ dirty flag), hash of the vtkit source, package versions, python,
                   host, CPUs, GPUs, time
    metrics.json   flat scalars only, written atomically by `write_metrics`

In a data-parallel run (N processes started by `accelerate launch` or torchrun, which set RANK and
WORLD_SIZE) only rank 0 writes: `save`, `write_json`, `write_jsonl` and `write_metrics` do nothing
on the other ranks (`is_main()`), so N processes leave one set of files.

Usage inside a notebook:

    from vtkit import runinfo
    runinfo.seed_everything(seed)                 # random, numpy, torch (+ thread cap from the sweep)
    runinfo.save(out_dir, dict(preset=preset, seed=seed, ...))
    runinfo.write_metrics(out_dir, {"accuracy": acc, "n": n})

Nothing here imports torch unless the caller already did (or calls `seed_everything`): the sweep
runner writes runinfo for every run and must stay cheap. GPU names come from `nvidia-smi` when it
exists, otherwise from torch only if torch is already imported.

`source_hash()` names the code a run ran with: a hash of the vtkit package's files that can change a
result (SOURCE_PATTERNS: every module, the preset files, the shipped data; not tests or docs). The
sweep records it in each finished stage's `_DONE` and re-runs a stage whose code changed
(vtkit/sweep.py). It hashes the files' bytes, so any edit counts, a comment's included.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

# The stack whose versions change results; anything missing is recorded as None.
PACKAGES = (
    "vtkit", "torch", "transformers", "trl", "accelerate", "datasets", "math-verify", "numpy",
    "pandas", "papermill", "nbclient", "ipykernel", "matplotlib", "seaborn", "reasoning-gym",
    "submitit", "vllm",
)


def _umask() -> int:
    """This process's umask (read from /proc where it can be, so no other thread sees it change)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def rank() -> int:
    """This process's rank in a data-parallel run (RANK, set by torchrun and `accelerate launch`); 0 alone."""
    return int(os.environ.get("RANK", "0") or 0)


def world_size() -> int:
    """How many processes train together (WORLD_SIZE from torchrun / `accelerate launch`); 1 alone."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def is_main() -> bool:
    """Whether this process writes the run's files (rank 0; always true in one process)."""
    return rank() == 0


def _atomic_write_text(path: Path, text: str) -> None:
    """Write `text` to `path` so readers see either the old file or the whole new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())   # mkstemp makes 0600; give the file open()'s usual mode
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Atomic JSON write (tmp file + os.replace); non-JSON values are stored as their str(). Rank 0 only."""
    if not is_main():
        return
    _atomic_write_text(Path(path), json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def write_jsonl(path: str | os.PathLike, rows, *, sort_keys: bool = True, ensure_ascii: bool = True) -> Path:
    """Write `rows` (dicts) as JSON lines, atomically (readers see the old file or the whole new one).

    sort_keys=False keeps each row's own key order and ensure_ascii=False writes non-ASCII text as
    UTF-8: the bytes of a reference harness's files (Google's IFEval eval_results, human-eval's
    samples results), which write `json.dumps(row)` per line in their own key order. Rank 0 only."""
    path = Path(path)
    if not is_main():
        return path
    _atomic_write_text(path, "".join(json.dumps(r, sort_keys=sort_keys, ensure_ascii=ensure_ascii, default=str)
                                     + "\n" for r in rows))
    return path


def jsonl_rows(path: str | os.PathLike, what: str = "JSON-lines", error: type = ValueError):
    """(line number, dict) for each non-blank line of a JSON-lines file (a `.gz` one is read through
    gzip); `error` naming the file, the line and the fix for a line that is not a JSON object, and
    FileNotFoundError naming `what` for a missing file. A generator: large files stream."""
    import gzip

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} file {path} does not exist")
    with (gzip.open if path.suffix == ".gz" else open)(path, "rt", encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise error(f"{path}:{n}: not valid JSON ({e.msg}); {what} files hold one JSON object "
                            "per line") from e
            if not isinstance(row, dict):
                raise error(f"{path}:{n}: expected a JSON object, got {type(row).__name__}")
            yield n, row


def read_jsonl(path: str | os.PathLike, what: str = "JSON-lines", error: type = ValueError) -> list[dict]:
    """The rows of a JSON-lines file (blank lines skipped; errors as `jsonl_rows`)."""
    return [row for _, row in jsonl_rows(path, what, error)]


SOURCE_ROOT = Path(__file__).resolve().parent  # the vtkit package this process imported
SOURCE_PATTERNS = ("**/*.py", "presets/*.yaml", "data/*")  # what can change a result (not *.md)


def source_files(root: str | os.PathLike | None = None) -> list[Path]:
    """The files `source_hash` reads under `root` (default SOURCE_ROOT), sorted; no caches, no docs."""
    root = Path(root or SOURCE_ROOT)
    found = {f for pattern in SOURCE_PATTERNS for f in root.glob(pattern)
             if f.is_file() and "__pycache__" not in f.relative_to(root).parts and f.suffix != ".md"}
    return sorted(found, key=lambda f: f.relative_to(root).as_posix())


def source_hash(root: str | os.PathLike | None = None) -> str:
    """16 hex digits naming the vtkit source under `root` (default SOURCE_ROOT): the relative path
    and bytes of every file of `source_files`. Where the package lives does not count."""
    root = Path(root or SOURCE_ROOT)
    h = hashlib.sha256()
    for f in source_files(root):
        h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def git_info(where: str | os.PathLike | None = None) -> dict:
    """{"commit", "dirty", "root"} of the git checkout holding `where` (default: cwd), or Nones."""
    cwd = Path(where or os.getcwd())
    if not cwd.is_dir():
        cwd = cwd.parent
    out = {"commit": None, "dirty": None, "root": None}
    if shutil.which("git") is None:
        return out
    try:
        run = lambda *a: subprocess.run(["git", *a], cwd=cwd, capture_output=True, text=True, timeout=10)
        head = run("rev-parse", "HEAD")
        if head.returncode != 0:
            return out
        out["commit"] = head.stdout.strip()
        out["root"] = run("rev-parse", "--show-toplevel").stdout.strip() or None
        status = run("status", "--porcelain", "--untracked-files=no")
        out["dirty"] = bool(status.stdout.strip()) if status.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def package_versions(names=PACKAGES) -> dict:
    """Installed version of each distribution in `names` (None when absent); no imports."""
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def gpu_names() -> list[str]:
    """Names of the visible GPUs: nvidia-smi if present, else torch if already imported, else []."""
    if shutil.which("nvidia-smi"):
        try:
            r = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                               capture_output=True, text=True, timeout=20)
            if r.returncode == 0:
                names = [line.strip() for line in r.stdout.splitlines() if line.strip()]
                visible = os.environ.get("CUDA_VISIBLE_DEVICES")
                if visible is not None:  # report only what this run may use
                    ids = [v for v in visible.split(",") if v.strip()]
                    if all(v.strip().isdigit() for v in ids):
                        names = [names[int(v)] for v in ids if int(v) < len(names)]
                    else:
                        names = names[: len(ids)]
                return names
        except (OSError, subprocess.SubprocessError):
            pass
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return []


def collect(where: str | os.PathLike | None = None) -> dict:
    """The facts runinfo.json records (see module docstring)."""
    try:
        cpus_usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus_usable = os.cpu_count()
    return {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "git": git_info(where),
        "vtkit_source": source_hash(),
        "packages": package_versions(),
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": cpus_usable,
        "threads": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "VTKIT_NUM_THREADS")},
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "gpus": gpu_names(),
    }


def save(out_dir: str | os.PathLike, params: dict, where: str | os.PathLike | None = None) -> Path:
    """Write config.json (resolved `params`) and runinfo.json into `out_dir`; returns `out_dir`.

    `where` picks the git checkout to record (default: the current directory, which is the
    notebook's folder inside a vtkit or papermill run). Rank 0 only writes (`is_main`).
    """
    if not isinstance(params, dict):
        raise TypeError(f"runinfo.save expects the parameters as a dict, got {type(params).__name__}")
    out = Path(out_dir)
    if not is_main():
        return out
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", params)
    write_json(out / "runinfo.json", collect(where))
    return out


def _scalar(key: str, value: Any):
    """A JSON scalar for `value`, or a TypeError naming `key`."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    item = getattr(value, "item", None)  # numpy scalars, 0-d arrays, one-element tensors
    if callable(item) and getattr(value, "ndim", 0) == 0:
        v = item()
        if v is None or isinstance(v, (bool, int, float, str)):
            return v
    raise TypeError(
        f"metric {key!r} is a {type(value).__name__}, but metrics.json holds flat scalars only "
        "(int, float, bool, str, None); reduce it to a number or store it as a file in out_dir")


def check_metrics(metrics: dict) -> dict:
    """`metrics` as plain JSON scalars (numpy/torch scalars unwrapped, NaN -> None), or a TypeError
    naming the first key whose value is not a flat scalar."""
    if not isinstance(metrics, dict):
        raise TypeError(f"metrics must be a dict of flat scalars, got {type(metrics).__name__}")
    clean = {}
    for key, value in metrics.items():
        if not isinstance(key, str) or not key:
            raise TypeError(f"metric names must be non-empty strings, got {key!r}")
        v = _scalar(key, value)
        if isinstance(v, float) and math.isnan(v):
            v = None  # JSON has no NaN
        clean[key] = v
    return clean


def write_metrics(out_dir: str | os.PathLike, metrics: dict, merge: bool = True) -> Path:
    """Write `metrics` (flat scalars) to out_dir/metrics.json atomically; returns the path.

    merge=True (default) keeps keys written by earlier calls, so a notebook can report as it goes.
    Every rank checks the metrics; only rank 0 writes them (`is_main`).
    """
    clean = check_metrics(metrics)
    path = Path(out_dir) / "metrics.json"
    if not is_main():
        return path
    if merge and path.exists():
        clean = {**json.loads(path.read_text()), **clean}
    write_json(path, clean)
    return path


def num_threads(default: int | None = None) -> int | None:
    """Threads this run may use: VTKIT_NUM_THREADS set by the sweep runner, else `default`."""
    value = os.environ.get("VTKIT_NUM_THREADS")
    return int(value) if value and value.isdigit() and int(value) > 0 else default


def seed_everything(seed: int) -> int:
    """Seed random, numpy and torch; torch deterministic on CPU; cap torch threads to the run's CPUs."""
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {seed!r}")
    random.seed(seed)
    try:
        import numpy as np
        np.random.seed(seed % 2**32)
    except ImportError:
        pass
    try:
        import torch
    except ImportError:
        return seed
    torch.manual_seed(seed)
    threads = num_threads()
    if threads:
        torch.set_num_threads(threads)
    if not torch.cuda.is_available():
        # warn_only: an op without a deterministic kernel warns instead of stopping the notebook
        torch.use_deterministic_algorithms(True, warn_only=True)
    else:
        torch.cuda.manual_seed_all(seed)
    return seed

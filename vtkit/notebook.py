"""Notebook parameters and execution through papermill, with the checks papermill leaves out.

    from vtkit import notebook
    notebook.parameters("notebooks/evaluate.ipynb")        # {name: Param(name, type, default, help)}
    notebook.check_parameters("notebooks/evaluate.ipynb", {"n": 64, "lr": 3e-4})   # raises on typos
    notebook.execute("notebooks/evaluate.ipynb", "runs/x", {"n": 64})   # -> runs/x/executed.ipynb

papermill injects anything it is given: an unknown name only warns and a wrong type runs anyway.
vtkit checks both first. Names and types come from `papermill.inspect_notebook`, which reads the
cell tagged `parameters`: an annotation (`lr: float = 3e-4`) gives the type, otherwise the type of
the literal default (`n = 64` -> int); a default of `None`, or one that is not a literal, accepts
anything. An int is accepted where a float is expected. Lines papermill's parser skips (for
example `k: int | None = None`) are recovered from the cell's syntax tree.

Execution names the kernel explicitly (default `vtkit`, the kit's venv kernel), turns papermill's
progress bar off, runs the kernel in the notebook's own folder (as JupyterLab does), and sends the
notebook's printed output and papermill's log to `log_path`.
"""
from __future__ import annotations

import ast
import difflib
import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

KERNEL = "vtkit"  # the kit's venv kernel (`make setup` registers it); notebooks declare it too


class ParameterError(ValueError):
    """A parameter name or value that a notebook's parameters cell does not accept."""


@dataclass(frozen=True)
class Param:
    name: str
    types: frozenset | None  # accepted type names ({"int"}, {"float", "None"}, ...); None: anything
    default: str  # source text of the default
    help: str = ""

    @property
    def type_name(self) -> str:
        return "any" if self.types is None else " | ".join(sorted(self.types))


_TYPING = {"List": "list", "Dict": "dict", "Tuple": "tuple", "Sequence": "list", "Mapping": "dict",
           "NoneType": "None", "none": "None"}
_CHECKABLE = {"int", "float", "str", "bool", "list", "dict", "tuple", "None"}


def _types_from_annotation(text: str) -> frozenset | None:
    """{"int", "None"} for "int | None" / "Optional[int]"; None (anything) when not checkable."""
    text = text.strip().strip("'\"")
    if not text or text == "None":
        return None
    m = re.fullmatch(r"(?:typing\.)?Optional\[(.*)\]", text)
    if m:
        inner = _types_from_annotation(m.group(1))
        return None if inner is None else inner | {"None"}
    m = re.fullmatch(r"(?:typing\.)?Union\[(.*)\]", text)
    parts = m.group(1).split(",") if m else text.split("|")
    names = set()
    for part in parts:
        base = part.strip().split("[")[0].replace("typing.", "")
        base = _TYPING.get(base, base)
        if base not in _CHECKABLE:
            return None
        names.add(base)
    return frozenset(names)


def _types_from_default(source: str) -> frozenset | None:
    try:
        value = ast.literal_eval(source)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None  # an expression: cannot tell
    if value is None:
        return None
    return frozenset({type(value).__name__}) if type(value).__name__ in _CHECKABLE else None


def _parameters_cell(nb: dict) -> str | None:
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            src = cell.get("source", "")
            return "".join(src) if isinstance(src, list) else src
    return None


def _ast_params(source: str) -> dict[str, tuple[str | None, str, str]]:
    """{name: (annotation source or None, default source, trailing comment)} for top-level assignments."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return {}
    lines, found = source.splitlines(), {}
    for node in tree.body:
        rest = lines[node.end_lineno - 1][node.end_col_offset:].strip()
        comment = rest[1:].strip() if rest.startswith("#") else ""
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            found[node.target.id] = (ast.get_source_segment(source, node.annotation),
                                     ast.get_source_segment(source, node.value), comment)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    found[target.id] = (None, ast.get_source_segment(source, node.value), comment)
    return found


@lru_cache(maxsize=64)
def _parameters_cached(path: str, mtime_ns: int, size: int) -> dict[str, Param]:
    import papermill as pm  # slow import (~1 s): only when a notebook is inspected

    nb = json.loads(Path(path).read_text())
    cell = _parameters_cell(nb)
    if cell is None:
        raise ParameterError(f"{path} has no cell tagged 'parameters'; tag its parameters cell "
                             "(JupyterLab: property inspector > cell tags) so runs can set them")
    quiet = logging.getLogger("papermill.translators")  # it warns on lines the AST pass below recovers
    old = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        inspected = pm.inspect_notebook(path)
    except ValueError:  # no kernelspec in the notebook's metadata: the syntax tree below still works
        inspected = {}
    finally:
        quiet.setLevel(old)
    params = {}
    for name, info in inspected.items():
        annotation = info.get("inferred_type_name") or "None"
        types = _types_from_annotation(annotation) if annotation != "None" else None
        if types is None and annotation == "None":
            types = _types_from_default(info.get("default", ""))
        params[name] = Param(name, types, info.get("default", ""), info.get("help", ""))
    for name, (annotation, default, comment) in _ast_params(cell).items():
        if name not in params:  # a line papermill's regex skipped
            types = _types_from_annotation(annotation) if annotation else _types_from_default(default or "")
            params[name] = Param(name, types, default or "", comment)
    return params


def parameters(notebook: str | os.PathLike) -> dict[str, Param]:
    """The parameters declared in `notebook`'s cell tagged `parameters` (cached by mtime)."""
    path = Path(notebook)
    if not path.is_file():
        raise FileNotFoundError(f"notebook not found: {path}")
    st = path.stat()
    return dict(_parameters_cached(str(path.resolve()), st.st_mtime_ns, st.st_size))


def accepts(param: Param, value: Any) -> bool:
    """Whether `value` fits `param`'s declared type (ints pass for floats, tuples for lists)."""
    if param.types is None:
        return True
    kinds = {
        "None": value is None,
        "bool": isinstance(value, bool),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, (int, float)) and not isinstance(value, bool),
        "str": isinstance(value, str),
        "list": isinstance(value, (list, tuple)),
        "tuple": isinstance(value, (list, tuple)),
        "dict": isinstance(value, dict),
    }
    return any(kinds[t] for t in param.types)


def check_parameters(notebook: str | os.PathLike, values: dict) -> None:
    """Raise ParameterError for any name the notebook does not declare or any value of a wrong type."""
    declared = parameters(notebook)
    valid = ", ".join(sorted(declared)) or "(none)"
    for name, value in values.items():
        if name not in declared:
            close = difflib.get_close_matches(name, declared, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ParameterError(f"{notebook} has no parameter {name!r}{hint}. Valid parameters: {valid}")
        p = declared[name]
        if not accepts(p, value):
            raise ParameterError(
                f"parameter {name!r} of {notebook} expects {p.type_name} (default {p.default}), "
                f"got {type(value).__name__} {value!r}; fix the value or the notebook's annotation")


def content_hash(notebook: str | os.PathLike) -> str:
    """sha256 of the notebook's cell types and sources: outputs, ids and metadata do not count."""
    st = Path(notebook).stat()
    return _content_hash(str(Path(notebook).resolve()), st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=64)
def _content_hash(path: str, mtime_ns: int, size: int) -> str:
    nb = json.loads(Path(path).read_text())
    cells = [(c.get("cell_type"), "".join(c["source"]) if isinstance(c.get("source"), list) else c.get("source", ""))
             for c in nb.get("cells", [])]
    return hashlib.sha256(json.dumps(cells).encode()).hexdigest()


def _known_parameters(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith(("Passed unknown parameter", "Unable to parse line"))


def execute(notebook: str | os.PathLike, out_dir: str | os.PathLike, parameters: dict,
            kernel: str = KERNEL, timeout_s: float | None = None, log_path: str | os.PathLike | None = None,
            cwd: str | os.PathLike | None = None) -> Path:
    """Run `notebook` with `parameters` (+ `out_dir`) under papermill; returns out_dir/executed.ipynb.

    timeout_s is nbclient's per-cell limit; the sweep runner enforces whole-run limits itself by
    killing the run's processes. A cell that raises makes papermill raise PapermillExecutionError
    after saving the executed notebook with the traceback in it.
    """
    import papermill as pm

    notebook, out = Path(notebook), Path(out_dir)
    values = {**parameters, "out_dir": str(out)}
    check_parameters(notebook, values)
    out.mkdir(parents=True, exist_ok=True)
    executed = out / "executed.ipynb"
    log_file = open(log_path, "a", buffering=1) if log_path else None
    handler, pm_logger, old_level = None, logging.getLogger("papermill"), None
    quiet = [pm_logger, logging.getLogger("papermill.translators")]
    for lg in quiet:  # names checked above; papermill's parser misses annotated `x: T = v` lines
        lg.addFilter(_known_parameters)
    if log_file:
        handler = logging.StreamHandler(log_file)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        pm_logger.addHandler(handler)
        old_level = pm_logger.level
        pm_logger.setLevel(logging.INFO)
    try:
        pm.execute_notebook(
            str(notebook), str(executed), parameters=values, kernel_name=kernel,
            progress_bar=False, log_output=False, stdout_file=log_file, stderr_file=log_file,
            cwd=str(cwd or notebook.resolve().parent), execution_timeout=timeout_s,
            start_timeout=120,  # a cold kernel on a busy 2-core box can take tens of seconds
        )
    finally:
        for lg in quiet:
            lg.removeFilter(_known_parameters)
        if handler is not None:
            pm_logger.removeHandler(handler)
            pm_logger.setLevel(old_level)
        if log_file:
            log_file.close()
    return executed

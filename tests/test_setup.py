"""The set-up files agree with each other: environment.yml, pyproject.toml, Makefile, CI."""
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[; ]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_names_the_same_dependencies_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(r) for r in project["dependencies"]}
    for extra in ("gpu", "slurm", "dev"):
        wanted |= {_name(r) for r in project["optional-dependencies"][extra]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    listed = {_name(r) for r in pip if not r.startswith("-e")}
    assert listed == wanted, f"only in pyproject: {wanted - listed}; only in environment.yml: {listed - wanted}"
    assert any(r.startswith("-e .[") for r in pip), "environment.yml must install the kit itself"


def test_make_setup_installs_cpu_torch_before_the_kit():
    make = (ROOT / "Makefile").read_text()
    recipe = make[make.index("$(STAMP): pyproject.toml"):]
    torch_at = recipe.index("$(TORCH)")
    assert torch_at < recipe.index("-e '.[$(EXTRAS)]'")
    assert re.search(r"^TORCH\s*\?=\s*torch==2\.13\.0", make, re.M)
    env_torch = [r for r in yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"][-1]["pip"]
                 if _name(r) == "torch"]
    assert env_torch == ["torch==2.13.0"]


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme


def test_console_script_and_kernel_are_declared():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["vtkit"] == "vtkit.cli:main"
    assert "--name $(KERNEL)" in (ROOT / "Makefile").read_text()

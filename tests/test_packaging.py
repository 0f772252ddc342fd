"""The set-up files agree with each other: pyproject.toml, environment.yml, the Makefile, .ci/run, README."""
import importlib
import re
import sys
from pathlib import Path

import pytest
import yaml

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
ENVIRONMENT = yaml.safe_load((ROOT / "environment.yml").read_text())
MAKEFILE = (ROOT / "Makefile").read_text()


def _pip_section() -> list[str]:
    for dep in ENVIRONMENT["dependencies"]:
        if isinstance(dep, dict) and "pip" in dep:
            return dep["pip"]
    raise AssertionError("environment.yml has no pip section")


def test_environment_python_matches_requires_python():
    pythons = [d for d in ENVIRONMENT["dependencies"] if isinstance(d, str) and re.match(r"python\b", d)]
    assert pythons == ["python" + PYPROJECT["project"]["requires-python"]]


def test_environment_installs_the_package_with_the_makefiles_extras():
    make_extras = re.search(r"pip install --quiet -e '\.\[([a-z,]+)\]'", MAKEFILE).group(1)
    assert _pip_section() == [f"-e .[{make_extras}]"]
    declared = set(PYPROJECT["project"]["optional-dependencies"])
    assert set(make_extras.split(",")) <= declared


def test_environment_lists_no_conda_package_the_pyproject_does_not_declare():
    names = {re.split(r"[<>=! ]", d)[0] for d in PYPROJECT["project"]["dependencies"]}
    for extra in PYPROJECT["project"]["optional-dependencies"].values():
        names |= {re.split(r"[<>=!; ]", d)[0] for d in extra}
    for dep in ENVIRONMENT["dependencies"]:
        if isinstance(dep, str) and not re.match(r"(python|pip)\b", dep):
            assert re.split(r"[<>=! ]", dep)[0] in names, f"{dep} is in environment.yml but not in pyproject.toml"


def test_torch_ranges_admit_the_versions_installed_here():
    import torch
    import torchvision

    deps = {re.split(r"[<>=! ]", d)[0]: d for d in PYPROJECT["project"]["dependencies"]}
    for name, module in (("torch", torch), ("torchvision", torchvision)):
        version = tuple(int(x) for x in re.findall(r"\d+", module.__version__.split("+")[0])[:2])
        minimum = tuple(int(x) for x in re.search(r">=([\d.]+)", deps[name]).group(1).split(".")[:2])
        assert version >= minimum and "<" not in deps[name]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "exec make test" in ci
    assert "make test" in readme and "make lab" in readme
    assert re.search(r"^test: install$", MAKEFILE, re.M) and "pytest --nbval-lax" in MAKEFILE


# every name in these modules' __all__ is an operator; the others export only their operators
TOPLEVEL = {"cvkit.boxes": None, "cvkit.nms": None, "cvkit.metrics": None, "cvkit.roi": None, "cvkit.upsampling": None,
            "cvkit.deform": ["deform_conv2d", "deform_conv2d_reference", "DeformConv2d", "deform_roi_pool",
                             "deform_roi_pool_reference", "DeformRoIPool"],
            "cvkit.receptive_field": ["receptive_field", "empirical_receptive_field"],
            "cvkit.selective_search": ["selective_search"]}


@pytest.mark.parametrize("module", sorted(TOPLEVEL))
def test_every_public_operator_is_exported_at_the_top_level(module):
    import cvkit

    mod = importlib.import_module(module)
    for name in TOPLEVEL[module] or mod.__all__:
        if name.isupper():      # constants such as BOX_FORMATS stay in their module
            continue
        assert getattr(cvkit, name) is getattr(mod, name), f"cvkit.{name} is not {module}.{name}"
        assert name in cvkit.__all__

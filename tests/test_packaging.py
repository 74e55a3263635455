"""Packaging: the web needs no torch (nor the analysis stack), the extras carry them, the lock is current."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]

# Imports every module of the web (views, admin, API, tasks, commands; not the tests) with torch
# and statsmodels made unimportable, as in the web image, then the paths that reach the generator
# package from a web request.
WEB_WITHOUT_GPU = """
import importlib, pkgutil, sys
class Missing:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"torch", "torchvision", "statsmodels"}:
            raise ImportError(f"{name} is not installed in the web image")
sys.meta_path.insert(0, Missing())
import django
django.setup()
import studyserver, studyserver.urls
from django.urls import get_resolver
get_resolver().url_patterns
for module in pkgutil.walk_packages(studyserver.__path__, "studyserver."):
    parts = module.name.split(".")
    if "tests" in parts or parts[-1] in {"testing", "settings_test"} or parts[-1].startswith("test_"):
        continue
    importlib.import_module(module.name)
from studyserver.treatments.services import requested_params
assert requested_params({"event": "flood", "threshold": 0.4, "seed": 3, "framing": "pad"}) == {"event": "flood", "threshold": 0.4}
assert "torch" not in sys.modules and "statsmodels" not in sys.modules
print("ok")
"""


def _pins(lines: list[str]) -> dict[str, str]:
    pins = {}
    for line in lines:
        requirement = Requirement(line)
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", line
        pins[canonicalize_name(requirement.name)] = specifier.version
    return pins


def test_the_web_imports_no_torch_and_no_analysis_stack():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST_"))}
    env.update({"DJANGO_SETTINGS_MODULE": "studyserver.settings", "DATABASE_URL": "postgres://u@127.0.0.1:5432/x",
                "SECRET_KEY": "s" * 50})
    result = subprocess.run([sys.executable, "-c", WEB_WITHOUT_GPU], cwd=REPO, env=env, capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]


def test_torch_and_statsmodels_are_extras_not_core():
    core = _pins(PROJECT["dependencies"])
    extras = PROJECT["optional-dependencies"]
    assert "torch" not in core and "statsmodels" not in core
    assert _pins(extras["gpu"])["torch"] == "2.13.0"
    assert "statsmodels" in _pins(extras["analysis"])
    assert "psycopg2-binary" in core


def test_the_lock_file_is_current_with_pyproject():
    """Every pin of pyproject.toml is in requirements.lock at the same version (`make lock`)."""
    declared = _pins(PROJECT["dependencies"])
    for lines in PROJECT["optional-dependencies"].values():
        declared.update(_pins(lines))
    lock_lines = [line for line in (REPO / "requirements.lock").read_text().splitlines()
                  if line and not line.startswith("#")]
    locked = _pins(lock_lines)
    stale = {name: (version, locked.get(name)) for name, version in declared.items() if locked.get(name) != version}
    assert not stale, f"requirements.lock is stale (pyproject, lock): {stale}; run `make lock`"


def test_the_lock_matches_what_the_environment_resolves():
    spec = importlib.util.spec_from_file_location("lock", REPO / "scripts" / "lock.py")
    lock = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lock)
    locked = _pins([line for line in (REPO / "requirements.lock").read_text().splitlines()
                    if line and not line.startswith("#")])
    resolved = {canonicalize_name(name): version for name, version in lock.locked_versions().items()}
    assert resolved == locked, "requirements.lock differs from .venv: run scripts/setup.sh, then `make lock`"

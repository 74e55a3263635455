"""Write requirements.lock: every distribution that floodlight[dev,analysis,gpu] needs, directly or
not, pinned to the version installed in this virtual environment (`make lock`).

It walks the requirements declared in pyproject.toml through the installed packages' metadata, so
packages installed by hand and not required are left out. The lock is for Linux and Python 3.11,
as the Dockerfile and CI run. torch is written without its local build label (``+cpu``) so the
CUDA build of the same version satisfies it too. Used as pip constraints: ``pip install -c
requirements.lock .`` installs exactly these versions of whatever that install needs.
"""

from __future__ import annotations

import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parent.parent
EXTRAS = ("dev", "analysis", "gpu")
HEADER = """\
# Pinned versions of everything floodlight[dev,analysis,gpu] installs (Linux, Python 3.11).
# Written by `make lock` (scripts/lock.py) from .venv; use as constraints:
#   pip install -c requirements.lock .            (web image)
#   pip install -c requirements.lock ".[gpu]"     (gpu worker image)
"""


def _wanted(requirement: Requirement, extras: set[str]) -> bool:
    if requirement.marker is None:
        return True
    return any(requirement.marker.evaluate({"extra": extra}) for extra in extras | {""})


def locked_versions(pyproject: Path = REPO / "pyproject.toml", extras: tuple[str, ...] = EXTRAS) -> dict[str, str]:
    """{distribution name: installed version} for the closure of the project's requirements."""
    project = tomllib.loads(pyproject.read_text())["project"]
    roots = list(project["dependencies"])
    for extra in extras:
        roots += project["optional-dependencies"][extra]
    todo = [(Requirement(line), set()) for line in roots]
    seen: dict[str, set[str]] = {}
    versions: dict[str, str] = {}
    while todo:
        requirement, _ = todo.pop()
        key = canonicalize_name(requirement.name)
        asked = set(requirement.extras)
        if key in seen and asked <= seen[key]:
            continue
        seen[key] = seen.get(key, set()) | asked
        try:
            distribution = metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            sys.exit(f"{requirement.name} is required but not installed: run scripts/setup.sh first")
        versions[distribution.metadata["Name"]] = distribution.version.split("+")[0]
        for line in distribution.requires or []:
            needed = Requirement(line)
            if _wanted(needed, seen[key]):
                todo.append((needed, set()))
    return versions


def main() -> None:
    versions = locked_versions()
    lines = [f"{name}=={versions[name]}" for name in sorted(versions, key=canonicalize_name)]
    (REPO / "requirements.lock").write_text(HEADER + "\n".join(lines) + "\n")
    print(f"requirements.lock: {len(lines)} distributions")


if __name__ == "__main__":
    main()

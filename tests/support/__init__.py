"""What the tests (and the benchmarks) share, kept out of the shipped package.

No module under ``studyserver/``, ``generator/`` or ``analysis/`` imports from here (an import
contract in ``pyproject.toml`` says so). Import as ``from tests.support.accounts import ...``: the
repository root is on ``sys.path`` for pytest (root ``conftest.py``), ``manage.py`` and the benchmarks.
"""

"""Fixtures shared by the apps' tests: the real reference districts, loaded once per test database."""

import os
from pathlib import Path

import pytest

from studyserver.geo.reference import load_reference_districts


@pytest.fixture(scope="session")
def _reference_2013_loaded(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        load_reference_districts("2013")


@pytest.fixture
def geo2013(_reference_2013_loaded, django_db_blocker, request):
    """The real 2013 districts and FSA candidates, committed once per test database.

    Re-checked before each test (committed, outside the test's transaction) because a
    transactional test of another app may have flushed the database in between; then ``db``.
    """
    with django_db_blocker.unblock():
        load_reference_districts("2013")
    request.getfixturevalue("db")


@pytest.fixture
def geo2023(request):
    """The real 2023 districts (boundaries, adults per district) and FSA candidates.

    Loaded inside the test (rolled back after it, or flushed after a transactional test), never
    left committed like ``geo2013``: other apps' tests create 2023 districts of their own. About
    10 s a test when the FSA polygons are already there.
    """
    request.getfixturevalue("transactional_db" if "transactional_db" in request.fixturenames else "db")
    load_reference_districts("2023")


def pytest_collection_modifyitems(items):
    """A test using geo2013/geo2023 uses the database: say so at collection (the fixtures ask for ``db``
    only once the districts are loaded), or pytest-django sets no test database up for a run made
    only of such tests. Appended last, so ``db`` still starts after the districts are committed."""
    for item in items:
        names = getattr(item, "fixturenames", None)
        if names is not None and {"geo2013", "geo2023"} & set(names) and not {
                "db", "transactional_db", "live_server"} & set(names):
            names.append("db")


@pytest.fixture(autouse=True)
def _fresh_cache():
    """API throttle counters live in the cache: each test starts with none."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture(scope="session")
def climategan_checkpoints(tmp_path_factory):
    """(masker.pt, painter.pt) imported from a random ClimateGAN release-shaped folder (about
    430 MB of weights, shared by the generator and treatment tests): built once per run for all
    pytest-xdist workers (their base folders share a parent), or once per content under
    ``FLOODLIGHT_TEST_CACHE`` when that names a folder kept between runs."""
    from tests.support.climategan import shared_imported_release

    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    return shared_imported_release(Path(os.environ.get("FLOODLIGHT_TEST_CACHE") or shared))

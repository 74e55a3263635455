"""The embedded default (SQLite, ``runserver`` as ``make demo`` serves it) under a classroom of participants.

A live server in its own process, 16 participants over HTTP at the same moment: nobody may see a
5xx ("database is locked" was the failure), everyone completes, one row per page.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.support.remote import Observations, RemoteParticipant

REPO = Path(__file__).resolve().parent.parent
PARTICIPANTS = 16

pytestmark = pytest.mark.xdist_group("live-servers")


def _embedded_env(var_dir: Path) -> dict[str, str]:
    """As `make demo` runs: FLOODLIGHT_EMBEDDED=1 and nothing else (no DATABASE_URL, no REDIS_URL)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DJANGO_", "PYTEST_")) and k not in {"DATABASE_URL", "REDIS_URL", "DEBUG",
                                                                    "CELERY_TASK_ALWAYS_EAGER", "EMAIL_BACKEND"}}
    env.update({"DJANGO_SETTINGS_MODULE": "studyserver.settings", "FLOODLIGHT_EMBEDDED": "1",
                "FLOODLIGHT_VAR_DIR": str(var_dir)})
    env.setdefault("FLOODLIGHT_REFERENCE_DATA", str(REPO.parent / "shared" / "data"))
    env.setdefault("PGEOCODE_DATA_DIR", str(Path(env["FLOODLIGHT_REFERENCE_DATA"]) / "pgeocode"))
    return env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def embedded_server(tmp_path):
    env = _embedded_env(tmp_path)
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], cwd=REPO, env=env, check=True)
    subprocess.run([*manage, "shell", "-c", "from tests.support.remote import seed_load_study; seed_load_study('live')"],
                   cwd=REPO, env=env, check=True)
    port = _free_port()
    log = (tmp_path / "runserver.log").open("w")
    # Exactly what `make demo` runs (threaded, the default), minus the autoreloader.
    server = subprocess.Popen([*manage, "runserver", "--noreload", f"127.0.0.1:{port}"], cwd=REPO, env=env,
                              stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.2)
        else:
            pytest.fail("runserver did not answer /healthz: " + (tmp_path / "runserver.log").read_text()[-2000:])
        yield base, tmp_path / "db.sqlite3", tmp_path / "runserver.log"
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def test_sixteen_participants_at_once_on_the_embedded_default_see_no_error(embedded_server):
    base, database, log = embedded_server
    observations = Observations()
    barrier = threading.Barrier(PARTICIPANTS)
    outcomes: dict[int, bool] = {}

    def participant(number: int) -> None:
        barrier.wait()
        # No patience: the first 5xx or dropped connection is a failure, not something to wait out.
        outcomes[number] = RemoteParticipant(base, "live", number, observations, patience_seconds=0).take_study()

    threads = [threading.Thread(target=participant, args=(n,)) for n in range(PARTICIPANTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    server_log = log.read_text()
    assert observations.server_errors == 0, (observations.statuses, server_log[-3000:])
    assert observations.connection_errors == 0
    assert "database is locked" not in server_log
    assert sum(outcomes.values()) == PARTICIPANTS, observations.errors
    assert observations.latency["image"]  # the treatment images were fetched too, as browsers do
    with sqlite3.connect(database) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        completed = db.execute("SELECT count(*) FROM survey_participant WHERE state = 'completed'").fetchone()[0]
        duplicates = db.execute("SELECT count(*) FROM (SELECT participant_id, step FROM survey_pagesubmission "
                                "GROUP BY participant_id, step HAVING count(*) > 1)").fetchone()[0]
        assignments = db.execute("SELECT count(*) FROM assignment_assignment").fetchone()[0]
    assert completed == PARTICIPANTS == assignments
    assert duplicates == 0

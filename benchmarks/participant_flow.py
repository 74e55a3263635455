"""Many participants taking the study at once against gunicorn + PostgreSQL: pages/s and latency.

    .venv/bin/python benchmarks/participant_flow.py                      # 40 participants, 8 at a time
    .venv/bin/python benchmarks/participant_flow.py --participants 200 --concurrency 16 --gunicorn-workers 4

It creates a fresh PostgreSQL database (``floodlight_bench``, dropped first), migrates it, loads the
reference districts and approved images for the three territories, starts gunicorn with the
production settings (DEBUG off) and runs simulated participants in threads: every one enters with
its own panel id, consents, gives a territorial postal code, answers every page, waits out the
treatment page's minimum display time (set to 0 here: throughput, not reading time, is measured)
and finishes at the panel redirect. /healthz (one SELECT 1) is timed in the same run, under the
same load, as the floor a page cannot beat. At the end the database is checked: everyone
completed, one arm each, no duplicate page row. Prints a table and, with --json, one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.support (the HTTP participants) is not installed
DATABASE = "floodlight_bench"


def django_env(database_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "DJANGO_SETTINGS_MODULE": "studyserver.settings",
        "DATABASE_URL": database_url,
        "DEBUG": "0",
        "SECRET_KEY": "benchmark-only-secret-key-" + "x" * 40,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        "FLOODLIGHT_VAR_DIR": str(REPO / "var" / "bench"),
        "FLOODLIGHT_DEMO_MODE": "0",
        # Participants ask for the information e-mails; sent in-process to memory, not to a mail server.
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
    })
    # The reference data as the Makefile finds it, unless the caller points elsewhere.
    env.setdefault("FLOODLIGHT_REFERENCE_DATA", str(REPO.parent / "shared" / "data"))
    env.setdefault("PGEOCODE_DATA_DIR", str(Path(env["FLOODLIGHT_REFERENCE_DATA"]) / "pgeocode"))
    env.pop("REDIS_URL", None)  # Celery eager: the e-mail task runs inside the request
    return env


def prepare_database(admin_url: str, env: dict[str, str], database: str = DATABASE) -> str:
    import psycopg2

    connection = psycopg2.connect(admin_url)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        cursor.execute(f"CREATE DATABASE {database}")
    connection.close()
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], cwd=REPO, env=env, check=True)
    subprocess.run([*manage, "shell", "-v", "0", "-c", "from tests.support.remote import seed_load_study; seed_load_study('bench')"],
                   cwd=REPO, env=env, check=True)
    return "bench"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000

    return {"n": len(ordered), "p50_ms": round(at(0.50), 1), "p95_ms": round(at(0.95), 1),
            "p99_ms": round(at(0.99), 1), "mean_ms": round(statistics.fmean(ordered) * 1000, 1)}


def check_database(env: dict[str, str], participants: int) -> dict[str, Any]:
    script = """
import json
from django.db.models import Count
from studyserver.assignment.models import Assignment
from studyserver.survey.models import PageSubmission, Participant
print(json.dumps({
    "completed": Participant.objects.filter(state="completed", current_step="finished").count(),
    "participants": Participant.objects.count(),
    "assignments": Assignment.objects.count(),
    "duplicate_page_rows": PageSubmission.objects.values("participant", "step").annotate(n=Count("id")).filter(n__gt=1).count(),
    "arms": dict(Assignment.objects.values_list("arm").annotate(n=Count("id")).order_by()),
}))
"""
    done = subprocess.run([sys.executable, "manage.py", "shell", "-c", script], cwd=REPO, env=env,
                          check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--participants", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=8, help="participants taking the study at once")
    parser.add_argument("--gunicorn-workers", type=int, default=4)
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432/postgres",
                        help="an admin connection used to (re)create the benchmark database")
    parser.add_argument("--database", default=DATABASE, help="name of the benchmark database (dropped and created)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = parser.parse_args()

    database_url = args.postgres.rsplit("/", 1)[0] + f"/{args.database}"
    env = django_env(database_url)
    print(f"== preparing {args.database} (migrate, reference districts, images)…", file=sys.stderr)
    prepare_database(args.postgres, env, args.database)
    log = REPO / "var" / "bench" / "gunicorn.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    print(f"== gunicorn's log: {log}", file=sys.stderr)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "studyserver.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", str(args.gunicorn_workers)],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=log.open("w"),
    )
    try:
        for _ in range(100):
            try:
                if requests.get(f"{base}/healthz", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        else:
            raise SystemExit("gunicorn did not answer /healthz")
        os.environ.update({k: v for k, v in env.items() if k in {"DJANGO_SETTINGS_MODULE", "DATABASE_URL", "SECRET_KEY", "DEBUG", "FLOODLIGHT_VAR_DIR"}})
        import django

        django.setup()
        from tests.support.remote import Observations, RemoteParticipant

        timings = Observations()
        stop = threading.Event()

        def probe_health() -> None:
            prober = RemoteParticipant(base, "bench", -1, timings, patience_seconds=0)
            while not stop.is_set():
                prober.request("healthz", "GET", "/healthz")
                time.sleep(0.05)

        print(f"== {args.participants} participants, {args.concurrency} at a time, "
              f"{args.gunicorn_workers} gunicorn workers", file=sys.stderr)
        prober = threading.Thread(target=probe_health, daemon=True)
        started = time.perf_counter()
        prober.start()
        with ThreadPoolExecutor(args.concurrency) as pool:
            outcomes = list(pool.map(lambda n: RemoteParticipant(base, "bench", n, timings, patience_seconds=0).take_study(),
                                     range(args.participants)))
        elapsed = time.perf_counter() - started
        stop.set()
        prober.join()
    finally:
        server.terminate()
        server.wait(timeout=30)

    requests_made = sum(len(v) for k, v in timings.latency.items() if k in {"entry", "page GET", "page POST"})
    floor = statistics.median(timings.latency["healthz"])
    result = {
        "participants": args.participants,
        "concurrency": args.concurrency,
        "gunicorn_workers": args.gunicorn_workers,
        "completed_in_browserless_run": sum(outcomes),
        "seconds": round(elapsed, 2),
        "participants_per_minute": round(60 * sum(outcomes) / elapsed, 1),
        "requests_per_second": round(requests_made / elapsed, 1),
        "latency": {kind: percentiles(values) for kind, values in sorted(timings.latency.items())},
        "errors": timings.errors[:10],
        # The figure that counts: what a study page costs beyond the stack's floor, same run, same load.
        "page_to_healthz_p50_ratio": round(
            statistics.median(timings.latency["page GET"] + timings.latency["page POST"]) / floor, 2),
        # Every page on its own (GET), against the same floor: the slowest one is the figure to watch.
        "page_get_to_healthz_p50_ratio_by_step": {
            kind.removeprefix("GET "): round(statistics.median(values) / floor, 2)
            for kind, values in sorted(timings.latency.items()) if kind.startswith("GET ")},
        "database": check_database(env, args.participants),
        "cpu_count": os.cpu_count(),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{result['completed_in_browserless_run']}/{args.participants} participants completed in "
          f"{result['seconds']} s: {result['participants_per_minute']} participants/min, "
          f"{result['requests_per_second']} requests/s ({os.cpu_count()} CPU cores, server and clients together)")
    print(f"{'request':<10} {'n':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
    for kind, row in result["latency"].items():
        print(f"{kind:<10} {row['n']:>6} {row['p50_ms']:>8} {row['p95_ms']:>8} {row['p99_ms']:>8} {row['mean_ms']:>8}")
    print(f"study page p50 / healthz p50 = {result['page_to_healthz_p50_ratio']}")
    by_step = result["page_get_to_healthz_p50_ratio_by_step"]
    print("page GET p50 / healthz p50, per page: " + ", ".join(f"{step} {ratio}" for step, ratio in by_step.items()))
    print(f"worst page: {max(by_step.values())}x the floor")
    database = result["database"]
    print(f"database: {database['completed']} completed of {database['participants']}, "
          f"{database['assignments']} assignments {database['arms']}, "
          f"{database['duplicate_page_rows']} duplicate page rows")
    for error in result["errors"]:
        print("error:", error)
    ok = (database["completed"] == args.participants == database["assignments"]
          and database["duplicate_page_rows"] == 0 and not timings.errors)
    print("CHECK", "passed" if ok else "FAILED")
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()

"""The production-like stack under participant load and scripted faults: what participants go through.

    .venv/bin/python benchmarks/faults.py                       # 60 participants, 12 at a time, every fault
    .venv/bin/python benchmarks/faults.py --faults none         # the same load, no fault (the baseline)
    .venv/bin/python benchmarks/faults.py --faults db-restart,redis-down --json

It starts its OWN PostgreSQL (initdb in a temporary folder) and Redis on free ports, a local SMTP
server, gunicorn (DEBUG off), a Celery worker and Celery beat, exactly as docker-compose.yml runs
them, and never touches the machine's shared services. While simulated participants take the study
over HTTP (each waits out a 503 or a dropped connection and tries again, as a person would), it
injects, one after the other:

  db-restart    PostgreSQL restarted (pg_ctl restart -m fast: every connection cut)
  web-kill      one gunicorn worker killed with SIGKILL mid-load (the master starts another)
  redis-down    Redis stopped for --redis-down seconds, then started again (append-only file kept)
  mail-down     the SMTP server stopped for --mail-down seconds (alongside the others)

Then it waits (without running any command) until no information e-mail is pending or being
sent, or --recovery-timeout passes, and prints: participants completed, answers lost (pages the
server accepted that are not in the database), duplicates (page rows, arms, e-mails received
twice), 5xx seen by participants (the 503 "briefly unavailable" page apart from bare 5xx),
dropped connections, and deferred work left undone after recovery.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from participant_flow import django_env, free_port, percentiles  # noqa: E402

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
FAULTS = ("db-restart", "web-kill", "redis-down", "mail-down")
SLUG = "faults"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S', time.gmtime())} UTC] {message}", file=sys.stderr, flush=True)


class PrivatePostgres:
    """A throwaway PostgreSQL cluster owned by the ``postgres`` user when run as root (initdb refuses root)."""

    def __init__(self, root: Path) -> None:
        self.data = root / "pgdata"
        self.port = free_port()
        self.log = root / "postgres.log"
        self.as_user: list[str] = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _run(self, *args: str) -> None:
        subprocess.run([*self.as_user, *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def init(self) -> None:
        self.data.mkdir(parents=True)
        if self.as_user:
            shutil.chown(self.data.parent, "postgres")
            shutil.chown(self.data, "postgres")
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        self.start()

    def _pg_ctl(self, *args: str) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data} -c fsync=off -c max_connections=200"
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-o", options, *args)

    def start(self) -> None:
        self._pg_ctl("start")

    def restart(self) -> None:
        self._pg_ctl("restart", "-m", "fast")

    def stop(self) -> None:
        self._pg_ctl("stop", "-m", "immediate")

    @property
    def admin_url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"


class PrivateRedis:
    def __init__(self, root: Path) -> None:
        self.dir = root / "redis"
        self.dir.mkdir()
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
             "--appendonly", "yes", "--save", ""], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                import redis

                if redis.Redis(port=self.port).ping():
                    return
            except Exception:  # noqa: BLE001 (starting up)
                time.sleep(0.05)
        raise RuntimeError("private redis did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()  # SIGTERM: the append-only file is flushed, as `docker stop` does
            self.process.wait(timeout=30)
            self.process = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


class Supervisor:
    """Restarts a service that exits, as docker-compose.yml's ``restart: unless-stopped`` does.

    Celery 5.7's worker can die with "Unrecoverable error" when the broker drops while a message is
    in flight; in a deployment its container is restarted, so here it is too, and counted.
    """

    def __init__(self) -> None:
        self.services: dict[str, tuple[list[str], dict[str, str], Path, subprocess.Popen]] = {}
        self.restarts: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def start(self, name: str, command: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                                   stderr=log_path.open("a"))
        self.services[name] = (command, env, log_path, process)
        if not self._thread.is_alive():
            self._thread.start()
        return process

    def _watch(self) -> None:
        while not self._stop.wait(1.0):
            for name, (command, env, log_path, process) in list(self.services.items()):
                if process.poll() is not None:
                    log(f"{name} exited ({process.returncode}); restarting it, as compose would")
                    self.restarts[name] += 1
                    time.sleep(1)
                    self.start(name, command, env, log_path)

    def processes(self) -> list[subprocess.Popen]:
        return [process for *_, process in self.services.values()]

    def stop(self) -> None:
        self._stop.set()
        for process in reversed(self.processes()):
            process.terminate()
        for process in self.processes():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def gunicorn_workers(master: subprocess.Popen) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(master.pid)], capture_output=True, text=True)
    return [int(pid) for pid in found.stdout.split()]


def inject_faults(chosen: list[str], postgres: PrivatePostgres, redis_server: PrivateRedis, sink: Any,
                  web: subprocess.Popen, args: argparse.Namespace, timeline: list[dict[str, Any]]) -> None:
    def note(fault: str, started: float) -> None:
        timeline.append({"fault": fault, "seconds": round(time.monotonic() - started, 1)})
        log(f"fault {fault} over ({timeline[-1]['seconds']} s)")

    time.sleep(args.first_fault_after)
    mail = None
    if "mail-down" in chosen:
        # Alongside the others, so that e-mails are being sent while the mail server is away.
        mail = threading.Thread(target=_mail_down, args=(sink, args.mail_down, timeline))
        mail.start()
    for fault in [f for f in chosen if f != "mail-down"]:
        log(f"fault {fault}")
        started = time.monotonic()
        if fault == "db-restart":
            postgres.restart()
        elif fault == "web-kill":
            workers = gunicorn_workers(web)
            if workers:
                os.kill(workers[0], signal.SIGKILL)
        elif fault == "redis-down":
            redis_server.stop()
            time.sleep(args.redis_down)
            redis_server.start()
        note(fault, started)
        time.sleep(args.fault_gap)
    if mail is not None:
        mail.join()


def _mail_down(sink: Any, seconds: float, timeline: list[dict[str, Any]]) -> None:
    log("fault mail-down")
    started = time.monotonic()
    sink.stop()
    time.sleep(seconds)
    sink.start()
    timeline.append({"fault": "mail-down", "seconds": round(time.monotonic() - started, 1)})
    log(f"fault mail-down over ({timeline[-1]['seconds']} s)")


def database_state(env: dict[str, str]) -> dict[str, Any]:
    script = """
import json
from django.db.models import Count
from studyserver.assignment.models import Assignment
from studyserver.survey.models import InformationRequest, PageSubmission, Participant, PersonalData
from studyserver.treatments.models import Stimulus
steps = {}
for panel_id, step in PageSubmission.objects.values_list("participant__personal_data__panel_id", "step"):
    steps.setdefault(panel_id, []).append(step)
print(json.dumps({
    "participants": Participant.objects.count(),
    "completed": Participant.objects.filter(state="completed", current_step="finished").count(),
    "assignments": Assignment.objects.count(),
    "duplicate_page_rows": PageSubmission.objects.values("participant", "step").annotate(n=Count("id")).filter(n__gt=1).count(),
    "duplicate_assignments": Assignment.objects.values("participant").annotate(n=Count("id")).filter(n__gt=1).count(),
    "steps_by_panel_id": steps,
    "information_requests": dict(InformationRequest.objects.values_list("status").annotate(n=Count("id")).order_by()),
    "information_request_errors": sorted(set(InformationRequest.objects.exclude(last_error="").values_list("last_error", flat=True)))[:5],
    "generation_requests_unsent": Stimulus.objects.filter(status="queued").exclude(send_error="").count(),
}))
"""
    done = subprocess.run([sys.executable, "manage.py", "shell", "-c", script], cwd=REPO, env=env,
                          check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def wait_for(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not answer")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--participants", type=int, default=60)
    parser.add_argument("--concurrency", type=int, default=12)
    parser.add_argument("--gunicorn-workers", type=int, default=4)
    parser.add_argument("--faults", default="all", help=f"comma-separated among {', '.join(FAULTS)}; 'all' or 'none'")
    parser.add_argument("--first-fault-after", type=float, default=3.0, help="seconds of load before the first fault")
    parser.add_argument("--fault-gap", type=float, default=3.0, help="seconds between two faults")
    parser.add_argument("--redis-down", type=float, default=10.0, help="seconds Redis stays down")
    parser.add_argument("--mail-down", type=float, default=15.0, help="seconds the mail server stays down")
    parser.add_argument("--sweep-seconds", type=float, default=10.0, help="Celery beat's sweep interval")
    parser.add_argument("--recovery-timeout", type=float, default=240.0,
                        help="how long deferred work may take to drain after the load, with nobody running a command")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    chosen = list(FAULTS) if args.faults == "all" else [] if args.faults == "none" else args.faults.split(",")
    unknown = set(chosen) - set(FAULTS)
    if unknown:
        raise SystemExit(f"unknown fault(s): {', '.join(sorted(unknown))}")

    from tests.support.smtp import SmtpSink

    root = Path(tempfile.mkdtemp(prefix="floodlight-faults-"))
    postgres, redis_server, sink = PrivatePostgres(root), PrivateRedis(root), SmtpSink()
    supervisor = Supervisor()
    try:
        log(f"private PostgreSQL on port {postgres.port}, Redis on {redis_server.port} (in {root})")
        postgres.init()
        redis_server.start()
        sink.start()
        env = django_env(f"postgres://postgres@127.0.0.1:{postgres.port}/floodlight_faults")
        env.update({
            "REDIS_URL": redis_server.url,
            "CELERY_TASK_ALWAYS_EAGER": "0",
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(sink.port), "EMAIL_TIMEOUT": "10",
            "FLOODLIGHT_VAR_DIR": str(root / "var"),
            "FLOODLIGHT_SWEEP_SECONDS": str(args.sweep_seconds),
            "FLOODLIGHT_SWEEP_GRACE_SECONDS": str(2 * args.sweep_seconds),
            "FLOODLIGHT_RETRY_BASE_SECONDS": "5", "FLOODLIGHT_RETRY_MAX_SECONDS": "30",
            "DB_CONN_MAX_AGE": "60",
        })
        import psycopg2

        admin = psycopg2.connect(postgres.admin_url)
        admin.autocommit = True
        admin.cursor().execute("CREATE DATABASE floodlight_faults")
        admin.close()
        manage = [sys.executable, "manage.py"]
        log("migrating and seeding the private database")
        subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], cwd=REPO, env=env, check=True)
        subprocess.run([*manage, "shell", "-v", "0", "-c", f"from tests.support.remote import seed_load_study; seed_load_study({SLUG!r})"],
                       cwd=REPO, env=env, check=True)
        logs = root / "logs"
        logs.mkdir()
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        # The commands docker-compose.yml runs, restarted when they exit as its restart policy does.
        web = supervisor.start("web", [sys.executable, "-m", "gunicorn", "studyserver.wsgi:application", "--bind",
                                       f"127.0.0.1:{port}", "--workers", str(args.gunicorn_workers), "--timeout", "60"],
                               env, logs / "gunicorn.log")
        celery = [sys.executable, "-m", "celery", "-A", "studyserver"]
        supervisor.start("worker", [*celery, "worker", "-Q", "default", "--concurrency", "2", "--loglevel", "INFO"],
                         env, logs / "worker.log")
        supervisor.start("beat", [*celery, "beat", "--loglevel", "INFO", "--schedule", str(root / "beat-schedule")],
                         env, logs / "beat.log")
        wait_for(f"{base}/healthz")
        log(f"logs in {logs}")

        os.environ.update({k: env[k] for k in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "SECRET_KEY", "DEBUG", "FLOODLIGHT_VAR_DIR")})
        import django

        django.setup()
        from tests.support.remote import Observations, RemoteParticipant

        observations = Observations()
        timeline: list[dict[str, Any]] = []
        faulter = threading.Thread(target=inject_faults, args=(chosen, postgres, redis_server, sink, web, args, timeline))
        participants = [RemoteParticipant(base, SLUG, n, observations, patience_seconds=180)
                        for n in range(args.participants)]
        log(f"{args.participants} participants, {args.concurrency} at a time; faults: {', '.join(chosen) or 'none'}")
        started = time.perf_counter()
        faulter.start()
        with ThreadPoolExecutor(args.concurrency) as pool:
            outcomes = list(pool.map(lambda p: p.take_study(), participants))
        load_seconds = time.perf_counter() - started
        faults_during_load = faulter.is_alive() is False
        if not faults_during_load:
            log("warning: the load ended before the last fault: use more participants")
        faulter.join()

        log(f"load over in {load_seconds:.0f} s; waiting for deferred work to drain (nobody runs a command)")
        recovery_started = time.perf_counter()
        while True:
            state = database_state(env)
            undone = sum(n for status, n in state["information_requests"].items() if status in {"pending", "sending"})
            if undone == 0 and state["generation_requests_unsent"] == 0:
                break
            if time.perf_counter() - recovery_started > args.recovery_timeout:
                break
            time.sleep(5)
        recovery_seconds = time.perf_counter() - recovery_started

        by_participant = {f"LOAD-{p.number}": p for p in participants}
        lost = sum(1 for panel_id, p in by_participant.items()
                   for step in set(p.accepted_steps) if step not in state["steps_by_panel_id"].get(panel_id, []))
        received = Counter((tuple(to), message["Subject"]) for to, message in sink.messages)
        statuses = observations.statuses
        result = {
            "faults": timeline,
            "every_fault_under_load": faults_during_load,
            "participants": args.participants,
            "concurrency": args.concurrency,
            "completed": sum(outcomes),
            "completed_in_database": state["completed"],
            "answers_lost": lost,
            "duplicate_page_rows": state["duplicate_page_rows"],
            "duplicate_assignments": state["duplicate_assignments"],
            "emails_received_twice": sum(1 for n in received.values() if n > 1),
            "participant_5xx": observations.server_errors,
            "participant_503_unavailable_pages": observations.unavailable_pages,
            "participant_bare_5xx": observations.server_errors - observations.unavailable_pages,
            "participant_5xx_by_status": {str(s): n for s, n in sorted(statuses.items()) if s >= 500},
            "participant_dropped_connections": observations.connection_errors,
            "information_requests": state["information_requests"],
            "emails_received": len(sink.messages),
            "deferred_work_left_undone": undone + state["generation_requests_unsent"],
            "recovery_seconds": round(recovery_seconds, 1),
            "services_restarted": dict(supervisor.restarts),
            "load_seconds": round(load_seconds, 1),
            "participants_per_minute": round(60 * sum(outcomes) / load_seconds, 1),
            "latency": {kind: percentiles(values) for kind, values in sorted(observations.latency.items())},
            "errors": observations.errors[:10] + state["information_request_errors"],
        }
    finally:
        supervisor.stop()
        sink.stop()
        redis_server.stop()
        with contextlib.suppress(subprocess.CalledProcessError):
            postgres.stop()
        shutil.rmtree(root, ignore_errors=True)

    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"faults: {', '.join(f['fault'] for f in result['faults']) or 'none'}")
        print(f"participants completed: {result['completed']}/{result['participants']} "
              f"({result['participants_per_minute']}/min, {result['concurrency']} at a time)")
        print(f"answers lost: {result['answers_lost']}; duplicates: {result['duplicate_page_rows']} page rows, "
              f"{result['duplicate_assignments']} arms, {result['emails_received_twice']} e-mails received twice")
        print(f"5xx seen by participants: {result['participant_5xx']} "
              f"({result['participant_503_unavailable_pages']} 'briefly unavailable' 503 pages, "
              f"{result['participant_bare_5xx']} bare), {result['participant_dropped_connections']} dropped connections")
        print(f"information e-mails: {result['information_requests']}, {result['emails_received']} received by the mail server")
        print(f"deferred work left undone {result['recovery_seconds']} s after the load: {result['deferred_work_left_undone']}")
        print(f"services restarted by the supervisor (compose's restart policy): {result['services_restarted'] or 'none'}")
        for error in result["errors"]:
            print("note:", error)
    ok = (result["completed"] == args.participants and result["answers_lost"] == 0
          and result["duplicate_page_rows"] == 0 and result["emails_received_twice"] == 0
          and result["participant_bare_5xx"] == 0 and result["deferred_work_left_undone"] == 0)
    print("CHECK", "passed" if ok else "FAILED")
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()

"""The deployment files: every command docker compose runs is run here too, and --deploy is clean."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())

PRODUCTION_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": "a-production-like-secret-key-with-enough-length-and-variety-0123456789",
    "ALLOWED_HOSTS": "study.example.ca",
    "DATABASE_URL": os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/floodlight"),
    "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15"),
    "DJANGO_SETTINGS_MODULE": "studyserver.settings",
    "AXES_PROXY_COUNT": "1",
}


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DJANGO_", "PYTEST_")) and k not in {"FLOODLIGHT_EMBEDDED", "FLOODLIGHT_DEMO_MODE"}}
    env.update(PRODUCTION_ENV)
    env.update(extra)
    return env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_compose_declares_the_stack_with_health_checks_and_volumes():
    services = COMPOSE["services"]
    assert {"postgres", "redis", "web", "worker", "beat", "gpu-worker"} <= set(services)
    for name in ("postgres", "redis", "web", "worker", "beat", "gpu-worker"):
        assert "healthcheck" in services[name], name
    assert services["gpu-worker"]["command"][:6] == ["celery", "-A", "studyserver", "worker", "-Q", "gpu"]
    assert services["gpu-worker"]["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    assert {"pgdata", "redisdata", "media"} <= set(COMPOSE["volumes"])


def _compose_command() -> list[str] | None:
    """The Compose client of this machine: the v2 plugin, or Debian's docker-compose."""
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


@pytest.mark.skipif(_compose_command() is None, reason="no Compose client on this machine")
def test_docker_compose_config_is_valid(tmp_path):
    # A copy beside an .env made from .env.example, as an operator would start it.
    shutil.copy(REPO / "docker-compose.yml", tmp_path / "docker-compose.yml")
    shutil.copy(REPO / ".env.example", tmp_path / ".env")
    result = subprocess.run([*_compose_command(), "-f", str(tmp_path / "docker-compose.yml"),
                             "--project-directory", str(tmp_path), "config", "-q"],
                            cwd=tmp_path, capture_output=True, text=True,
                            env={**os.environ, "POSTGRES_PASSWORD": "x"})
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_deploy_is_clean_with_production_settings():
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                            cwd=REPO, capture_output=True, text=True, env=_env())
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_deploy_warns_when_the_proxy_count_is_not_decided():
    env = _env()
    env.pop("AXES_PROXY_COUNT")
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                            cwd=REPO, capture_output=True, text=True, env=env)
    assert result.returncode != 0 and "accounts.W001" in result.stdout + result.stderr
    assert "AXES_PROXY_COUNT" in COMPOSE["x-app"]["environment"]


def test_production_settings_refuse_to_start_without_a_secret_key():
    env = _env()
    env.pop("SECRET_KEY")
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=REPO, capture_output=True, text=True, env=env)
    assert result.returncode != 0 and "SECRET_KEY must be set" in result.stderr


@pytest.mark.django_db(transaction=True)
def test_the_web_command_of_compose_serves_the_health_check():
    from django.db import connection

    port = _free_port()
    command = [c.replace("0.0.0.0:8000", f"127.0.0.1:{port}") for c in COMPOSE["services"]["web"]["command"]]
    assert command[0] == "gunicorn"
    db_url = f"postgres://postgres@127.0.0.1:5432/{connection.settings_dict['NAME']}"
    process = subprocess.Popen([str(Path(sys.executable).parent / "gunicorn"), *command[1:], "--workers", "1"],
                               cwd=REPO, env=_env(DATABASE_URL=db_url, SECURE_SSL_REDIRECT="0", ALLOWED_HOSTS="127.0.0.1"),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                    assert response.status == 200 and response.read() == b"ok"
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise AssertionError(process.stdout.read().decode() if process.poll() is not None else "gunicorn did not answer") from None
                time.sleep(0.3)
        # The access log compose turns on names the path, never the query string or the referer.
        request = urllib.request.Request(f"http://127.0.0.1:{port}/healthz?PROLIFIC_PID=5f1d-SECRET&rid=R-SECRET",
                                         headers={"Referer": "https://x/s/demo/?pid=REF-SECRET"})
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200
    finally:
        process.terminate()
        process.wait(timeout=10)
    log = process.stdout.read().decode()
    assert '"GET /healthz" 200' in log and "SECRET" not in log, log


def test_the_worker_command_of_compose_starts_and_answers_a_ping():
    command = COMPOSE["services"]["worker"]["command"]
    node = f"ci-{os.getpid()}@localhost"
    process = subprocess.Popen([str(Path(sys.executable).parent / "celery"), *command[1:], "-n", node, "--pool", "solo"],
                               cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            ping = subprocess.run([str(Path(sys.executable).parent / "celery"), "-A", "studyserver", "inspect", "ping", "-d", node, "--timeout", "2"],
                                  cwd=REPO, env=_env(), capture_output=True, text=True)
            if ping.returncode == 0 and "pong" in ping.stdout:
                return
            assert process.poll() is None, process.stdout.read().decode()
        raise AssertionError("the worker never answered the ping")
    finally:
        process.terminate()
        process.wait(timeout=20)

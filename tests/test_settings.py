"""The settings fail closed: nothing insecure by omission, the embedded default only when chosen,
no files written by importing them."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

SHOW = (
    "import json, studyserver.settings as s; print(json.dumps({'debug': s.DEBUG, 'demo': s.FLOODLIGHT_DEMO_MODE,"
    " 'engine': s.DATABASES['default']['ENGINE'], 'name': str(s.DATABASES['default']['NAME']),"
    " 'email': s.EMAIL_BACKEND, 'hosts': s.ALLOWED_HOSTS, 'eager': s.CELERY_TASK_ALWAYS_EAGER}))"
)
SETUP = "import django; django.setup()"


def _run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``code`` in a fresh interpreter whose environment holds only ``env`` (and PATH, HOME)."""
    base = {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}
    base["DJANGO_SETTINGS_MODULE"] = "studyserver.settings"
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          env={**base, **env})


def test_nothing_set_refuses_to_start_naming_what_is_missing_and_the_embedded_switch(tmp_path):
    result = _run(SHOW, FLOODLIGHT_VAR_DIR=str(tmp_path / "var"))
    assert result.returncode != 0
    assert "DATABASE_URL must be set" in result.stderr and "SECRET_KEY must be set" in result.stderr
    assert "FLOODLIGHT_EMBEDDED=1" in result.stderr


def test_a_database_url_without_a_secret_key_refuses_even_with_debug_on():
    result = _run(SHOW, DATABASE_URL="postgres://u@127.0.0.1:5432/x", DEBUG="1")
    assert result.returncode != 0 and "SECRET_KEY must be set" in result.stderr
    assert "DATABASE_URL must be set" not in result.stderr


def test_production_has_debug_and_demo_mode_off_by_omission():
    result = _run(SHOW, DATABASE_URL="postgres://u@127.0.0.1:5432/x", SECRET_KEY="s" * 50)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["debug"] is False and shown["demo"] is False and shown["hosts"] == []
    assert shown["engine"] == "django.db.backends.postgresql" and shown["name"] == "x"
    assert shown["email"] == "django.core.mail.backends.smtp.EmailBackend"


def test_the_embedded_default_is_chosen_explicitly(tmp_path):
    var = tmp_path / "var"
    result = _run(SHOW, FLOODLIGHT_EMBEDDED="1", FLOODLIGHT_VAR_DIR=str(var))
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["debug"] is True and shown["demo"] is True and shown["eager"] is True
    assert shown["engine"] == "django.db.backends.sqlite3" and shown["name"] == str(var / "db.sqlite3")
    assert shown["email"] == "django.core.mail.backends.filebased.EmailBackend"


def test_the_embedded_default_with_debug_off_needs_a_real_secret(tmp_path):
    result = _run(SHOW, FLOODLIGHT_EMBEDDED="1", DEBUG="0", FLOODLIGHT_VAR_DIR=str(tmp_path / "var"))
    assert result.returncode != 0 and "SECRET_KEY must be set" in result.stderr


def test_importing_the_settings_writes_nothing_setup_makes_var_owner_only(tmp_path):
    var = tmp_path / "var"
    assert _run(SHOW, FLOODLIGHT_EMBEDDED="1", FLOODLIGHT_VAR_DIR=str(var)).returncode == 0
    assert not var.exists()
    result = _run(SETUP, FLOODLIGHT_EMBEDDED="1", FLOODLIGHT_VAR_DIR=str(var))
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(var.stat().st_mode) == 0o700


def test_a_deployment_keeping_nothing_personal_under_var_gets_no_folder(tmp_path):
    var = tmp_path / "var"
    result = _run(SETUP, DATABASE_URL="postgres://u@127.0.0.1:5432/x", SECRET_KEY="s" * 50,
                  MEDIA_ROOT=str(tmp_path / "media"), FLOODLIGHT_VAR_DIR=str(var))
    assert result.returncode == 0, result.stderr
    assert not var.exists()


def test_one_configurable_time_zone_named_wherever_a_time_is_shown(tmp_path):
    code = (SETUP + "; from datetime import datetime, timezone as tz; from django.conf import settings;"
            " from django.utils import formats, timezone as djtz; from studyserver.core.times import shown, file_stamp;"
            " m = datetime(2026, 7, 1, 16, 5, tzinfo=tz.utc);"
            " print(settings.TIME_ZONE, '|', shown(m), '|', file_stamp(m), '|', formats.localize(djtz.localtime(m)))")
    base = {"FLOODLIGHT_EMBEDDED": "1", "FLOODLIGHT_VAR_DIR": str(tmp_path / "var")}
    default = _run(code, **base)
    assert default.returncode == 0, default.stderr
    assert default.stdout.split(" | ") == ["America/Toronto", "2026-07-01 12:05 EDT", "20260701-1205-EDT",
                                           "July 1, 2026, 12:05 p.m. EDT\n"]
    halifax = _run(code, TIME_ZONE="America/Halifax", **base)
    assert halifax.returncode == 0, halifax.stderr
    assert halifax.stdout.split(" | ")[:3] == ["America/Halifax", "2026-07-01 13:05 ADT", "20260701-1305-ADT"]

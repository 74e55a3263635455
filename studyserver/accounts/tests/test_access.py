"""The reported defects, one by one: each would pass again only if its guard were removed."""

from __future__ import annotations

import logging
import os
import stat

import pytest
from django.contrib.admin import helpers
from django.contrib.auth.models import Group, Permission, User
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import reverse

from studyserver.accounts.logging import RedactPanelIds, redact
from studyserver.accounts.roles import (
    DATA_MANAGER,
    PERSONAL_DATA,
    REVIEWER,
    ROLES,
    STUDY_ADMIN,
    sync_roles,
)
from studyserver.exports.tests.factories import (
    make_district,
    make_participant,
    make_stimulus,
    make_study,
)
from studyserver.survey.models import Participant, PersonalData
from studyserver.treatments.models import Stimulus
from tests.support.accounts import staff_with_roles
from tests.support.treatments import picture_bytes

pytestmark = pytest.mark.django_db


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def staff_with_permissions(username: str, *codenames: str) -> User:
    user = User.objects.create_user(username, is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return user


# --- roles -----------------------------------------------------------------------------------------


def test_the_migration_created_every_role_with_exactly_its_permissions():
    for role, names in ROLES.items():
        group = Group.objects.get(name=role)
        held = {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}
        assert held == set(names), role


def test_sync_restores_a_role_edited_by_hand():
    group = Group.objects.get(name=REVIEWER)
    group.permissions.add(Permission.objects.get(codename="export_personal_data"))
    sync_roles()
    assert not group.permissions.filter(codename="export_personal_data").exists()


# --- participants: withdrawal, personal data --------------------------------------------------------


def _post_action(client: Client, model: str, action: str, pks: list) -> None:
    client.post(reverse(f"admin:survey_{model}_changelist"),
                {"action": action, helpers.ACTION_CHECKBOX_NAME: [str(pk) for pk in pks]})


def test_view_only_staff_cannot_withdraw_or_export_participants():
    study = make_study()
    participant = make_participant(study, arm="control", personal={"panel_id": "P-1"}, pages={"ses": {"birth_year": 1970}})
    viewer = logged_in(staff_with_permissions("viewer", "view_participant"))
    _post_action(viewer, "participant", "withdraw_selected", [participant.pk])
    participant.refresh_from_db()
    assert participant.state != Participant.State.WITHDRAWN and participant.submissions.exists()
    assert PersonalData.objects.filter(participant=participant).exists()
    page = viewer.get(reverse("admin:survey_participant_changelist")).content.decode()
    assert "withdraw_selected" not in page and "export_selected" not in page
    # The personal data role withdraws.
    _post_action(logged_in(staff_with_roles("pd", PERSONAL_DATA)), "participant", "withdraw_selected", [participant.pk])
    participant.refresh_from_db()
    assert participant.state == Participant.State.WITHDRAWN and not participant.submissions.exists()


def test_the_change_permission_alone_shows_no_personal_data():
    study = make_study()
    make_participant(study, personal={"panel_id": "SECRET-PANEL", "email": "secret@example.org"})
    changer = logged_in(staff_with_permissions("changer", "change_personaldata", "view_personaldata"))
    response = changer.get(reverse("admin:survey_personaldata_changelist"))
    assert response.status_code == 403 and b"SECRET-PANEL" not in response.content
    record = PersonalData.objects.get()
    assert changer.get(reverse("admin:survey_personaldata_change", args=[record.pk])).status_code == 403
    exporter = logged_in(staff_with_roles("pd", PERSONAL_DATA))
    assert exporter.get(reverse("admin:survey_personaldata_change", args=[record.pk])).status_code == 200


# --- treatments: review ------------------------------------------------------------------------------


def test_staff_without_the_reviewer_role_cannot_approve_or_reject(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    stimulus = make_stimulus("house", make_district())
    stimulus.result.save("r.jpg", ContentFile(picture_bytes(2, fmt="JPEG")), save=False)
    stimulus.status = Stimulus.Status.GENERATED
    stimulus.save()
    for user in (staff_with_roles("nobody"), staff_with_roles("dm", DATA_MANAGER)):
        client = logged_in(user)
        response = client.post(reverse("admin:treatments_review_queue"), {"stimulus": stimulus.pk, "action": "approve"})
        assert response.status_code == 403
        client.post(reverse("admin:treatments_stimulus_changelist"),
                    {"action": "approve_selected", helpers.ACTION_CHECKBOX_NAME: [str(stimulus.pk)]})
        stimulus.refresh_from_db()
        assert stimulus.status == Stimulus.Status.GENERATED
    # A study admin uploads and browses images but does not approve them.
    study_admin = logged_in(staff_with_roles("sa", STUDY_ADMIN))
    assert study_admin.post(reverse("admin:treatments_review_queue"),
                            {"stimulus": stimulus.pk, "action": "approve"}).status_code == 403
    reviewer = logged_in(staff_with_roles("rev", REVIEWER))
    response = reviewer.post(reverse("admin:treatments_review_queue"), {"stimulus": stimulus.pk, "action": "approve"})
    assert response.status_code == 302
    stimulus.refresh_from_db()
    assert stimulus.status == Stimulus.Status.APPROVED


def test_a_refused_researcher_gets_an_admin_page_naming_the_permission():
    response = logged_in(staff_with_roles("dm", DATA_MANAGER)).get(reverse("admin:treatments_bulk_upload"))
    page = response.content.decode()
    assert response.status_code == 403 and "Permission needed" in page
    assert "treatments.add_sourcephoto" in page and "data manager" in page and "another participant" not in page
    # Participants' pages keep their own 403.
    assert "Permission needed" not in Client().get("/take/nope/").content.decode()


# --- logins ------------------------------------------------------------------------------------------


def test_repeated_wrong_passwords_lock_the_login(settings):
    settings.AXES_FAILURE_LIMIT = 3
    User.objects.create_user("researcher", password="right-horse-battery", is_staff=True)
    client = Client(REMOTE_ADDR="203.0.113.9")
    url = reverse("admin:login")
    statuses = [client.post(url, {"username": "researcher", "password": f"wrong-{n}"}).status_code for n in range(3)]
    assert statuses[:2] == [200, 200] and statuses[2] == 429
    locked = client.post(url, {"username": "researcher", "password": "right-horse-battery"})
    assert locked.status_code == 429 and "_auth_user_id" not in client.session
    # Another address is not locked out by someone else's guesses.
    other = Client(REMOTE_ADDR="198.51.100.7")
    assert other.post(url, {"username": "researcher", "password": "right-horse-battery"}).status_code == 302


@pytest.mark.parametrize("debug, admitted", [(True, True), (False, False)])
def test_the_demo_admin_account_is_refused_when_debug_is_off(settings, debug, admitted):
    settings.DEBUG = debug
    User.objects.create_superuser("admin", "admin@example.org", "admin")
    client = Client()
    response = client.post(reverse("admin:login"), {"username": "admin", "password": "admin"})
    assert ("_auth_user_id" in client.session) is admitted
    assert response.status_code == (302 if admitted else 200)


def test_the_api_is_throttled(monkeypatch):
    from rest_framework.throttling import SimpleRateThrottle

    # DRF reads the rates from settings once, into this class attribute.
    assert SimpleRateThrottle.THROTTLE_RATES["user"] == "1000/hour"
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"anon": "3/hour", "user": "5/hour"})
    # Anonymous requests are refused before any work is done (DRF checks permissions first).
    assert Client().get("/api/studies/").status_code == 401
    client = logged_in(staff_with_roles("dm", DATA_MANAGER))
    statuses = [client.get("/api/studies/").status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]


# --- headers, docs, files, logs ------------------------------------------------------------------------


def test_every_page_has_a_content_security_policy():
    for url in ("/", "/admin/login/"):
        policy = Client().get(url)["Content-Security-Policy"]
        assert "default-src 'self'" in policy and "script-src 'self'" in policy and "frame-ancestors 'none'" in policy


def test_api_docs_need_a_login_and_load_no_third_party_script():
    assert Client().get("/api/docs/").status_code in {401, 403}
    assert Client().get("/api/schema/").status_code in {401, 403}
    client = logged_in(staff_with_roles("dm", DATA_MANAGER))
    page = client.get("/api/docs/").content.decode()
    assert "cdn.jsdelivr" not in page and "unpkg" not in page and "/static/drf_spectacular_sidecar/" in page
    assert "<script>" not in page.replace(" ", "")  # no inline script: the CSP forbids it


def test_the_var_folder_is_owner_only(settings):
    mode = stat.S_IMODE(os.stat(settings.VAR_DIR).st_mode)
    assert mode & 0o077 == 0, oct(mode)
    assert settings.FILE_UPLOAD_PERMISSIONS == 0o600


def test_panel_ids_are_redacted_from_log_lines():
    assert redact('"GET /s/demo/?pid=ABC-123&lang=fr HTTP/1.1" 200') == '"GET /s/demo/?pid=[redacted]&lang=fr HTTP/1.1" 200'
    assert redact("/s/x/?lang=en&pid=9&sig=deadbeef") == "/s/x/?lang=en&pid=[redacted]&sig=[redacted]"
    record = logging.LogRecord("django.server", logging.INFO, __file__, 1, '"%s" %s %s',
                               ("GET /done/complete/?pid=P%2042 HTTP/1.1", "200", "12"), None)
    RedactPanelIds().filter(record)
    assert "P%2042" not in record.getMessage()


def test_every_migrate_brings_the_groups_back_in_line_with_roles_py():
    from django.core.management import call_command

    Group.objects.get(name=DATA_MANAGER).permissions.clear()
    call_command("migrate", verbosity=0)  # nothing to migrate; post_migrate still runs
    held = {p.codename for p in Group.objects.get(name=DATA_MANAGER).permissions.all()}
    assert held == {name.split(".", 1)[1] for name in ROLES[DATA_MANAGER]}

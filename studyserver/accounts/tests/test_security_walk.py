"""Every admin URL, custom view and API endpoint, walked as each role, as a staff account in no
group and anonymously. The URLs are discovered from the project's resolver, so a view added
later is walked too: a standard model-admin page must follow roles.py, and a custom page fails
this test until it is listed in CUSTOM_PAGES with the roles that may open it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from studyserver.accounts.roles import DATA_MANAGER, PERSONAL_DATA, REVIEWER, ROLES, STUDY_ADMIN
from studyserver.assignment.services import ensure_scheme
from studyserver.exports.models import ExportLog
from studyserver.exports.tests.factories import (
    make_district,
    make_participant,
    make_stimulus,
    make_study,
)
from tests.support.accounts import staff_with_roles
from tests.support.treatments import picture_bytes

NO_GROUP = "no group"
USERS = [*ROLES, NO_GROUP]
EXPORTERS = {DATA_MANAGER, PERSONAL_DATA}

# Admin pages that are not a model admin's standard five, with the roles that may open them.
CUSTOM_PAGES: dict[str, set[str]] = {
    "treatments_review_queue": {REVIEWER, STUDY_ADMIN},
    "treatments_coverage": {REVIEWER, STUDY_ADMIN},
    "treatments_stimulus_file": {REVIEWER, STUDY_ADMIN},
    "treatments_bulk_upload": {STUDY_ADMIN},
    "treatments_streetview": {STUDY_ADMIN},
    "assignment_allocationscheme_balance": {DATA_MANAGER, PERSONAL_DATA, STUDY_ADMIN},
    # The download page and funnel: exports.export_data.
    "exports_datadownload_changelist": EXPORTERS,
    # The download page's model is a proxy of the export log: a record there is a log entry.
    "exports_datadownload_change": EXPORTERS,
    "exports_datadownload_history": EXPORTERS,
    # A study's questionnaire move and "new study from this one": studies.change_study_questionnaire / copy_study.
    "studies_study_move_version": {STUDY_ADMIN},
    "studies_study_copy": {STUDY_ADMIN},
    # The signed letters' delivery (a personal-data export): survey.export_personal_data.
    "letters_letterdelivery_changelist": {PERSONAL_DATA},
    "letters_letterdelivery_change": {PERSONAL_DATA},
    "letters_letterdelivery_history": {PERSONAL_DATA},
    "auth_user_password_change": set(),  # another account's password: superusers only
    "autocomplete": set(),  # answers only for a model admin's autocomplete fields (none so far)
}
# Third-party actions reviewed by hand: what they do, and why that needs no permission of its own.
REVIEWED_ACTIONS = {
    # Deletes only expired lockout records; its page needs axes.view_accessattempt (no role has it).
    "axes.AccessAttempt.cleanup_expired_attempts",
}
# Open to every staff account (their own password, the admin's translations, the index).
ANY_STAFF = {"index", "jsi18n", "password_change", "password_change_done"}
NOT_WALKED = {"login", "logout", "view_on_site"}  # login is the way in; logout is POST only
STANDARD = {"changelist": ("view", "change"), "change": ("view", "change"), "history": ("view", "change"),
            "add": ("add",), "delete": ("delete",)}
# The research API (exports.export_data); the participant pages and images are public by design.
API_NAMESPACE = "exports"
PUBLIC_NAMESPACES = {"survey", "treatments"}


def _patterns(patterns: list[Any], namespace: str | None = None) -> Iterator[tuple[str | None, URLPattern]]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _patterns(pattern.url_patterns, pattern.namespace or namespace)
        else:
            yield namespace, pattern


def _model_admin(name: str) -> Any:
    for model, model_admin in admin.site._registry.items():
        prefix = f"{model._meta.app_label}_{model._meta.model_name}_"
        if name.startswith(prefix) and name[len(prefix):] in STANDARD:
            return model, model_admin, name[len(prefix):]
    return None


@pytest.fixture
def world(db, settings, tmp_path) -> dict[str, Any]:
    settings.MEDIA_ROOT = tmp_path / "media"
    study = make_study()
    scheme = ensure_scheme(study)
    district = make_district()
    stimulus = make_stimulus("house", district)
    stimulus.source.image.save("s.png", ContentFile(picture_bytes(1)), save=True)
    participant = make_participant(study, arm="control", district=district,
                                   personal={"panel_id": "P-1", "email": "a@example.org"})
    ExportLog.objects.create(study=study, study_slug=study.slug, format="csv", channel="admin", row_count=1)
    users = {role: staff_with_roles(role.replace(" ", "-"), role) for role in ROLES}
    users[NO_GROUP] = staff_with_roles("nobody")
    users["superuser"] = User.objects.create_superuser("root", "root@example.org", "pw")
    return {"study": study, "scheme": scheme, "stimulus": stimulus, "participant": participant, "users": users}


def _object_id(model: Any) -> str:
    first = model._default_manager.order_by("pk").first()
    return str(first.pk) if first is not None else "999999"


def _admin_urls(world: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """(name, url, model-admin info) of every named admin URL, with sample arguments."""
    samples = {"scheme_id": world["scheme"].pk, "pk": world["stimulus"].pk, "which": "source",
               "id": world["users"]["superuser"].pk}
    urls = []
    for namespace, pattern in _patterns(get_resolver().url_patterns):
        if namespace != "admin" or not pattern.name or pattern.name in NOT_WALKED:
            continue
        info = _model_admin(pattern.name)
        if pattern.name == "app_list":
            for app_label in sorted({m._meta.app_label for m in admin.site._registry}):
                urls.append((f"app_list:{app_label}", reverse("admin:app_list", args=[app_label]), None))
            continue
        kwargs = {}
        for key in pattern.pattern.regex.groupindex:
            if key == "object_id" and info is not None:
                kwargs[key] = _object_id(info[0])
            elif key in samples:
                kwargs[key] = samples[key]
            else:
                pytest.fail(f"admin URL {pattern.name!r} takes {key!r}: add a sample value for it here")
        urls.append((pattern.name, reverse(f"admin:{pattern.name}", kwargs=kwargs), info))
    return urls


def _role_may(role: str, name: str, info: Any) -> bool:
    if name in CUSTOM_PAGES:
        return role in CUSTOM_PAGES[name]
    if name in ANY_STAFF:
        return True
    granted = set(ROLES.get(role, []))
    if name.startswith("app_list:"):
        return any(permission.startswith(name.split(":", 1)[1] + ".") for permission in granted)
    if info is None:
        pytest.fail(f"admin URL {name!r} is a custom page: list it in CUSTOM_PAGES with the roles allowed")
    model, _, view = info
    return any(f"{model._meta.app_label}.{action}_{model._meta.model_name}" in granted for action in STANDARD[view])


def _denied(response: Any) -> bool:
    # 403, a 404 (an app page listing nothing), or the redirect to the index that Django's admin
    # sends for a missing object: nothing shown either way.
    return response.status_code in {403, 404} or (
        response.status_code == 302 and response["Location"] == reverse("admin:index"))


def test_every_admin_page_follows_the_roles(world):
    urls = _admin_urls(world)
    assert len(urls) > 80  # the walk found the admin
    clients = {}
    for who, user in world["users"].items():
        clients[who] = Client()
        clients[who].force_login(user)
    anonymous = Client()
    problems = []
    for name, url, info in urls:
        superuser = clients["superuser"].get(url)
        assert superuser.status_code < 500, (name, url)
        disabled = superuser.status_code == 403  # e.g. "add" where records only come from the study
        response = anonymous.get(url)
        if not (response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))):
            problems.append(f"anonymous {name}: {response.status_code}")
        for who in USERS:
            response = clients[who].get(url)
            may = _role_may(who, name, info) and not disabled and who != NO_GROUP or (who == NO_GROUP and name in ANY_STAFF)
            if may and response.status_code != superuser.status_code:
                problems.append(f"{who} {name}: {response.status_code}, expected {superuser.status_code}")
            if not may and not _denied(response):
                problems.append(f"{who} {name}: {response.status_code}, expected to be refused")
    assert not problems, "\n".join(problems)


@pytest.mark.django_db  # some lists offer the bulk delete only while a row may go (studyserver.core.records.KeptRecordAdmin)
def test_every_admin_action_needs_a_permission():
    unguarded = [
        f"{model._meta.label}.{name}"
        for model, model_admin in admin.site._registry.items()
        for name, (func, _, _) in model_admin.get_actions(_superuser_request()).items()
        if not getattr(func, "allowed_permissions", ()) and f"{model._meta.label}.{name}" not in REVIEWED_ACTIONS
    ]
    assert not unguarded, f"admin actions without allowed_permissions: {unguarded}"


def _superuser_request() -> Any:
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/")
    request.user = User(is_superuser=True, is_staff=True, is_active=True)
    return request


def test_every_api_endpoint_needs_the_export_permission(world):
    samples = {"slug": world["study"].slug, "fmt": "csv"}
    seen = 0
    for namespace, pattern in _patterns(get_resolver().url_patterns):
        if namespace in PUBLIC_NAMESPACES or namespace == "admin":
            continue
        assert namespace == API_NAMESPACE, f"URL {pattern.pattern} ({namespace}): classify it in this test"
        url = reverse(f"{namespace}:{pattern.name}", kwargs={k: samples[k] for k in pattern.pattern.regex.groupindex})
        seen += 1
        assert Client().get(url).status_code in {401, 403}, url
        for who in USERS:
            client = Client()
            client.force_login(world["users"][who])
            status = client.get(url).status_code
            assert (status == 200) == (who in EXPORTERS), (who, url, status)
    assert seen >= 6  # studies, export, funnel, codebook, schema, docs

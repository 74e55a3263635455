"""The admin download page and the read-only export log."""

from __future__ import annotations

import io
import re

import pandas as pd
import pytest
from django.contrib.auth.models import User
from django.test import Client

from studyserver.exports.export import PERSONAL_COLUMNS, export_columns
from studyserver.exports.models import ExportLog

URL = "/admin/exports/datadownload/"


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_linked_from_the_admin_index(staff):
    page = logged_in(staff).get("/admin/")
    assert page.status_code == 200 and URL.encode() in page.content
    assert b"Download data" in page.content


def test_staff_only(study_with_people):
    assert Client().get(URL).status_code == 302  # to the login page
    assert logged_in(User.objects.create_user("someone")).get(URL).status_code == 302


def test_page_shows_form_and_funnel(study_with_people, staff):
    study, *_ = study_with_people
    page = logged_in(staff).get(URL, {"study": study.pk})
    assert page.status_code == 200
    assert b"Participant funnel" in page.content and b"not_canadian" in page.content
    assert b"Abandoned (not seen for 24 h)" in page.content and b"of whom abandoned" in page.content
    assert b"do not have the permission to export personal data" in page.content
    assert b"has the column headers only" not in page.content


def test_a_study_without_participants_says_so(db, staff):
    from studyserver.studies.models import Study

    empty = Study.objects.create(slug="empty", title="Empty pilot")
    page = logged_in(staff).get(URL, {"study": empty.pk}).content.decode()
    assert "No participant has entered Empty pilot yet: an export of it has the column headers only" in page


def test_downloading_a_study_without_participants_says_it_is_empty_first(db, staff):
    from studyserver.studies.models import Study

    empty = Study.objects.create(slug="empty", title="Empty pilot")
    client = logged_in(staff)
    page = client.post(URL, {"study": empty.pk, "format": "csv"})
    assert page.status_code == 200 and "attachment" not in page.get("Content-Disposition", "")
    text = page.content.decode()
    assert "Empty pilot (empty) has no participants yet: the export would have the column headers only" in text
    assert 'name="headers_only"' in text and "Download the headers anyway" in text
    assert not ExportLog.objects.exists()
    response = client.post(URL, {"study": empty.pk, "format": "csv", "headers_only": "True"})
    assert "attachment" in response["Content-Disposition"]
    assert list(pd.read_csv(io.BytesIO(response.content)).columns) == export_columns()
    assert ExportLog.objects.get().row_count == 0


def test_download_each_format_is_logged(study_with_people, staff):
    study, treated, *_ = study_with_people
    client = logged_in(staff)
    response = client.post(URL, {"study": study.pk, "format": "csv"})
    assert response.status_code == 200 and "attachment" in response["Content-Disposition"]
    frame = pd.read_csv(io.BytesIO(response.content))
    assert list(frame.columns) == export_columns() and len(frame) == 3
    response = client.post(URL, {"study": study.pk, "format": "dta"})
    assert pd.read_stata(io.BytesIO(response.content)).shape[0] == 3
    # Named in the configured zone, the zone named (was UTC, unnamed): flood-test-20261203-1322-EST.dta
    assert re.search(r'filename="flood-test-\d{8}-\d{4}-E[SD]T\.dta"', response["Content-Disposition"])
    assert re.search(r"<td>\w+\.? \d+, \d{4}, [^<]* E[SD]T</td><td>staff</td>",
                     client.get(URL).content.decode())  # the recent exports, in the same zone
    logs = list(ExportLog.objects.order_by("id").values_list("channel", "format", "username"))
    assert logs == [("admin", "csv", "staff"), ("admin", "dta", "staff")]


def test_personal_data_only_with_the_permission(study_with_people, staff, privileged):
    study, *_ = study_with_people
    refused = logged_in(staff).post(URL, {"study": study.pk, "format": "csv",
                                          "include_personal": "on"})
    assert refused.status_code == 400 and b"permission to export personal data" in refused.content
    assert not ExportLog.objects.exists()
    response = logged_in(privileged).post(URL, {"study": study.pk, "format": "csv",
                                                "include_personal": "on"})
    frame = pd.read_csv(io.BytesIO(response.content))
    assert list(frame.columns[-len(PERSONAL_COLUMNS):]) == list(PERSONAL_COLUMNS)
    assert "personal" in response["Content-Disposition"]
    assert ExportLog.objects.get().included_personal_data


@pytest.mark.parametrize("data, message", [
    ({"study": "1", "format": "sav"}, b"Unknown format sav"),
    ({"study": "abc", "format": "csv"}, b"No such study"),
    ({"study": "999999", "format": "csv"}, b"No such study"),
    ({"format": "csv"}, b"This field is required"),
])
def test_malformed_posts_get_a_400_page(study_with_people, staff, data, message):
    response = logged_in(staff).post(URL, data)
    assert response.status_code == 400 and message in response.content
    assert not ExportLog.objects.exists()


@pytest.mark.parametrize("study_id, message", [("abc", b"must be a number"), ("999999", b"No study")])
def test_bad_study_id_in_the_query(staff, study_id, message):
    response = logged_in(staff).get(URL, {"study": study_id})
    assert response.status_code == 400 and message in response.content


def test_export_log_is_read_only(study_with_people, staff, privileged):
    study, *_ = study_with_people
    logged_in(staff).post(URL, {"study": study.pk, "format": "csv"})
    log = ExportLog.objects.get()
    admin_user = User.objects.create_superuser("boss")
    client = logged_in(admin_user)
    assert client.get("/admin/exports/exportlog/").status_code == 200
    change = client.get(f"/admin/exports/exportlog/{log.pk}/change/")
    assert change.status_code == 200 and b'name="_save"' not in change.content
    assert client.post(f"/admin/exports/exportlog/{log.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.get("/admin/exports/exportlog/add/").status_code == 403
    assert ExportLog.objects.filter(pk=log.pk).exists()


def test_export_selected_action(study_with_people, staff):
    from django.contrib.admin.sites import site
    from django.contrib.messages.storage.fallback import FallbackStorage
    from django.test import RequestFactory

    from studyserver.exports.admin import export_selected
    from studyserver.survey.models import Participant

    study, treated, control, screened = study_with_people
    request = RequestFactory().post("/admin/survey/participant/")
    request.user = staff
    request.session = {}
    request._messages = FallbackStorage(request)
    model_admin = site._registry[Participant]
    response = export_selected(model_admin, request,
                               Participant.objects.filter(pk__in=[treated.pk, screened.pk]))
    frame = pd.read_csv(io.BytesIO(response.content))
    assert sorted(frame["participant_id"]) == sorted([str(treated.pk), str(screened.pk)])
    assert list(frame.columns) == export_columns()
    assert ExportLog.objects.get().row_count == 2
    mixed = export_selected(model_admin, request, Participant.objects.all())
    assert mixed is None and ExportLog.objects.count() == 1

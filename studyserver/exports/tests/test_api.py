"""The research API: auth (401/403), export with personal data rules and logging, funnel, schema."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from studyserver.exports.export import PERSONAL_COLUMNS, export_columns
from studyserver.exports.funnel import funnel
from studyserver.exports.models import ExportLog
from studyserver.survey.flow import withdraw

from .factories import make_district, make_participant


def client_for(user: User | None) -> APIClient:
    client = APIClient()
    if user is not None:
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.mark.parametrize("url", ["/api/studies/", "/api/studies/flood-test/export.csv",
                                 "/api/studies/flood-test/funnel", "/api/studies/flood-test/codebook"])
def test_authentication_is_required(study_with_people, url):
    assert client_for(None).get(url).status_code == 401
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    assert bad.get(url).status_code == 401
    participant_user = User.objects.create_user("someone")  # authenticated, not staff
    assert client_for(participant_user).get(url).status_code == 403
    assert not ExportLog.objects.exists()


def test_study_list(study_with_people, staff):
    response = client_for(staff).get("/api/studies/")
    assert response.status_code == 200
    by_slug = {row["slug"]: row for row in response.json()}
    assert by_slug["flood-test"]["participants"] == 3 and by_slug["another"]["participants"] == 1


def test_csv_export_without_personal_data(study_with_people, staff):
    study, treated, *_ = study_with_people
    response = client_for(staff).get("/api/studies/flood-test/export.csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    frame = pd.read_csv(io.BytesIO(response.content))
    assert list(frame.columns) == export_columns() and len(frame) == 3
    assert not set(PERSONAL_COLUMNS) & set(frame.columns)
    log = ExportLog.objects.get()
    assert (log.channel, log.format, log.row_count, log.user, log.included_personal_data) == (
        "api", "csv", 3, staff, False)


def test_json_export_with_personal_data_needs_permission(study_with_people, staff, privileged):
    study, treated, *_ = study_with_people
    url = "/api/studies/flood-test/export.json?include_personal=1"
    refused = client_for(staff).get(url)
    assert refused.status_code == 403 and "export_personal_data" in refused.json()["detail"]
    assert not ExportLog.objects.exists()
    response = client_for(privileged).get(url)
    assert response.status_code == 200
    rows = {row["participant_id"]: row for row in response.json()}
    assert rows[str(treated.pk)]["email"] == "a@example.org"
    assert rows[str(treated.pk)]["exposure_ms"] == 12_345
    log = ExportLog.objects.get()
    assert log.included_personal_data and log.user == privileged and log.format == "json"
    # Without the parameter even a privileged user gets no personal data.
    plain = client_for(privileged).get("/api/studies/flood-test/export.json").json()
    assert "email" not in plain[0]


@pytest.mark.parametrize("url, status", [
    ("/api/studies/flood-test/export.xml", 400),
    ("/api/studies/flood-test/export.dta", 400),
    ("/api/studies/flood-test/export.csv?include_personal=maybe", 400),
    ("/api/studies/nope/export.csv", 404),
    ("/api/studies/nope/funnel", 404),
])
def test_malformed_requests(study_with_people, staff, url, status):
    response = client_for(staff).get(url)
    assert response.status_code == status
    assert response["Content-Type"] == "application/json" and response.json()["detail"]
    assert not ExportLog.objects.exists()


def test_funnel_counts(study_with_people, staff):
    study, treated, control, screened = study_with_people
    district = make_district("35001", "ON", "Ajax")
    make_participant(study, arm="house", district=district, state="exposed", exposure_ms=11_000)
    make_participant(study, arm="control", district=district, state="completed")
    make_participant(study, state="screened_out", screenout_reason="not_canadian")
    make_participant(study, state="screened_out", screenout_reason="ineligible")
    missing = make_participant(study, state="screened_out", screenout_reason="material_missing")
    missing.__class__.objects.filter(pk=missing.pk).update(screenout_detail="house, distant")
    make_participant(study, state="started").__class__.objects.filter(
        study=study, state="started").update(consented_at=None)
    study.declined_count = 4
    study.save()
    withdraw(control)

    result = funnel(study)
    assert result["started"] == 9 and result["consented"] == 8 and result["declined"] == 4
    assert result["screened_out"] == {"ineligible": 1, "material_missing": 1, "not_canadian": 2}
    assert result["screened_out_details"] == {"material_missing: house, distant": 1}
    assert result["assigned"] == {"control": 2, "distant": 0, "house": 2, "district_landmark": 0,
                                  "provincial_landmark": 0}
    assert result["exposed"]["house"] == 2 and result["exposed"]["control"] == 0
    assert result["completed"]["house"] == 1 and result["completed"]["control"] == 1
    assert result["attrited"]["house"] == 1 and result["attrited"]["control"] == 1
    assert result["withdrawn"]["control"] == 1
    assert result["assigned_total"] == 4 == result["completed_total"] + result["attrited_total"]
    assert result["abandoned_total"] == 0 and result["in_progress"] == 2  # the exposed one, the one who only started
    assert client_for(staff).get("/api/studies/flood-test/funnel").json() == result


def test_funnel_counts_participants_idle_too_long_as_abandoned(study_with_people, settings):
    from datetime import timedelta

    from django.utils import timezone

    from studyserver.survey.models import Participant

    study, treated, control, screened = study_with_people
    settings.FLOODLIGHT_ABANDONED_AFTER_HOURS = 2
    stalled = make_participant(study, arm="house", district=treated.district, state="exposed")
    fresh = make_participant(study, arm="distant", district=treated.district, state="assigned")
    Participant.objects.filter(pk__in=[stalled.pk, screened.pk, treated.pk]).update(
        last_seen_at=timezone.now() - timedelta(hours=3))
    result = funnel(study)
    assert result["abandoned_after_hours"] == 2
    # Completed (treated) and screened-out people are never abandoned, however long ago they left.
    assert result["abandoned_total"] == 1 and result["abandoned"]["house"] == 1
    assert result["abandoned"]["distant"] == 0 and fresh.state == "assigned"
    assert result["in_progress"] == 2  # fresh, and the control participant assigned a moment ago


def test_codebook_endpoint(study_with_people, staff):
    rows = client_for(staff).get("/api/studies/flood-test/codebook").json()
    assert [row["variable"] for row in rows] == export_columns()
    assert {row["phase"] for row in rows} == {"meta", "pre", "post"}


def test_schema_and_docs(staff):
    client = client_for(staff)
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/studies/{slug}/funnel" in paths and "/api/studies/{slug}/export.{fmt}" in paths
    funnel_schema = paths["/api/studies/{slug}/funnel"]["get"]["responses"]["200"]
    assert "Funnel" in str(funnel_schema)
    assert client.get("/api/docs/").status_code == 200

import pytest

from studyserver.assignment.services import ensure_scheme
from studyserver.studies.models import Study


@pytest.mark.django_db
def test_the_study_list_links_to_the_study_pages(admin_client):
    study = Study.objects.create(slug="links", title="Links", is_open=True)
    scheme = ensure_scheme(study)
    page = admin_client.get("/admin/studies/study/").content.decode()
    assert "/s/links/?pid=TEST" in page and "?study=links" in page
    assert f"/admin/assignment/allocationscheme/{scheme.pk}/balance/" in page
    assert f"?study={study.pk}" in page
    for url in ("/admin/treatments/stimulus/coverage/?study=links", f"/admin/exports/datadownload/?study={study.pk}",
                f"/admin/assignment/allocationscheme/{scheme.pk}/balance/"):
        assert admin_client.get(url).status_code == 200, url
    assert admin_client.get("/admin/studies/study/add/").status_code == 200
    assert admin_client.get(f"/admin/studies/study/{study.pk}/change/").status_code == 200


# --- fielding: scope, panel settings, readiness, opening from the admin -------------------------------

from django.contrib.auth.models import Permission, User  # noqa: E402
from django.core.exceptions import ValidationError  # noqa: E402

from studyserver.geo.models import District  # noqa: E402
from studyserver.studies import readiness as ready  # noqa: E402
from studyserver.treatments.models import Stimulus  # noqa: E402
from studyserver.treatments.testing import approve_images_for  # noqa: E402

PANEL = {f"{kind}_url_template": f"https://panel.example/{kind}?id={{pid}}"
         for kind in ("complete", "screenout", "overquota", "declined")}


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def _study(**fields) -> Study:
    return Study(**{"slug": "pilot", "title": "Pilot", "representation_order": "2013", **PANEL, **fields})


@pytest.mark.parametrize(("template", "message"), [
    ("panel.example/done?id={pid}", "full http:// or https://"),
    ("javascript:alert(1)//{pid}", "full http:// or https://"),
    ("https://panel.example/done?id={respondent}", "Unknown placeholder {respondent}"),
    ("https://panel.example/done", "no placeholder"),
])
def test_exit_url_templates_are_checked(db, template, message):
    with pytest.raises(ValidationError) as error:
        _study(complete_url_template=template).full_clean()
    assert message in " ".join(error.value.message_dict["complete_url_template"])


def test_kept_parameters_can_be_passed_back_and_a_quota_of_zero_is_refused(db):
    study = _study(panel_id_parameter="PROLIFIC_PID", panel_parameters="STUDY_ID, SESSION_ID",
                   complete_url_template="https://app.prolific.com/submissions/complete?cc=C0DE&s={SESSION_ID}&p={pid}")
    study.full_clean()
    assert study.exit_url("complete", "a b", {"SESSION_ID": "x/y"}) == \
        "https://app.prolific.com/submissions/complete?cc=C0DE&s=x%2Fy&p=a%20b"
    assert study.entry_url().endswith("?PROLIFIC_PID=TEST&STUDY_ID=TEST-STUDY_ID&SESSION_ID=TEST-SESSION_ID")
    with pytest.raises(ValidationError) as error:
        _study(assignment_quota=0).full_clean()
    assert "at least 1" in str(error.value.message_dict["assignment_quota"])
    with pytest.raises(ValidationError) as error:
        _study(panel_id_parameter="has space").full_clean()
    assert "panel_id_parameter" in error.value.message_dict


def test_scope_lists_are_checked_against_the_loaded_districts(geo2013):
    with pytest.raises(ValidationError) as error:
        _study(scope=Study.Scope.DISTRICTS, scope_districts="60001, 99999").full_clean()
    assert "No district 99999 in the 2013" in str(error.value.message_dict["scope_districts"])
    with pytest.raises(ValidationError) as error:
        _study(scope=Study.Scope.PROVINCES, scope_provinces="QC, XX").full_clean()
    assert "XX" in str(error.value.message_dict["scope_provinces"])
    study = _study(scope=Study.Scope.PROVINCES, scope_provinces="yt, nt")
    study.full_clean()
    assert sorted(study.districts_in_scope().values_list("fed_code", flat=True)) == ["60001", "61001"]


def test_readiness_follows_the_scope(geo2013, media):
    study = _study(scope=Study.Scope.DISTRICTS, scope_districts="60001")
    study.save()
    reasons = ready.readiness(study)
    assert [r.code for r in ready.blockers(reasons)] == ["images_missing"]
    assert "1 of the 1 districts in scope" in reasons[0].message and "60001 Yukon" in reasons[0].message
    made = approve_images_for(District.objects.get(representation_order="2013", fed_code="60001"))
    assert ready.blockers(ready.readiness(study)) == []
    # The whole country is far from covered: the same images do not make an all-districts study ready.
    study.scope = Study.Scope.ALL
    blocking = ready.blockers(ready.readiness(study))
    assert "337 of the 338 districts" in blocking[0].message
    # Images made by the tiny test weights need an explicit confirmation.
    study.scope = Study.Scope.DISTRICTS
    Stimulus.objects.filter(pk=made["house"].pk).update(backend="reference-sim-tiny")
    assert [r.code for r in ready.confirmations(ready.readiness(study))] == ["test_weights"]


def test_stand_in_exits_block_a_real_study_not_a_demo(db, settings):
    real = Study(slug="real", title="Real", representation_order="1976")  # no district of it is loaded
    codes = {r.code for r in ready.blockers(ready.readiness(real))}
    assert {"exit_complete_standin", "exit_declined_standin", "no_districts"} <= codes
    demo = Study(slug="d", title="D", representation_order="2013", demo=True)
    assert not any(r.code.endswith("standin") for r in ready.readiness(demo))


def _form_data(study: Study, **changes) -> dict:
    fields = ("title", "slug", "representation_order", "scope", "scope_provinces", "scope_districts",
              "panel_id_parameter", "panel_parameters", "complete_url_template", "screenout_url_template",
              "overquota_url_template", "declined_url_template", "consent_version", "min_exposure_seconds",
              "exclusion_rules")
    data = {name: getattr(study, name) for name in fields}
    data["assignment_quota"] = study.assignment_quota or ""
    if study.demo:
        data["demo"] = "on"
    data.update(changes)
    return data


def test_opening_a_study_that_is_not_ready_is_refused_with_the_reasons(geo2013, media, admin_client):
    study = _study(scope=Study.Scope.DISTRICTS, scope_districts="60001")
    study.save()
    url = f"/admin/studies/study/{study.pk}/change/"
    page = admin_client.get(url).content.decode()
    # Before opening: arms, ratios, strata, scope, exits with test links, texts, readiness in one place.
    for expected in ("Blocks opening", "house", "20%", "Province", "1 district(s)", "declined",
                     "https://panel.example/declined?id=TEST", "real, unaltered photograph",
                     "created by a computer", "no image"):
        assert expected in page, expected
    response = admin_client.post(url, _form_data(study, is_open="on"))
    assert response.status_code == 200
    assert "Not ready for its scope: Approved images are missing" in response.content.decode()
    study.refresh_from_db()
    assert not study.is_open
    approve_images_for(District.objects.get(representation_order="2013", fed_code="60001"))
    Stimulus.objects.update(backend="reference-sim-tiny")
    response = admin_client.post(url, _form_data(study, is_open="on"))
    assert "Tick the box to open anyway" in response.content.decode()
    response = admin_client.post(url, _form_data(study, is_open="on", confirm_test_weights="on"))
    assert response.status_code == 302
    study.refresh_from_db()
    assert study.is_open


def test_a_demo_study_opens_with_warnings_and_a_new_study_gets_its_scheme(geo2013, admin_client):
    data = _form_data(_study(slug="new-demo", demo=True), is_open="on")
    response = admin_client.post("/admin/studies/study/add/", data, follow=True)
    assert "Opened although: Approved images are missing" in response.content.decode()
    study = Study.objects.get(slug="new-demo")
    assert study.is_open and study.allocation_scheme.arms  # visible and editable before the first draw


def test_opening_needs_the_open_study_permission(geo2013, client):
    study = _study(demo=True)
    study.save()
    user = User.objects.create_user("editor", password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["change_study", "view_study"]))
    client.force_login(user)
    response = client.post(f"/admin/studies/study/{study.pk}/change/", _form_data(study, is_open="on"))
    assert "You may not open a study (permission studies.open_study)" in response.content.decode()
    study.refresh_from_db()
    assert not study.is_open


def test_the_admin_home_page_links_the_researcher_pages(admin_client):
    page = admin_client.get("/admin/").content.decode()
    for url in ("/admin/treatments/stimulus/review/", "/admin/treatments/stimulus/coverage/",
                "/admin/assignment/allocationscheme/", "/admin/exports/datadownload/", "/admin/studies/study/"):
        assert f'href="{url}"' in page, url
    assert page.count('id="content-main"') == 1 and "Preparing and fielding a study" in page


def test_study_readiness_command_reports_and_opens(geo2013, media):
    from io import StringIO

    from django.core.management import CommandError, call_command

    study = _study(scope=Study.Scope.DISTRICTS, scope_districts="60001")
    study.save()
    out = StringIO()
    with pytest.raises(CommandError, match="block opening"):
        call_command("study_readiness", "pilot", stdout=out)
    assert "BLOCKS: Approved images are missing for 1 of the 1 districts" in out.getvalue()
    approve_images_for(District.objects.get(representation_order="2013", fed_code="60001"))
    out = StringIO()
    call_command("study_readiness", "pilot", "--open", stdout=out)
    assert "ready to open" in out.getvalue() and Study.objects.get(slug="pilot").is_open


def test_panel_exit_settings_are_checked(settings):
    from studyserver.studies.checks import panel_exit_settings

    assert panel_exit_settings() == []
    settings.PANEL_DECLINED_URL = "javascript:alert({pid})"
    assert [e.msg.split(":")[0] for e in panel_exit_settings()] == ["PANEL_DECLINED_URL"]

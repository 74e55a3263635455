import pytest
from django.contrib.auth.models import Permission
from django.utils.html import escape

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


# --- questionnaire versions: preview, move, copy ----------------------------------------------------


def _revision():
    from django.conf import settings

    from studyserver.instrument.versions import store_version

    source = settings.FLOODLIGHT_INSTRUMENT.read_text(encoding="utf-8")
    return store_version(source.replace("version: floodlight-v1", "version: floodlight-v1-r2", 1)
                         .replace("ethics@example.org", "reb@example.ca").replace("ethique@example.org", "reb@example.ca")
                         .replace("1-800-555-0100", "613-562-5387").replace("1 800 555-0100", "613 562-5387"))[0]


@pytest.mark.django_db
def test_the_study_page_shows_the_consent_and_debrief_participants_see(admin_client):
    study = Study.objects.create(slug="real", title="Real", demo=False)
    page = admin_client.get(f"/admin/studies/study/{study.pk}/change/").content.decode()
    instrument = study.instrument
    for key in ("consent_title", "debrief_title"):
        assert escape(instrument.texts[key].en) in page and escape(instrument.texts[key].fr) in page
    assert "Cette étude a été approuvée par un comité d&#x27;éthique" in page
    assert "shows the placeholder contact" in page  # a real study with the sample's contacts is flagged
    demo = Study.objects.create(slug="demo-like", title="Demo", demo=True)
    assert "shows the placeholder contact" not in admin_client.get(f"/admin/studies/study/{demo.pk}/change/").content.decode()


@pytest.mark.django_db
def test_moving_a_study_to_a_revision_needs_its_permission_and_is_recorded(client, django_user_model):
    from studyserver.survey.models import Participant

    study = Study.objects.create(slug="moved", title="Moved")
    first = study.questionnaire
    Participant.objects.create(study=study)
    revision = _revision()
    user = django_user_model.objects.create_user("ra", password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_study", "change_study"]))
    client.force_login(user)
    url = f"/admin/studies/study/{study.pk}/move-version/"
    assert client.get(url).status_code == 403
    # Nor through the change form: the field is read-only once there are participants.
    assert 'name="questionnaire"' not in client.get(f"/admin/studies/study/{study.pk}/change/").content.decode()
    user.user_permissions.add(Permission.objects.get(codename="change_study_questionnaire"))
    client.force_login(django_user_model.objects.get(pk=user.pk))
    assert client.post(url, {"version": revision.content_hash}).status_code == 400  # not confirmed
    response = client.post(url, {"version": revision.content_hash, "confirm": "on"})
    assert response.status_code == 302
    study.refresh_from_db()
    assert study.questionnaire == revision and study.consent_version == revision.consent_version
    change = study.version_changes.get()
    assert (change.from_version, change.to_version, change.changed_by, change.participants_before) == (
        first, revision, user, 1)
    assert Participant.objects.get(study=study).questionnaire == first
    newcomer = Participant.objects.create(study=study)
    assert newcomer.questionnaire == revision and newcomer.instrument_version == "floodlight-v1-r2"


@pytest.mark.django_db
def test_new_study_from_this_one_copies_the_design_never_the_people(admin_client):
    from studyserver.assignment.models import AllocationScheme
    from studyserver.survey.models import Participant

    pilot = Study.objects.create(slug="pilot", title="Pilot", is_open=True, min_exposure_seconds=7,
                                 assignment_quota=300, representation_order="2013",
                                 complete_url_template="https://panel.example/done?id={pid}")
    pilot.questionnaire = _revision()
    pilot.save()
    AllocationScheme.objects.create(study=pilot, strata=AllocationScheme.Strata.NONE, seed=42, block_multiples=[1, 2],
                                    arm_ratios=[{"arm": "control", "ratio": 1}, {"arm": "house", "ratio": 2}])
    Participant.objects.create(study=pilot)
    Study.objects.filter(pk=pilot.pk).update(declined_count=5)
    url = f"/admin/studies/study/{pilot.pk}/copy/"
    assert admin_client.post(url, {"title": "Main", "slug": "pilot"}).status_code == 400  # slug taken
    response = admin_client.post(url, {"title": "Main study", "slug": "main"})
    assert response.status_code == 302
    main = Study.objects.get(slug="main")
    assert (main.title, main.is_open, main.declined_count, main.participants.count()) == ("Main study", False, 0, 0)
    assert (main.min_exposure_seconds, main.assignment_quota, main.representation_order) == (7, 300, "2013")
    assert main.complete_url_template == pilot.complete_url_template and main.questionnaire == pilot.questionnaire
    scheme = main.allocation_scheme
    assert (scheme.strata, scheme.seed, scheme.block_multiples, scheme.arm_ratios) == (
        "none", 42, [1, 2], [{"arm": "control", "ratio": 1}, {"arm": "house", "ratio": 2}])
    assert not scheme.slots.exists()


@pytest.mark.django_db
def test_copying_needs_its_permission(client, django_user_model):
    study = Study.objects.create(slug="src", title="Source")
    user = django_user_model.objects.create_user("ra2", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_study"))
    client.force_login(user)
    assert client.post(f"/admin/studies/study/{study.pk}/copy/", {"title": "T", "slug": "t"}).status_code == 403
    assert not Study.objects.filter(slug="t").exists()


@pytest.mark.django_db
def test_seed_demo_loads_the_repository_questionnaire(monkeypatch):
    from django.core.management import call_command

    from studyserver.geo import testing as geo_testing
    from studyserver.treatments import demo

    # Districts and images have their own tests; this one is about the study's questionnaire.
    monkeypatch.setattr(geo_testing, "load_reference_districts", lambda *args, **kwargs: None)
    monkeypatch.setattr(demo, "seed_demo_stimuli", lambda *args, **kwargs: None)
    call_command("seed_demo", "--no-admin")
    call_command("seed_demo", "--no-admin")  # idempotent
    study = Study.objects.get(slug="demo")
    assert study.questionnaire.label == "floodlight-v1" and study.questionnaire.filename == "floodlight-v1.yaml"
    assert study.consent_version == study.questionnaire.consent_version


@pytest.mark.django_db
def test_a_refused_move_says_why_on_the_form(admin_client):
    from django.conf import settings

    from studyserver.assignment.models import AllocationScheme
    from studyserver.instrument.versions import store_version

    study = Study.objects.create(slug="strata", title="Strata")
    AllocationScheme.objects.create(study=study, strata=AllocationScheme.Strata.ITEM, strata_item="tenure")
    source = settings.FLOODLIGHT_INSTRUMENT.read_text(encoding="utf-8")
    without_tenure = store_version(source.replace("- code: tenure", "- code: housing")
                                   .replace("version: floodlight-v1", "version: no-tenure", 1))[0]
    response = admin_client.post(f"/admin/studies/study/{study.pk}/move-version/",
                                 {"version": without_tenure.content_hash, "confirm": "on"})
    assert response.status_code == 400
    assert "stratifies on &#x27;tenure&#x27;" in response.content.decode()
    study.refresh_from_db()
    assert study.questionnaire != without_tenure and not study.version_changes.exists()

import re
from io import StringIO

import pytest
from django.contrib.auth.models import Permission, User
from django.core.exceptions import ValidationError
from django.utils.html import escape

from studyserver.assignment.services import ensure_scheme
from studyserver.fielding import readiness as ready
from studyserver.geo.models import District
from studyserver.instrument.definition import get_instrument
from studyserver.studies.models import Study
from studyserver.treatments.models import Stimulus
from tests.support.instrument import version_with_real_contacts
from tests.support.treatments import approve_images_for


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
    return version_with_real_contacts()


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
    message = [str(m) for m in client.get(response["Location"]).context["messages"]][0]
    # A sentence, not a slug the admin capitalises ("Moved moved to…"), the time in the named zone.
    assert re.match(r"Study moved moved to floodlight-v1-r2 \(\w+\) at \d{4}-\d\d-\d\d \d\d:\d\d E[SD]T; its 1 earlier", message)
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

    from studyserver.fielding.management.commands import seed_demo

    # Districts and images have their own tests; this one is about the study's questionnaire.
    monkeypatch.setattr(seed_demo, "load_reference_districts", lambda *args, **kwargs: None)
    monkeypatch.setattr(seed_demo, "seed_demo_stimuli", lambda *args, **kwargs: None)
    call_command("seed_demo", "--no-admin")
    call_command("seed_demo", "--no-admin")  # idempotent
    study = Study.objects.get(slug="demo")
    assert study.questionnaire.label == "floodlight-v1" and study.questionnaire.filename == "floodlight-v1.yaml"
    assert study.consent_version == study.questionnaire.consent_version
    # The repository's sample changed since this database stored it (an older consent wording, say):
    # `make demo` on that database stores the revision and moves the demo study to it.
    from django.conf import settings

    from studyserver.assignment.models import AllocationScheme
    from studyserver.instrument.models import InstrumentVersion
    from studyserver.instrument.versions import store_version

    AllocationScheme.objects.filter(study=study).delete()
    study.delete()
    InstrumentVersion.objects.all().delete()
    sample = settings.FLOODLIGHT_INSTRUMENT.read_text(encoding="utf-8")
    older = store_version(sample.replace("Each page asks for an answer", "You may skip to the end. Each page asks for an answer"))[0]
    assert older.label == "floodlight-v1"
    study = Study.objects.create(slug="demo", title="Floodlight demo study", demo=True, is_open=True,
                                 representation_order="2023", questionnaire=older)
    out = StringIO()
    call_command("seed_demo", "--no-admin", stdout=out)
    study.refresh_from_db()
    revision = study.questionnaire
    assert revision != older and revision.label.startswith("floodlight-v1-") and "moved to" in out.getvalue()
    assert revision.instrument.texts["consent_body"] == get_instrument().texts["consent_body"]
    assert study.consent_version == revision.consent_version
    call_command("seed_demo", "--no-admin")  # still idempotent
    study.refresh_from_db()
    assert study.questionnaire == revision and InstrumentVersion.objects.count() == 2  # the older one kept


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


# --- fielding: scope, panel settings, readiness, opening from the admin -------------------------------

PANEL = {f"{kind}_url_template": f"https://panel.example/{kind}?id={{pid}}"
         for kind in ("complete", "screenout", "overquota", "declined")}


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def _study(**fields) -> Study:
    """A real (non-demo) study with the panel's exits and a questionnaire naming real ethics contacts."""
    if not fields.get("demo"):
        fields.setdefault("questionnaire", _revision())
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


def test_an_unclosed_placeholder_is_said_to_be_unclosed():
    problems = ready_exit_problems("https://panel.example/done?id={pid")
    assert problems == ["Placeholder {pid is not closed: write {pid}."]
    assert ready_exit_problems("https://panel.example/done?id={pid}&s={SESSION_ID") == [
        "Placeholder {SESSION_ID is not closed: write {SESSION_ID}."]


def ready_exit_problems(template: str) -> list[str]:
    from studyserver.studies.models import exit_url_problems

    return exit_url_problems(template, {"pid", "SESSION_ID"})


def test_a_quota_of_zero_and_a_negative_one_get_the_same_message(db):
    from studyserver.fielding.admin import StudyForm

    study = _study()
    messages = [StudyForm(data=_form_data(study, assignment_quota=quota)).errors["assignment_quota"]
                for quota in (0, -5)]
    assert messages[0] == messages[1] == [Study.QUOTA_MESSAGE]


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


def test_missing_images_are_counted_per_slot_not_per_district(geo2013, media):
    study = _study(scope=Study.Scope.PROVINCES, scope_provinces="YT, NT")
    study.save()
    made = approve_images_for(District.objects.get(representation_order="2013", fed_code="60001"))
    message = ready.blockers(ready.readiness(study))[0].message
    assert "1 of the 2 districts in scope (by arm: house: 1 district; district_landmark: 1 district; " \
           "provincial_landmark: 1 province (NT))" in message
    Stimulus.objects.filter(pk=made["distant"].pk).update(status=Stimulus.Status.REJECTED)
    message = ready.blockers(ready.readiness(study))[0].message
    assert "2 of the 2 districts" in message and "distant: the one photo every district shares" in message
    assert "distant 2" not in message


def test_readiness_says_when_the_server_lets_anyone_in_without_a_panel_id(db, settings):
    settings.FLOODLIGHT_DEMO_MODE = True
    real, demo = _study(slug="real", panel_id_parameter="PROLIFIC_PID"), _study(slug="demo-like", demo=True)
    said = {r.code: r for r in ready.readiness(real)}["demo_mode_server"]
    assert said.level == ready.WARNING and "this server accepts entries without a panel id (demo mode" in \
        said.message.lower() and "PROLIFIC_PID" in said.message
    assert "demo_mode_server" not in {r.code for r in ready.readiness(demo)}
    settings.FLOODLIGHT_DEMO_MODE = False
    assert "demo_mode_server" not in {r.code for r in ready.readiness(real)}


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
    data["questionnaire"] = study.questionnaire_id or ""
    data["entry_secret"] = study.entry_secret
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
    box = page[page.index('id="researcher-pages"'):]
    box = box[:box.index("</div>")]  # the box itself (the app list below links every model too)
    for url in ("/admin/treatments/stimulus/review/", "/admin/treatments/stimulus/coverage/",
                "/admin/assignment/allocationscheme/", "/admin/exports/datadownload/", "/admin/studies/study/",
                "/admin/instrument/instrumentversion/", "/admin/treatments/sourcephoto/"):
        assert f'href="{url}"' in box, url
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
@pytest.mark.parametrize("template", [
    "javascript:alert(document.cookie)//{pid}", "JavaScript:alert(1)", "data:text/html,<script>x</script>",
    "//evil.example/{pid}", "vbscript:msgbox", " javascript:alert(1)", "https:///nohost",
])
def test_the_exit_redirect_is_never_script(template, settings):
    settings.PANEL_COMPLETE_URL = "https://panel.example/done?id={pid}"
    study = Study(slug="x", complete_url_template=template)
    assert study.exit_url("complete", "P 1") == "https://panel.example/done?id=P%201"
    settings.PANEL_COMPLETE_URL = "javascript:alert(1)"
    assert study.exit_url("complete", "P 1") == "/"


@pytest.mark.parametrize("template", ["https://panel.example/c?id={pid}", "http://panel.example/{pid}",
                                      "/done/complete/?pid={pid}"])
def test_http_and_relative_exit_urls_pass(template):
    assert Study(slug="x", complete_url_template=template).exit_url("complete", "A") == template.replace("{pid}", "A")


@pytest.mark.django_db
def test_each_study_gets_its_own_entry_secret():
    first, second = Study.objects.create(slug="a", title="A"), Study.objects.create(slug="b", title="B")
    assert len(first.entry_secret) == 64 and first.entry_secret != second.entry_secret
    assert first.entry_link_is_valid("P", "")  # not required: unsigned links work
    first.require_signed_entry = True
    assert first.entry_link_is_valid("P", first.entry_signature("P"))
    assert first.entry_link_is_valid("P", first.entry_signature("P").upper())
    assert not first.entry_link_is_valid("P", second.entry_signature("P"))
    assert not first.entry_link_is_valid("", first.entry_signature(""))


@pytest.mark.django_db
def test_signed_entry_links_command_writes_links_that_the_study_accepts(tmp_path, client):
    import csv
    import hashlib
    import hmac
    from urllib.parse import parse_qs, urlsplit

    from django.core.management import CommandError, call_command

    study = Study.objects.create(slug="signed", title="Signed", is_open=True, require_signed_entry=True)
    ids = tmp_path / "ids.txt"
    ids.write_text("P-1\nP 2/é\n\n", encoding="utf-8")
    out = tmp_path / "links.csv"
    call_command("signed_entry_links", study="signed", base_url="https://study.example.ca/", ids=str(ids), out=str(out))
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [row["panel_id"] for row in rows] == ["P-1", "P 2/é"]
    for row in rows:
        url = urlsplit(row["url"])
        assert url.scheme == "https" and url.netloc == "study.example.ca" and url.path == "/s/signed/"
        query = {key: values[0] for key, values in parse_qs(url.query).items()}
        assert query["pid"] == row["panel_id"] and study.entry_link_is_valid(query["pid"], query["sig"])
        # the README's formula, computed here independently of the model
        assert query["sig"] == hmac.new(study.entry_secret.encode(), f"signed:{row['panel_id']}".encode(),
                                        hashlib.sha256).hexdigest()
        assert client.get(f"{url.path}?{url.query}").status_code == 200  # the consent page
    with pytest.raises(CommandError, match="No study"):
        call_command("signed_entry_links", study="nope", base_url="https://x", ids=str(ids))
    with pytest.raises(CommandError, match="base-url"):
        call_command("signed_entry_links", study="signed", base_url="javascript:x", ids=str(ids))
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("signed_entry_links", study="signed", base_url="https://x", ids=str(tmp_path / "missing.txt"))


@pytest.mark.django_db
def test_a_copy_gets_its_own_secret_and_the_pilots_signed_link_does_not_open_it(client):
    from studyserver.fielding.copying import copy_study

    wave1 = Study.objects.create(slug="wave1", title="Wave 1", is_open=True, require_signed_entry=True)
    wave2 = copy_study(wave1, slug="wave2", title="Wave 2")
    Study.objects.filter(pk=wave2.pk).update(is_open=True)
    assert wave2.require_signed_entry and len(wave2.entry_secret) == 64 and wave2.entry_secret != wave1.entry_secret
    pilots = wave1.entry_signature("P")
    assert client.get("/s/wave1/", {"pid": "P", "sig": pilots}).status_code == 200
    assert client.get("/s/wave2/", {"pid": "P", "sig": pilots}).status_code == 403
    # Even with the same secret, a signature binds its study's slug.
    Study.objects.filter(pk=wave2.pk).update(entry_secret=wave1.entry_secret)
    assert client.get("/s/wave2/", {"pid": "P", "sig": pilots}).status_code == 403


@pytest.mark.django_db
def test_the_signature_is_the_documented_hmac_and_the_old_format_is_refused():
    import hashlib
    import hmac

    study = Study(slug="wave1", require_signed_entry=True)
    documented = hmac.new(study.entry_secret.encode(), b"wave1:P-1/\xc3\xa9", hashlib.sha256).hexdigest()
    assert study.entry_signature("P-1/é") == documented and study.entry_link_is_valid("P-1/é", documented)
    old_format = hmac.new(study.entry_secret.encode(), "P-1/é".encode(), hashlib.sha256).hexdigest()
    assert not study.entry_link_is_valid("P-1/é", old_format)


def test_a_2013_study_whose_letters_go_to_ridings_that_no_longer_exist_says_so_before_opening(geo2013, admin_client):
    study = _study(scope=Study.Scope.DISTRICTS, scope_districts="60001")
    study.save()
    assert any(page.shows_letter for page in study.instrument.pages)  # the sample questionnaire writes to MPs
    warned = [r for r in ready.readiness(study) if r.code == "letters_to_old_ridings"]
    assert [r.level for r in warned] == [ready.WARNING]
    assert "2013 ridings, which no longer exist since the April 2025 election" in warned[0].message
    page = admin_client.get(f"/admin/studies/study/{study.pk}/change/").content.decode()
    assert "2013 ridings, which no longer exist" in page
    study.representation_order = "2023"
    assert "letters_to_old_ridings" not in {r.code for r in ready.readiness(study)}


@pytest.mark.django_db
def test_readiness_recommends_signed_entry_for_a_real_study():
    real = Study(slug="real", title="Real", representation_order="1976")
    (reason,) = [r for r in ready.readiness(real) if r.code == "unsigned_entry"]
    assert reason.level == ready.WARNING and "Require signed entry" in reason.message
    real.require_signed_entry = True
    assert "unsigned_entry" not in {r.code for r in ready.readiness(real)}
    demo = Study(slug="d", title="D", representation_order="1976", demo=True)
    assert "unsigned_entry" not in {r.code for r in ready.readiness(demo)}

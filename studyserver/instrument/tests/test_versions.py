"""Stored questionnaire versions: loading (command and admin), immutability, placeholder contacts."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command

from studyserver.instrument.definition import InstrumentError, load_instrument
from studyserver.instrument.models import ImmutableVersionError, InstrumentVersion
from studyserver.instrument.versions import default_version, instrument_problems, store_version
from studyserver.studies.models import Study

pytestmark = pytest.mark.django_db

SOURCE = Path(settings.FLOODLIGHT_INSTRUMENT).read_text(encoding="utf-8")
REAL_CONTACTS = (SOURCE.replace("ethics@example.org", "reb@uottawa.ca").replace("ethique@example.org", "ceR@uottawa.ca")
                 .replace("1-800-555-0100", "613-562-5387").replace("1 800 555-0100", "613 562-5387")
                 .replace("version: floodlight-v1", "version: floodlight-uottawa-1", 1))


def test_load_instrument_stores_a_version_once(tmp_path, capsys):
    path = tmp_path / "study.yaml"
    path.write_text(REAL_CONTACTS, encoding="utf-8")
    call_command("load_instrument", str(path), "--note", "REB-approved contacts")
    version = InstrumentVersion.objects.get()
    assert version.label == "floodlight-uottawa-1" and version.filename == "study.yaml"
    assert version.note == "REB-approved contacts" and version.source == REAL_CONTACTS
    assert "Stored questionnaire version floodlight-uottawa-1" in capsys.readouterr().out
    call_command("load_instrument", str(path))
    assert "Already stored" in capsys.readouterr().out and InstrumentVersion.objects.count() == 1


def test_load_instrument_names_the_item_and_the_line_of_each_problem(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text(SOURCE.replace("{code: 2, en: Man, fr: Homme}", "{code: 2, en: Man}")
                    .replace('fr: "Étape {current} sur {total}"', 'fr: "Étape {courant} sur {total}"'), encoding="utf-8")
    gender_line = SOURCE.splitlines().index("      - code: gender") + 1
    with pytest.raises(CommandError) as error:
        call_command("load_instrument", str(path))
    message = str(error.value)
    assert f"line {gender_line}: item gender (page ses).options[1]: missing 'fr' text" in message
    assert "texts.progress: the English and French texts must use the same {placeholders}" in message
    assert not InstrumentVersion.objects.exists()


@pytest.mark.parametrize(("broken", "expected"), [
    ("pages: [", "is not valid YAML"),
    ("- just a list", "must contain a mapping"),
])
def test_unreadable_files_are_refused_clearly(tmp_path, broken, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(broken, encoding="utf-8")
    with pytest.raises(CommandError, match=expected):
        call_command("load_instrument", str(path))
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("load_instrument", str(tmp_path / "missing.yaml"))



def offered_actions(changelist) -> set[str]:
    """The bulk actions a list page offers (none at all: no action form)."""
    form = changelist.context["action_form"]
    return {name for name, _ in form.fields["action"].choices if name} if form else set()

def test_a_page_text_the_views_need_cannot_be_missing():
    document = yaml.safe_load(SOURCE)
    broken = copy.deepcopy(document)
    del broken["texts"]["debrief_body"]
    with pytest.raises(InstrumentError, match="texts.debrief_body: missing"):
        store_version(yaml.safe_dump(broken, allow_unicode=True))


def test_a_revision_needs_its_own_version_label():
    store_version(SOURCE)
    with pytest.raises(InstrumentError, match="already stored with a different text"):
        store_version(SOURCE.replace("Prefer not to say", "Rather not say"))


def test_a_stored_version_cannot_be_edited():
    version, _ = store_version(SOURCE)
    version.source = SOURCE.replace("Woman", "Female")
    with pytest.raises(ImmutableVersionError):
        version.save()
    version.refresh_from_db()
    version.note = version.note  # saving unchanged text is harmless
    version.save()


def test_the_default_version_is_the_configured_file():
    version = default_version()
    assert version.label == load_instrument(settings.FLOODLIGHT_INSTRUMENT).version
    assert default_version() == version and InstrumentVersion.objects.count() == 1
    study = Study.objects.create(slug="plain", title="Plain")  # other code creates studies like this
    assert study.questionnaire == version and study.consent_version == version.consent_version
    assert study.instrument is version.instrument  # parsed once per process


def test_placeholder_contacts_are_flagged_for_real_studies_only():
    sample, _ = store_version(SOURCE)
    problems = instrument_problems(sample, demo=False)
    assert any("texts.consent_body (en)" in p and "ethics@example.org" in p and "1-800-555-0100" in p for p in problems)
    assert any("texts.debrief_body (fr)" in p and "ethique@example.org" in p for p in problems)
    assert not any("error_email" in p for p in problems)  # an example address as a format hint is fine
    assert instrument_problems(sample, demo=True) == []
    real, _ = store_version(REAL_CONTACTS)
    assert instrument_problems(real, demo=False) == []


def test_a_new_consent_text_is_a_new_consent_version():
    first, _ = store_version(SOURCE)
    other, _ = store_version(SOURCE.replace("It takes about 12 minutes.", "It takes about 15 minutes.")
                             .replace("version: floodlight-v1", "version: floodlight-v1b", 1))
    assert first.consent_version.startswith("1.0/") and other.consent_version.startswith("1.0/")
    assert first.consent_version != other.consent_version


# --- admin -----------------------------------------------------------------------------------------


def test_admin_upload_stores_a_version_and_shows_problems_with_lines(admin_client):
    response = admin_client.post("/admin/instrument/instrumentversion/add/",
                                 {"text": SOURCE.replace("{code: 2, en: Man, fr: Homme}", "{code: 2, en: Man}")})
    assert response.status_code == 200 and not InstrumentVersion.objects.exists()
    assert "item gender (page ses).options[1]: missing &#x27;fr&#x27; text" in response.content.decode()
    response = admin_client.post("/admin/instrument/instrumentversion/add/",
                                 {"text": REAL_CONTACTS.replace("\n", "\r\n"), "note": "pasted"})
    assert response.status_code == 302
    version = InstrumentVersion.objects.get()
    assert version.source == REAL_CONTACTS  # CRLF from the browser: the file's own hash
    page = admin_client.get(f"/admin/instrument/instrumentversion/{version.pk}/change/").content.decode()
    assert "reb@uottawa.ca" in page and "ceR@uottawa.ca" in page and "No placeholder contacts" in page
    revise = admin_client.get(f"/admin/instrument/instrumentversion/add/?from={version.pk}").content.decode()
    assert "floodlight-uottawa-1" in revise
    # Immutable: no change form, and a version in use cannot be deleted.
    Study.objects.create(slug="uses", title="Uses", questionnaire=version)
    assert admin_client.post(f"/admin/instrument/instrumentversion/{version.pk}/change/", {"note": "x"}).status_code == 403
    assert admin_client.post(f"/admin/instrument/instrumentversion/{version.pk}/delete/", {"post": "yes"}).status_code == 403


def test_a_version_in_use_is_kept_and_a_superuser_is_told_why(admin_client):
    used, _ = store_version(SOURCE)
    Study.objects.create(slug="pei-pilot", title="PEI pilot", questionnaire=used)
    changelist = "/admin/instrument/instrumentversion/"
    # Every version in use: no bulk delete offered, no Delete button on the version.
    assert "delete_selected" not in offered_actions(admin_client.get(changelist))
    assert f"/{used.pk}/delete/" not in admin_client.get(f"{changelist}{used.pk}/change/").content.decode()
    refused = admin_client.post(f"{changelist}{used.pk}/delete/", {"post": "yes"})
    page = refused.content.decode()
    assert refused.status_code == 403 and "it is used by study pei-pilot (a version in use is kept)" in page
    assert "You are a superuser" in page and "Your roles" not in page and "Ask a superuser" not in page
    unused, _ = store_version(REAL_CONTACTS)
    assert "delete_selected" in offered_actions(admin_client.get(changelist))
    both = admin_client.post(changelist, {"action": "delete_selected", "_selected_action": [used.pk, unused.pk]})
    page = both.content.decode()
    assert "it is used by study pei-pilot" in page and "have permission" not in page
    admin_client.post(changelist, {"action": "delete_selected", "_selected_action": [unused.pk], "post": "yes"})
    assert list(InstrumentVersion.objects.all()) == [used]


def test_a_staff_account_without_a_role_is_told_it_has_none(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("new-ra", is_staff=True))
    page = client.get("/admin/instrument/instrumentversion/add/").content.decode()
    assert "Your account has no role yet" in page and "Your roles: none" not in page


def test_a_fresh_install_lists_the_sample_so_that_it_can_be_revised(admin_client):
    assert not InstrumentVersion.objects.exists()
    page = admin_client.get("/admin/instrument/instrumentversion/").content.decode()
    sample = InstrumentVersion.objects.get()
    assert sample.source == SOURCE and "The sample questionnaire floodlight-v1 is stored" in page
    assert f"/admin/instrument/instrumentversion/{sample.pk}/change/" in page
    assert "?from=" in admin_client.get(f"/admin/instrument/instrumentversion/{sample.pk}/change/").content.decode()
    admin_client.get("/admin/instrument/instrumentversion/")
    assert InstrumentVersion.objects.count() == 1  # stored once


def test_uploading_needs_the_add_permission(client, django_user_model):
    user = django_user_model.objects.create_user("ra", password="pw", is_staff=True)
    client.force_login(user)
    assert client.get("/admin/instrument/instrumentversion/add/").status_code == 403
    user.user_permissions.add(Permission.objects.get(codename="add_instrumentversion"))
    assert client.get("/admin/instrument/instrumentversion/add/").status_code == 200


def test_the_database_check_flags_real_studies_with_placeholder_contacts():
    from studyserver.studies.checks import real_studies_show_real_contacts

    Study.objects.create(slug="real", title="Real", demo=False)
    Study.objects.create(slug="demo", title="Demo", demo=True)
    Study.objects.create(slug="ready", title="Ready", demo=False, questionnaire=store_version(REAL_CONTACTS)[0])
    assert real_studies_show_real_contacts(None) == []  # only when a database is named (check --database)
    warnings = real_studies_show_real_contacts(None, databases=["default"])
    assert warnings and {w.obj.slug for w in warnings} == {"real"}
    assert {w.id for w in warnings} == {"instrument.W001"} and "ethics@example.org" in warnings[0].msg

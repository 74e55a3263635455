"""Another browser holding only a panel id learns nothing stored before it explicitly continues."""

from __future__ import annotations

import pytest
from django.test import Client

from studyserver.survey.models import PageSubmission

from .conftest import YUKON, Respondent, make_study

pytestmark = pytest.mark.django_db


def test_a_browser_resuming_by_panel_id_sees_nothing_stored_until_it_continues(yukon):
    study = make_study()
    owner = Respondent(study, panel_id="R-7")
    owner.enter()
    owner.consent()
    owner.post("postal", {"postal_code": YUKON})
    step = owner.answer_until(lambda current: current in {"treatment", "debrief"})
    before = PageSubmission.objects.count()
    stranger = Respondent(study, panel_id="R-7", client=Client())
    page = stranger.enter()
    text = page.content.decode()
    assert page.status_code == 200 and "Welcome back" in text and 'value="continue"' in text
    # No step, district, riding, picture, progress or participant link: nothing the owner stored.
    for stored in ("Yukon", yukon.name_en, yukon.fed_code, "/take/", "/media/", "progress", step):
        assert stored not in text, stored
    assert stranger.browser.tokens == []  # not bound to the participant
    assert PageSubmission.objects.count() == before
    # In French too, from the link's ?lang=.
    french = Respondent(study, panel_id="R-7", language="fr", client=Client()).enter().content.decode()
    assert "Bon retour" in french and "Yukon" not in french
    # Explicitly continuing resumes at the current step (as a participant who changed devices expects).
    assert stranger.take_over()["Location"].endswith(f"/{step}/")
    # The owner's own browser is never asked.
    assert owner.enter()["Location"].endswith(f"/{step}/")


def test_a_version_stored_without_the_resume_texts_still_shows_a_page_revealing_nothing(yukon):
    from pathlib import Path

    import yaml
    from django.conf import settings

    from studyserver.instrument.versions import store_version

    document = yaml.safe_load(Path(settings.FLOODLIGHT_INSTRUMENT).read_text(encoding="utf-8"))
    for key in ("resume_title", "resume_body", "resume_continue"):
        document["texts"].pop(key)
    document["version"] = "before-resume-texts"
    version, _ = store_version(yaml.safe_dump(document, allow_unicode=True))
    study = make_study(questionnaire=version)
    owner = Respondent(study, panel_id="R-8")
    owner.enter()
    owner.consent()
    text = Respondent(study, panel_id="R-8", client=Client()).enter().content.decode()
    title, button = document["texts"]["study_title"]["en"], document["texts"]["continue"]["en"]
    assert f"<h1>{title}</h1>" in text and f'class="primary">{button}</button>' in text
    assert "Welcome back" not in text and "/take/" not in text

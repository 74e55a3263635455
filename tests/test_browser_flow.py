"""A participant clicks through the whole study in the real Chromium, on a phone and on a laptop.

The server is Django's live server on the test PostgreSQL database; the answers typed in the
browser are read back from the database at the end.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from studyserver.geo.models import District
from studyserver.instrument.definition import get_instrument
from studyserver.survey.models import Exposure, PageSubmission, Participant, PersonalData
from studyserver.survey.tests.conftest import (
    MONTREAL,
    YUKON,
    answers_for,
    approve_images_for,
    make_study,
)

CHROMIUM = os.environ.get("FLOODLIGHT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
PHONE = {"width": 360, "height": 740}  # the narrowest common phone width
# axe-core from the npm registry (package.json; scripts/setup.sh --browser runs npm ci).
AXE = Path(__file__).resolve().parents[1] / "node_modules" / "axe-core" / "axe.min.js"
WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
LAPTOP = {"width": 1366, "height": 768}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.xdist_group("browser"),
    pytest.mark.skipif(shutil.which(CHROMIUM) is None and not os.path.exists(CHROMIUM),
                       reason=f"no Chromium at {CHROMIUM} (scripts/setup.sh --browser installs it)"),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop; Django refuses ORM calls from async contexts.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def study_in_yukon(geo2023, transactional_db, settings, tmp_path):
    """A study on the 2023 order (the one in force), with Yukon's images approved."""
    settings.MEDIA_ROOT = tmp_path / "media"
    approve_images_for(District.objects.get(representation_order="2023", fed_code="60001"))
    return make_study(first_arm="house", min_exposure_seconds=5, representation_order="2023")


@pytest.fixture
def study_in_yukon_2013(geo2013, transactional_db, settings, tmp_path):
    """The same on the 2013 order, still loadable beside 2023 for comparisons with 2015–2021."""
    settings.MEDIA_ROOT = tmp_path / "media"
    approve_images_for(District.objects.get(representation_order="2013", fed_code="60001"))
    return make_study(first_arm="house", min_exposure_seconds=5, representation_order="2013")


def assert_accessible(page: Any, where: str) -> None:
    """axe-core on the page as shown: no serious or critical WCAG 2.1 AA violation."""
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run scripts/setup.sh --browser (npm ci installs axe-core)")
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))  # evaluated, not a <script> tag: no CSP can block it
    result = page.evaluate("tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG_21_AA)
    serious = [(v["id"], v["impact"], v["help"], [n["target"] for n in v["nodes"]][:3])
               for v in result["violations"] if v["impact"] in ("serious", "critical")]
    assert not serious, (where, serious)


def fill_page(page: Any, participant: Participant, overrides: dict[str, Any]) -> None:
    """Answer the questionnaire page on screen as a person would: click radios, type numbers."""
    definition = get_instrument().page(participant.current_step)
    answers = answers_for(definition, participant.province_code, participant.answers(), overrides)
    for code, value in answers.items():
        item = get_instrument().item(code)
        if item.type in {"choice", "scale", "yesno"}:
            page.locator(f'input[name="{code}"][value="{value}"]').check()
        elif item.type == "checkbox":
            page.locator(f'input[name="{code}"]').check()
        else:
            page.locator(f'input[name="{code}"]').fill(str(value))


def take_the_study(browser: Any, live_server: Any, study: Any, language: str, viewport: dict[str, int],
                   panel_id: str) -> tuple[Participant, Any]:
    context = browser.new_context(viewport=viewport, locale="fr-CA" if language == "fr" else "en-CA")
    page = context.new_page()
    texts = {key: text.get(language) for key, text in get_instrument().texts.items()}
    page.goto(f"{live_server.url}/s/{study.slug}/?pid={panel_id}&lang={language}")
    assert page.locator("html").get_attribute("lang") == language
    assert_accessible(page, f"consent ({language})")

    page.get_by_label(texts["consent_age"]).check()
    page.get_by_role("button", name=texts["consent_agree"]).click()

    # A typo first: the message names the problem and the page keeps the participant's place.
    page.get_by_label(texts["postal_label"]).fill("Y1A 6E")
    page.get_by_role("button", name=texts["continue"]).click()
    assert page.locator(".field-error").count() == 1
    assert_accessible(page, f"postal code with an error ({language})")
    page.get_by_label(texts["postal_label"]).fill(YUKON.lower().replace(" ", ""))
    page.get_by_role("button", name=texts["continue"]).click()

    participant = Participant.objects.get(study=study)
    yes = {"info_emissions": 1, "info_floodprotect": 0, "letter_want": 1, "letter_signed": True,
           "signature_name": "Camille Exemple", "email": "camille@example.org"}
    for _ in range(20):
        participant.refresh_from_db()
        step = participant.current_step
        if step == "treatment":
            # Before the accessibility scan, which can take seconds on a loaded machine.
            button = page.get_by_role("button", name=texts["continue"])
            assert not button.is_visible()  # hidden until the minimum display time has passed
        assert_accessible(page, f"{step} ({language})")
        if step == "treatment":
            image = page.locator("figure.stimulus img")
            assert image.is_visible() and image.evaluate("img => img.naturalWidth") > 0
            button.wait_for(state="visible", timeout=20_000)
            button.click()
        elif step == "debrief":
            assert texts["debrief_finish"] in page.content()
            page.get_by_role("button", name=texts["debrief_finish"]).click()
            break
        else:
            if step == "letter_sign":
                # Paragraphs, not the source's hard line breaks, at every width.
                paragraphs = page.locator("blockquote.letter p").all_inner_texts()
                assert len(paragraphs) >= 3 and not any("\n" in text for text in paragraphs), paragraphs
            # The honeypot (survey/_honeypot.html) is in the markup, not rendered, out of the keyboard order.
            trap = page.locator('input[name="website"]')
            assert trap.count() == 1 and not trap.is_visible() and trap.get_attribute("tabindex") == "-1"
            fill_page(page, participant, yes)
            page.get_by_role("button", name=texts["continue"]).click()
            page.wait_for_load_state()
            assert page.locator(".field-error").count() == 0, (step, page.locator(".field-error").all_inner_texts())
    page.wait_for_url(f"**/done/complete/?pid={panel_id}")
    assert_accessible(page, f"panel redirect ({language})")
    participant.refresh_from_db()
    return participant, context


@pytest.mark.parametrize(("language", "viewport"), [("en", LAPTOP), ("fr", PHONE)], ids=["en-laptop", "fr-phone"])
def test_a_participant_takes_the_whole_study(browser, live_server, study_in_yukon, language, viewport):
    started = timezone.now()
    participant, context = take_the_study(browser, live_server, study_in_yukon, language, viewport,
                                          panel_id=f"B-{language}")
    context.close()
    assert participant.state == Participant.State.COMPLETED and participant.current_step == "finished"
    assert participant.language == language and participant.district.fed_code == "60001"
    assert participant.district.representation_order == "2023"
    assert participant.assignment.arm == "house"
    exposure = Exposure.objects.get(participant=participant)
    # Measured on the server: the image's bytes went out after the page, before the submit.
    assert started <= exposure.page_served_at <= exposure.image_loaded_at <= exposure.submitted_at
    assert exposure.exposure_ms >= 5_000
    steps = list(PageSubmission.objects.filter(participant=participant).values_list("step", flat=True))
    assert len(steps) == len(set(steps)) and "letter_sign" in steps and "info_email" in steps
    assert participant.answers()["letter_signed"] == 1
    assert participant.honeypot_step == ""  # a person never fills the trap
    personal = PersonalData.objects.get(participant=participant)
    assert personal.signature_name == "Camille Exemple" and personal.postal_code == YUKON
    assert personal.email == "camille@example.org"


def test_a_participant_of_a_2013_study_is_placed_in_its_order(browser, live_server, study_in_yukon_2013):
    participant, context = take_the_study(browser, live_server, study_in_yukon_2013, "en", LAPTOP, panel_id="O-13")
    context.close()
    assert participant.state == Participant.State.COMPLETED
    assert (participant.district.representation_order, participant.district.fed_code) == ("2013", "60001")


def test_pages_fit_a_phone_screen_without_sideways_scrolling(browser, live_server, study_in_yukon):
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.goto(f"{live_server.url}/s/{study_in_yukon.slug}/?pid=W-1&lang=fr")
    widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    context.close()
    assert widths[0] <= widths[1]


def save(page: Any) -> None:
    """Save the admin form and wait for the page that comes back."""
    with page.expect_navigation():
        page.get_by_role("button", name="Save and continue editing").click()
    page.wait_for_load_state()


def test_a_researcher_prepares_and_opens_a_pilot_from_the_admin(browser, live_server, geo2023, transactional_db,
                                                                settings, tmp_path):
    """Create a study, read why it cannot open, get its images, open it (confirming the test weights),
    and a participant's Prolific link: decline goes back to the panel with its status."""
    from django.contrib.auth.models import User

    from studyserver.studies.models import Study
    from studyserver.treatments.models import Stimulus
    from tests.support.instrument import version_with_real_contacts

    settings.MEDIA_ROOT = tmp_path / "media"
    User.objects.create_superuser("lead", "lead@example.org", "pw-lead-1")
    questionnaire = version_with_real_contacts()  # loaded beforehand (load_instrument)
    context = browser.new_context(viewport=LAPTOP)
    page = context.new_page()
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "lead")
    page.fill("#id_password", "pw-lead-1")
    with page.expect_navigation():
        page.get_by_role("button", name="Log in").click()
    assert page.get_by_role("link", name="Review queue").is_visible()
    assert page.get_by_role("link", name="Coverage board").is_visible()

    page.goto(f"{live_server.url}/admin/studies/study/add/")
    page.fill("#id_title", "Yukon pilot")  # the slug follows the title (yukon-pilot)
    page.select_option("#id_questionnaire", questionnaire.content_hash)
    assert page.locator("#id_representation_order").input_value() == "2023"  # the order in force, by default
    page.select_option("#id_scope", "districts")
    page.fill("#id_scope_districts", "60001")
    page.fill("#id_panel_id_parameter", "PROLIFIC_PID")
    page.fill("#id_panel_parameters", "STUDY_ID, SESSION_ID")
    page.fill("#id_complete_url_template", "https://app.prolific.com/submissions/complete?cc=DONE1&p={respondent}")
    for kind in ("screenout", "overquota", "declined"):
        page.fill(f"#id_{kind}_url_template",
                  f"https://app.prolific.com/submissions/complete?cc={kind.upper()}&p={{pid}}&s={{SESSION_ID}}")
    page.check("#id_is_open")
    save(page)
    # A placeholder typo and the missing images: refused, with the reasons, nothing lost.
    assert "Unknown placeholder {respondent}" in page.content()
    page.fill("#id_complete_url_template", "https://app.prolific.com/submissions/complete?cc=DONE1&p={pid}")
    save(page)
    assert "Not ready for its scope: Approved images are missing for 1 of the 1 districts" in page.content()
    page.uncheck("#id_is_open")
    save(page)
    study = Study.objects.get(title="Yukon pilot")
    assert study.slug == "yukon-pilot", study.slug
    assert not study.is_open and study.allocation_scheme.arms  # the scheme is there before opening
    overview = page.locator(".field-before_opening").inner_text()
    for expected in ("Blocks opening", "provincial_landmark", "Province", "cc=DECLINED&p=TEST&s=TEST-SESSION_ID",
                     "real, unaltered photograph"):
        assert expected in overview, expected
    assert "no longer exist" not in overview  # its letters go to the sitting members' ridings
    assert_accessible(page, "study page with its readiness")

    # The coverage board of the study: Yukon (2023) is its one district, nothing approved yet.
    page.goto(f"{live_server.url}{reverse('admin:treatments_coverage')}?study={study.slug}")
    board = page.locator("main, #content").first.inner_text()
    assert "Yukon" in board and "60001" in board
    assert_accessible(page, "coverage board")
    page.goto(f"{live_server.url}/admin/studies/study/{study.pk}/change/")

    # Generation and review happen on the gpu worker and the review queue; here their outcome.
    approve_images_for(District.objects.get(representation_order="2023", fed_code="60001"))
    Stimulus.objects.update(backend="reference-sim-tiny")
    page.reload()
    assert "Needs confirmation" in page.locator(".field-before_opening").inner_text()
    page.check("#id_is_open")
    save(page)
    assert "Tick the box to open anyway" in page.content()
    page.check("#id_confirm_test_weights")
    save(page)
    assert "was changed successfully" in page.content()
    study.refresh_from_db()
    assert study.is_open

    participant = context.new_page()
    participant.goto(f"{live_server.url}/s/yukon-pilot/?PROLIFIC_PID=pp-7&STUDY_ID=st&SESSION_ID=se-3")
    with participant.expect_navigation():
        participant.get_by_role("button", name=get_instrument().text("consent_decline", "en")).click()
    back = participant.get_by_role("link", name="Return to the panel")
    assert back.get_attribute("href") == "https://app.prolific.com/submissions/complete?cc=DECLINED&p=pp-7&s=se-3"
    context.close()
    study.refresh_from_db()
    assert study.declined_count == 1 and not Participant.objects.filter(study=study).exists()
@pytest.mark.parametrize(("language", "viewport"), [("en", LAPTOP), ("fr", PHONE)], ids=["en-laptop", "fr-phone"])
def test_the_district_picker_helps_with_places_and_a_map(browser, live_server, study_in_yukon, language, viewport):
    """A Montreal postal area spans two ridings: the list, the places near them and the map."""
    context = browser.new_context(viewport=viewport, locale="fr-CA" if language == "fr" else "en-CA")
    page = context.new_page()
    texts = {key: text.get(language) for key, text in get_instrument().texts.items()}
    page.goto(f"{live_server.url}/s/{study_in_yukon.slug}/?pid=D-{language}&lang={language}")
    page.get_by_label(texts["consent_age"]).check()
    page.get_by_role("button", name=texts["consent_agree"]).click()
    page.get_by_label(texts["postal_label"]).fill(MONTREAL)
    page.get_by_role("button", name=texts["continue"]).click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", level=1).inner_text() == texts["district_title"]
    options = page.locator(".option label")
    assert options.count() >= 3  # two or more ridings and "none of these"
    first = options.nth(0).inner_text()
    assert "Laurier—Sainte-Marie" in first and "Downtown Montreal" in first  # places near H2X, from GeoNames
    assert "H2X" in first  # the share of the postal area
    assert options.nth(options.count() - 1).inner_text() == texts["district_none"]
    figure = page.get_by_role("img", name=texts["district_map_title"].format(fsa="H2X"))
    assert figure.is_visible()
    box = figure.bounding_box()
    assert box["width"] <= viewport["width"]
    description = page.locator("#district-map-desc").text_content()
    assert "1:" in description and "2:" in description
    widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1]
    assert_accessible(page, f"district ({language})")
    page.locator(".option input").nth(0).check()
    page.get_by_role("button", name=texts["continue"]).click()
    page.wait_for_load_state()
    context.close()
    participant = Participant.objects.get(study=study_in_yukon)
    # Laurier—Sainte-Marie or Ville-Marie—Le Sud-Ouest—Île-des-Soeurs, of the 2023 order.
    assert participant.district is not None and participant.district.representation_order == "2023"
    assert participant.district.fed_code in {"24037", "24077"}

"""The questions' markup (rendered by survey/_field.html through Django's form API): what the
participant pages rely on, on every page in both languages; and a questionnaire page reads the
participant's pages once."""

from __future__ import annotations

import copy
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.core.cache import caches
from django.db import connection
from django.template.loader import render_to_string
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from studyserver.geo.models import DISTRICT_ROWS
from studyserver.instrument.definition import get_instrument, parse_instrument
from studyserver.studies.models import STUDY_ROWS
from studyserver.survey import flow
from studyserver.survey.forms import QUESTION_MARKUP_CACHE, InstrumentPageForm

from .conftest import Respondent, make_study


class Element:
    def __init__(self, tag: str, attrs: dict[str, str | None], parent: Element | None) -> None:
        self.tag, self.attrs, self.parent, self.text = tag, attrs, parent, ""

    def ancestor(self, tag: str) -> Element | None:
        node = self.parent
        while node is not None and node.tag != tag:
            node = node.parent
        return node


class Elements(HTMLParser):
    """Every element of a page, with its attributes (unescaped) and its text (its children's too)."""

    VOID = {"input", "meta", "link", "br", "img"}

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.all: list[Element] = []
        self.open: list[Element] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        element = Element(tag, dict(attrs), self.open[-1] if self.open else None)
        self.all.append(element)
        if tag not in self.VOID:
            self.open.append(element)

    def handle_endtag(self, tag):
        while self.open and self.open.pop().tag != tag:
            pass

    def handle_data(self, data):
        for element in self.open:
            element.text += data

    def find(self, tag: str, **attrs: str) -> list[Element]:
        return [e for e in self.all if e.tag == tag and all(e.attrs.get(k) == v for k, v in attrs.items())]


def _forms(page, language: str, instrument=None):
    instrument = instrument or get_instrument()
    everything_visible = {item.code: 1 for p in instrument.pages for item in p.items}
    kwargs = {"page": page, "instrument": instrument, "language": language,
              "earlier_answers": everything_visible, "province_code": "QC"}
    first = {item.code: item.options_for("QC")[0].code for item in page.items if item.options_for("QC")}
    yield InstrumentPageForm(**kwargs)  # unbound, no initial
    yield InstrumentPageForm(initial=first, **kwargs)  # the stored answers of a revisited page
    bound = InstrumentPageForm({"csrfmiddlewaretoken": "x"}, **kwargs)  # every required item missing
    bound.is_valid()
    yield bound
    chosen = InstrumentPageForm({code: str(value) for code, value in first.items()}, **kwargs)
    chosen.is_valid()
    yield chosen


def _page(form, language: str) -> Elements:
    texts = {key: text.get(language) for key, text in form.instrument.texts.items()}
    return Elements(render_to_string("survey/page.html", {
        "form": form, "page": form.page, "title": form.page.title.get(language), "t": texts,
        "lang": language, "honeypot_field": "website"}))


@pytest.mark.parametrize("language", ["en", "fr"])
def test_every_question_is_labelled_and_its_errors_are_announced(language):
    checked = with_errors = 0
    for page in get_instrument().pages:
        for form in _forms(page, language):
            html = _page(form, language)
            ids = {e.attrs["id"] for e in html.all if e.attrs.get("id")}
            for item in form.items:
                field = form[item.code]
                inputs = html.find("input", name=item.code)
                assert inputs, item.code
                for element in inputs:
                    labels = html.find("label", **{"for": element.attrs["id"]})
                    assert len(labels) == 1, (item.code, element.attrs)
                    assert ("required" in element.attrs) == (item.required and item.type != "checkbox")
                    assert (element.attrs.get("aria-invalid") == "true") == bool(field.errors)
                    if field.errors and not field.field.widget.use_fieldset:
                        assert f"{field.auto_id}_error" in element.attrs["aria-describedby"].split()
                if item.type in {"choice", "scale", "yesno"}:
                    fieldset = inputs[0].ancestor("fieldset")
                    assert fieldset is not None and all(e.ancestor("fieldset") is fieldset for e in inputs)
                    legend = next(e for e in html.find("legend") if e.parent is fieldset)
                    assert legend.text.startswith(item.text.get(language))
                    assert [html.find("label", **{"for": e.attrs["id"]})[0].text for e in inputs] == [
                        option.text.get(language) for option in item.options_for("QC")]
                    described = fieldset.attrs.get("aria-describedby")
                else:
                    label = html.find("label", **{"for": inputs[0].attrs["id"]})[0]
                    assert label.text.startswith(item.text.get(language))
                    described = inputs[0].attrs.get("aria-describedby")
                if field.errors:  # the error is shown, and what the field is described by exists
                    error = html.find("p", id=f"{field.auto_id}_error")
                    assert [e.text for e in error] == list(field.errors)
                    assert described and set(described.split()) <= ids, (item.code, described)
                    with_errors += 1
                checked += 1
    assert checked > 150 and with_errors > 30


HOSTILE = '<script>alert(1)</script>"=HYPERLINK("http://x","y")'


@pytest.mark.parametrize("language", ["en", "fr"])
def test_instrument_texts_and_typed_answers_are_escaped(language):
    document = yaml.safe_load(Path(settings.FLOODLIGHT_INSTRUMENT).read_text(encoding="utf-8"))
    hostile = copy.deepcopy(document)
    for page in hostile["pages"]:
        for item in page["items"]:
            item["text"] = {"en": HOSTILE + " en", "fr": HOSTILE + " fr"}
    hostile["option_sets"]["agree5"][0].update(en=HOSTILE, fr=HOSTILE)
    instrument = parse_instrument(hostile)
    seen = 0
    for page in instrument.pages:
        typed = {item.code: HOSTILE for item in page.items if item.type in {"text", "email", "integer"}}
        form = InstrumentPageForm(typed, page=page, instrument=instrument, language=language,
                                  earlier_answers={}, province_code="QC")
        form.is_valid()
        raw = render_to_string("survey/page.html", {"form": form, "page": page, "t": {}, "honeypot_field": "website"})
        assert "<script>" not in raw and '"=HYPERLINK(' not in raw
        html = Elements(raw)
        assert not html.find("script")
        for code in typed:  # the typed text comes back as the value, character for character
            assert [e.attrs["value"] for e in html.find("input", name=code)] == [HOSTILE]
        texts = [e.text for e in html.all if e.tag in {"label", "legend"}]
        # the question (in the page's language) and the option come back as written
        assert all(text == HOSTILE or text.startswith(f"{HOSTILE} {language}") for text in texts if "HYPERLINK" in text)
        seen += sum(HOSTILE in text for text in texts)
    assert seen > 20


def _placed_in_yukon() -> Respondent:
    """A participant who consented and was placed in Yukon (control arm): on the first questionnaire page."""
    respondent = Respondent(make_study(first_arm="control"))
    respondent.enter()
    respondent.consent()
    respondent.post("postal", {"postal_code": "Y1A 6E5"})
    return respondent


@pytest.mark.django_db
def test_a_questionnaire_page_reads_the_participants_pages_once(yukon):
    respondent = _placed_in_yukon()
    url = respondent.url(respondent.current_step())
    participant = respondent.participant
    STUDY_ROWS.get(participant.study_id)  # as any earlier page of anyone in the study and the riding leaves them
    DISTRICT_ROWS.get(participant.district_id)
    with CaptureQueriesContext(connection) as queries:
        response = respondent.client.get(url)
    assert response.status_code == 200
    statements = [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]
    submission_reads = [sql for sql in statements if 'FROM "survey_pagesubmission"' in sql]
    assert len(submission_reads) == 1, submission_reads
    # The participant (with their arm) in one statement, their pages, the page-view record
    # (one upsert); the study and the district from the cache, the browser's participants from its
    # signed cookie: no session.
    assert len(statements) == 3, "\n".join(sql[:150] for sql in statements)
    participant_reads = [sql for sql in statements if 'FROM "survey_participant"' in sql]
    assert len(participant_reads) == 1, participant_reads
    assert not any(table in sql for sql in statements
                   for table in ('"django_session"', 'FROM "studies_study"', 'FROM "geo_district"'))


@pytest.mark.django_db
def test_the_pages_participant_query_reads_everything_a_page_needs_at_once(yukon, django_assert_num_queries):
    from studyserver.survey.models import page_submissions, participant_for_page

    respondent = Respondent(make_study(first_arm="distant"))
    respondent.enter()
    respondent.consent()
    seen = 0
    for _ in range(30):  # every step to the end: no district, then a district, an arm, an exposure
        participant = respondent.participant
        participant_for_page(respondent.token)  # the first page of a study or a district keeps its row
        with django_assert_num_queries(1):
            fast = participant_for_page(respondent.token)
        with django_assert_num_queries(0):  # study, district and arm came with it
            related = {name: getattr(fast, name, None) for name in ("study", "district", "assignment")}
        stored = flow.exposure_of(participant)
        with django_assert_num_queries(1):  # the exposure when a page asks for it
            assert flow.exposure_of(fast) == stored
        with django_assert_num_queries(1):  # the pages that show it have it joined
            shown = participant_for_page(respondent.token, with_exposure=True)
        with django_assert_num_queries(0):
            related["exposure"] = flow.exposure_of(shown)
        assert fast.pk == participant.pk and related["study"].pk == participant.study_id
        assert (related["district"] and related["district"].pk) == participant.district_id
        assert fast.district is None or fast.district.get_deferred_fields() == {"geometry_wkb"}
        assert page_submissions(fast) == [(s.step, s.answers, s.submitted_at) for s in participant.submissions.all()]
        seen += 1
        step = respondent.current_step()
        if step in {"finished", "debrief", "screened_out"}:
            break
        if step == "postal":
            respondent.post("postal", {"postal_code": "Y1A 6E5"})
        elif step == "treatment":
            respondent.get("treatment")
            from studyserver.survey.models import Exposure
            Exposure.objects.filter(participant=participant).update(
                page_served_at=Exposure.objects.get(participant=participant).page_served_at.replace(year=2000))
            respondent.post("treatment", {})
        else:
            respondent.answer_page(step)
    assert seen > 10 and related["exposure"] is not None
    assert participant_for_page("no-such-token") is None


@pytest.mark.django_db
def test_serving_a_page_again_keeps_its_first_time_and_moves_the_last(yukon):
    from studyserver.survey.models import PageView

    respondent = Respondent(make_study())
    respondent.enter()
    respondent.consent()  # the participant exists from here on; the postal code page is theirs
    respondent.get("postal")
    first = PageView.objects.get(participant=respondent.participant, step="postal")
    respondent.get("postal")
    respondent.get("postal")
    again = PageView.objects.get(participant=respondent.participant, step="postal")
    assert PageView.objects.filter(participant=respondent.participant, step="postal").count() == 1
    assert again.first_served_at == first.first_served_at == first.last_served_at < again.last_served_at


@pytest.mark.django_db
def test_a_participants_page_sees_the_study_and_riding_as_last_saved(yukon):
    from studyserver.survey.models import participant_for_page

    respondent = _placed_in_yukon()
    page = participant_for_page(respondent.token)
    assert (page.study.min_exposure_seconds, page.district.name_en) == (10, yukon.name_en)
    study = page.study.__class__.objects.get(pk=page.study_id)
    study.min_exposure_seconds = 25  # a researcher's edit in the admin
    study.save()
    yukon.name_en = "Yukon (renamed)"  # a reload of the reference data
    yukon.save()
    page = participant_for_page(respondent.token)
    assert (page.study.min_exposure_seconds, page.district.name_en) == (25, "Yukon (renamed)")


def _questions_markup(form) -> list[str]:
    return [str(form[item.code].as_field_group()) for item in form.items]


@pytest.mark.parametrize("language", ["en", "fr"])
def test_a_question_kept_in_the_cache_is_the_same_bytes_as_rendered_afresh(language):
    markup_cache = caches[QUESTION_MARKUP_CACHE]
    markup_cache.clear()
    afresh = kept = 0
    for page in get_instrument().pages:
        for form in _forms(page, language):
            with override_settings(CACHES={**settings.CACHES, QUESTION_MARKUP_CACHE: {
                    "BACKEND": "django.core.cache.backends.dummy.DummyCache"}}):
                rendered = _questions_markup(form)  # nothing kept: every question rendered
            first = _questions_markup(form)  # rendered and kept
            assert _questions_markup(form) == first == rendered  # read back from the cache
            for item in form.items:
                key = form[item.code].markup_key()
                if key is None:
                    afresh += 1
                    assert form[item.code].errors or item.type not in {"choice", "scale", "yesno", "checkbox"}
                else:
                    kept += 1
                    assert markup_cache.get(key) == str(form[item.code].as_field_group())
    assert afresh > 30 and kept > 100


def test_a_questions_markup_is_kept_per_answer_and_language_and_never_with_typed_text():
    instrument = get_instrument()
    everything = {item.code: 1 for p in instrument.pages for item in p.items}
    radio_page, radio = next((p, i) for p in instrument.pages for i in p.items if i.type in {"choice", "scale"})
    text_page, text = next((p, i) for p in instrument.pages for i in p.items if i.type == "text")

    def form(page, language: str, **initial):
        return InstrumentPageForm(initial=initial, page=page, instrument=instrument, language=language,
                                  earlier_answers=everything, province_code="QC")

    codes = [o.code for o in radio.options_for("QC")]
    keys = {form(radio_page, lang, **{radio.code: code})[radio.code].markup_key()
            for lang in ("en", "fr") for code in [None, *codes]}
    assert None not in keys and len(keys) == 2 * (len(codes) + 1)  # per language and option ticked (or none)
    for code in codes[:2]:
        html = str(form(radio_page, "en", **{radio.code: code})[radio.code].as_field_group())
        assert html.count("checked") == 1 and f'value="{code}"' in html.split("checked")[0].rsplit("<input", 1)[1]
    # what a participant typed is theirs: never a key, never kept, never in another's page
    assert form(text_page, "en", **{text.code: "Jeanne Tremblay"})[text.code].markup_key() is None
    str(form(text_page, "en", **{text.code: "Jeanne Tremblay"})[text.code].as_field_group())
    assert "Jeanne" not in str(form(text_page, "en")[text.code].as_field_group())
    assert "Jeanne" not in str(form(text_page, "en", **{text.code: "Marc"})[text.code].as_field_group())


@pytest.mark.django_db
@pytest.mark.parametrize("language", ["en", "fr"])
def test_the_image_page_reads_its_stimulus_once_and_shows_its_place(yukon, language):
    from django.utils.html import escape

    from studyserver.survey.models import Exposure
    from studyserver.treatments.models import Stimulus

    respondent = Respondent(make_study(first_arm="distant"), language=language)
    respondent.enter()
    respondent.consent()
    respondent.post("postal", {"postal_code": "Y1A 6E5"})
    assert respondent.answer_until(lambda step: step == "treatment") == "treatment"
    participant = respondent.participant
    STUDY_ROWS.get(participant.study_id)
    DISTRICT_ROWS.get(participant.district_id)
    # The first serve: the participant, the stimulus, the exposure clock, the page view; a reload
    # reads the stimulus shown (by its id) and moves the page view.
    for serve, expected in (("first", 4), ("reload", 3)):
        with CaptureQueriesContext(connection) as queries:
            page = respondent.get("treatment")
        assert page.status_code == 200
        statements = [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]
        assert len([sql for sql in statements if 'FROM "treatments_stimulus"' in sql]) == 1, serve
        assert len(statements) == expected, "\n".join(sql[:150] for sql in statements)
    stimulus = Stimulus.objects.get(public_id=Exposure.objects.get(participant=participant).stimulus_id)
    text = page.content.decode()
    assert stimulus.image_url in text and escape(stimulus.place_name(language)) in text


@pytest.mark.django_db
def test_two_tabs_serving_the_image_page_at_once_keep_one_exposure_clock(yukon):
    from studyserver.survey.models import Exposure, PageView, participant_for_page

    respondent = Respondent(make_study(first_arm="distant"))
    respondent.enter()
    respondent.consent()
    respondent.post("postal", {"postal_code": "Y1A 6E5"})
    respondent.answer_until(lambda step: step == "treatment")
    # Both tabs read the participant before either stored the exposure.
    first_tab = participant_for_page(respondent.token, with_exposure=True)
    second_tab = participant_for_page(respondent.token, with_exposure=True)
    stimulus = flow.stimulus_shown(first_tab)
    assert flow.exposure_of(first_tab) is None and flow.exposure_of(second_tab) is None
    kept = flow.treatment_served(first_tab, stimulus.public_id)
    again = flow.treatment_served(second_tab, stimulus.public_id)
    assert Exposure.objects.filter(participant=first_tab).count() == 1
    assert again.pk == kept.pk and again.page_served_at == kept.page_served_at
    assert flow.exposure_of(second_tab).pk == kept.pk  # the page goes on with the clock kept
    # Each tab's serve is recorded, the first with its clock and the second after its rollback.
    view = PageView.objects.get(participant=first_tab, step="treatment")
    assert view.first_served_at <= view.last_served_at and view.first_served_at >= kept.page_served_at

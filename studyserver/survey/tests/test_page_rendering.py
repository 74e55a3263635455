"""The fast rendering of radio groups is the markup Django's widget templates produce, and a
questionnaire page reads the participant's pages once."""

from __future__ import annotations

import pytest
from django.db import connection
from django.template import Context, Template
from django.test.utils import CaptureQueriesContext

from studyserver.instrument.definition import get_instrument
from studyserver.survey.forms import InstrumentPageForm, radio_options_html

from .conftest import Respondent, make_study

# The loop _field.html ran before: one widget template per option.
DJANGO_LOOP = Template(
    '{% for radio in field %}\n    <div class="option">{{ radio.tag }}<label for="{{ radio.id_for_label }}">'
    '{{ radio.choice_label }}</label></div>\n  {% endfor %}'
)


def _forms(page, language: str):
    instrument = get_instrument()
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


@pytest.mark.parametrize("language", ["en", "fr"])
def test_radio_groups_render_exactly_as_django_widgets_do(language):
    compared = 0
    for page in get_instrument().pages:
        for form in _forms(page, language):
            for row in form.rows():
                if row["grouped"]:
                    assert radio_options_html(row["field"]) == DJANGO_LOOP.render(Context({"field": row["field"]}))
                    compared += 1
    assert compared > 50


# How page.html rendered its questions before (survey/_field.html, kept as the reference markup).
TEMPLATE_LOOP = Template(
    '{% for row in form.rows %}{% include "survey/_field.html" with field=row.field item=row.item '
    'grouped=row.grouped options=row.options %}{% endfor %}'
)


@pytest.mark.parametrize("language", ["en", "fr"])
def test_questions_render_exactly_as_the_field_template_does(language):
    instrument = get_instrument()
    texts = {key: text.get(language) for key, text in instrument.texts.items()}
    compared = 0
    for page in instrument.pages:
        for form in _forms(page, language):
            expected = TEMPLATE_LOOP.render(Context({"form": form, "t": texts}))
            assert "".join(row["html"] for row in form.rows()) == expected, page.key
            compared += 1
    assert compared == 4 * len(instrument.pages)


@pytest.mark.django_db
def test_a_questionnaire_page_reads_the_participants_pages_once(yukon):
    respondent = Respondent(make_study(first_arm="control"))
    respondent.enter()
    respondent.consent()
    respondent.post("postal", {"postal_code": "Y1A 6E5"})
    url = respondent.url(respondent.current_step())
    with CaptureQueriesContext(connection) as queries:
        response = respondent.client.get(url)
    assert response.status_code == 200
    statements = [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]
    submission_reads = [sql for sql in statements if 'FROM "survey_pagesubmission"' in sql]
    assert len(submission_reads) == 1, submission_reads
    # The participant (with study, district, arm, exposure) in one statement, their pages, the
    # page-view record (an update, then the insert of a first serve); the session from the cache.
    assert len(statements) <= 4, "\n".join(sql[:150] for sql in statements)
    participant_reads = [sql for sql in statements if 'FROM "survey_participant"' in sql]
    assert len(participant_reads) == 1, participant_reads
    assert not any('"django_session"' in sql for sql in statements)


@pytest.mark.django_db
def test_the_pages_participant_query_reads_everything_a_page_needs_at_once(yukon, django_assert_num_queries):
    from studyserver.survey.models import page_submissions, participant_for_page

    respondent = Respondent(make_study(first_arm="distant"))
    respondent.enter()
    respondent.consent()
    seen = 0
    for _ in range(30):  # every step to the end: no district, then a district, an arm, an exposure
        participant = respondent.participant
        with django_assert_num_queries(1):
            fast = participant_for_page(respondent.token)
        with django_assert_num_queries(0):  # study, district, arm and exposure came with it
            related = {name: getattr(fast, name, None) for name in ("study", "district", "assignment", "exposure")}
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
    assert seen > 10 and fast.exposure is not None
    assert participant_for_page("no-such-token") is None


@pytest.mark.django_db
def test_serving_a_page_again_keeps_its_first_time_and_counts_the_serves(yukon):
    from studyserver.survey.models import PageView

    respondent = Respondent(make_study())
    respondent.enter()
    respondent.consent()  # the participant exists from here on; the postal code page is theirs
    respondent.get("postal")
    first = PageView.objects.get(participant=respondent.participant, step="postal")
    respondent.get("postal")
    respondent.get("postal")
    again = PageView.objects.get(participant=respondent.participant, step="postal")
    assert (first.times_served, again.times_served) == (1, 3)
    assert again.first_served_at == first.first_served_at == first.last_served_at < again.last_served_at

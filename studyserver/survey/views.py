"""Participant-facing views: thin wrappers around :mod:`studyserver.survey.flow`.

A view parses the request, asks the flow (``flow.visit`` for navigation, its submit functions
for every change, ``flow.answers_for_page`` and the like for what a page is shown with) and
renders or redirects: no rule of the participant's progress is decided here. A GET writes
nothing but the page-view record (``flow.record_page_served``), with two exceptions that are
records of serving too: the image page starts the exposure clock, and a language switch
(``?lang=``) is kept on the participant (their e-mails and letter speak it).

Every page works without JavaScript. A participant's pages live under ``/take/<token>/``; the
token must belong to the browser (``sessions.BrowserParticipants``, a signed cookie: a link copied
into another browser gets a clear 403).
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_http_methods

from studyserver.geo.picker import picker_help
from studyserver.geo.services import postal_error_message, province_name
from studyserver.instrument.definition import Instrument, get_instrument
from studyserver.instrument.definition import paragraphs as text_paragraphs
from studyserver.studies.models import EXIT_KINDS, SIGNATURE_PARAMETER, Study

from . import errors, flow, traces
from .forms import ConsentForm, DistrictChoiceForm, InstrumentPageForm, PostalCodeForm
from .models import Participant, PersonalData, participant_for_page
from .sessions import browser_participants
from .signals import page_context

logger = logging.getLogger(__name__)


# --- helpers ------------------------------------------------------------------------------------------


def _language(request: HttpRequest, participant: Participant | None = None) -> str:
    """?lang=, else the participant's, else the one this browser last saw (the language cookie every
    page sets), else the browser's own."""
    requested = request.GET.get("lang")
    if requested in {"en", "fr"}:
        return requested
    if participant is not None:
        return participant.language
    return errors.request_language(request)


def _texts(language: str, instrument: Instrument | None = None) -> dict[str, str]:
    return {key: text.get(language) for key, text in (instrument or get_instrument()).texts.items()}


def _render(request: HttpRequest, template: str, language: str, context: dict[str, Any], status: int = 200,
            participant: Participant | None = None) -> HttpResponse:
    other = "fr" if language == "en" else "en"
    # A participant's pages speak their own questionnaire version; pages before one exists
    # (study closed, a bad link) speak the study's when known, else the default.
    instrument = participant.instrument if participant is not None else context.pop("instrument", None)
    base = {
        "lang": language,
        "other_lang": other,
        "t": _texts(language, instrument),
        "switch_url": _switch_url(request, other),
        "participant": participant,
    }
    if participant is not None:
        # A notice left by a redirect (an earlier page locked or saved) belongs to the page it led
        # to, whichever it is: the image, an outcome question, the debrief or the screen-out.
        base["notice"] = _notice(request, language, instrument)
    if participant is not None and flow.taking_part(participant):
        current, total = flow.progress(participant, instrument)
        base["progress"] = {"current": current, "total": total, "percent": round(100 * current / total)}
        base["progress_text"] = participant.instrument.text("progress", language, current=current, total=total)
    response = render(request, template, {**base, **context}, status=status)
    errors.remember_language(request, response, language)
    return response


def _switch_url(request: HttpRequest, language: str) -> str:
    """This page in the other language, keeping the rest of the query (the entry link's pid)."""
    query = request.GET.copy()
    query["lang"] = language
    return f"{request.path}?{query.urlencode()}"


def _message(request: HttpRequest, title_key: str, body_key: str, status: int, language: str | None = None,
             link: str | None = None, instrument: Instrument | None = None) -> HttpResponse:
    language = language or _language(request)
    texts = _texts(language, instrument)
    return _render(request, "survey/message.html", language,
                   {"title": texts[title_key], "body": texts[body_key], "link": link, "instrument": instrument},
                   status=status)


def _bind(request: HttpRequest, participant: Participant, *, resumed_elsewhere: bool = False) -> None:
    browser_participants(request).bind(participant.token, participant.study.slug, participant.pk,
                                       resumed_elsewhere=resumed_elsewhere)


def _resumed_elsewhere(request: HttpRequest, participant: Participant) -> bool:
    return browser_participants(request).resumed_elsewhere(participant.token)


def _participant_for(request: HttpRequest, token: str, *, with_exposure: bool = False) -> Participant | HttpResponse:
    # With their arm (and exposure) in one query; study and district from the cache.
    participant = participant_for_page(token, with_exposure=with_exposure)
    if participant is None:
        return not_found(request)
    if not browser_participants(request).holds(token):
        return _message(request, "forbidden_title", "forbidden_body", 403, language=participant.language,
                        instrument=participant.instrument)
    language = _language(request, participant)
    if language != participant.language:
        participant.language = language
        participant.save(update_fields=["language", "last_seen_at"])
    return participant


def _step_url(participant: Participant, step: str | None = None) -> str:
    return reverse("survey:step", args=[participant.token, step or participant.current_step])


def _go_on(participant: Participant) -> HttpResponseRedirect:
    if participant.current_step == flow.SCREENED_OUT:
        return HttpResponseRedirect(reverse("survey:screened_out", args=[participant.token]))
    return HttpResponseRedirect(_step_url(participant))


# --- entry --------------------------------------------------------------------------------------------


def home(request: HttpRequest) -> HttpResponse:
    language = _language(request)
    studies = Study.objects.filter(is_open=True, demo=True) if settings.FLOODLIGHT_DEMO_MODE else Study.objects.none()
    return _render(request, "survey/home.html", language, {"studies": studies})


@require_http_methods(["GET", "POST"])
def enter(request: HttpRequest, slug: str) -> HttpResponse:
    """The entry link: resume a participant, or show the consent page to a newcomer.

    Nothing is stored for a newcomer until they consent (a crawler or a link preview following
    the link leaves no trace); the consent form posts back here, with the link's query string.
    """
    study = get_object_or_404(Study, slug=slug)
    # Nothing is stored for the link's ?lang= (the consent form posts back with it, and the
    # participant keeps their language).
    language = _language(request)
    if not study.is_open:
        return _message(request, "study_closed_title", "study_closed_body", 403, language, instrument=study.instrument)
    # The respondent id comes under the study's parameter name (pid, PROLIFIC_PID, rid…); the other
    # parameters the study keeps (STUDY_ID, SESSION_ID…) travel with it, apart from the answers.
    panel_id = (request.GET.get(study.panel_id_parameter) or "").strip()[:200]
    if not panel_id and not settings.FLOODLIGHT_DEMO_MODE:
        return _message(request, "missing_pid_title", "missing_pid_body", 400, language, instrument=study.instrument)
    if not study.entry_link_is_valid(panel_id, request.GET.get(SIGNATURE_PARAMETER, "")):
        return _message(request, "missing_pid_title", "missing_pid_body", 403, language, instrument=study.instrument)
    kept = {name: request.GET[name].strip()[:200] for name in study.kept_parameters() if request.GET.get(name)}
    known_participant = browser_participants(request).participant_in(slug)
    entry = flow.find_entry(study, panel_id or None, known_participant)
    form = ConsentForm(request.POST or None, instrument=study.instrument, language=language)
    if entry is None and request.method == "POST" and form.is_valid():
        agreed = form.cleaned_data["decision"] == "agree"
        entry = flow.enter_with_consent(study, panel_id or None, language, agreed, known_participant, kept)
        if isinstance(entry, flow.Declined):
            return _declined_page(request, language, study.instrument, entry.exit_url)
        if entry.outcome == "new":
            _bind(request, entry.participant)
            response = _go_on(entry.participant)
            errors.remember_language(request, response, language)
            traces.record_consent(entry.participant, request, response)  # quality signals, never shown
            return response
    if entry is None:
        return _consent_page(request, form, language, study.instrument, status=400 if request.method == "POST" else 200)
    if entry.outcome == "over_quota":
        return HttpResponseRedirect(study.exit_url("overquota", panel_id, kept))
    if entry.outcome == "declined":
        return HttpResponseRedirect(study.exit_url("declined", panel_id, kept))
    if entry.outcome == "already_done":
        return _message(request, "already_done_title", "already_done_body", 409, language,
                        instrument=entry.participant.instrument)
    known = browser_participants(request).holds(entry.participant.token)
    if not known and request.POST.get("resume") != "continue":
        # Another browser holding only the panel id: a page that shows nothing stored (no step,
        # district, riding or MP) until it explicitly continues (README: what an unsigned id exposes).
        return _render(request, "survey/resume.html", language, {"instrument": entry.participant.instrument})
    _bind(request, entry.participant, resumed_elsewhere=not known)
    response = _go_on(entry.participant)
    errors.remember_language(request, response, entry.participant.language)
    return response


@require_http_methods(["GET"])
def resume(request: HttpRequest, token: str) -> HttpResponse:
    participant = _participant_for(request, token)
    if isinstance(participant, HttpResponse):
        return participant
    if participant.current_step == flow.FINISHED:
        return HttpResponseRedirect(_exit_url(participant, "complete"))
    return _go_on(participant)


def _exit_url(participant: Participant, kind: str) -> str:
    """The panel exit of ``kind`` for this participant, with their panel id and kept parameters."""
    personal = PersonalData.objects.filter(participant=participant).first()
    if personal is None:
        return participant.study.exit_url(kind, "")
    return participant.study.exit_url(kind, personal.panel_id, personal.panel_parameters)


# --- the steps ------------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def step(request: HttpRequest, token: str, step: str) -> HttpResponse:
    participant = _participant_for(request, token, with_exposure=step in flow.EXPOSURE_PAGES)
    if isinstance(participant, HttpResponse):
        return participant
    instrument = participant.instrument
    if step not in flow.all_steps(instrument):
        return not_found(request)
    language = participant.language
    where = flow.visit(participant, step, instrument, posting=request.method == "POST",
                       resumed_elsewhere=_resumed_elsewhere(request, participant))
    if where.refused:
        return _message(request, "bad_request_title", "bad_request_body", 409, language,
                        link=_step_url(participant), instrument=participant.instrument)
    if not where.serve:
        if where.notice:
            browser_participants(request).leave_notice(where.notice)  # shown by the page it lands on (_render)
        return _go_on(participant)
    try:
        handler = _HANDLERS.get(step, _questionnaire_page)
        return handler(request, participant, step, language)
    except flow.AlreadySubmitted:
        browser_participants(request).leave_notice(flow.ALREADY_SAVED_NOTICE)
        participant.refresh_from_db()
        return _go_on(participant)
    except flow.StepNotAvailable:
        return _message(request, "bad_request_title", "bad_request_body", 409, language,
                        link=_step_url(participant), instrument=participant.instrument)


def _notice(request: HttpRequest, language: str, instrument: Instrument) -> str | None:
    key = browser_participants(request).take_notice()
    return instrument.text(key, language) if key in instrument.texts else None


def _consent_page(request: HttpRequest, form: ConsentForm, language: str, instrument: Instrument, status: int,
                  participant: Participant | None = None) -> HttpResponse:
    paragraphs = text_paragraphs(instrument.text("consent_body", language))
    return _render(request, "survey/consent.html", language, {"form": form, "paragraphs": paragraphs},
                   status=status, participant=participant)


def _declined_page(request: HttpRequest, language: str, instrument: Instrument, exit_url: str) -> HttpResponse:
    """Thanks, and the way back to the panel with the "declined" status."""
    texts = _texts(language, instrument)
    return _render(request, "survey/screened_out.html", language,
                   {"title": texts["declined_title"], "body": texts["declined_body"],
                    "exit_url": exit_url, "button": texts["return_to_panel"]})


def _consent(request: HttpRequest, participant: Participant, step: str, language: str) -> HttpResponse:
    """Consent of a participant created before consent (entry links opened before this release)."""
    instrument = participant.instrument
    form = ConsentForm(request.POST or None, instrument=instrument, language=language)
    if request.method == "POST" and form.is_valid():
        kept = flow.consent(participant, form.cleaned_data["decision"] == "agree")
        if isinstance(kept, flow.Declined):
            browser_participants(request).forget_study(participant.study.slug)
            return _declined_page(request, language, instrument, kept.exit_url)
        return _go_on(kept)
    flow.record_page_served(participant, step)
    return _consent_page(request, form, language, instrument, 400 if request.method == "POST" else 200, participant)


def _postal(request: HttpRequest, participant: Participant, step: str, language: str) -> HttpResponse:
    instrument = participant.instrument
    given = flow.postal_code_given(participant)  # back on the page to correct it: ready to be changed
    form = PostalCodeForm(request.POST or None, instrument=instrument, language=language,
                          initial={"postal_code": given} if given is not None else None)
    if request.method == "POST" and form.is_valid():
        outcome = flow.submit_postal_code(participant, form.cleaned_data["postal_code"])
        if outcome.error is None:
            return _go_on(outcome.participant)
        form.add_error("postal_code", postal_error_message(outcome.error, language))
    flow.record_page_served(participant, step)
    return _render(request, "survey/postal.html", language, {"form": form},
                   status=400 if request.method == "POST" else 200, participant=participant)


def _district(request: HttpRequest, participant: Participant, step: str, language: str) -> HttpResponse:
    instrument = participant.instrument
    mode, districts = flow.district_choices(participant)
    choices = [(d.fed_code, d.name(language)) for d in districts]
    if mode == "province":
        choices.sort(key=lambda choice: flow.reading_order(choice[1]))
    if mode == "candidates":
        choices.append((DistrictChoiceForm.NONE_OF_THESE, instrument.text("district_none", language)))
        label = instrument.text("district_label", language)
    else:
        label = instrument.text("district_province_label", language, province=province_name(participant.province_code, language))
    form = DistrictChoiceForm(request.POST or None, choices=choices, instrument=instrument, language=language,
                              initial={"district": participant.district.fed_code} if participant.district_id else None)
    if request.method == "POST" and form.is_valid():
        chosen = form.cleaned_data["district"]
        participant = flow.choose_district(participant, None if chosen == DistrictChoiceForm.NONE_OF_THESE else chosen)
        return _go_on(participant)
    flow.record_page_served(participant, step)
    context: dict[str, Any] = {"form": form, "label": label, "options": [(radio, None) for radio in form["district"]]}
    if mode == "candidates" and participant.fsa and instrument.texts.keys() >= DISTRICT_HELP_TEXTS:
        # A questionnaire version stored before the picker's help texts existed keeps the plain list.
        context.update(_district_help(participant, [d.fed_code for d in districts], form, language))
    return _render(request, "survey/district.html", language, context,
                   status=400 if request.method == "POST" else 200, participant=participant)


DISTRICT_HELP_TEXTS = frozenset({"district_share", "district_near", "district_map_title", "district_map_desc"})


def _district_help(participant: Participant, fed_codes: list[str], form: DistrictChoiceForm,
                   language: str) -> dict[str, Any]:
    """Nearby places and a share of the postal area next to each candidate, and the map above them."""
    instrument = participant.instrument
    help_ = picker_help(participant.fsa, fed_codes, participant.study.representation_order, language)
    by_code = help_.by_code()
    options = []
    for radio in form["district"]:
        candidate = by_code.get(radio.data["value"])
        details = []
        if candidate is not None and candidate.share is not None:
            details.append(instrument.text("district_share", language, percent=_percent(candidate.share),
                                           fsa=participant.fsa))
        if candidate is not None and candidate.places:
            details.append(instrument.text("district_near", language, places="; ".join(candidate.places)))
        options.append((radio, {"number": candidate.number if candidate else None, "details": details}))
    districts = "; ".join(
        f"{c.number}: {c.name}" + (f" ({_percent(c.share)} %)" if c.share is not None else "")
        for c in help_.candidates
    )
    svg = help_.map_svg(title=instrument.text("district_map_title", language, fsa=participant.fsa),
                        description=instrument.text("district_map_desc", language, fsa=participant.fsa,
                                                    districts=districts))
    return {"options": options, "district_map": mark_safe(svg) if svg else None}  # text escaped in geo.picker


def _percent(share: float) -> str:
    # A district holding a sliver still shows "1 %", never "0 %".
    return str(max(1, round(share * 100)) if share > 0 else 0)


def _questionnaire_page(request: HttpRequest, participant: Participant, step: str, language: str) -> HttpResponse:
    instrument = participant.instrument
    page = instrument.page(step)
    shown_with = flow.answers_for_page(participant, step, resumed_elsewhere=_resumed_elsewhere(request, participant))
    form = InstrumentPageForm(
        request.POST or None,
        initial=shown_with.stored or {},
        page=page,
        instrument=instrument,
        language=language,
        earlier_answers=shown_with.earlier,
        province_code=participant.province_code,
    )
    if request.method == "POST" and form.is_valid():
        stored_answers, personal = form.split_answers()
        traces.record_honeypot(participant, step, request.POST)  # a quality signal: the page goes on
        participant = flow.submit_page(participant, page, stored_answers, personal, submitted=request.POST)
        return _go_on(participant)
    flow.record_page_served(participant, step)
    context: dict[str, Any] = {"form": form, "page": page, "title": page.title.get(language),
                               "intro": page.intro.get(language) if page.intro else None,
                               "honeypot_field": traces.HONEYPOT_FIELD}
    for _receiver, extra in page_context.send(sender=Participant, participant=participant, page=page,
                                              language=language, instrument=instrument):
        context.update(extra or {})  # letters: the letter to the MP on its page
    return _render(request, "survey/page.html", language, context,
                   status=400 if request.method == "POST" else 200, participant=participant)


def _treatment(request: HttpRequest, participant: Participant, step: str, language: str) -> HttpResponse:
    exposure = flow.exposure_of(participant)  # read once for the image, the clock and the wait
    stimulus = flow.stimulus_shown(participant, exposure)
    if stimulus is None:
        # Eligibility guarantees an approved image before the arm is drawn; if it was withdrawn
        # since, say so and start no exposure clock (the participant can come back with the link).
        logger.error("participant %s (%s) has no approved stimulus to show", participant.pk, flow.arm_of(participant))
        return _message(request, "image_missing_title", "image_missing_body", 503, language,
                        link=_step_url(participant), instrument=participant.instrument)
    first_serve = exposure is None
    exposure = flow.treatment_served(participant, stimulus.public_id, exposure)  # with its page view
    too_early = False
    if request.method == "POST":
        participant, accepted = flow.submit_treatment(participant)
        if accepted:
            return _go_on(participant)
        too_early = True
    if not first_serve:
        flow.record_page_served(participant, step)
    wait = flow.seconds_left(participant, exposure)
    context = {
        "stimulus": stimulus,
        "caption": participant.instrument.text("treatment_caption", language, place=stimulus.place_name(language)),
        "wait_seconds": round(wait, 1),
        "too_early": too_early,
    }
    return _render(request, "survey/treatment.html", language, context, status=200, participant=participant)


def _debrief(request: HttpRequest, participant: Participant, step: str, language: str) -> HttpResponse:
    if request.method == "POST":
        participant = flow.finish(participant)
        return HttpResponseRedirect(_exit_url(participant, "complete"))
    flow.record_page_served(participant, step)
    paragraphs = flow.debrief_paragraphs(participant, language, participant.instrument)
    return _render(request, "survey/debrief.html", language, {"paragraphs": paragraphs}, participant=participant)


_HANDLERS = {
    flow.CONSENT: _consent,
    flow.POSTAL: _postal,
    flow.DISTRICT: _district,
    flow.TREATMENT: _treatment,
    flow.DEBRIEF: _debrief,
}


@require_http_methods(["GET"])
def screened_out(request: HttpRequest, token: str) -> HttpResponse:
    participant = _participant_for(request, token)
    if isinstance(participant, HttpResponse):
        return participant
    if participant.state != Participant.State.SCREENED_OUT:
        return _go_on(participant)
    language = participant.language
    context: dict[str, Any] = {}
    if participant.screenout_reason == Participant.ScreenOut.OVER_QUOTA:
        # Eligible, but the places were taken meanwhile: "the study is full", never "not eligible".
        kind = "overquota"
        context = {"title": _text_of_version_or_default(participant.instrument, "study_full_title", language,
                                                        "screenout_title"),
                   "body": _text_of_version_or_default(participant.instrument, "study_full_body", language,
                                                       "screenout_body")}
    else:
        kind = "screenout"
    return _render(request, "survey/screened_out.html", language,
                   {**context, "exit_url": _exit_url(participant, kind)}, participant=participant)


def _text_of_version_or_default(instrument: Instrument, key: str, language: str, fallback: str) -> str:
    """A page text added after some questionnaire versions were stored: the participant's version's
    own wording when it has one, else the deployment's default questionnaire's (stored versions
    cannot be edited), else the older text ``fallback`` that the version has."""
    for source in (instrument, get_instrument()):
        if key in source.texts:
            return source.text(key, language)
    return instrument.text(fallback, language)


@require_http_methods(["GET"])
def panel_exit(request: HttpRequest, kind: str) -> HttpResponse:
    """Stand-in panel pages for the demo (a real study redirects to the panel's own URLs)."""
    if kind not in EXIT_KINDS:
        return not_found(request)
    language = _language(request)
    return _render(request, "survey/panel_exit.html", language, {"kind": kind, "pid": request.GET.get("pid", "")})


# --- error pages: a clear page in the participant's language, never a stack trace --------------------------


# They read neither the session, the participants' cookie nor the database (any may be what
# failed): see errors.py.


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    return errors.message_page(request, "bad_request_title", "csrf_body", 403)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return errors.message_page(request, "bad_request_title", "bad_request_body", 400)


def forbidden(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return errors.message_page(request, "forbidden_title", "forbidden_body", 403)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return errors.message_page(request, "bad_request_title", "bad_request_body", 404)


def server_error(request: HttpRequest) -> HttpResponse:
    return errors.server_error_page(request)


def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness for the load balancer and docker compose: the database answers."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return HttpResponse("ok", content_type="text/plain")

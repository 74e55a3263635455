"""Participant-facing views: thin wrappers around :mod:`studyserver.survey.flow`.

Every page works without JavaScript. A participant's pages live under ``/take/<token>/``; the token
must belong to the browser session (a link copied into another browser gets a clear 403).
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from studyserver.instrument.definition import get_instrument
from studyserver.studies.models import Study

from . import errors, flow
from .forms import ConsentForm, DistrictChoiceForm, InstrumentPageForm, PostalCodeForm
from .models import Participant, merged_answers

SESSION_TOKENS = "floodlight_participants"
logger = logging.getLogger(__name__)


# --- helpers ------------------------------------------------------------------------------------------


def _language(request: HttpRequest, participant: Participant | None = None) -> str:
    requested = request.GET.get("lang")
    if requested in {"en", "fr"}:
        request.session["lang"] = requested
        return requested
    if participant is not None:
        return participant.language
    if request.session.get("lang") in {"en", "fr"}:
        return request.session["lang"]
    accept = request.META.get("HTTP_ACCEPT_LANGUAGE", "")
    return "fr" if accept.lower().startswith("fr") else "en"


def _texts(language: str) -> dict[str, str]:
    return {key: text.get(language) for key, text in get_instrument().texts.items()}


def _render(request: HttpRequest, template: str, language: str, context: dict[str, Any], status: int = 200,
            participant: Participant | None = None, answers: dict[str, Any] | None = None) -> HttpResponse:
    other = "fr" if language == "en" else "en"
    base = {
        "lang": language,
        "other_lang": other,
        "t": _texts(language),
        "switch_url": f"{request.path}?lang={other}",
        "participant": participant,
    }
    if participant is not None and participant.current_step not in {flow.FINISHED, flow.SCREENED_OUT, "withdrawn"}:
        current, total = flow.progress(participant, answers=answers)
        base["progress"] = {"current": current, "total": total, "percent": round(100 * current / total)}
        base["progress_text"] = get_instrument().text("progress", language, current=current, total=total)
    response = render(request, template, {**base, **context}, status=status)
    errors.remember_language(request, response, language)
    return response


def _message(request: HttpRequest, title_key: str, body_key: str, status: int, language: str | None = None,
             link: str | None = None) -> HttpResponse:
    language = language or _language(request)
    texts = _texts(language)
    return _render(request, "survey/message.html", language,
                   {"title": texts[title_key], "body": texts[body_key], "link": link}, status=status)


def _bind(request: HttpRequest, participant: Participant) -> None:
    tokens = list(request.session.get(SESSION_TOKENS, []))
    if participant.token not in tokens:
        tokens.append(participant.token)
        request.session[SESSION_TOKENS] = tokens[-20:]
    request.session[f"study:{participant.study.slug}"] = str(participant.pk)


def _participant_for(request: HttpRequest, token: str) -> Participant | HttpResponse:
    # The district's boundary (up to megabytes for the North) is never needed to serve a page.
    participant = (Participant.objects.select_related("study", "district", "assignment")
                   .defer("district__geometry_wkb").filter(token=token).first())
    if participant is None:
        return not_found(request)
    if token not in request.session.get(SESSION_TOKENS, []):
        return _message(request, "forbidden_title", "forbidden_body", 403, language=participant.language)
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


@require_http_methods(["GET"])
def enter(request: HttpRequest, slug: str) -> HttpResponse:
    study = get_object_or_404(Study, slug=slug)
    language = _language(request)
    if not study.is_open:
        return _message(request, "study_closed_title", "study_closed_body", 403, language)
    panel_id = (request.GET.get("pid") or "").strip()[:200]
    if not panel_id and not settings.FLOODLIGHT_DEMO_MODE:
        return _message(request, "missing_pid_title", "missing_pid_body", 400, language)
    entry = flow.enter(study, panel_id or None, language, request.session.get(f"study:{slug}"))
    if entry.outcome == "over_quota":
        return HttpResponseRedirect(study.exit_url("overquota", panel_id))
    if entry.outcome == "already_done":
        return _message(request, "already_done_title", "already_done_body", 409, language)
    _bind(request, entry.participant)
    response = _go_on(entry.participant)
    errors.remember_language(request, response, entry.participant.language)
    return response


@require_http_methods(["GET"])
def resume(request: HttpRequest, token: str) -> HttpResponse:
    participant = _participant_for(request, token)
    if isinstance(participant, HttpResponse):
        return participant
    if participant.current_step == flow.FINISHED:
        return HttpResponseRedirect(participant.study.exit_url("complete", _panel_id(participant)))
    return _go_on(participant)


def _panel_id(participant: Participant) -> str:
    personal = getattr(participant, "personal_data", None)
    return personal.panel_id if personal is not None else ""


# --- the steps ------------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def step(request: HttpRequest, token: str, step: str) -> HttpResponse:
    participant = _participant_for(request, token)
    if isinstance(participant, HttpResponse):
        return participant
    instrument = get_instrument()
    if step not in flow.all_steps(instrument):
        return not_found(request)
    language = participant.language
    if step != participant.current_step:
        done = flow.steps_done(participant)  # one query, and none on the usual request (the current step)
        if not (flow.pre_treatment_editable(participant, step, instrument) and step in done):
            if request.method == "POST" and step not in done:
                return _message(request, "bad_request_title", "bad_request_body", 409, language, link=_step_url(participant))
            if step in done or request.method == "POST":
                request.session["notice"] = "locked_notice" if participant.state != Participant.State.PLACED else "already_saved_notice"
            return _go_on(participant)
    try:
        handler = _HANDLERS.get(step, _questionnaire_page)
        return handler(request, participant, step, language)
    except flow.AlreadySubmitted:
        request.session["notice"] = "already_saved_notice"
        participant.refresh_from_db()
        return _go_on(participant)
    except flow.StepNotAvailable:
        return _message(request, "bad_request_title", "bad_request_body", 409, language, link=_step_url(participant))


def _notice(request: HttpRequest, language: str) -> str | None:
    key = request.session.pop("notice", None)
    return _texts(language).get(key) if key else None


def _consent(request: HttpRequest, participant: Participant, step: str, language: str) -> HttpResponse:
    instrument = get_instrument()
    form = ConsentForm(request.POST or None, instrument=instrument, language=language)
    if request.method == "POST" and form.is_valid():
        kept = flow.consent(participant, form.cleaned_data["decision"] == "agree")
        if kept is None:
            request.session.pop(f"study:{participant.study.slug}", None)
            return _message(request, "declined_title", "declined_body", 200, language)
        return _go_on(kept)
    flow.record_page_served(participant, step)
    paragraphs = [p for p in instrument.text("consent_body", language).split("\n") if p.strip()]
    return _render(request, "survey/consent.html", language,
                   {"form": form, "paragraphs": paragraphs, "notice": _notice(request, language)},
                   status=400 if request.method == "POST" else 200, participant=participant)


def _postal(request: HttpRequest, participant: Participant, step: str, language: str) -> HttpResponse:
    from studyserver.geo.services import postal_error_message

    instrument = get_instrument()
    form = PostalCodeForm(request.POST or None, instrument=instrument, language=language)
    if request.method == "POST" and form.is_valid():
        outcome = flow.submit_postal_code(participant, form.cleaned_data["postal_code"])
        if outcome.error is None:
            return _go_on(outcome.participant)
        form.add_error("postal_code", postal_error_message(outcome.error, language))
    flow.record_page_served(participant, step)
    return _render(request, "survey/postal.html", language, {"form": form, "notice": _notice(request, language)},
                   status=400 if request.method == "POST" else 200, participant=participant)


def _district(request: HttpRequest, participant: Participant, step: str, language: str) -> HttpResponse:
    from studyserver.geo.services import province_name

    instrument = get_instrument()
    mode, districts = flow.district_choices(participant)
    choices = [(d.fed_code, d.name(language)) for d in districts]
    if mode == "candidates":
        choices.append((DistrictChoiceForm.NONE_OF_THESE, instrument.text("district_none", language)))
        label = instrument.text("district_label", language)
    else:
        label = instrument.text("district_province_label", language, province=province_name(participant.province_code, language))
    form = DistrictChoiceForm(request.POST or None, choices=choices, instrument=instrument, language=language)
    if request.method == "POST" and form.is_valid():
        chosen = form.cleaned_data["district"]
        participant = flow.choose_district(participant, None if chosen == DistrictChoiceForm.NONE_OF_THESE else chosen)
        return _go_on(participant)
    flow.record_page_served(participant, step)
    return _render(request, "survey/district.html", language, {"form": form, "label": label},
                   status=400 if request.method == "POST" else 200, participant=participant)


def _questionnaire_page(request: HttpRequest, participant: Participant, step: str, language: str) -> HttpResponse:
    instrument = get_instrument()
    page = instrument.page(step)
    # One read of the participant's pages: their answers so far, this page's stored answers, progress.
    submissions = list(participant.submissions.all())
    answers = merged_answers(submissions)
    stored = next((s.answers for s in submissions if s.step == step), None)
    form = InstrumentPageForm(
        request.POST or None,
        initial=stored or {},
        page=page,
        instrument=instrument,
        language=language,
        earlier_answers=answers,
        province_code=participant.province_code,
    )
    if request.method == "POST" and form.is_valid():
        stored_answers, personal = form.split_answers()
        participant = flow.submit_page(participant, page, stored_answers, personal)
        return _go_on(participant)
    flow.record_page_served(participant, step)
    context: dict[str, Any] = {"form": form, "page": page, "title": page.title.get(language),
                               "intro": page.intro.get(language) if page.intro else None,
                               "notice": _notice(request, language)}
    if page.shows_letter:
        district = participant.district.name(language) if participant.district else ""
        context["letter"] = instrument.letter.get(language).format(mp_district=district)
        context["letter_intro"] = instrument.text("letter_intro", language, mp_district=district)
    return _render(request, "survey/page.html", language, context,
                   status=400 if request.method == "POST" else 200, participant=participant, answers=answers)


def _treatment(request: HttpRequest, participant: Participant, step: str, language: str) -> HttpResponse:
    exposure = flow.exposure_of(participant)  # read once for the image, the clock and the wait
    stimulus = flow.stimulus_shown(participant, exposure)
    if stimulus is None:
        # Eligibility guarantees an approved image before the arm is drawn; if it was withdrawn
        # since, say so and start no exposure clock (the participant can come back with the link).
        logger.error("participant %s (%s) has no approved stimulus to show", participant.pk, flow.arm_of(participant))
        return _message(request, "image_missing_title", "image_missing_body", 503, language, link=_step_url(participant))
    exposure = flow.treatment_served(participant, stimulus.public_id, exposure)
    too_early = False
    if request.method == "POST":
        participant, accepted = flow.submit_treatment(participant)
        if accepted:
            return _go_on(participant)
        too_early = True
    flow.record_page_served(participant, step)
    wait = flow.seconds_left(participant, exposure)
    context = {
        "stimulus": stimulus,
        "caption": get_instrument().text("treatment_caption", language, place=stimulus.place_name(language)),
        "wait_seconds": round(wait, 1),
        "too_early": too_early,
    }
    return _render(request, "survey/treatment.html", language, context, status=200, participant=participant)


def _debrief(request: HttpRequest, participant: Participant, step: str, language: str) -> HttpResponse:
    if request.method == "POST":
        participant = flow.finish(participant)
        return HttpResponseRedirect(participant.study.exit_url("complete", _panel_id(participant)))
    flow.record_page_served(participant, step)
    paragraphs = [p for p in get_instrument().text("debrief_body", language).split("\n") if p.strip()]
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
    kind = "overquota" if participant.screenout_reason == Participant.ScreenOut.OVER_QUOTA else "screenout"
    return _render(request, "survey/screened_out.html", participant.language,
                   {"exit_url": participant.study.exit_url(kind, _panel_id(participant))})


@require_http_methods(["GET"])
def panel_exit(request: HttpRequest, kind: str) -> HttpResponse:
    """Stand-in panel pages for the demo (a real study redirects to the panel's own URLs)."""
    if kind not in {"complete", "screenout", "overquota"}:
        return not_found(request)
    language = _language(request)
    return _render(request, "survey/panel_exit.html", language, {"kind": kind, "pid": request.GET.get("pid", "")})


# --- error pages: a clear page in the participant's language, never a stack trace --------------------------


# They read neither the session nor the database (either may be what failed): see errors.py.


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

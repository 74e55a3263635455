"""Error pages that work when nothing else does.

An error page is rendered when the database, the broker or the session store may be the very thing
that failed, so it never touches any of them: the language comes from the URL (``?lang=``), the
language cookie the participant pages set, or ``Accept-Language``; the texts come from the
instrument file. A database or broker that is briefly unavailable is not a server error: the
participant gets a 503 with ``Retry-After``, told that nothing they answered is lost, with a way
back to their current page (and, after a POST, a button that sends the same answers again).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

from studyserver.instrument.definition import get_instrument

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
LANGUAGES = ("en", "fr")


def _unavailable_types() -> tuple[type[BaseException], ...]:
    types: list[type[BaseException]] = [OperationalError, InterfaceError]
    try:  # the broker (kombu) and the Redis client: a task that could not be queued
        from kombu.exceptions import OperationalError as BrokerError
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        types += [BrokerError, RedisConnectionError, RedisTimeoutError]
    except ImportError:  # pragma: no cover (both are dependencies)
        pass
    return tuple(types)


UNAVAILABLE = _unavailable_types()


def is_unavailable(error: BaseException | None) -> bool:
    """Whether ``error`` means a backing service is down or restarting (worth a retry), not a bug."""
    seen = 0
    while error is not None and seen < 5:
        if isinstance(error, UNAVAILABLE):
            return True
        # Django wraps driver errors; a closed connection can also surface as a bare DatabaseError.
        if isinstance(error, DatabaseError) and "connection" in str(error).lower():
            return True
        error = error.__cause__ or error.__context__
        seen += 1
    return False


def request_language(request: HttpRequest) -> str:
    """The participant's language without the session or the database."""
    requested = request.GET.get("lang")
    if requested in LANGUAGES:
        return requested
    cookie = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME)
    if cookie in LANGUAGES:
        return cookie
    accept = request.META.get("HTTP_ACCEPT_LANGUAGE", "")
    return "fr" if accept.lower().lstrip().startswith("fr") else "en"


def remember_language(request: HttpRequest, response: HttpResponse, language: str) -> None:
    """Set the language cookie that error pages read (only when it changes)."""
    if request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME) != language:
        response.set_cookie(settings.LANGUAGE_COOKIE_NAME, language, max_age=settings.SESSION_COOKIE_AGE,
                            samesite="Lax", secure=settings.SESSION_COOKIE_SECURE, httponly=True)


def _texts(language: str) -> dict[str, str]:
    return {key: text.get(language) for key, text in get_instrument().texts.items()}


def message_page(request: HttpRequest, title_key: str, body_key: str, status: int, *,
                 link: str | None = None, extra: dict[str, Any] | None = None) -> HttpResponse:
    """A plain page in the request's language, rendered with no request context (no session, no user)."""
    language = request_language(request)
    texts = _texts(language)
    other = "fr" if language == "en" else "en"
    context = {"lang": language, "other_lang": other, "t": texts, "title": texts[title_key],
               "body": texts[body_key], "link": link, **(extra or {})}
    return HttpResponse(render_to_string("survey/message.html", context), status=status)


def _current_page_link(request: HttpRequest) -> str:
    """Where a retry should land: a participant's resume link (it redirects to their current page)."""
    parts = request.path.strip("/").split("/")
    if len(parts) >= 2 and parts[0] == "take":
        return f"/take/{parts[1]}/"
    return request.get_full_path()


def _resubmission(request: HttpRequest) -> list[tuple[str, str]] | None:
    """The fields of a POST that did not go through, to send them again as they were."""
    if request.method != "POST":
        return None
    try:
        return [(name, value) for name, values in request.POST.lists() for value in values]
    except Exception:  # noqa: BLE001 (an unreadable body: offer the link only)
        return None


def unavailable(request: HttpRequest) -> HttpResponse:
    """503 "briefly unavailable, nothing you answered is lost", in the participant's language."""
    session = getattr(request, "session", None)
    if session is not None:
        # Saving the session at the end of this request would hit the database that is down.
        session.modified = False
    fields = _resubmission(request)
    response = message_page(request, "unavailable_title", "unavailable_body", 503,
                            link=_current_page_link(request),
                            extra={"resubmit_fields": fields, "resubmit_action": request.path if fields else None})
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


def server_error_page(request: HttpRequest) -> HttpResponse:
    """handler500: 503 when a backing service was the cause, else a plain 500 page; never the session."""
    error = sys.exc_info()[1]
    if is_unavailable(error):
        logger.warning("service unavailable while serving %s: %r", request.path, error)
        return unavailable(request)
    return message_page(request, "bad_request_title", "bad_request_body", 500)


class ServiceUnavailableMiddleware:
    """Turns a database or broker outage raised by a view into the 503 page, in every mode (DEBUG too).

    Errors raised later, by other middleware (the session saved at the end of the request), reach
    ``handler500``, which gives the same page.
    """

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if is_unavailable(exception):
            logger.warning("service unavailable while serving %s: %r", request.path, exception)
            return unavailable(request)
        return None

"""What a participant's browser holds: the participants it started, in a signed cookie.

Not in Django's session: that is the admin's (a database row, ended on logout), and reading it
cost every participant page a query. The cookie is signed with ``SECRET_KEY`` (salted for this
use alone) and dated, so a browser cannot add a token it was not given, and an old one expires
with the session's age. It holds participant tokens, which study each one belongs to, and a
notice for the next page, never an answer.

Browsers that started before the cookie existed kept these in the session: the first page they ask
for moves them over (one read of the session, once per browser).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core import signing
from django.http import HttpRequest, HttpResponse

COOKIE_NAME = "floodlight_participants"
_SALT = "studyserver.survey.sessions.BrowserParticipants"
_REQUEST_ATTRIBUTE = "floodlight_browser_participants"
#: The most participants one browser keeps (a shared classroom computer: the latest ones).
KEPT = 20

# Where a session of an earlier release kept them (read once, to move them here).
_LEGACY_TOKENS = "floodlight_participants"
_LEGACY_RESUMED = "floodlight_resumed_elsewhere"
_LEGACY_STUDY_PREFIX = "study:"


@dataclass
class BrowserParticipants:
    #: The tokens of the participants this browser started or took over (most recent last).
    tokens: list[str] = field(default_factory=list)
    #: Those taken over by panel id from another browser: they go on from the current step but
    #: never see or change earlier answers.
    resumed: list[str] = field(default_factory=list)
    #: study slug -> the primary key of this browser's participant in it (the entry link resumes it).
    studies: dict[str, str] = field(default_factory=dict)
    #: A message key left by a redirect for the page it leads to.
    notice: str | None = None
    modified: bool = False

    def holds(self, token: str) -> bool:
        return token in self.tokens

    def resumed_elsewhere(self, token: str) -> bool:
        return token in self.resumed

    def participant_in(self, study_slug: str) -> str | None:
        return self.studies.get(study_slug)

    def bind(self, token: str, study_slug: str, participant_pk: object, *, resumed_elsewhere: bool = False) -> None:
        """This browser may take part as ``token`` (the study's entry link resumes it)."""
        if token not in self.tokens:
            self.tokens = [*self.tokens, token][-KEPT:]
            if resumed_elsewhere:
                self.resumed = [*self.resumed, token][-KEPT:]
        self.studies = {**self.studies, study_slug: str(participant_pk)}
        self.modified = True

    def forget_study(self, study_slug: str) -> None:
        """The entry link starts afresh (the participant declined)."""
        if study_slug in self.studies:
            self.studies = {slug: pk for slug, pk in self.studies.items() if slug != study_slug}
            self.modified = True

    def leave_notice(self, key: str) -> None:
        self.notice = key
        self.modified = True

    def take_notice(self) -> str | None:
        """The notice for this page, shown once."""
        key, self.notice = self.notice, None
        if key is not None:
            self.modified = True
        return key

    def as_cookie_value(self) -> str:
        data = {"t": self.tokens, "r": self.resumed, "s": self.studies, "n": self.notice}
        return signing.dumps(data, salt=_SALT, compress=True)

    @classmethod
    def from_cookie_value(cls, value: str | None) -> BrowserParticipants | None:
        """None for a missing, altered, expired or malformed cookie."""
        if not value:
            return None
        try:
            data = signing.loads(value, salt=_SALT, max_age=settings.SESSION_COOKIE_AGE)
        except signing.BadSignature:  # also SignatureExpired
            return None
        if not isinstance(data, dict):
            return None
        return cls(tokens=_strings(data.get("t")), resumed=_strings(data.get("r")),
                   studies={str(k): str(v) for k, v in (data.get("s") or {}).items()} if isinstance(data.get("s"), dict) else {},
                   notice=data.get("n") if isinstance(data.get("n"), str) else None)

    def write(self, response: HttpResponse) -> None:
        response.set_cookie(COOKIE_NAME, self.as_cookie_value(), max_age=settings.SESSION_COOKIE_AGE,
                            secure=settings.SESSION_COOKIE_SECURE, httponly=True, samesite="Lax")


def _strings(value: Any) -> list[str]:
    return [str(item) for item in value][-KEPT:] if isinstance(value, list) else []


def browser_participants(request: HttpRequest) -> BrowserParticipants:
    """The participants of this request's browser (read once per request)."""
    held = getattr(request, _REQUEST_ATTRIBUTE, None)
    if held is None:
        held = BrowserParticipants.from_cookie_value(request.COOKIES.get(COOKIE_NAME))
        if held is None:
            held = _moved_from_session(request)
        setattr(request, _REQUEST_ATTRIBUTE, held)
    return held


def _moved_from_session(request: HttpRequest) -> BrowserParticipants:
    """A browser of an earlier release: its participants as its session kept them (no query
    without a session cookie)."""
    session = getattr(request, "session", None)
    if session is None or settings.SESSION_COOKIE_NAME not in request.COOKIES:
        return BrowserParticipants()
    tokens = _strings(session.get(_LEGACY_TOKENS))
    studies = {key.removeprefix(_LEGACY_STUDY_PREFIX): str(value) for key, value in session.items()
               if key.startswith(_LEGACY_STUDY_PREFIX)}
    if not tokens and not studies:
        return BrowserParticipants()
    return BrowserParticipants(tokens=tokens, resumed=_strings(session.get(_LEGACY_RESUMED)), studies=studies,
                               modified=True)


class BrowserParticipantsMiddleware:
    """Writes the cookie back when a view changed what the browser holds."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        held = getattr(request, _REQUEST_ATTRIBUTE, None)
        if held is not None and held.modified:
            held.write(response)
        return response

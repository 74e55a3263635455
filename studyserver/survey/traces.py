"""Raw signals of respondent quality, recorded as the participant goes (``studyserver.quality``
turns them into flags; this app never imports it).

* a first-party browser cookie, set when the participant consents: the same browser behind two
  panel ids;
* a keyed hash (HMAC with ``SECRET_KEY``) of the address and user agent at consent: the address
  (behind TRUSTED_PROXY_COUNT proxies, the one the outermost saw, as for the login throttle) is
  never stored, and the hash is useless without the key. Only a public (globally routable)
  address is hashed: a private, loopback or reserved one is the study's own network or a
  misconfigured proxy count, shared by everyone, and would make every participant a duplicate;
* a honeypot field on every questionnaire page, not rendered for people and hidden from screen
  readers (``survey/_honeypot.html``): a value in it means a script filled every field it found.

Nothing here changes what the participant sees or where they go.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Mapping

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from studyserver.accounts.lockout import client_address
from studyserver.core.keys import keyed_digest

from .models import Participant

BROWSER_COOKIE = "floodlight_browser"
BROWSER_COOKIE_MAX_AGE = 365 * 24 * 3600
#: The honeypot input's name: a name a form-filling script fills, never shown to people.
HONEYPOT_FIELD = "website"


def is_public_address(address: str) -> bool:
    """Whether ``address`` is a globally routable IP address (not private, loopback or reserved)."""
    try:
        return ipaddress.ip_address(address.strip()).is_global
    except ValueError:
        return False


def network_digest(study_slug: str, address: str, user_agent: str) -> str:
    """The keyed hash of address + user agent within a study; empty unless the address is public."""
    if not is_public_address(address):
        return ""
    return keyed_digest(f"{study_slug}\n{address.strip()}\n{user_agent.strip()}")


def browser_id(request: HttpRequest) -> str:
    """This browser's id from its cookie, or a new one (set on the response by :func:`record_consent`)."""
    known = request.COOKIES.get(BROWSER_COOKIE, "")
    if 16 <= len(known) <= 32 and known.isalnum():
        return known
    return secrets.token_hex(16)


def record_consent(participant: Participant, request: HttpRequest, response: HttpResponse) -> None:
    """At consent: keep the browser id and the keyed network hash, and (re)set the browser cookie."""
    participant.browser_id = browser_id(request)
    participant.network_hash = network_digest(participant.study.slug, client_address(request),
                                              request.META.get("HTTP_USER_AGENT", "")[:500])
    Participant.objects.filter(pk=participant.pk).update(browser_id=participant.browser_id,
                                                         network_hash=participant.network_hash)
    response.set_cookie(BROWSER_COOKIE, participant.browser_id, max_age=BROWSER_COOKIE_MAX_AGE, httponly=True,
                        samesite="Lax", secure=settings.SESSION_COOKIE_SECURE)


def record_honeypot(participant: Participant, step: str, posted: Mapping[str, str]) -> None:
    """A questionnaire page came back with the hidden field filled: remember the first such page."""
    if (posted.get(HONEYPOT_FIELD) or "").strip() and not participant.honeypot_step:
        participant.honeypot_step = step[:40]
        Participant.objects.filter(pk=participant.pk, honeypot_step="").update(honeypot_step=participant.honeypot_step)

"""What a test client's browser holds of its participants (the signed cookie the survey sets)."""

from __future__ import annotations

from django.test import Client

from studyserver.survey.sessions import COOKIE_NAME, BrowserParticipants


def participants_in(client: Client) -> BrowserParticipants:
    cookie = client.cookies.get(COOKIE_NAME)
    return BrowserParticipants.from_cookie_value(cookie.value if cookie else None) or BrowserParticipants()

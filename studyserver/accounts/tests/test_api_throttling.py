"""The research API's anonymous rate applies to what strangers send: no login, or a wrong token."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token

from studyserver.accounts.roles import DATA_MANAGER
from tests.support.accounts import staff_with_roles

pytestmark = pytest.mark.django_db


@pytest.fixture
def rates(monkeypatch):
    from rest_framework.throttling import SimpleRateThrottle

    # DRF reads the rates from settings once, into this class attribute.
    assert SimpleRateThrottle.THROTTLE_RATES["anon"] == "30/hour"
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"anon": "3/hour", "user": "100/hour"})


def test_anonymous_requests_are_throttled_per_address(rates):
    stranger = Client(REMOTE_ADDR="203.0.113.9")
    statuses = [stranger.get("/api/studies/").status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    assert int(stranger.get("/api/schema/")["Retry-After"]) > 0  # the docs and schema too
    assert Client(REMOTE_ADDR="198.51.100.7").get("/api/studies/").status_code == 401  # another address


def test_wrong_tokens_are_throttled_and_a_spoofed_forwarded_for_changes_nothing(rates):
    statuses = [Client(REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}",
                       HTTP_AUTHORIZATION=f"Token guess{n:036d}").get("/api/studies/").status_code
                for n in range(5)]
    assert statuses == [401, 401, 401, 429, 429]


def test_a_valid_token_is_not_held_back_by_strangers_on_its_address(rates):
    for _ in range(4):
        Client(REMOTE_ADDR="203.0.113.9").get("/api/studies/")
    token = Token.objects.create(user=staff_with_roles("dm", DATA_MANAGER))
    client = Client(REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION=f"Token {token.key}")
    assert client.get("/api/studies/").status_code == 200

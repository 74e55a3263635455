"""The lockout policy: a stranger elsewhere can never lock a researcher out, spoofed headers or not."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client, RequestFactory
from django.urls import reverse

from studyserver.accounts.lockout import client_address

pytestmark = pytest.mark.django_db

RESEARCHER_ADDRESS = "198.51.100.7"
STRANGER_ADDRESS = "203.0.113.66"
PROXY_ADDRESS = "10.0.0.2"
PASSWORD = "right-horse-battery"


@pytest.fixture
def researcher():
    return User.objects.create_user("researcher", password=PASSWORD, is_staff=True)


def _login(client: Client, username: str = "researcher", password: str = PASSWORD) -> int:
    return client.post(reverse("admin:login"), {"username": username, "password": password}).status_code


@pytest.mark.parametrize("proxies, meta", [
    (0, {"REMOTE_ADDR": "203.0.113.66"}),
    (0, {"REMOTE_ADDR": "203.0.113.66", "HTTP_X_FORWARDED_FOR": "198.51.100.7"}),  # not believed
    (1, {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "203.0.113.66"}),
    (1, {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "198.51.100.7, 203.0.113.66"}),  # spoofed entry first
    (2, {"REMOTE_ADDR": "10.0.0.3", "HTTP_X_FORWARDED_FOR": "1.2.3.4, 203.0.113.66, 10.0.0.2"}),
])
def test_the_client_address_is_what_the_trusted_proxies_saw(settings, proxies, meta):
    settings.TRUSTED_PROXY_COUNT = proxies
    assert client_address(RequestFactory().get("/", **meta)) == STRANGER_ADDRESS


@pytest.mark.parametrize("proxies", [0, 1])
def test_a_stranger_spoofing_x_forwarded_for_cannot_lock_a_researcher_out(settings, researcher, proxies):
    settings.TRUSTED_PROXY_COUNT = proxies
    settings.AXES_FAILURE_LIMIT = 3
    if proxies:  # behind one proxy: it appends the address it saw to whatever the client sent
        stranger = Client(REMOTE_ADDR=PROXY_ADDRESS, HTTP_X_FORWARDED_FOR=f"{RESEARCHER_ADDRESS}, {STRANGER_ADDRESS}")
        own = Client(REMOTE_ADDR=PROXY_ADDRESS, HTTP_X_FORWARDED_FOR=RESEARCHER_ADDRESS)
    else:
        stranger = Client(REMOTE_ADDR=STRANGER_ADDRESS, HTTP_X_FORWARDED_FOR=RESEARCHER_ADDRESS)
        own = Client(REMOTE_ADDR=RESEARCHER_ADDRESS)
    statuses = [_login(stranger, password=f"wrong-{n}") for n in range(4)]
    assert statuses == [200, 200, 429, 429]  # the stranger's own address is locked
    assert _login(own) == 302 and "_auth_user_id" in own.session


def test_behind_a_proxy_without_the_count_everyone_shares_one_address(settings, researcher):
    """What AXES_PROXY_COUNT (required by compose, checked by --deploy) prevents."""
    settings.TRUSTED_PROXY_COUNT = 0
    settings.AXES_FAILURE_LIMIT = 3
    stranger = Client(REMOTE_ADDR=PROXY_ADDRESS, HTTP_X_FORWARDED_FOR=STRANGER_ADDRESS)
    for n in range(3):
        _login(stranger, password=f"wrong-{n}")
    assert _login(Client(REMOTE_ADDR=PROXY_ADDRESS, HTTP_X_FORWARDED_FOR=RESEARCHER_ADDRESS)) == 429
    settings.TRUSTED_PROXY_COUNT = 1
    assert _login(Client(REMOTE_ADDR=PROXY_ADDRESS, HTTP_X_FORWARDED_FOR=RESEARCHER_ADDRESS)) == 302


def test_an_address_guessing_many_usernames_is_throttled_and_nobody_else(settings, researcher):
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 4
    stranger = Client(REMOTE_ADDR=STRANGER_ADDRESS)
    for n in range(4):  # four different usernames: no username reaches its own lockout
        assert _login(stranger, username=f"user{n}", password="guess") == 200
    response = stranger.post(reverse("admin:login"), {"username": "researcher", "password": PASSWORD})
    assert "Too many failed logins from your network address" in response.content.decode()
    assert "_auth_user_id" not in stranger.session  # even the right password is not tried
    assert _login(Client(REMOTE_ADDR=RESEARCHER_ADDRESS)) == 302
    call_command("reset_login_throttle", STRANGER_ADDRESS)
    assert _login(stranger) == 302

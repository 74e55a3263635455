"""A database that drops out under a request: a 503 page in the participant's language, never a 500.

The outage is real: the request's PostgreSQL connection is terminated by the server
(``pg_terminate_backend`` from another connection) as the request starts, so the session, the
participant and the page all fail to load exactly as they do while PostgreSQL restarts.
"""

from __future__ import annotations

import html

import psycopg2
import pytest
from django.core.signals import request_started
from django.db import OperationalError, close_old_connections, connection
from django.test import Client, RequestFactory

from studyserver.survey import errors, views

from .conftest import Respondent, make_study

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="terminates a PostgreSQL backend")


def _terminate_this_connection(**kwargs) -> None:
    """What a PostgreSQL restart does to the request's connection."""
    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    settings = connection.settings_dict
    admin = psycopg2.connect(dbname=settings["NAME"], user=settings["USER"], host=settings["HOST"],
                             port=settings["PORT"] or 5432, password=settings["PASSWORD"])
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    admin.close()


class DatabaseDown:
    """Every request made inside the block loses its database connection as it starts."""

    def __enter__(self) -> DatabaseDown:
        request_started.connect(_terminate_this_connection)
        return self

    def __exit__(self, *exc) -> None:
        request_started.disconnect(_terminate_this_connection)
        connection.close()  # the broken connection; the next request opens a fresh one


@pytest.fixture
def started(yukon, settings):
    settings.DEBUG = False
    respondent = Respondent(make_study(), language="fr")
    respondent.enter()
    respondent.consent()
    return respondent


@pytest.mark.django_db(transaction=True)
def test_a_page_requested_while_the_database_is_down_says_briefly_unavailable_in_french(started):
    with DatabaseDown():
        response = started.client.get(started.url("postal"))
    assert response.status_code == 503
    assert response["Retry-After"] == str(errors.RETRY_AFTER_SECONDS)
    page = html.unescape(response.content.decode())
    assert '<html lang="fr">' in page
    assert "momentanément indisponible" in page and "Aucune de vos réponses n'est perdue" in page
    assert "Traceback" not in page
    # The retry link is the participant's own resume link: it lands on their current page.
    assert f'href="/take/{started.token}/"' in page
    retry = started.client.get(f"/take/{started.token}/")
    assert retry.status_code == 302 and retry["Location"] == started.url("postal")
    assert started.client.get(retry["Location"]).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_answers_posted_while_the_database_is_down_are_offered_again_and_stored_once_sent(started):
    with DatabaseDown():
        response = started.client.post(started.url("postal"), {"postal_code": "Y1A 6E5"})
    assert response.status_code == 503
    page = response.content.decode()
    assert f'action="{started.url("postal")}"' in page
    assert 'name="postal_code" value="Y1A 6E5"' in page
    assert started.current_step() == "postal"  # nothing half-stored
    again = started.client.post(started.url("postal"), {"postal_code": "Y1A 6E5"})
    assert again.status_code == 302
    assert started.participant.fsa == "Y1A"


@pytest.mark.django_db(transaction=True)
def test_healthz_reports_503_while_the_database_is_down(started):
    with DatabaseDown():
        response = Client().get("/healthz")
    assert response.status_code == 503


def test_a_kept_connection_is_health_checked_and_reopened_after_a_restart(django_db_blocker, settings):
    assert settings.DATABASES["default"]["CONN_HEALTH_CHECKS"] is True
    with django_db_blocker.unblock():
        connection.close()
        kept = connection.settings_dict["CONN_MAX_AGE"]
        connection.settings_dict["CONN_MAX_AGE"] = 60
        try:
            connection.ensure_connection()
            _terminate_this_connection()
            close_old_connections()  # what Django does as each request starts
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
                assert cursor.fetchone() == (1,)
        finally:
            connection.settings_dict["CONN_MAX_AGE"] = kept
            connection.close()


class _ExplodingSession:
    """A session whose store is down: any use raises, like a database session during a restart."""

    modified = False

    def __getattr__(self, name):
        raise AttributeError("'SessionStore' object has no attribute '_session_cache'")


def _raise_and_handle(error: Exception, request):
    try:
        raise error
    except Exception:
        return views.server_error(request)


def test_the_500_handler_never_touches_the_session_and_answers_503_for_an_outage():
    request = RequestFactory().get("/take/abc/values/", HTTP_ACCEPT_LANGUAGE="fr-CA,fr;q=0.9")
    request.session = _ExplodingSession()
    response = _raise_and_handle(OperationalError("connection to server failed"), request)
    assert response.status_code == 503
    assert "momentanément indisponible" in response.content.decode()
    other = _raise_and_handle(ValueError("a bug"), request)
    assert other.status_code == 500
    assert "Un problème est survenu" in other.content.decode()


def test_error_pages_take_the_language_from_the_url_then_the_cookie_then_accept_language(settings):
    factory = RequestFactory()
    assert errors.request_language(factory.get("/x/?lang=fr", HTTP_ACCEPT_LANGUAGE="en")) == "fr"
    with_cookie = factory.get("/x/", HTTP_ACCEPT_LANGUAGE="en")
    with_cookie.COOKIES[settings.LANGUAGE_COOKIE_NAME] = "fr"
    assert errors.request_language(with_cookie) == "fr"
    assert errors.request_language(factory.get("/x/", HTTP_ACCEPT_LANGUAGE="fr-CA")) == "fr"
    assert errors.request_language(factory.get("/x/")) == "en"


def test_a_broker_outage_counts_as_unavailable_and_a_bug_does_not():
    from kombu.exceptions import OperationalError as BrokerError
    from redis.exceptions import ConnectionError as RedisConnectionError

    assert errors.is_unavailable(BrokerError("Error 111 connecting to 127.0.0.1:6399"))
    assert errors.is_unavailable(RedisConnectionError("refused"))
    assert not errors.is_unavailable(KeyError("step"))
    assert not errors.is_unavailable(None)

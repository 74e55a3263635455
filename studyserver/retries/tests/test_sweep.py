"""Deferred work heals without a person: real SMTP (a sink that goes down and comes back), real
PostgreSQL row locks, real Redis for the broker."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection, connections
from django.utils import timezone

from studyserver.instrument.definition import get_instrument
from studyserver.retries.sweep import registered_work, sweep_deferred_work
from studyserver.studies.models import Study
from studyserver.survey.models import InformationRequest, Participant, PersonalData
from studyserver.survey.tasks import deliver_information_request, sweep_information_requests
from tests.support.smtp import SmtpSink, closed_port

Status = InformationRequest.Status


@pytest.fixture
def smtp(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_TIMEOUT = 5
    settings.FLOODLIGHT_RETRY_BASE_SECONDS = 30
    settings.FLOODLIGHT_RETRY_MAX_ATTEMPTS = 3
    sink = SmtpSink(port=closed_port())
    settings.EMAIL_PORT = sink.port
    yield sink
    sink.stop()


def _request(email: str = "someone@example.org", **fields) -> InformationRequest:
    study = Study.objects.get_or_create(slug="retries", defaults={"title": "Retries", "is_open": True})[0]
    participant = Participant.objects.create(study=study, language="fr")
    PersonalData.objects.create(participant=participant, email=email)
    topic = next(iter(get_instrument().information_emails))
    return InformationRequest.objects.create(participant=participant, topic=topic, **fields)


def _age(request: InformationRequest, seconds: float) -> None:
    InformationRequest.objects.filter(pk=request.pk).update(created_at=timezone.now() - timedelta(seconds=seconds))


@pytest.mark.django_db
def test_a_mail_server_down_then_back_is_retried_with_backoff_and_sent_once(smtp):
    request = _request()
    assert deliver_information_request(request.pk) == "retry later"  # nothing listens yet
    request.refresh_from_db()
    assert request.status == Status.PENDING and request.attempts == 1
    assert "refused" in request.last_error.lower()
    assert timedelta(seconds=25) < request.next_attempt_at - timezone.now() <= timedelta(seconds=30)

    smtp.start()
    assert sweep_information_requests() == {}  # backing off: not due yet
    assert sweep_information_requests(now=timezone.now() + timedelta(seconds=31)) == {"sent": 1}
    request.refresh_from_db()
    assert request.status == Status.SENT and request.attempts == 2 and request.last_error == ""
    assert [recipients for recipients, _ in smtp.messages] == [["someone@example.org"]]
    assert smtp.messages[0][1]["Subject"]  # French: the participant's language
    assert sweep_information_requests(now=timezone.now() + timedelta(hours=2)) == {}
    assert len(smtp.messages) == 1


@pytest.mark.django_db
def test_after_the_last_allowed_try_the_request_is_failed_with_the_reason(smtp):
    request = _request()
    later = timezone.now()
    for _ in range(3):
        later += timedelta(hours=2)
        sweep_information_requests(now=later)
    request.refresh_from_db()
    assert request.status == Status.FAILED and request.attempts == 3
    assert request.last_error.startswith("gave up after 3 attempts:")
    assert sweep_information_requests(now=later + timedelta(days=1)) == {}


@pytest.mark.django_db
def test_fresh_requests_are_left_to_their_task_then_taken_over_by_the_sweep(smtp, settings):
    settings.FLOODLIGHT_SWEEP_GRACE_SECONDS = 120
    smtp.start()
    request = _request()  # its task was never delivered (the broker was down)
    assert sweep_information_requests() == {}
    _age(request, 121)
    assert sweep_information_requests() == {"sent": 1}
    assert len(smtp.messages) == 1


@pytest.mark.django_db
def test_a_request_abandoned_mid_send_is_failed_not_sent_again(smtp):
    smtp.start()
    request = _request(status=Status.SENDING, attempts=1, claimed_at=timezone.now() - timedelta(hours=1))
    assert sweep_information_requests() == {"abandoned mid-send": 1}
    request.refresh_from_db()
    assert request.status == Status.FAILED and "never sent twice" in request.last_error
    assert smtp.messages == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks")
def test_eight_senders_at_once_send_one_e_mail(smtp):
    smtp.start()
    request = _request()
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def sender() -> None:
        try:
            barrier.wait()
            outcomes.append(deliver_information_request(request.pk))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=sender) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["not due"] * 7 + ["sent"]
    assert len(smtp.messages) == 1


@pytest.mark.django_db
def test_the_command_sweeps_once_and_reports(smtp, capsys):
    smtp.start()
    _age(_request(), 3600)
    call_command("sweep_deferred_work")
    assert "information e-mails: 1 sent" in capsys.readouterr().out
    assert len(smtp.messages) == 1


@pytest.mark.django_db
def test_send_pending_emails_by_hand_skips_the_backoff_but_not_the_claim(smtp):
    request = _request()
    deliver_information_request(request.pk)  # refused: backing off for 30 s
    smtp.start()
    call_command("send_pending_emails", "--older-than-minutes", "0")
    call_command("send_pending_emails", "--older-than-minutes", "0")
    request.refresh_from_db()
    assert request.status == Status.SENT and len(smtp.messages) == 1


def test_the_sweep_is_scheduled_by_celery_beat(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["sweep-deferred-work"]
    assert entry["task"] == "retries.sweep_deferred_work"
    from studyserver.celery import app

    app.loader.import_default_modules()
    assert "retries.sweep_deferred_work" in app.tasks


@pytest.mark.django_db
def test_the_sweep_reports_both_kinds_of_work(smtp):
    report = sweep_deferred_work()
    # The apps registered their work in their AppConfig.ready, in INSTALLED_APPS order.
    assert [work.key for work in registered_work()] == ["information_emails", "generation_requests"]
    assert report.counts == {"information_emails": {}, "generation_requests": {}}
    assert report.summary() == "information e-mails: nothing due; image generation requests: nothing due"

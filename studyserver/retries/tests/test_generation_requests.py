"""Image generation requests that could not reach the broker are sent again by the sweep (real Redis)."""

from __future__ import annotations

import json
import os
from datetime import timedelta

import pytest
import redis
from django.utils import timezone

from studyserver.celery import app
from studyserver.treatments.models import SourcePhoto, Stimulus
from studyserver.treatments.services import send_generation_task, sweep_generation_requests
from tests.support.smtp import closed_port

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def broker():
    """Celery publishing for real (not eager) to ``use(url)``; the gpu queue emptied afterwards."""
    saved = (app.conf.task_always_eager, app.conf.broker_url)

    def use(url: str) -> None:
        app.conf.task_always_eager = False
        app.conf.broker_url = url
        app._after_fork()  # drop the pooled connections: the next send connects to ``url``

    yield use
    app.conf.task_always_eager, app.conf.broker_url = saved
    app._after_fork()
    redis.Redis.from_url(REDIS_URL).delete("gpu")


def _queued(settings) -> Stimulus:
    source = SourcePhoto.objects.create(kind="distant", place_name_en="Somewhere", place_name_fr="Quelque part",
                                        image="treatments/sources/x.png")
    return Stimulus.objects.create(source=source, status=Stimulus.Status.QUEUED)


def _messages_for(stimulus: Stimulus) -> int:
    client = redis.Redis.from_url(REDIS_URL)
    bodies = [json.loads(raw) for raw in client.lrange("gpu", 0, -1)]
    return sum(1 for body in bodies if f"[{stimulus.pk}]" in body["headers"].get("argsrepr", ""))


@pytest.mark.django_db
def test_a_request_the_broker_refused_is_sent_by_the_sweep_when_due(broker, settings):
    settings.FLOODLIGHT_RETRY_BASE_SECONDS = 30
    stimulus = _queued(settings)
    broker(f"redis://127.0.0.1:{closed_port()}/0")
    assert send_generation_task(stimulus.pk) is False
    stimulus.refresh_from_db()
    assert stimulus.status == Stimulus.Status.QUEUED and stimulus.sends == 1 and stimulus.send_error

    broker(REDIS_URL)
    assert sweep_generation_requests() == {}  # not due yet
    assert sweep_generation_requests(now=timezone.now() + timedelta(seconds=31)) == {"resent": 1}
    stimulus.refresh_from_db()
    assert stimulus.send_error == "" and stimulus.next_attempt_at is None
    assert _messages_for(stimulus) == 1
    # Sent: nothing more to do, however long the GPU queue takes.
    assert sweep_generation_requests(now=timezone.now() + timedelta(hours=5)) == {}
    assert _messages_for(stimulus) == 1


@pytest.mark.django_db
def test_a_request_never_queued_after_the_allowed_tries_is_failed_with_the_reason(broker, settings):
    settings.FLOODLIGHT_RETRY_MAX_ATTEMPTS = 2
    stimulus = _queued(settings)
    broker(f"redis://127.0.0.1:{closed_port()}/0")
    send_generation_task(stimulus.pk)
    later = timezone.now() + timedelta(hours=2)
    assert sweep_generation_requests(now=later) == {"not queued yet": 1}
    assert sweep_generation_requests(now=later + timedelta(hours=2)) == {"failed (never queued)": 1}
    stimulus.refresh_from_db()
    assert stimulus.status == Stimulus.Status.FAILED
    assert stimulus.error.startswith("not queued after 2 tries: ")


@pytest.mark.django_db
def test_a_claim_left_by_a_killed_worker_is_resent_once(broker, settings):
    stimulus = _queued(settings)
    Stimulus.objects.filter(pk=stimulus.pk).update(
        started_at=timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 120), task_id="dead-task")
    broker(REDIS_URL)
    assert sweep_generation_requests() == {"resent": 1}
    assert sweep_generation_requests() == {}  # the new message waits in the queue: not resent again
    stimulus.refresh_from_db()
    assert stimulus.started_at is None and stimulus.task_id == ""
    assert _messages_for(stimulus) == 1

"""Sending the information e-mails participants asked for: at most once, retried until done or given up.

Each request is *claimed* under a row lock (``pending`` → ``sending``) before its e-mail goes out,
so a task delivered twice, a sweep and a task at the same moment, or two sweeps can never send it
twice. A failure (mail server down) puts it back to ``pending`` with the next try later
(:mod:`studyserver.retries.policy`); after the last allowed try it is ``failed`` with the reason.
A request whose sender died mid-send (claimed long ago, never finished) may or may not have been
delivered: it is marked ``failed`` with that reason rather than risk a second e-mail.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from datetime import datetime, timedelta

from celery import shared_task
from django.conf import settings
from django.core.mail import send_mail
from django.db import OperationalError, close_old_connections, transaction
from django.db.models import Q
from django.utils import timezone

from studyserver.retries import policy

from .models import InformationRequest, PersonalData

logger = logging.getLogger(__name__)
Status = InformationRequest.Status


def _claim(request_id: int, now: datetime, force: bool) -> InformationRequest | None:
    """The request, now ``sending`` and counted as one more attempt; None when it is not ours to send."""
    with transaction.atomic():
        request = (InformationRequest.objects.select_for_update(of=("self",)).select_related("participant")
                   .filter(pk=request_id).first())
        if request is None or request.status != Status.PENDING:
            return None
        backing_off = request.attempts and request.next_attempt_at is not None and request.next_attempt_at > now
        if backing_off and not force:
            return None
        request.status = Status.SENDING
        request.claimed_at = now
        request.attempts += 1
        request.save(update_fields=["status", "claimed_at", "attempts"])
    return request


def _record(request_id: int, patience_seconds: float = 60.0, **fields: object) -> None:
    """Write the outcome of a send, waiting out a database restart: an e-mail that left must be marked sent."""
    deadline = time.monotonic() + patience_seconds
    while True:
        try:
            InformationRequest.objects.filter(pk=request_id, status=Status.SENDING).update(**fields)
            return
        except OperationalError:
            if time.monotonic() > deadline:
                raise
            close_old_connections()
            time.sleep(1)


def deliver_information_request(request_id: int, *, force: bool = False, now: datetime | None = None) -> str:
    """Send one request's e-mail if it is pending and due at ``now`` (``force``: due or not); what happened."""
    now = now or timezone.now()
    request = _claim(request_id, now, force)
    if request is None:
        return "not due"
    personal = PersonalData.objects.filter(participant_id=request.participant_id).first()
    if personal is None or not personal.email:
        _record(request_id, status=Status.FAILED, last_error="no e-mail address")
        return "failed"
    instrument = request.participant.instrument  # the e-mail texts of the version they answered
    subject, body = instrument.information_emails[request.topic]
    language = request.participant.language
    try:
        send_mail(subject.get(language), body.get(language), None, [personal.email])
    except Exception as error:  # noqa: BLE001 (any failure to hand the e-mail over: retried, then given up)
        reason = f"{type(error).__name__}: {error}"[:500]
        if request.attempts >= policy.max_attempts():
            logger.error("information e-mail request %s failed for good after %s attempts: %s", request_id, request.attempts, reason)
            _record(request_id, status=Status.FAILED, last_error=f"gave up after {request.attempts} attempts: {reason}")
            return "failed"
        retry_at = policy.next_attempt_at(now, request.attempts)
        logger.warning("information e-mail request %s not sent (attempt %s), next try at %s: %s", request_id, request.attempts, retry_at, reason)
        _record(request_id, status=Status.PENDING, next_attempt_at=retry_at, last_error=reason)
        return "retry later"
    _record(request_id, status=Status.SENT, sent_at=timezone.now(), last_error="", next_attempt_at=None)
    logger.info("information e-mail %s sent for request %s", request.topic, request_id)
    return "sent"


@shared_task(name="survey.send_information_email", acks_late=True, ignore_result=True)
def send_information_email(request_id: int, force: bool = False) -> str:
    return deliver_information_request(request_id, force=force)


def queue_information_email(request_id: int, *, force: bool = False) -> bool:
    """Send the e-mail task without ever failing the participant's page.

    A broker that is down leaves the request ``pending``: the sweep sends it once it is due.
    """
    try:
        send_information_email.delay(request_id, force)
    except Exception:
        logger.exception("information e-mail request %s not queued; the sweep will send it", request_id)
        return False
    return True


def sweep_information_requests(now: datetime | None = None, limit: int = 500) -> dict[str, int]:
    """Send every due pending request here and now; mark requests abandoned mid-send as failed."""
    now = now or timezone.now()
    lease = timedelta(seconds=settings.EMAIL_TIMEOUT * 2 + 60)
    abandoned = InformationRequest.objects.filter(status=Status.SENDING, claimed_at__lt=now - lease).update(
        status=Status.FAILED,
        last_error="the sender stopped while sending: delivery unknown, not retried so that it is never sent twice",
    )
    due = list(
        InformationRequest.objects.filter(status=Status.PENDING)
        .filter(Q(next_attempt_at__lte=now) | Q(next_attempt_at__isnull=True, created_at__lte=now - policy.grace()))
        .order_by("created_at").values_list("pk", flat=True)[:limit]
    )
    outcomes = Counter(deliver_information_request(pk, now=now) for pk in due)
    if abandoned:
        outcomes["abandoned mid-send"] = abandoned
    return dict(outcomes)

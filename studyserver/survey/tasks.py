"""Sending the information e-mails participants asked for (retried; failures are recorded, not lost)."""

from __future__ import annotations

import logging
import smtplib

from celery import shared_task
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from .models import InformationRequest, PersonalData

logger = logging.getLogger(__name__)


@shared_task(
    bind=True,
    name="survey.send_information_email",
    autoretry_for=(smtplib.SMTPException, ConnectionError, OSError),
    retry_backoff=30,
    retry_backoff_max=3600,
    max_retries=8,
    acks_late=True,
)
def send_information_email(self, request_id: int) -> str:
    with transaction.atomic():
        request = InformationRequest.objects.select_for_update().filter(pk=request_id).first()
        if request is None:
            return "gone"  # the participant withdrew meanwhile
        if request.status == InformationRequest.Status.SENT:
            return "already sent"
        request.attempts += 1
        request.save(update_fields=["attempts"])
    personal = PersonalData.objects.filter(participant_id=request.participant_id).first()
    if personal is None or not personal.email:
        InformationRequest.objects.filter(pk=request_id).update(status=InformationRequest.Status.FAILED, last_error="no e-mail address")
        return "no address"
    instrument = request.participant.instrument  # the e-mail texts of the version they answered
    subject, body = instrument.information_emails[request.topic]
    language = request.participant.language
    try:
        send_mail(subject.get(language), body.get(language), None, [personal.email])
    except Exception as error:
        InformationRequest.objects.filter(pk=request_id).update(last_error=str(error)[:500])
        if self.request.retries >= self.max_retries:
            InformationRequest.objects.filter(pk=request_id).update(status=InformationRequest.Status.FAILED)
        raise
    InformationRequest.objects.filter(pk=request_id).update(status=InformationRequest.Status.SENT, sent_at=timezone.now(), last_error="")
    logger.info("information e-mail %s sent for request %s", request.topic, request_id)
    return "sent"


def queue_information_email(request_id: int) -> bool:
    """Send the e-mail task without ever failing the participant's page.

    A broker that is down (or, in eager mode, a mail server that refuses) leaves the request
    ``pending``; ``manage.py send_pending_emails`` queues every pending request again.
    """
    try:
        send_information_email.delay(request_id)
    except Exception:
        logger.exception("information e-mail request %s not sent yet; it stays pending", request_id)
        return False
    return True

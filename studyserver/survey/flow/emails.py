"""The information e-mails a participant asked for: requested once each, sent after the commit
(``survey.tasks``, retried by the sweep until sent or given up)."""

from __future__ import annotations

from django.db import transaction

from studyserver.instrument.definition import Instrument

from ..models import InformationRequest, Participant
from ..tasks import queue_information_email


def queue_information_emails(participant: Participant, instrument: Instrument) -> None:
    answers = participant.answers()
    for topic in instrument.information_emails:
        if answers.get(topic) == 1:
            request, created = InformationRequest.objects.get_or_create(participant=participant, topic=topic)
            if created:
                transaction.on_commit(lambda pk=request.pk: queue_information_email(pk))

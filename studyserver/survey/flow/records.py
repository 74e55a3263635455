"""What is recorded of each page: when it was served (the page-view record, the only write a GET
makes) and what was submitted on it, with the time spent on it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.utils import timezone

from ..models import PageSubmission, PageView, Participant


def record_page_served(participant: Participant, step: str) -> None:
    """First and last time the page was served (on every page GET): one upsert.

    The first serve inserts the row; a serve again (a reload, a way back, a second tab at the same
    moment) only moves ``last_served_at``, from which the time on the page is counted.
    """
    now = timezone.now()
    PageView.objects.bulk_create(
        [PageView(participant=participant, step=step, first_served_at=now, last_served_at=now)],
        update_conflicts=True, unique_fields=["participant", "step"], update_fields=["last_served_at"],
    )


def store_submission(participant: Participant, step: str, answers: Mapping[str, Any]) -> PageSubmission:
    """The page's answers, stored or (a correction) replacing the stored ones, its revision counted.

    The caller holds the participant's lock (``navigation.lock``), so no other request can store
    this page meanwhile: a read, then an insert or an update (not ``get_or_create``'s savepoint).
    """
    now = timezone.now()
    view = PageView.objects.filter(participant=participant, step=step).first()
    served_at: datetime = view.last_served_at if view else now
    seconds_on_page = max((now - served_at).total_seconds(), 0.0)
    submission = PageSubmission.objects.filter(participant=participant, step=step).first()
    if submission is None:
        return PageSubmission.objects.create(participant=participant, step=step, answers=dict(answers),
                                             served_at=served_at, submitted_at=now, seconds_on_page=seconds_on_page)
    submission.answers = dict(answers)
    submission.served_at = served_at
    submission.submitted_at = now
    submission.seconds_on_page = seconds_on_page
    submission.revision += 1
    submission.save()
    return submission

"""The sweep: every deferred piece of work that is due is tried again, without a person.

Run by Celery beat (``retries.sweep_deferred_work``, every ``FLOODLIGHT_SWEEP_SECONDS``) in a
deployment, or by ``manage.py sweep_deferred_work [--every SECONDS]`` in the embedded mode. Safe to
run several at once and as often as wanted: each piece of work is claimed under a row lock before
it is done, so nothing is sent twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from celery import shared_task


@dataclass
class SweepReport:
    information_emails: dict[str, int] = field(default_factory=dict)
    generation_requests: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        def line(counts: dict[str, int]) -> str:
            return ", ".join(f"{n} {what}" for what, n in sorted(counts.items())) or "nothing due"

        return (f"information e-mails: {line(self.information_emails)}; "
                f"image generation requests: {line(self.generation_requests)}")


def sweep_deferred_work() -> SweepReport:
    from studyserver.survey.tasks import sweep_information_requests
    from studyserver.treatments.services import sweep_generation_requests

    return SweepReport(information_emails=sweep_information_requests(),
                       generation_requests=sweep_generation_requests())


@shared_task(name="retries.sweep_deferred_work", ignore_result=True)
def sweep_task() -> dict[str, Any]:
    report = sweep_deferred_work()
    return {"information_emails": report.information_emails, "generation_requests": report.generation_requests}

"""Send the pending information e-mails now, without waiting for their next automatic try.

Not needed in normal operation: the sweep (Celery beat, or ``sweep_deferred_work``) retries them.
"""

from datetime import timedelta

from django.core.management.base import BaseCommand
from django.utils import timezone

from studyserver.survey.models import InformationRequest
from studyserver.survey.tasks import queue_information_email


class Command(BaseCommand):
    help = "Queue every pending information e-mail request now (safe to repeat: a request is never sent twice)."

    def add_arguments(self, parser):
        parser.add_argument("--older-than-minutes", type=int, default=10,
                            help="Only requests pending for at least this long (default 10: leave fresh ones to the worker).")

    def handle(self, *args, **options):
        cutoff = timezone.now() - timedelta(minutes=options["older_than_minutes"])
        pending = list(InformationRequest.objects.filter(status=InformationRequest.Status.PENDING, created_at__lte=cutoff)
                       .order_by("created_at").values_list("pk", flat=True))
        self.stdout.write(f"{len(pending)} pending information e-mail request(s)")
        queued = 0
        for number, request_id in enumerate(pending, start=1):
            # A person asked for it now: the request's backoff is skipped (its claim still prevents a second send).
            queued += queue_information_email(request_id, force=True)
            if number % 100 == 0 or number == len(pending):
                self.stdout.write(f"  {number}/{len(pending)} handled")
        sent = InformationRequest.objects.filter(pk__in=pending, status=InformationRequest.Status.SENT).count()
        self.stdout.write(self.style.SUCCESS(f"queued {queued}, sent now {sent} (eager mode sends at once), "
                                             f"{len(pending) - queued} could not be queued"))

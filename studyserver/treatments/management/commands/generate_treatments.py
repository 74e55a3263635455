"""Fan out generation tasks for source photos that have no live stimulus yet.

    python manage.py generate_treatments            # every photo that needs it (same as --all)
    python manage.py generate_treatments --district 24001 [--kind house]
    python manage.py generate_treatments --kind provincial_landmark --representation-order 2013

A source photo is skipped when it already has a queued, generated or approved stimulus; a photo
whose stimuli were all rejected or failed gets a new one with the next seed. A queued stimulus
whose task started longer ago than the hard time limit (a worker killed by the limit acknowledges
its message) is sent again, so nothing stays queued forever. With a broker the
tasks go to the ``gpu`` queue; in the embedded default (eager) they run here, one by one.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q
from django.utils import timezone
from tqdm import tqdm

from studyserver.geo.models import District
from studyserver.treatments import orders, services
from studyserver.treatments.models import DISTRICT_KINDS, Kind, SourcePhoto, Stimulus

LIVE = (Stimulus.Status.QUEUED, Stimulus.Status.GENERATED, Stimulus.Status.APPROVED)


def default_representation_order() -> str:
    """The latest study's representation order; without a study, the only order with districts."""
    order = orders.default_representation_order()
    if order is not None:
        return order
    loaded = sorted(District.objects.order_by().values_list("representation_order", flat=True).distinct())
    if not loaded:
        raise CommandError("No districts are loaded: run load_districts first (see the README).")
    raise CommandError(f"Districts of several representation orders are loaded ({', '.join(loaded)}) and no "
                       "study says which one: pass --representation-order.")


def test_weights_warnings() -> list[str]:
    """A warning when real (non-DEMO) photos would be flooded by the tiny reference weights."""
    from studyserver.treatments.weights import generator_uses_test_weights

    if generator_uses_test_weights() and SourcePhoto.objects.filter(is_demo=False).exists():
        return ["No trained weights are configured (GENERATOR_MASKER_CHECKPOINT / GENERATOR_PAINTER_CHECKPOINT): "
                "images are made by the tiny test weights of the reference backend, fit for a demo only."]
    return []


class Command(BaseCommand):
    help = "Queue flood generation for source photos without a queued/generated/approved stimulus."

    def add_arguments(self, parser):
        parser.add_argument("--district", metavar="FED_CODE", help="Only what this district needs "
                            "(its house and landmark photos, its province's landmark, the distant photo).")
        parser.add_argument("--kind", choices=Kind.values, help="Only this kind of material.")
        parser.add_argument("--all", action="store_true", help="Every source photo (the default without "
                            "--district or --kind).")
        parser.add_argument("--representation-order", default=None, metavar="RO",
                            help="Districts of this order only (default: the latest study's order, or the "
                            "only order loaded).")

    def handle(self, *args, **options):
        order = options["representation_order"] or default_representation_order()
        for warning in test_weights_warnings():
            self.stderr.write(self.style.WARNING(warning))
        sources = SourcePhoto.objects.select_related("district")
        # District photos of other representation orders are never touched.
        sources = sources.filter(~Q(kind__in=DISTRICT_KINDS) | Q(district__representation_order=order))
        if options["kind"]:
            sources = sources.filter(kind=options["kind"])
        if options["district"]:
            district = District.objects.filter(representation_order=order, fed_code=options["district"]).first()
            if district is None:
                raise CommandError(f"No district {options['district']!r} in the {order} representation order.")
            sources = sources.filter(
                Q(kind__in=DISTRICT_KINDS, district=district)
                | Q(kind=Kind.PROVINCIAL_LANDMARK, province_code=district.province_code)
                | Q(kind=Kind.DISTANT)
            )
        todo = list(sources.exclude(stimuli__status__in=LIVE).order_by("kind", "province_code", "id"))
        skipped = sources.filter(stimuli__status__in=LIVE).distinct().count()
        stale_before = timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 60)
        stale = list(Stimulus.objects.filter(source__in=sources, status=Stimulus.Status.QUEUED,
                                             started_at__lt=stale_before).values_list("pk", flat=True))
        for stimulus_id in stale:
            services.send_generation_task(stimulus_id)  # a broker that is down leaves it to the sweep
        queued = 0
        for source in tqdm(todo, desc="queueing", unit="photo", file=getattr(self.stderr, "_out", self.stderr), disable=not todo):
            services.queue_stimulus(source)
            queued += 1
        self.stdout.write(
            f"queued {queued}, skipped {skipped} (already queued, generated or approved), "
            f"resent {len(stale)} stale; now: {now_summary(sources)}"
        )


def now_summary(sources) -> str:
    """Where the photos considered stand, counted as the review queue and the coverage board count
    (every photo's stimuli, not only those queued by this run: right after an upload that queued
    generation, the run queues nothing and the review queue still has its images waiting)."""
    states = dict.fromkeys(Stimulus.Status.values, 0)
    for status in Stimulus.objects.filter(source__in=sources).values_list("status", flat=True):
        states[status] += 1
    # A failure that a newer stimulus replaced is history: only photos left without one count.
    failed = sources.filter(stimuli__status=Stimulus.Status.FAILED).exclude(stimuli__status__in=LIVE)
    return (f"{states['generated']} generated and waiting for review, {states['queued']} queued, "
            f"{states['approved']} approved, {failed.distinct().count()} failed "
            f"(of {sources.count()} source photos considered)")

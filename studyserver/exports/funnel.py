"""The participant funnel (CONSORT-style), counted in the database: used by the API and the admin."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Q
from django.utils import timezone

from studyserver.assignment.models import Assignment
from studyserver.quality.services import assess_study, counts_by_arm
from studyserver.survey.models import Participant
from studyserver.treatments.services import study_arms

ARM_STAGES: tuple[str, ...] = ("assigned", "exposed", "completed", "attrited", "abandoned", "withdrawn")


def funnel(study: Any) -> dict[str, Any]:
    """Counts from entry to completion.

    ``started``: every participant who entered; ``consented``; ``declined`` (the anonymous count
    kept on the study); ``placed`` (a district was settled); ``screened_out`` by reason, and
    ``screened_out_details`` by reason and what was missing (e.g. ``material_missing: house``). Per arm:
    ``assigned``; ``exposed`` (treatment page submitted; control has no such page, so 0);
    ``completed``; ``attrited`` = assigned but not completed (withdrawals included);
    ``withdrawn`` (withdrew their data afterwards; also counted in ``attrited``).
    ``abandoned_total``: not finished (nor screened out or withdrawn) and not seen for
    ``FLOODLIGHT_ABANDONED_AFTER_HOURS``, at any stage; ``abandoned`` per arm: the assigned ones
    among them; ``in_progress``: not finished, seen more recently (they may still come back).
    ``quality_flags``: each respondent-quality flag by arm (``quality_flags_total``: everyone,
    assigned or not); ``excluded`` by arm and ``excluded_total``: by the study's pre-registered
    ``exclusion_rule`` (frozen at ``exclusion_frozen_at``). The same computation as the export's.
    """
    people = Participant.objects.filter(study=study)
    unfinished = ~Q(state__in=[Participant.State.COMPLETED, Participant.State.SCREENED_OUT,
                               Participant.State.WITHDRAWN])
    idle_since = timezone.now() - timedelta(hours=settings.FLOODLIGHT_ABANDONED_AFTER_HOURS)
    totals = people.aggregate(
        started=Count("pk"),
        abandoned=Count("pk", filter=unfinished & Q(last_seen_at__lt=idle_since)),
        in_progress=Count("pk", filter=unfinished & Q(last_seen_at__gte=idle_since)),
        consented=Count("pk", filter=Q(consented_at__isnull=False)),
        placed=Count("pk", filter=Q(placed_at__isnull=False)),
    )
    reasons = {
        row["screenout_reason"] or "unspecified": row["n"]
        for row in people.filter(state=Participant.State.SCREENED_OUT)
        .values("screenout_reason").annotate(n=Count("pk")).order_by("screenout_reason")
    }
    # What each screen-out was about: the arms whose image was missing, the district out of scope.
    details = {
        f"{row['screenout_reason']}: {row['screenout_detail']}": row["n"]
        for row in people.filter(state=Participant.State.SCREENED_OUT).exclude(screenout_detail="")
        .values("screenout_reason", "screenout_detail").annotate(n=Count("pk"))
        .order_by("screenout_reason", "screenout_detail")
    }
    arms = list(study_arms(study))
    per_arm = {stage: dict.fromkeys(arms, 0) for stage in ARM_STAGES}
    rows = (
        Assignment.objects.filter(study=study).values("arm").order_by("arm").annotate(
            assigned=Count("pk"),
            exposed=Count("pk", filter=Q(participant__exposed_at__isnull=False)),
            completed=Count("pk", filter=Q(participant__state=Participant.State.COMPLETED)),
            withdrawn=Count("pk", filter=Q(participant__state=Participant.State.WITHDRAWN)),
            abandoned=Count("pk", filter=Q(participant__last_seen_at__lt=idle_since) & ~Q(
                participant__state__in=[Participant.State.COMPLETED, Participant.State.WITHDRAWN])),
        )
    )
    for row in rows:
        for stage in ("assigned", "exposed", "completed", "abandoned", "withdrawn"):
            per_arm[stage][row["arm"]] = row[stage]
        per_arm["attrited"][row["arm"]] = row["assigned"] - row["completed"]
    quality = counts_by_arm(study, assess_study(study), arms)
    return {
        "study": study.slug,
        "started": totals["started"],
        "consented": totals["consented"],
        "declined": study.declined_count,
        "placed": totals["placed"],
        "abandoned_total": totals["abandoned"],
        "in_progress": totals["in_progress"],
        "abandoned_after_hours": settings.FLOODLIGHT_ABANDONED_AFTER_HOURS,
        "screened_out": reasons,
        "screened_out_total": sum(reasons.values()),
        "screened_out_details": details,
        **per_arm,
        "assigned_total": sum(per_arm["assigned"].values()),
        "completed_total": sum(per_arm["completed"].values()),
        "attrited_total": sum(per_arm["attrited"].values()),
        **quality,
    }

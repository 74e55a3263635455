"""What the rest of the platform asks of the treatment images.

What the apps above use (ARCHITECTURE.md): ``MATERIAL_KINDS``, ``arms_missing_material(study, district)``,
``stimulus_for(arm, district)``, and on :class:`~.models.Stimulus` ``.public_id``, ``.image_url``,
``.place_name(lang)``, ``.provenance()``.

``material_coverage`` is the ONE coverage query: the eligibility check (one district) and the
coverage board (every district of a representation order) both read it, so they cannot disagree.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.db import transaction
from django.db.models import F, Max, Q, QuerySet, TextField, Value
from django.db.models.functions import Concat
from django.utils import timezone

from generator.params import FloodParams
from studyserver.retries import policy
from studyserver.studies.arms import ARMS, CONTROL_ARM

from .models import DISTRICT_KINDS, Kind, ReviewEvent, SourcePhoto, Stimulus
from .tasks import send_generation_task

logger = logging.getLogger(__name__)

MATERIAL_KINDS: tuple[str, ...] = tuple(Kind.values)

MISSING = "missing"
# Best first: a slot's state is the best state among its stimuli (rejected/failed count as missing).
SLOT_STATES: tuple[str, ...] = (
    Stimulus.Status.APPROVED.value,
    Stimulus.Status.GENERATED.value,
    Stimulus.Status.QUEUED.value,
    MISSING,
)
_LIVE_STATUSES = SLOT_STATES[:-1]


def study_arms(study: Any) -> tuple[str, ...]:
    """The arms the study randomizes between: those of its allocation scheme (ratio > 0), every
    arm while it has none yet (the default scheme's). Read through the study's relation to its
    scheme: assignment is the layer above, which asks this module about material, not the reverse."""
    try:
        scheme = study.allocation_scheme
    except ObjectDoesNotExist:
        return ARMS
    return tuple(scheme.arms)


def material_coverage(
    districts: Iterable[Any] | QuerySet, *, include_demo: bool = True
) -> dict[int, dict[str, str]]:
    """``{district_id: {kind: state}}`` for every district given, state in :data:`SLOT_STATES`.

    One database query whatever the number of districts: district kinds are matched on the
    district, the provincial landmark on the district's province, the distant photo everywhere.
    ``include_demo=False`` ignores simulated-world DEMO material (a real study never shows it).
    """
    districts = list(districts)
    if not districts:
        return {}
    provinces = {district.province_code for district in districts}
    slots = Q(source__kind__in=DISTRICT_KINDS, source__district_id__in=[d.pk for d in districts])
    slots |= Q(source__kind=Kind.PROVINCIAL_LANDMARK, source__province_code__in=provinces)
    slots |= Q(source__kind=Kind.DISTANT)
    rows = Stimulus.objects.filter(slots, status__in=_LIVE_STATUSES)
    if not include_demo:
        rows = rows.filter(source__is_demo=False)
    best: dict[tuple[str, Any], int] = {}
    for kind, district_id, province_code, status in rows.values_list(
        "source__kind", "source__district_id", "source__province_code", "status"
    ).distinct():
        key = (kind, district_id if kind in DISTRICT_KINDS else province_code if kind == Kind.PROVINCIAL_LANDMARK else None)
        rank = SLOT_STATES.index(status)
        best[key] = min(best.get(key, rank), rank)

    def state(kind: str, district: Any) -> str:
        slot = district.pk if kind in DISTRICT_KINDS else district.province_code if kind == Kind.PROVINCIAL_LANDMARK else None
        return SLOT_STATES[best.get((kind, slot), len(SLOT_STATES) - 1)]

    return {district.pk: {kind: state(kind, district) for kind in MATERIAL_KINDS} for district in districts}


def arms_missing_material(study: Any, district: Any) -> list[str]:
    """The study's arms whose approved stimulus is missing for ``district`` (control never is).

    A demo study may use DEMO material; a real study only counts real material.
    """
    arms = [arm for arm in study_arms(study) if arm != CONTROL_ARM]
    if district is None:
        return arms
    coverage = material_coverage([district], include_demo=bool(getattr(study, "demo", False)))
    states = coverage[district.pk]
    return [arm for arm in arms if states.get(arm) != Stimulus.Status.APPROVED]


def stimulus_for(arm: str, district: Any, study: Any = None, fields: Sequence[str] = ()) -> Stimulus | None:
    """The approved stimulus shown to a participant of ``district`` in ``arm`` (None for control).

    Several approved stimuli for one slot: real material before DEMO material, then the latest
    approved (ties by id), so the choice is deterministic; the survey records ``public_id``.
    Pass ``study`` to exclude DEMO material for a real study, as the eligibility check does, and
    ``fields`` (``only()`` names, the source's as ``source__…``) to read no more than a page shows.
    """
    if arm == CONTROL_ARM or arm not in MATERIAL_KINDS:
        return None
    if arm in DISTRICT_KINDS or arm == Kind.PROVINCIAL_LANDMARK:
        if district is None:
            return None
        scope, values = ("district", [district.pk]) if arm in DISTRICT_KINDS else ("province", [district.province_code])
    else:
        scope, values = "all", []
    real_only = study is not None and not getattr(study, "demo", False)
    # One filter and a slice (not a chain of filter/exclude/first): each step clones the query,
    # and on the image page's first serve building the query costs more than running it.
    wanted = Q(status=Stimulus.Status.APPROVED, source__kind=arm) & ~Q(result="")
    if scope == "district":
        wanted &= Q(source__district_id=values[0])
    elif scope == "province":
        wanted &= Q(source__province_code=values[0])
    if real_only:
        wanted &= Q(source__is_demo=False)
    # Not cached: a researcher who withdraws an image withdraws it from the next page served.
    chosen = Stimulus.objects.filter(wanted).select_related("source")
    if fields:
        chosen = chosen.only(*fields)
    return next(iter(chosen.order_by("source__is_demo", "-approved_at", "-id")[:1]), None)


# --- Generation and review ----------------------------------------------------------------------


def next_seed(source: SourcePhoto) -> int:
    highest = source.stimuli.aggregate(highest=Max("seed"))["highest"]
    return 0 if highest is None else highest + 1


def queue_stimulus(source: SourcePhoto, *, seed: int | None = None, params: dict | None = None) -> Stimulus:
    """Create a queued stimulus for ``source`` and send its generation task once the row is committed."""

    stimulus = Stimulus.objects.create(
        source=source,
        seed=next_seed(source) if seed is None else seed,
        params=dict(params or {}),
        status=Stimulus.Status.QUEUED,
    )
    transaction.on_commit(lambda: send_generation_task(stimulus.pk))
    return stimulus


def sweep_generation_requests(now: datetime | None = None) -> dict[str, int]:
    """Resend generation tasks that never reached the broker, or whose worker died, when due.

    A stimulus still waiting in the queue is left alone (a long GPU queue is not a fault); one that
    could not be sent after the allowed number of tries is marked failed with the reason.
    """
    now = now or timezone.now()
    outcomes: dict[str, int] = {}
    unsent = Stimulus.objects.filter(status=Stimulus.Status.QUEUED).exclude(send_error="")
    gave_up = list(unsent.filter(sends__gte=policy.max_attempts()).values_list("pk", flat=True))
    for stimulus_id in gave_up:
        Stimulus.objects.filter(pk=stimulus_id, status=Stimulus.Status.QUEUED).update(
            status=Stimulus.Status.FAILED, error=Concat(Value(f"not queued after {policy.max_attempts()} tries: "), F("send_error"), output_field=TextField()))
    if gave_up:
        outcomes["failed (never queued)"] = len(gave_up)
    # A worker killed by the hard time limit acknowledges its message: its claim goes stale. The
    # claim is dropped as the task is resent, so the next sweep leaves the new message to the queue.
    stale_before = now - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 60)
    stale = Stimulus.objects.filter(status=Stimulus.Status.QUEUED, started_at__lt=stale_before)
    due = sorted({*stale.values_list("pk", flat=True), *Stimulus.objects.filter(
        status=Stimulus.Status.QUEUED, next_attempt_at__lte=now).exclude(send_error="").values_list("pk", flat=True)})
    stale.update(started_at=None, task_id="")
    for stimulus_id in due:
        key = "resent" if send_generation_task(stimulus_id) else "not queued yet"
        outcomes[key] = outcomes.get(key, 0) + 1
    return outcomes


def _locked(stimulus: Stimulus) -> Stimulus:
    return Stimulus.objects.select_for_update().select_related("source").get(pk=stimulus.pk)


class ReviewError(ValueError):
    """A review action that does not apply to the stimulus' current state."""


@transaction.atomic
def approve(stimulus: Stimulus, actor: Any = None, note: str = "") -> Stimulus:
    stimulus = _locked(stimulus)
    if stimulus.status not in (Stimulus.Status.GENERATED, Stimulus.Status.REJECTED) or not stimulus.result:
        raise ReviewError(f"Only a generated stimulus can be approved (this one is {stimulus.status}).")
    stimulus.status = Stimulus.Status.APPROVED
    stimulus.approved_at = timezone.now()
    stimulus.save(update_fields=["status", "approved_at"])
    ReviewEvent.objects.create(stimulus=stimulus, actor=_user(actor), action=ReviewEvent.Action.APPROVE, note=note)
    return stimulus


@transaction.atomic
def reject(stimulus: Stimulus, actor: Any = None, note: str = "") -> Stimulus:
    stimulus = _locked(stimulus)
    if stimulus.status not in (Stimulus.Status.GENERATED, Stimulus.Status.APPROVED):
        raise ReviewError(f"Only a generated or approved stimulus can be rejected (this one is {stimulus.status}).")
    stimulus.status = Stimulus.Status.REJECTED
    stimulus.save(update_fields=["status"])
    ReviewEvent.objects.create(stimulus=stimulus, actor=_user(actor), action=ReviewEvent.Action.REJECT, note=note)
    return stimulus


@transaction.atomic
def regenerate(stimulus: Stimulus, actor: Any = None, note: str = "") -> Stimulus:
    """Queue a new stimulus from the same source with a new seed; an unapproved original is rejected.

    An approved original stays live until the new one is approved (the slot never goes empty).
    """
    stimulus = _locked(stimulus)
    if stimulus.status == Stimulus.Status.QUEUED:
        raise ReviewError("This stimulus is still queued; wait for it before regenerating.")
    if stimulus.status in (Stimulus.Status.GENERATED, Stimulus.Status.FAILED):
        stimulus.status = Stimulus.Status.REJECTED
        stimulus.save(update_fields=["status"])
    params = requested_params(stimulus.params or {})
    replacement = queue_stimulus(stimulus.source, params=params)
    ReviewEvent.objects.create(
        stimulus=stimulus, actor=_user(actor), action=ReviewEvent.Action.REGENERATE,
        note=(note + "\n" if note else "") + f"replaced by stimulus {replacement.pk} (seed {replacement.seed})",
    )
    return replacement


def requested_params(recorded: dict) -> dict:
    """The generation request behind a stimulus' recorded parameters, without its seed.

    After generation ``Stimulus.params`` holds the *effective* parameters (the backend adds its
    framing, precision…), which are not valid as a new request.
    """
    import dataclasses

    requestable = {field.name for field in dataclasses.fields(FloodParams)} - {"seed"}
    return {key: value for key, value in recorded.items() if key in requestable}


def _user(actor: Any) -> Any:
    return actor if getattr(actor, "is_authenticated", False) else None


def review_queue() -> QuerySet[Stimulus]:
    """Generated stimuli waiting for a decision, in the order they were queued.

    Not by generation time: a batch (or a retry) finishes out of order, and a reviewer working
    down an upload expects its images as numbered (#1, #2, … #10).
    """
    return (
        Stimulus.objects.filter(status=Stimulus.Status.GENERATED)
        .select_related("source", "source__district")
        .order_by("id")
    )

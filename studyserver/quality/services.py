"""Flags from the database: for a whole study (export, funnel, command) or one participant (on completion).

A study's assessment reads its participants and their questionnaire page submissions in two
queries, whatever its size; the rules themselves are the plain functions of :mod:`.flags`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import Q
from django.utils import timezone

from studyserver.assignment.models import Assignment
from studyserver.instrument.definition import Instrument
from studyserver.instrument.models import instrument_for_hash
from studyserver.survey.models import PageSubmission, Participant

from .flags import (
    Medians,
    Thresholds,
    Trace,
    duplicates,
    flags_of,
    is_excluded,
    multi_item_pages,
    questionnaire_steps,
    study_medians,
)

logger = logging.getLogger(__name__)

_PARTICIPANT_FIELDS = ("id", "state", "language", "province_code", "attention_passed", "honeypot_step",
                       "browser_id", "network_hash", "started_at", "questionnaire_id")


def _instrument(digest: str | None, study: Any) -> Instrument:
    return instrument_for_hash(digest) if digest else study.instrument


def _traces(study: Any, participants: Any) -> tuple[list[Trace], dict[str, Instrument]]:
    """(traces in entry order, each participant's instrument by id) for a queryset of participants."""
    rows = list(participants.order_by("started_at", "id").values_list(*_PARTICIPANT_FIELDS))
    traces: dict[str, Trace] = {}
    instruments: dict[str, Instrument] = {}
    timed: set[str] = set()
    batteries: set[str] = set()
    thresholds = Thresholds.from_settings()
    versions: dict[str | None, Instrument] = {}
    for (pk, state, language, province, attention, honeypot, browser, network, started, digest) in rows:
        key = str(pk)
        instrument = versions.get(digest)
        if instrument is None:
            instrument = versions[digest] = _instrument(digest, study)
            timed.update(questionnaire_steps(instrument))
            batteries.update(page.key for page in multi_item_pages(instrument, thresholds.straight_lining_min_items))
        instruments[key] = instrument
        traces[key] = Trace(participant_id=key, completed=state == Participant.State.COMPLETED, language=language,
                            province_code=province, attention_passed=attention, honeypot_step=honeypot,
                            browser_id=browser, network_hash=network, started_at=started)
    if traces:
        # Times of every questionnaire page; answers (decoded JSON) only of the batteries.
        timings = (PageSubmission.objects.filter(participant__in=participants, step__in=timed)
                   .values_list("participant_id", "step", "seconds_on_page"))
        for pk, step, seconds in timings.iterator(chunk_size=20_000):
            trace = traces.get(str(pk))
            if trace is not None and seconds is not None:
                trace.seconds[step] = seconds
        answered = (PageSubmission.objects.filter(participant__in=participants, step__in=batteries)
                    .values_list("participant_id", "step", "answers"))
        for pk, step, answers in answered.iterator(chunk_size=20_000):
            trace = traces.get(str(pk))
            if trace is not None:
                trace.answers[step] = answers
    return list(traces.values()), instruments


def assess_study(study: Any) -> dict[str, list[str]]:
    """Every participant's flags (final: the medians of every complete so far), by participant id."""
    traces, instruments = _traces(study, Participant.objects.filter(study=study))
    medians = study_medians(traces)
    repeated = duplicates(traces)
    thresholds = Thresholds.from_settings()
    return {trace.participant_id: flags_of(trace, instruments[trace.participant_id], medians,
                                           trace.participant_id in repeated, thresholds) for trace in traces}


def excluded_ids(study: Any, flags: dict[str, list[str]]) -> set[str]:
    """Participants the study's pre-registered (frozen) exclusion rule excludes."""
    rule = study.exclusion_rule
    return {pk for pk, raised in flags.items() if is_excluded(raised, rule)}


def _cache_key(study: Any) -> str:
    return f"quality:medians:{study.pk}"


def medians_so_far(study: Any) -> Medians:
    """The study's medians now, kept QUALITY_MEDIANS_CACHE_SECONDS: a complete does not re-read them all."""
    cached = cache.get(_cache_key(study))
    if cached is not None:
        return Medians(**cached)
    completes = Participant.objects.filter(study=study, state=Participant.State.COMPLETED)
    medians = study_medians(_traces(study, completes)[0])
    cache.set(_cache_key(study), {"completes": medians.completes, "total": medians.total, "pages": dict(medians.pages)},
              settings.QUALITY_MEDIANS_CACHE_SECONDS)
    return medians


def is_duplicate(participant: Any) -> bool:
    """An earlier participant of the same study carried this one's browser id or network hash."""
    same = Q()
    if participant.browser_id:
        same |= Q(browser_id=participant.browser_id)
    if participant.network_hash:
        same |= Q(network_hash=participant.network_hash)
    if not same:
        return False
    earlier = Q(started_at__lt=participant.started_at) | Q(started_at=participant.started_at, id__lt=participant.pk)
    return Participant.objects.filter(same, earlier, study_id=participant.study_id).exclude(pk=participant.pk).exists()


def assess_participant(participant: Any) -> list[str]:
    """One participant's flags now (speeding against the medians so far)."""
    traces, instruments = _traces(participant.study, Participant.objects.filter(pk=participant.pk))
    if not traces:
        return []
    trace = traces[0]
    return flags_of(trace, instruments[trace.participant_id], medians_so_far(participant.study),
                    is_duplicate(participant), Thresholds.from_settings())


def record_flags(participant_id: uuid.UUID | str) -> list[str] | None:
    """Compute and keep a participant's flags (as completes accumulate). Never raises: a flag must
    never stop a participant, so a failure is logged and the export computes them anyway."""
    from .models import ParticipantQuality

    try:
        participant = Participant.objects.select_related("study").get(pk=participant_id)
        raised = assess_participant(participant)
        ParticipantQuality.objects.update_or_create(participant=participant, defaults={
            "flags": ";".join(raised), "computed_at": timezone.now()})
    except Exception:
        logger.exception("quality flags of participant %s not recorded (the export computes them)", participant_id)
        return None
    return raised


def store_study(study: Any, flags: dict[str, list[str]] | None = None) -> int:
    """Keep every participant's final flags (the ``quality_flags`` command); returns how many changed."""
    from .models import ParticipantQuality

    flags = assess_study(study) if flags is None else flags
    stored = dict(ParticipantQuality.objects.filter(participant__study=study).values_list("participant_id", "flags"))
    stored = {str(pk): value for pk, value in stored.items()}
    now = timezone.now()
    changed = [ParticipantQuality(participant_id=uuid.UUID(pk), flags=";".join(raised), computed_at=now)
               for pk, raised in flags.items() if stored.get(pk) != ";".join(raised)]
    ParticipantQuality.objects.bulk_create(changed, update_conflicts=True, unique_fields=["participant"],
                                           update_fields=["flags", "computed_at"], batch_size=2000)
    return len(changed)


def counts_by_arm(study: Any, flags: dict[str, list[str]], arms: Iterable[str]) -> dict[str, Any]:
    """Each flag (and exclusion) counted by arm, and in total (everyone, assigned or not)."""
    from .flags import FLAG_NAMES

    arm_of = {str(pk): arm for pk, arm in Assignment.objects.filter(study=study).values_list("participant_id", "arm")}
    arms = list(arms)
    by_arm = {name: dict.fromkeys(arms, 0) for name in FLAG_NAMES}
    totals = dict.fromkeys(FLAG_NAMES, 0)
    excluded = dict.fromkeys(arms, 0)
    rule = study.exclusion_rule
    for pk, raised in flags.items():
        arm = arm_of.get(pk)
        for name in raised:
            totals[name] += 1
            if arm in by_arm[name]:
                by_arm[name][arm] += 1
        if arm in excluded and is_excluded(raised, rule):
            excluded[arm] += 1
    return {"quality_flags": by_arm, "quality_flags_total": totals, "excluded": excluded,
            "excluded_total": sum(1 for raised in flags.values() if is_excluded(raised, rule)),
            "exclusion_rule": list(rule),
            "exclusion_frozen_at": study.exclusion_frozen_at.isoformat() if study.exclusion_frozen_at else None}

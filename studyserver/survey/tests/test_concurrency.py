"""Two tabs, a double click, a retrying proxy: simultaneous requests on real PostgreSQL row locks."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, connections

from studyserver.assignment.models import Assignment
from studyserver.assignment.tests.helpers import make_district
from studyserver.instrument.definition import get_instrument
from studyserver.studies.models import Study
from studyserver.survey import flow
from studyserver.survey.models import PageSubmission, Participant

from .conftest import PRE_PAGES, answers_for, approve_images_for

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row-lock concurrency needs PostgreSQL"),
]

THREADS = 8


def run_at_once(action: Callable[[], Any], threads: int = THREADS) -> list[Any]:
    """Run ``action`` in ``threads`` threads released together; returns results or exceptions."""
    barrier = threading.Barrier(threads)
    results: list[Any] = []
    lock = threading.Lock()

    def worker() -> None:
        try:
            barrier.wait()
            outcome = action()
        except Exception as error:  # noqa: BLE001 (collected and asserted on by the test)
            outcome = error
        finally:
            connections.close_all()
        with lock:
            results.append(outcome)

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    return results


def test_the_same_panel_id_arriving_in_several_tabs_makes_one_participant():
    study = Study.objects.create(slug=f"tabs-{uuid.uuid4().hex[:8]}", title="Tabs", is_open=True)
    results = run_at_once(lambda: flow.enter(study, "SAME-ID", "en"))
    assert not [r for r in results if isinstance(r, Exception)]
    assert Participant.objects.filter(study=study).count() == 1
    assert {r.participant.pk for r in results} == {Participant.objects.get(study=study).pk}
    assert sorted(r.outcome for r in results).count("new") == 1


def at_the_last_pre_treatment_page(study: Study, district: Any) -> Participant:
    """A placed participant who has answered every pre-treatment page but the last."""
    participant = Participant.objects.create(
        study=study, state=Participant.State.PLACED, district=district, province_code="QC",
        district_method=Participant.DistrictMethod.CERTAIN, current_step=PRE_PAGES[0],
    )
    instrument = get_instrument()
    for key in PRE_PAGES[:-1]:
        page = instrument.page(key)
        flow.submit_page(participant, page, answers_for(page, "QC", participant.answers()), {})
    return participant


def study_with_images(settings: Any, tmp_path: Any, **fields: Any) -> tuple[Study, Any]:
    settings.MEDIA_ROOT = tmp_path
    district = make_district(province="QC")
    approve_images_for(district)
    study = Study.objects.create(slug=f"race-{uuid.uuid4().hex[:8]}", title="Race", is_open=True,
                                 representation_order=district.representation_order, **fields)
    return study, district


def test_the_last_pre_treatment_page_submitted_at_once_draws_one_arm(settings, tmp_path):
    study, district = study_with_images(settings, tmp_path)
    participant = at_the_last_pre_treatment_page(study, district)
    last = get_instrument().page(PRE_PAGES[-1])
    answers = answers_for(last, "QC", participant.answers())

    results = run_at_once(lambda: flow.submit_page(participant, last, answers, {}))

    refused = [r for r in results if isinstance(r, Exception)]
    assert all(isinstance(r, flow.AlreadySubmitted) for r in refused), refused
    assert len(refused) == THREADS - 1  # the first one through the row lock wins; the rest see it done
    assert Assignment.objects.filter(participant=participant).count() == 1
    assert PageSubmission.objects.filter(participant=participant, step=last.key).count() == 1
    participant.refresh_from_db()
    assert participant.state == Participant.State.ASSIGNED


def test_the_last_places_of_a_quota_go_to_exactly_that_many_people(settings, tmp_path):
    study, district = study_with_images(settings, tmp_path, assignment_quota=3)
    people = iter([at_the_last_pre_treatment_page(study, district) for _ in range(THREADS)])
    lock = threading.Lock()
    last = get_instrument().page(PRE_PAGES[-1])

    def submit_last_page() -> Participant:
        with lock:
            participant = next(people)
        return flow.submit_page(participant, last, answers_for(last, "QC", participant.answers()), {})

    results = run_at_once(submit_last_page)
    assert not [r for r in results if isinstance(r, Exception)]
    states = sorted(Participant.objects.filter(study=study).values_list("state", "screenout_reason"))
    assert states.count(("assigned", "")) == 3
    assert states.count(("screened_out", "over_quota")) == THREADS - 3
    assert Assignment.objects.filter(study=study).count() == 3

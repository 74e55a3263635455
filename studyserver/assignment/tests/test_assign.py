"""assign(): eligibility first, idempotence, append-only records, strata by a pre-treatment item."""

from __future__ import annotations

import pytest
from django.db import connection

from studyserver.assignment.models import AllocationSlot, AppendOnlyError, Assignment, StratumCursor
from studyserver.assignment.services import (
    IneligibleError,
    allocation_table,
    assign,
    check_eligibility,
    stratum_of,
    verify_sequence,
)
from studyserver.survey.models import Participant

from .helpers import answer, make_district, make_participants, make_study, no_missing_material

pytestmark = pytest.mark.django_db


def test_eligible_participant_is_assigned_once_and_state_set():
    study = make_study()
    district = make_district("NS")
    participant = make_participants(study, 1, province="NS", district=district)[0]
    eligibility = check_eligibility(participant, missing_material=no_missing_material)
    assert eligibility.eligible and eligibility.reason == "eligible"
    first = assign(participant, missing_material=no_missing_material)
    assert participant.state == "assigned"
    assert Participant.objects.get(pk=participant.pk).state == "assigned"
    assert (first.stratum, first.sequence_position) == ("NS", 1)
    # Idempotent: a second call (fresh instance, as another process would have) returns the same row.
    again = assign(Participant.objects.get(pk=participant.pk), missing_material=no_missing_material)
    assert again.pk == first.pk and again.arm == first.arm
    assert Participant.objects.get(pk=participant.pk).assignment.pk == first.pk
    assert Assignment.objects.filter(participant=participant).count() == 1
    assert (
        StratumCursor.objects.get(scheme=study.allocation_scheme, stratum="NS").next_position == 2
    )
    # Already assigned is never a reason to screen out, even if material disappeared since.
    later = check_eligibility(participant, missing_material=lambda s, d: ["house"])
    assert later.eligible and later.reason == "already_assigned"


@pytest.mark.parametrize(
    "setup, reason, missing",
    [
        ("no_district", "no_district", []),
        ("not_placed", "not_placed", []),
        ("material", "material_missing", ["house", "provincial_landmark"]),
    ],
)
def test_ineligible_participant_gets_no_draw(setup, reason, missing):
    study = make_study()
    district = None if setup == "no_district" else make_district("MB")
    participant = make_participants(study, 1, province="MB", district=district)[0]
    if setup == "not_placed":
        participant.state = Participant.State.CONSENTED
        participant.save()
    material = (
        (lambda s, d: ["control", "house", "provincial_landmark"])
        if setup == "material"
        else no_missing_material
    )
    eligibility = check_eligibility(participant, missing_material=material)
    assert (eligibility.eligible, eligibility.reason, eligibility.missing_arms) == (
        False,
        reason,
        missing,
    )
    with pytest.raises(IneligibleError) as raised:
        assign(participant, missing_material=material)
    assert raised.value.eligibility == eligibility
    assert not Assignment.objects.filter(participant=participant).exists()
    assert not AllocationSlot.objects.filter(scheme__study=study).exists()
    assert Participant.objects.get(pk=participant.pk).state == participant.state


def test_material_check_only_counts_the_schemes_arms():
    study = make_study(arm_ratios=[{"arm": "control", "ratio": 1}, {"arm": "distant", "ratio": 1}])
    participant = make_participants(study, 1, district=make_district())[0]
    assert check_eligibility(participant, missing_material=lambda s, d: ["house"]).eligible


def test_default_material_check_uses_the_treatments_coverage_query():
    # No approved images at all: every arm but control is missing, so nobody is drawn.
    study = make_study()
    participant = make_participants(study, 1, district=make_district())[0]
    eligibility = check_eligibility(participant)
    assert not eligibility.eligible
    assert set(eligibility.missing_arms) == {
        "distant",
        "house",
        "district_landmark",
        "provincial_landmark",
    }


def test_assignments_and_slots_are_append_only():
    study = make_study(seed=3, strata="none")
    assignment = assign(make_participants(study, 1)[0], verify_eligibility=False)
    slot = assignment.slot
    assignment.arm = "house" if assignment.arm != "house" else "control"
    with pytest.raises(AppendOnlyError):
        assignment.save()
    with pytest.raises(AppendOnlyError):
        assignment.delete()
    with pytest.raises(AppendOnlyError):
        Assignment.objects.filter(pk=assignment.pk).update(arm="control")
    with pytest.raises(AppendOnlyError):
        Assignment.objects.filter(pk=assignment.pk).delete()
    with pytest.raises(AppendOnlyError):
        slot.save()
    with pytest.raises(AppendOnlyError):
        AllocationSlot.objects.filter(pk=slot.pk).delete()
    stored = Assignment.objects.get(pk=assignment.pk)
    assert stored.arm == slot.arm


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="database triggers are PostgreSQL only"
)
def test_database_refuses_raw_update_and_delete():
    from django.db import DatabaseError, transaction

    study = make_study(seed=3, strata="none")
    assignment = assign(make_participants(study, 1)[0], verify_eligibility=False)
    for sql in (
        "UPDATE assignment_assignment SET arm = 'control' WHERE id = %s",
        "DELETE FROM assignment_assignment WHERE id = %s",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cur,
        ):
            cur.execute(sql, [assignment.pk])
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cur,
    ):
        cur.execute(
            "UPDATE assignment_allocationslot SET arm = 'house' WHERE id = %s", [assignment.slot_id]
        )


def test_strata_by_a_pre_treatment_item():
    study = make_study(strata="item", strata_item="worry", seed=11, block_multiples=[1])
    scheme = study.allocation_scheme
    participants = make_participants(study, 12)
    for index, participant in enumerate(participants[:10]):
        answer(participant, "climate", {"worry": 1 + index % 2})
    for participant in participants:
        assign(participant, verify_eligibility=False)
    table = allocation_table(study)
    assert set(table) == {"worry=1", "worry=2", "worry=missing"}
    assert [sum(counts.values()) for counts in table.values()] == [5, 5, 2]
    # Each complete stratum of 5 got one of each arm (blocks of exactly 5).
    assert all(
        set(counts.values()) == {1}
        for stratum, counts in table.items()
        if stratum != "worry=missing"
    )
    assert stratum_of(scheme, participants[0]) == "worry=1"
    assert verify_sequence(scheme) == []


def test_no_strata_uses_one_sequence():
    study = make_study(strata="none")
    people = make_participants(study, 3, province="QC") + make_participants(study, 3, province="AB")
    assert {assign(p, verify_eligibility=False).stratum for p in people} == {"all"}
    assert sorted(
        Assignment.objects.filter(study=study).values_list("sequence_position", flat=True)
    ) == [1, 2, 3, 4, 5, 6]

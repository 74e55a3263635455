"""Admin: live balance page, read-only records, concealed future slots."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from studyserver.assignment.models import AllocationSlot, Assignment
from studyserver.assignment.services import assign

from .helpers import make_participants, make_study

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    user = get_user_model().objects.create_superuser(
        "assign-admin", "a@example.org", "pw-assign-admin"
    )
    client.force_login(user)
    return client


def test_balance_page_shows_counts_per_arm_and_stratum_and_achieved_ratio(staff_client):
    study = make_study(seed=1, block_multiples=[1])
    for participant in make_participants(study, 10, "QC") + make_participants(study, 3, "NL"):
        assign(participant, verify_eligibility=False)
    scheme = study.allocation_scheme
    page = staff_client.get(reverse("admin:assignment_allocationscheme_balance", args=[scheme.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "13 participants assigned" in html
    balance = page.context["balance"]
    assert [row["name"] for row in balance["strata"]] == ["NL", "QC"]
    assert balance["strata"][1]["counts"] == [2, 2, 2, 2, 2]  # two complete blocks of 5 in QC
    assert sum(balance["strata"][0]["counts"]) == 3
    assert balance["target_ratio"] == "1:1:1:1:1"
    assert balance["grand_total"] == 13 and balance["max_imbalance"] == 1
    changelist = staff_client.get(reverse("admin:assignment_allocationscheme_changelist"))
    assert "counts and ratio" in changelist.content.decode()


def test_records_are_read_only_and_future_slots_concealed(staff_client):
    study = make_study(seed=2, strata="none", block_multiples=[2])
    assignment = assign(make_participants(study, 1)[0], verify_eligibility=False)
    assert (
        AllocationSlot.objects.filter(scheme__study=study).count() == 10
    )  # the whole block exists…
    slots = staff_client.get(reverse("admin:assignment_allocationslot_changelist"))
    assert slots.status_code == 200
    assert slots.context["cl"].result_count == 1  # …but only the taken slot is shown
    change = staff_client.get(reverse("admin:assignment_assignment_change", args=[assignment.pk]))
    assert change.status_code == 200 and not change.context["has_change_permission"]
    post = staff_client.post(
        reverse("admin:assignment_assignment_change", args=[assignment.pk]), {"arm": "house"}
    )
    assert post.status_code == 403
    delete = staff_client.post(
        reverse("admin:assignment_assignment_delete", args=[assignment.pk]), {"post": "yes"}
    )
    assert delete.status_code == 403
    assert Assignment.objects.get(pk=assignment.pk).arm == assignment.arm
    scheme_page = staff_client.get(
        reverse("admin:assignment_allocationscheme_change", args=[study.allocation_scheme.pk])
    )
    assert scheme_page.status_code == 200
    assert "seed" in scheme_page.context["adminform"].readonly_fields



def offered_actions(changelist) -> set[str]:
    """The bulk actions a list page offers (none at all: no action form)."""
    form = changelist.context["action_form"]
    return {name for name, _ in form.fields["action"].choices if name} if form else set()

def test_a_scheme_that_has_drawn_is_kept_and_the_list_says_why(staff_client):
    drawn = make_study(seed=3, strata="none", block_multiples=[1])
    assign(make_participants(drawn, 1)[0], verify_eligibility=False)
    scheme = drawn.allocation_scheme
    changelist = reverse("admin:assignment_allocationscheme_changelist")
    # Only a drawn scheme: nothing to delete, so no bulk delete is offered.
    assert "delete_selected" not in offered_actions(staff_client.get(changelist))
    delete = staff_client.post(reverse("admin:assignment_allocationscheme_delete", args=[scheme.pk]), {"post": "yes"})
    page = delete.content.decode()
    assert delete.status_code == 403 and "its allocation sequence has started (1 draw)" in page
    assert "You are a superuser" in page and "Your roles" not in page
    fresh = make_study(seed=4, strata="none", block_multiples=[1]).allocation_scheme
    actions = offered_actions(staff_client.get(changelist))
    assert "delete_selected" in actions
    confirm = staff_client.post(changelist, {"action": "delete_selected", "_selected_action": [scheme.pk, fresh.pk]})
    page = confirm.content.decode()
    assert "its allocation sequence has started" in page and "have permission" not in page
    assert staff_client.post(changelist, {"action": "delete_selected", "_selected_action": [fresh.pk],
                                          "post": "yes"}).status_code == 302
    assert not type(fresh).objects.filter(pk=fresh.pk).exists() and type(fresh).objects.filter(pk=scheme.pk).exists()


def test_deleting_a_scheme_needs_the_permission(client):
    from studyserver.accounts.roles import DATA_MANAGER
    from tests.support.accounts import staff_with_roles

    scheme = make_study(seed=5, strata="none", block_multiples=[1]).allocation_scheme
    client.force_login(staff_with_roles("dm-scheme", DATA_MANAGER))
    delete = client.post(reverse("admin:assignment_allocationscheme_delete", args=[scheme.pk]), {"post": "yes"})
    assert delete.status_code == 403 and type(scheme).objects.filter(pk=scheme.pk).exists()


def test_arm_ratios_are_a_number_per_arm_not_raw_json(staff_client):
    from studyserver.assignment.models import AllocationScheme
    from studyserver.studies.arms import ARMS

    study = make_study()
    add = reverse("admin:assignment_allocationscheme_add")
    page = staff_client.get(add).content.decode()
    assert all(f'name="arm_ratios_{arm}"' in page for arm in ARMS) and 'name="arm_ratios"' not in page
    fields = {"study": study.pk, "strata": "province", "strata_item": "", "block_multiples": "[1, 2]", "seed": ""}
    refused = staff_client.post(add, {**fields, "arm_ratios_control": 1, **{f"arm_ratios_{a}": 0 for a in ARMS[1:]}})
    assert refused.status_code == 200 and "At least two arms need a positive ratio." in refused.content.decode()
    negative = staff_client.post(add, {**fields, **{f"arm_ratios_{a}": 1 for a in ARMS}, "arm_ratios_house": -1})
    assert "The house ratio is 0 (arm left out) or more." in negative.content.decode()
    ratios = {"arm_ratios_control": 2, "arm_ratios_distant": 1, "arm_ratios_house": 1,
              "arm_ratios_district_landmark": 0, "arm_ratios_provincial_landmark": 1}
    assert staff_client.post(add, {**fields, **ratios}).status_code == 302
    scheme = AllocationScheme.objects.get(study=study)
    assert scheme.arm_ratios == [{"arm": a, "ratio": ratios[f"arm_ratios_{a}"]} for a in ARMS]
    assert scheme.ratios == {"control": 2, "distant": 1, "house": 1, "provincial_landmark": 1}
    change = reverse("admin:assignment_allocationscheme_change", args=[scheme.pk])
    assert 'name="arm_ratios_control" value="2"' in staff_client.get(change).content.decode()
    # Once drawn, the numbers are shown and cannot change.
    assign(make_participants(study, 1)[0], verify_eligibility=False)
    assert AllocationScheme.objects.get(pk=scheme.pk).sequence_started
    page = staff_client.get(change).content.decode()
    assert "control (2), distant (1), house (1), provincial_landmark (1)" in page and 'name="arm_ratios_control"' not in page

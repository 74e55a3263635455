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

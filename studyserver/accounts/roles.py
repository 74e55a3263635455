"""The researchers' roles: one mapping, synced into Django groups.

This is the single source of truth for who may do what in the admin and the API. A role is a
Django group holding exactly the permissions listed here; ``sync_roles`` runs from a data
migration and after every ``migrate`` (post_migrate), so a permission added by a later change
needs one line below and nothing else. Permissions are "app_label.codename".

A staff account in no group sees the admin index and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

REVIEWER = "reviewer"
DATA_MANAGER = "data manager"
PERSONAL_DATA = "personal data"
STUDY_ADMIN = "study admin"

_DATA_MANAGER_PERMISSIONS = [
    "exports.export_data",  # file exports without personal data, the funnel, the research API
    "exports.view_exportlog",  # who exported what and when
    "studies.view_study",
    "survey.view_participant",
    "survey.view_informationrequest",
    "assignment.view_allocationscheme",  # the balance page
    "assignment.view_assignment",
]

ROLES: dict[str, list[str]] = {
    # The review queue and coverage board; approve, reject, regenerate.
    REVIEWER: [
        "treatments.view_stimulus",
        "treatments.review_stimulus",
        "treatments.add_stimulus",  # queue a generation (new seed) for a source photo
        "treatments.view_sourcephoto",
        "studies.view_study",
    ],
    # Exports without personal data, the funnel, the allocation balance.
    DATA_MANAGER: _DATA_MANAGER_PERMISSIONS,
    # Everything a data manager does, plus personal data in exports and withdrawal.
    PERSONAL_DATA: [
        *_DATA_MANAGER_PERMISSIONS,
        "survey.export_personal_data",
        "survey.view_personaldata",
        "survey.withdraw_participant",
        "letters.view_representative",  # the signed letters' delivery checks export_personal_data
    ],
    # Studies, allocation schemes, source photos (single, bulk zip, Street View) and generation.
    STUDY_ADMIN: [
        "studies.add_study",
        "studies.change_study",
        "studies.view_study",
        "studies.open_study",  # after its readiness check
        "studies.change_study_questionnaire",  # move to another questionnaire version (recorded)
        "studies.copy_study",  # "new study from this one"
        "instrument.add_instrumentversion",
        "instrument.view_instrumentversion",
        "instrument.delete_instrumentversion",  # only while no study uses it
        "letters.view_representative",
        "assignment.add_allocationscheme",
        "assignment.change_allocationscheme",
        "assignment.delete_allocationscheme",
        "assignment.view_allocationscheme",
        "assignment.view_assignment",
        "treatments.add_sourcephoto",
        "treatments.change_sourcephoto",
        "treatments.view_sourcephoto",
        "treatments.add_stimulus",
        "treatments.view_stimulus",
        "geo.view_district",
    ],
}


class UnknownPermission(LookupError):
    """A role names a permission that no installed model declares (a typo or a removed model)."""


def _permissions(names: Iterable[str], permission_model: Any) -> list[Any]:
    found = []
    for name in names:
        app_label, _, codename = name.partition(".")
        permission = permission_model.objects.filter(
            content_type__app_label=app_label, codename=codename
        ).first()
        if permission is None:
            raise UnknownPermission(f"role permission {name!r} does not exist")
        found.append(permission)
    return found


def sync_roles(group_model: Any = None, permission_model: Any = None, *, strict: bool = True) -> dict[str, int]:
    """Create or update one group per role with exactly its permissions; returns role → count.

    ``strict=False`` skips permissions not created yet (a partial ``migrate`` of some apps);
    the post_migrate run after the last app then completes the groups.
    """
    if group_model is None or permission_model is None:
        from django.contrib.auth.models import Group, Permission

        group_model, permission_model = Group, Permission
    counts: dict[str, int] = {}
    for role, names in ROLES.items():
        if strict:
            permissions = _permissions(names, permission_model)
        else:
            permissions = []
            for name in names:
                try:
                    permissions.extend(_permissions([name], permission_model))
                except UnknownPermission:
                    continue
        group, _ = group_model.objects.get_or_create(name=role)
        group.permissions.set(permissions)
        counts[role] = len(permissions)
    return counts

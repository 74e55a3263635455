"""Staff accounts holding given roles, for the tests of every app."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group, User

from studyserver.accounts.roles import sync_roles


def staff_with_roles(username: str, *roles: str, **fields: Any) -> User:
    """A staff user in the groups of ``roles`` (no role: a staff account that may see nothing)."""
    sync_roles()
    user = User.objects.create_user(username, password=fields.pop("password", None), is_staff=True, **fields)
    user.groups.set(Group.objects.filter(name__in=roles))
    return user

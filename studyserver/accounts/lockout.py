"""Who a login attempt comes from, and the lockout policy built on it.

Policy (README: Roles):

* **Lock by username and address.** After ``AXES_FAILURE_LIMIT`` wrong passwords for one username
  from one address, that pair is locked for ``AXES_COOLOFF_HOURS`` (django-axes). Someone at
  another address cannot lock a researcher out: their failures count against their own address.
* **Throttle by address.** After ``LOGIN_ADDRESS_FAILURE_LIMIT`` failed logins from one address,
  whatever the usernames, that address may not try again for ``AXES_COOLOFF_HOURS``: guessing many
  accounts from one place is slowed down without touching anyone elsewhere.
* **The address is the real client's.** Without a proxy it is the connection's (``REMOTE_ADDR``;
  ``X-Forwarded-For`` is ignored, so a client cannot claim a researcher's address). Behind
  ``AXES_PROXY_COUNT`` proxies that each append to ``X-Forwarded-For``, it is the entry the
  outermost trusted proxy appended; entries a client wrote before it are ignored. A wrong count
  is caught by ``check --deploy`` (``accounts.W001``/``W002``).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str:
    """The client's address: ``REMOTE_ADDR``, or what the outermost of the trusted proxies saw."""
    remote = request.META.get("REMOTE_ADDR", "") or ""
    proxies = int(getattr(settings, "TRUSTED_PROXY_COUNT", 0) or 0)
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if proxies <= 0 or not forwarded:
        return remote
    # Each trusted proxy appended the address it was connected from: the client's real address is
    # the one the first of them (counting from the outside) appended, N entries from the end.
    return forwarded[-proxies] if len(forwarded) >= proxies else forwarded[0]


def _key(address: str) -> str:
    return f"floodlight:login-failures:{address}"


def _cooloff_seconds() -> int:
    return int(float(settings.AXES_COOLOFF_TIME) * 3600)


def record_failure(sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any) -> None:
    """``user_login_failed`` receiver: one more failure for the request's address."""
    if request is None:
        return
    key = _key(client_address(request))
    cache.add(key, 0, timeout=_cooloff_seconds())
    try:
        cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=_cooloff_seconds())


def address_throttled(request: HttpRequest | None) -> bool:
    """True when the request's address has failed to log in too often lately."""
    if request is None or not settings.AXES_ENABLED:
        return False
    return int(cache.get(_key(client_address(request)), 0)) >= settings.LOGIN_ADDRESS_FAILURE_LIMIT


THROTTLED_MESSAGE = ("Too many failed logins from your network address: try again in an hour, or ask an "
                     "administrator (python manage.py reset_login_throttle ADDRESS).")


class AddressThrottleBackend:
    """Refuses every password check from a throttled address (before any password is tried).

    Not a ``BaseBackend``: without ``get_user`` it can never be the backend a session is bound to.
    """

    def authenticate(self, request: HttpRequest | None, **credentials: Any) -> None:
        if address_throttled(request):
            raise PermissionDenied(THROTTLED_MESSAGE)  # stops the other backends too
        return None


class ThrottledAdminLoginForm(AdminAuthenticationForm):
    """The admin login, saying why a throttled address is refused."""

    def clean(self) -> dict[str, Any]:
        if address_throttled(self.request):
            raise forms.ValidationError(THROTTLED_MESSAGE, code="throttled")
        return super().clean()


def reset_address(address: str) -> bool:
    """Lift the throttle of ``address`` now; True when it had failures counted."""
    return bool(cache.delete(_key(address)))

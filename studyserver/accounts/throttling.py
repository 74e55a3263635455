"""The research API's anonymous rate: requests without a valid login are counted per address.

DRF checks authentication and permissions before its throttles, so an anonymous request or a bad
token gets its 401 before ``AnonRateThrottle`` ever runs: a stranger could guess tokens at the
server's full speed. Here the refusal itself is counted: every request that fails to log in (no
credentials, or a wrong token) counts against ``API_THROTTLE_ANON`` for its address, and past it the
answer is 429 with ``Retry-After`` instead of 401.

The address is the login lockout's (:func:`studyserver.accounts.lockout.client_address`): the
connection's, or the one the ``AXES_PROXY_COUNT`` trusted proxies report, never a client's own
``X-Forwarded-For``.
"""

from __future__ import annotations

from typing import Any

from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed, Throttled
from rest_framework.throttling import SimpleRateThrottle

from .lockout import client_address


class FailedLoginRateThrottle(SimpleRateThrottle):
    """The ``anon`` rate, keyed by address only (it runs before the request has a user)."""

    scope = "anon"

    def get_cache_key(self, request: Any, view: Any) -> str:
        return self.cache_format % {"scope": self.scope, "ident": client_address(request)}


def count_failed_login(request: Any, view: Any = None) -> None:
    """Count one request that did not log in; raise ``Throttled`` (429) past the anonymous rate."""
    throttle = FailedLoginRateThrottle()
    if not throttle.allow_request(request, view):
        raise Throttled(wait=throttle.wait())


class ThrottledTokenAuthentication(TokenAuthentication):
    """Token login whose wrong tokens count against the anonymous rate of their address."""

    def authenticate(self, request: Any) -> tuple[Any, Any] | None:
        try:
            return super().authenticate(request)
        except AuthenticationFailed:
            count_failed_login(request)
            raise

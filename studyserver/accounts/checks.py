"""``check --deploy``: the login lockout needs to know how many proxies stand in front."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.security, deploy=True)
def proxy_count_is_declared(app_configs: Any, **kwargs: Any) -> list[checks.CheckMessage]:
    """AXES_PROXY_COUNT must be decided, not left to its default.

    Too low (0 behind a proxy): every client has the proxy's address, so anyone can lock a
    researcher out, and the address throttle stops everyone at once. Too high (1 with no proxy): a
    client's own X-Forwarded-For is believed, so a stranger can claim a researcher's address.
    """
    problems: list[checks.CheckMessage] = []
    if not getattr(settings, "TRUSTED_PROXY_COUNT_SET", False):
        problems.append(checks.Warning(
            "AXES_PROXY_COUNT is not set: the login lockout does not know how many reverse proxies "
            "append to X-Forwarded-For.",
            hint="Set AXES_PROXY_COUNT to the number of proxies in front of gunicorn (0 when clients "
                 "connect to it directly; 1 behind one nginx or load balancer).",
            id="accounts.W001",
        ))
    if settings.TRUSTED_PROXY_COUNT < 0:
        problems.append(checks.Error("AXES_PROXY_COUNT cannot be negative.", id="accounts.E001"))
    return problems

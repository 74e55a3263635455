"""Password login for researchers, refusing the demo's well-known account outside DEBUG."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest

logger = logging.getLogger(__name__)

# seed_demo creates admin/admin for the local demo; a server started with DEBUG off must never
# let it in (a copied demo database or a forgotten account would be an open door).
DEMO_CREDENTIALS = {("admin", "admin")}


def is_demo_credential(username: str | None, password: str | None) -> bool:
    return (username or "", password or "") in DEMO_CREDENTIALS


class ResearcherBackend(ModelBackend):
    def authenticate(self, request: HttpRequest | None, username: str | None = None,
                     password: str | None = None, **kwargs: Any) -> Any:
        if not settings.DEBUG and is_demo_credential(username, password):
            logger.warning("refused the demo account %r: DEBUG is off (set a real password)", username)
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)

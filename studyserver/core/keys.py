"""The platform's keyed hash: identifiers kept only as an HMAC of the deployment's secret key, so
that a repeat can be recognized (the same panel id, the same network) and nothing re-identified."""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings


def keyed_digest(message: str) -> str:
    """HMAC-SHA256 of ``message`` under ``SECRET_KEY``, in hex."""
    return hmac.new(settings.SECRET_KEY.encode(), message.encode(), hashlib.sha256).hexdigest()

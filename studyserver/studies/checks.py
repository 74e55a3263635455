"""System check: the panel exit URL settings are usable http(s) templates (or the demo's local pages)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks

from .models import EXIT_KINDS, exit_url_problems


@checks.register(checks.Tags.compatibility)
def panel_exit_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    errors = []
    for kind in EXIT_KINDS:
        name = f"PANEL_{kind.upper()}_URL"
        for problem in exit_url_problems(getattr(settings, name), {"pid"}, allow_local=True):
            errors.append(checks.Error(f"{name}: {problem}", id="studies.E001"))
    return errors

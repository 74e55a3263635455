"""Times as researchers read them: in the one configured zone (``TIME_ZONE``), the zone named.

The admin, messages, export file names and letter zips all go through here (and the admin's own
date formats, ``core/formats``), so no page shows local time while another shows UTC unnamed.
Data files keep UTC timestamps marked ``Z`` (see ``exports.formats``).
"""

from __future__ import annotations

import re
from datetime import datetime

from django.utils import timezone


def zone_name(moment: datetime | None = None) -> str:
    """The zone's abbreviation at ``moment`` ("EST", "EDT"; "+03" for a zone without one)."""
    return timezone.localtime(moment).tzname() or str(timezone.get_current_timezone())


def shown(moment: datetime | None = None) -> str:
    """``2026-12-03 13:22 EST``: a moment (default now) in the configured zone, named."""
    local = timezone.localtime(moment)
    return f"{local:%Y-%m-%d %H:%M} {zone_name(local)}"


def file_stamp(moment: datetime | None = None) -> str:
    """``20261203-1322-EST``: the same, for a file name (letters, digits, "-" and "+" only)."""
    local = timezone.localtime(moment)
    return f"{local:%Y%m%d-%H%M}-{re.sub(r'[^A-Za-z0-9+-]', '', zone_name(local))}"

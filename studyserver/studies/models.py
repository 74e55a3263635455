"""A study: one fielded experiment with its versioned consent, instrument and exit redirects."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from urllib.parse import quote, urlsplit

from django.conf import settings
from django.db import models
from django.db.models import F

logger = logging.getLogger(__name__)

# The entry link's signature parameter: ?pid=<panel id>&sig=<hex HMAC-SHA256(secret, panel id)>.
SIGNATURE_PARAMETER = "sig"


def new_entry_secret() -> str:
    return secrets.token_hex(32)


def is_safe_exit_url(url: str) -> bool:
    """An http(s) URL or a path on this site: never javascript:, data: or a scheme-relative //host."""
    parts = urlsplit(url)
    if parts.scheme:
        return parts.scheme.lower() in {"http", "https"} and bool(parts.netloc)
    return url.startswith("/") and not url.startswith("//") and "\\" not in url


class Study(models.Model):
    class RepresentationOrder(models.TextChoices):
        RO_2013 = "2013", "2013 Representation Order (338 districts)"
        RO_2023 = "2023", "2023 Representation Order (343 districts)"

    slug = models.SlugField(unique=True)
    title = models.CharField(max_length=200)
    is_open = models.BooleanField(default=False, help_text="Participants can enter only while open.")
    demo = models.BooleanField(default=False, help_text="Demo study: images are simulated-world DEMO pictures.")
    consent_version = models.CharField(max_length=20, default="1.0")
    representation_order = models.CharField(
        max_length=4, choices=RepresentationOrder.choices, default=RepresentationOrder.RO_2023
    )
    min_exposure_seconds = models.PositiveIntegerField(
        default=10, help_text="Minimum time the treatment image is shown before Continue is accepted."
    )
    exclusion_rules = models.TextField(
        blank=True,
        default="Attention is measured before treatment only; nobody is excluded on a post-treatment answer.",
        help_text="Fixed before fielding; recorded with the study's version.",
    )
    complete_url_template = models.CharField(max_length=500, blank=True, help_text="Empty: PANEL_COMPLETE_URL.")
    screenout_url_template = models.CharField(max_length=500, blank=True, help_text="Empty: PANEL_SCREENOUT_URL.")
    overquota_url_template = models.CharField(max_length=500, blank=True, help_text="Empty: PANEL_OVERQUOTA_URL.")
    assignment_quota = models.PositiveIntegerField(
        null=True, blank=True,
        help_text="Stop after this many participants are randomized: later ones go to the over-quota URL. "
        "Empty: no quota.",
    )
    require_signed_entry = models.BooleanField(
        default=False,
        help_text="Refuse entry links without a valid signature: sig = hex HMAC-SHA256 of the panel id "
        "with the entry secret below (set it in the panel's redirect). Stops anyone entering or "
        "resuming with a guessed panel id.",
    )
    entry_secret = models.CharField(
        max_length=64, default=new_entry_secret,
        help_text="Shared with the panel only; changing it invalidates every signed link sent so far.",
    )
    declined_count = models.PositiveIntegerField(
        default=0, editable=False, help_text="Anonymous count of people who declined consent."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "studies"

    def __str__(self) -> str:
        return self.title

    def exit_url(self, kind: str, panel_id: str | None) -> str:
        """The panel redirect for ``kind`` in {complete, screenout, overquota}, with the id filled in."""
        template = {
            "complete": self.complete_url_template or settings.PANEL_COMPLETE_URL,
            "screenout": self.screenout_url_template or settings.PANEL_SCREENOUT_URL,
            "overquota": self.overquota_url_template or settings.PANEL_OVERQUOTA_URL,
        }[kind]
        url = template.replace("{pid}", quote(panel_id or "", safe=""))
        if is_safe_exit_url(url):
            return url
        # Defence in depth: the templates are validated when saved, but a participant's exit link
        # must never run script on this site (researchers are logged in here).
        logger.error("study %s: refused a %s exit URL that is neither http(s) nor a path", self.slug, kind)
        fallback = getattr(settings, f"PANEL_{kind.upper()}_URL").replace("{pid}", quote(panel_id or "", safe=""))
        return fallback if is_safe_exit_url(fallback) else "/"

    def entry_signature(self, panel_id: str) -> str:
        """The ``sig`` a signed entry link carries for ``panel_id``."""
        return hmac.new(self.entry_secret.encode(), panel_id.encode(), hashlib.sha256).hexdigest()

    def entry_link(self, base_url: str, panel_id: str) -> str:
        """The full entry link for ``panel_id`` (signed), e.g. to send it yourself."""
        from urllib.parse import urlencode

        from django.urls import reverse

        query = urlencode({"pid": panel_id, SIGNATURE_PARAMETER: self.entry_signature(panel_id)})
        return f"{base_url.rstrip('/')}{reverse('survey:enter', args=[self.slug])}?{query}"

    def entry_link_is_valid(self, panel_id: str, signature: str) -> bool:
        """True when signatures are not required, or ``signature`` matches the panel id."""
        if not self.require_signed_entry:
            return True
        if not panel_id or not signature or not self.entry_secret:
            return False
        return hmac.compare_digest(self.entry_signature(panel_id), signature.strip().lower())

    def quota_reached(self) -> bool:
        """True when the study has randomized as many participants as its quota allows."""
        if self.assignment_quota is None:
            return False
        from studyserver.assignment.models import Assignment

        return Assignment.objects.filter(study=self).count() >= self.assignment_quota

    def record_decline(self) -> None:
        Study.objects.filter(pk=self.pk).update(declined_count=F("declined_count") + 1)

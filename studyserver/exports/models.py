"""A record of every data export: who took which study's data, when, in what form, how much."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ExportLog(models.Model):
    """One export (admin download, management command or API call). Rows are never edited."""

    class Channel(models.TextChoices):
        ADMIN = "admin", "Admin download page"
        COMMAND = "command", "Management command"
        API = "api", "REST API"

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Kept as text too, so the log still says who it was after the account is deleted.
    username = models.CharField(max_length=150, blank=True)
    study = models.ForeignKey(
        "studies.Study", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    study_slug = models.CharField(max_length=50)
    format = models.CharField(max_length=10)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    row_count = models.PositiveIntegerField()
    included_personal_data = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        personal = " with personal data" if self.included_personal_data else ""
        who = self.username or "(no user)"
        return f"{self.study_slug}.{self.format} by {who}{personal} ({self.row_count} rows)"


class DataDownload(ExportLog):
    """Not a table: the admin's entry for the download page (see ``admin.DataDownloadAdmin``)."""

    class Meta:
        proxy = True
        permissions = [("export_data", "Can download exports without personal data and use the research API")]
        verbose_name = "data download"
        verbose_name_plural = "download data"

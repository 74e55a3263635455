"""A study: one fielded experiment with its versioned consent, instrument and exit redirects."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import F
from django.utils import timezone

if TYPE_CHECKING:
    from studyserver.instrument.definition import Instrument
    from studyserver.instrument.models import InstrumentVersion


class Study(models.Model):
    class RepresentationOrder(models.TextChoices):
        RO_2013 = "2013", "2013 Representation Order (338 districts)"
        RO_2023 = "2023", "2023 Representation Order (343 districts)"

    slug = models.SlugField(unique=True)
    title = models.CharField(max_length=200)
    is_open = models.BooleanField(default=False, help_text="Participants can enter only while open.")
    demo = models.BooleanField(default=False, help_text="Demo study: images are simulated-world DEMO pictures.")
    questionnaire = models.ForeignKey(
        "instrument.InstrumentVersion", to_field="content_hash", on_delete=models.PROTECT,
        null=True, blank=True, related_name="studies", verbose_name="questionnaire version",
        help_text="Every text participants see (consent, questions, debrief). Empty: the default "
        "questionnaire (FLOODLIGHT_INSTRUMENT). Fixed once the study has a participant: move it to a "
        "revision with the admin action.",
    )
    questionnaire_since = models.DateTimeField(null=True, blank=True, editable=False)
    consent_version = models.CharField(
        max_length=20, default="", blank=True, editable=False,
        help_text="The consent version of the questionnaire version (its label and a hash of the consent text).",
    )
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
    declined_count = models.PositiveIntegerField(
        default=0, editable=False, help_text="Anonymous count of people who declined consent."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "studies"
        permissions = [
            ("change_study_questionnaire", "Can move a study to another questionnaire version"),
            ("copy_study", "Can create a new study from an existing one"),
        ]

    def __str__(self) -> str:
        return self.title

    def save(self, *args: Any, **kwargs: Any) -> None:
        from studyserver.instrument.versions import default_version

        if self.questionnaire_id is None:
            self.questionnaire = default_version()
        if self.pk is not None and not getattr(self, "_moving_version", False):
            stored = Study.objects.filter(pk=self.pk).values_list("questionnaire_id", flat=True).first()
            if stored is not None and stored != self.questionnaire_id and self.participants.exists():
                raise ValidationError(
                    {"questionnaire": "This study has participants: its questionnaire version cannot change "
                     "in place. Use the admin action “Move to another questionnaire version”."}
                )
        if self.questionnaire_since is None:
            self.questionnaire_since = timezone.now()
        self.consent_version = self.questionnaire.consent_version
        update_fields = kwargs.get("update_fields")
        if update_fields is not None:
            kwargs["update_fields"] = {*update_fields, "questionnaire", "questionnaire_since", "consent_version"}
        super().save(*args, **kwargs)

    @property
    def instrument(self) -> Instrument:
        """The parsed questionnaire new participants get (no query once parsed in this process)."""
        from studyserver.instrument.definition import get_instrument
        from studyserver.instrument.models import instrument_for_hash

        return instrument_for_hash(self.questionnaire_id) if self.questionnaire_id else get_instrument()

    def questionnaire_versions(self) -> list[InstrumentVersion]:
        """Every version this study's participants answered, and the current one, oldest first."""
        from studyserver.instrument.models import InstrumentVersion

        used = set(self.participants.filter(questionnaire__isnull=False)
                   .values_list("questionnaire_id", flat=True).distinct())
        if self.questionnaire_id:
            used.add(self.questionnaire_id)
        return list(InstrumentVersion.objects.filter(content_hash__in=used).defer("source").order_by("created_at", "id"))

    def move_to_version(self, version: InstrumentVersion, user: Any = None) -> StudyVersionChange:
        """Point the study at ``version`` from now on; participants keep the version they started with."""
        from studyserver.assignment.models import AllocationScheme, pre_treatment_item_problem

        with transaction.atomic():
            study = Study.objects.select_for_update().get(pk=self.pk)
            if study.questionnaire_id == version.content_hash:
                raise ValidationError(f"The study already uses {version}.")
            scheme = AllocationScheme.objects.filter(study=study, strata=AllocationScheme.Strata.ITEM).first()
            problem = pre_treatment_item_problem(scheme.strata_item, version.instrument) if scheme else ""
            if problem:
                # Newcomers would all fall in a "missing" stratum: randomization would lose its strata.
                raise ValidationError(f"The allocation scheme stratifies on {scheme.strata_item!r}, but in "
                                      f"{version}: {problem}")
            change = StudyVersionChange.objects.create(
                study=study, from_version_id=study.questionnaire_id, to_version=version,
                changed_by=user if getattr(user, "is_authenticated", False) else None,
                participants_before=study.participants.count(),
            )
            study.questionnaire = version
            study.questionnaire_since = change.changed_at
            study._moving_version = True
            study.save()
        self.refresh_from_db()
        return change

    def exit_url(self, kind: str, panel_id: str | None) -> str:
        """The panel redirect for ``kind`` in {complete, screenout, overquota}, with the id filled in."""
        template = {
            "complete": self.complete_url_template or settings.PANEL_COMPLETE_URL,
            "screenout": self.screenout_url_template or settings.PANEL_SCREENOUT_URL,
            "overquota": self.overquota_url_template or settings.PANEL_OVERQUOTA_URL,
        }[kind]
        return template.replace("{pid}", quote(panel_id or "", safe=""))

    def quota_reached(self) -> bool:
        """True when the study has randomized as many participants as its quota allows."""
        if self.assignment_quota is None:
            return False
        from studyserver.assignment.models import Assignment

        return Assignment.objects.filter(study=self).count() >= self.assignment_quota

    def record_decline(self) -> None:
        Study.objects.filter(pk=self.pk).update(declined_count=F("declined_count") + 1)


class StudyVersionChange(models.Model):
    """When a study moved to another questionnaire version, and who moved it (append-only record)."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="version_changes")
    from_version = models.ForeignKey("instrument.InstrumentVersion", to_field="content_hash", null=True,
                                     on_delete=models.PROTECT, related_name="+")
    to_version = models.ForeignKey("instrument.InstrumentVersion", to_field="content_hash",
                                   on_delete=models.PROTECT, related_name="+")
    changed_at = models.DateTimeField(default=timezone.now)
    changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    participants_before = models.PositiveIntegerField(help_text="Participants who had entered by then.")

    class Meta:
        ordering = ("-changed_at",)

    def __str__(self) -> str:
        return f"{self.study}: {self.from_version_id and self.from_version_id[:8]} → {self.to_version_id[:8]}"

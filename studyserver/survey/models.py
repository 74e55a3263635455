"""Participants, their page submissions and their personal data (kept apart from the answers)."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING

from django.db import models

from studyserver.core.keys import keyed_digest
from studyserver.geo.models import DISTRICT_ROWS
from studyserver.instrument.models import InstrumentVersion, instrument_for_hash
from studyserver.studies.models import STUDY_ROWS

if TYPE_CHECKING:
    from studyserver.instrument.definition import Instrument


def new_token() -> str:
    return secrets.token_urlsafe(24)


def panel_id_digest(study_slug: str, panel_id: str) -> str:
    """A keyed hash of the panel id: enough to refuse a second attempt, useless to re-identify."""
    return keyed_digest(f"{study_slug}:{panel_id.strip()}")


class Participant(models.Model):
    """One person's pass through one study. Holds no personal data (see :class:`PersonalData`)."""

    class State(models.TextChoices):
        STARTED = "started", "Started (consent page)"
        CONSENTED = "consented", "Consented"
        PLACED = "placed", "Placed in a district"
        ASSIGNED = "assigned", "Assigned to an arm"
        EXPOSED = "exposed", "Treatment page submitted"
        COMPLETED = "completed", "Completed"
        SCREENED_OUT = "screened_out", "Screened out"
        WITHDRAWN = "withdrawn", "Withdrew their data"

    class ScreenOut(models.TextChoices):
        NOT_CANADIAN = "not_canadian", "Postal code not Canadian / unplaceable"
        NO_DISTRICT = "no_district", "No district could be confirmed"
        INELIGIBLE = "ineligible", "Not eligible (recorded before reasons were itemized)"
        OUT_OF_SCOPE = "out_of_scope", "District outside the study's scope"
        MATERIAL_MISSING = "material_missing", "Treatment image missing for the district (arms in the detail)"
        STUDY_CLOSED = "study_closed", "Study closed"
        OVER_QUOTA = "over_quota", "Over quota"

    class DistrictMethod(models.TextChoices):
        CERTAIN = "certain", "Decided by the postal code"
        PICKED = "picked", "Picked from the candidates"
        FALLBACK = "fallback", "Picked from the province list"
        SNAPPED = "snapped", "Coastal FSA snapped to the nearest district"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    study = models.ForeignKey("studies.Study", on_delete=models.PROTECT, related_name="participants")
    token = models.CharField(max_length=64, unique=True, default=new_token, editable=False)
    # NULL, not "", for "no panel id": the unique (study, panel_id_hash) constraint ignores NULLs.
    panel_id_hash = models.CharField(max_length=64, null=True, blank=True, editable=False)  # noqa: DJ001
    language = models.CharField(max_length=2, default="en")
    state = models.CharField(max_length=20, choices=State.choices, default=State.STARTED, db_index=True)
    screenout_reason = models.CharField(max_length=20, choices=ScreenOut.choices, blank=True)
    screenout_detail = models.CharField(
        max_length=200, blank=True, help_text="What was missing: the arms without an approved image, or the district.")
    current_step = models.CharField(max_length=40, default="consent")
    consent_version = models.CharField(max_length=20, blank=True)
    instrument_version = models.CharField(max_length=40, blank=True)
    # The questionnaire version this participant started with, kept end to end (pages, validation,
    # resume, export) whatever the study moves to later. Keyed by content hash: no query to use it.
    questionnaire = models.ForeignKey(
        "instrument.InstrumentVersion", to_field="content_hash", on_delete=models.PROTECT, null=True,
        blank=True, editable=False, related_name="participants",
    )
    fsa = models.CharField(max_length=3, blank=True)
    province_code = models.CharField(max_length=2, blank=True)
    district = models.ForeignKey("geo.District", null=True, blank=True, on_delete=models.PROTECT)
    district_method = models.CharField(max_length=10, choices=DistrictMethod.choices, blank=True)
    district_candidates = models.JSONField(default=list, blank=True)
    attention_passed = models.BooleanField(null=True)
    user_agent_mobile = models.BooleanField(null=True)
    # Raw signals of respondent quality (read by studyserver.quality, never shown to the participant):
    # the browser's first-party cookie set at consent, a keyed hash of address + user agent (the
    # address itself is never stored), and the page whose hidden honeypot field came back filled.
    browser_id = models.CharField(max_length=32, blank=True, db_index=True, editable=False)
    network_hash = models.CharField(max_length=64, blank=True, db_index=True, editable=False)
    honeypot_step = models.CharField(max_length=40, blank=True, editable=False)
    started_at = models.DateTimeField(auto_now_add=True)
    consented_at = models.DateTimeField(null=True, blank=True)
    placed_at = models.DateTimeField(null=True, blank=True)
    exposed_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    screened_out_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(auto_now=True)

    class Meta:
        permissions = [("withdraw_participant", "Can withdraw participants (deletes their answers and personal data)")]
        constraints = [
            models.UniqueConstraint(
                fields=["study", "panel_id_hash"],
                condition=models.Q(panel_id_hash__isnull=False),
                name="one_attempt_per_panel_id",
            )
        ]
        indexes = [models.Index(fields=["study", "state"])]

    def __str__(self) -> str:
        return f"participant {str(self.id)[:8]} ({self.state})"

    def save(self, *args, **kwargs) -> None:
        # A new participant takes the version the study has now and keeps it. Only rows made before
        # versions were kept lack one: they take the study's, the one they were already shown.
        if self.questionnaire_id is None and self.study.questionnaire_id:
            self._take_study_version()
        super().save(*args, **kwargs)

    def _take_study_version(self) -> None:
        version = (InstrumentVersion.objects.only("content_hash", "label")
                   .get(content_hash=self.study.questionnaire_id))
        self.questionnaire_id = version.content_hash
        self.instrument_version = self.instrument_version or version.label

    @property
    def instrument(self) -> Instrument:
        """The parsed questionnaire version this participant answers (no query once parsed)."""
        return instrument_for_hash(self.questionnaire_id) if self.questionnaire_id else self.study.instrument

    @property
    def is_finished(self) -> bool:
        return self.state in {self.State.COMPLETED, self.State.SCREENED_OUT, self.State.WITHDRAWN}

    def answers(self) -> dict[str, object]:
        """Every stored (non-personal) answer, by item code."""
        return merged_answers(page_submissions(self))


def participant_for_page(token: str, *, with_exposure: bool = False) -> Participant | None:
    """The participant with ``token``, with their assignment (and exposure, for the pages that show
    it) in one query, and their study and district (no boundary) from the cache of rows that
    rarely change.

    Joining the study and the district too cost more than the rest of the query: their sixty
    columns compiled on every page and a five-table plan (2.1 ms against 0.9 ms). The exposure
    joined on every page cost the pages that never read it 0.45 ms each.
    """
    related = ("assignment", "exposure") if with_exposure else ("assignment",)
    try:  # get(), not first(): the token is unique, and first()'s ordering is compiled for nothing
        participant = Participant.objects.select_related(*related).get(token=token)
    except Participant.DoesNotExist:
        return None
    participant.study = STUDY_ROWS.get(participant.study_id)
    if participant.district_id is not None:
        participant.district = DISTRICT_ROWS.get(participant.district_id)
    return participant


def page_submissions(participant: Participant) -> list[tuple[str, dict, object]]:
    """(step, answers, submitted_at) of every page the participant submitted, by submission time.

    What a questionnaire page needs of them (see :func:`merged_answers`), without building a model per page.
    """
    return list(PageSubmission.objects.filter(participant=participant).order_by("submitted_at")
                .values_list("step", "answers", "submitted_at"))


def merged_answers(submissions: Iterable[tuple[str, dict, object]]) -> dict[str, object]:
    """The answers of page submissions ((step, answers, submitted_at), as :func:`page_submissions`
    gives them) by item code, a later page's winning."""
    merged: dict[str, object] = {}
    for _, answers, _ in sorted(submissions, key=lambda submission: submission[2]):
        merged.update(answers)
    return merged


class PageView(models.Model):
    """When the server served a page (first and last time): the basis of time-on-page."""

    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="page_views")
    step = models.CharField(max_length=40)
    first_served_at = models.DateTimeField()
    last_served_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["participant", "step"], name="one_view_row_per_step")]

    def __str__(self) -> str:
        return f"{self.participant_id} viewed {self.step}"


class PageSubmission(models.Model):
    """One page's answers, stored once, atomically, with server timestamps."""

    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="submissions")
    step = models.CharField(max_length=40)
    answers = models.JSONField(default=dict)
    served_at = models.DateTimeField()
    submitted_at = models.DateTimeField()
    seconds_on_page = models.FloatField()
    revision = models.PositiveIntegerField(default=1, help_text="Edits before assignment increase it.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["participant", "step"], name="one_submission_per_step")]
        ordering = ["submitted_at"]

    def __str__(self) -> str:
        return f"{self.participant_id} submitted {self.step}"


class Exposure(models.Model):
    """Server-side timing of the treatment page: served, image bytes sent, page submitted."""

    participant = models.OneToOneField(Participant, on_delete=models.CASCADE, related_name="exposure")
    stimulus_id = models.CharField(max_length=64, blank=True)
    page_served_at = models.DateTimeField()
    image_loaded_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    early_submit_attempts = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.participant_id} saw {self.stimulus_id or 'nothing'}"

    @property
    def exposure_ms(self) -> int | None:
        if self.submitted_at is None:
            return None
        return round((self.submitted_at - self.page_served_at).total_seconds() * 1000)

    @property
    def image_visible_ms(self) -> int | None:
        if self.submitted_at is None or self.image_loaded_at is None:
            return None
        return round((self.submitted_at - self.image_loaded_at).total_seconds() * 1000)


class PersonalData(models.Model):
    """Personal information, stored apart from answers, excluded from exports, deleted on withdrawal."""

    participant = models.OneToOneField(Participant, on_delete=models.CASCADE, related_name="personal_data")
    panel_id = models.CharField(max_length=200, blank=True)
    panel_parameters = models.JSONField(
        default=dict, blank=True, help_text="The study's kept entry-link parameters (e.g. STUDY_ID, SESSION_ID).")
    postal_code = models.CharField(max_length=7, blank=True)
    email = models.EmailField(blank=True)
    signature_name = models.CharField(max_length=120, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "personal data"
        permissions = [("export_personal_data", "Can export personal data")]

    def __str__(self) -> str:
        return f"personal data of {self.participant_id}"


class DeclinedEntry(models.Model):
    """A panel id that declined consent, as the same keyed hash participants carry (no answers, no
    time): the same entry link then goes straight back to the panel's declined exit instead of
    starting a new participant."""

    study = models.ForeignKey("studies.Study", on_delete=models.CASCADE, related_name="+")
    panel_id_hash = models.CharField(max_length=64)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["study", "panel_id_hash"], name="one_decline_per_panel_id")]

    def __str__(self) -> str:
        return f"declined entry {self.panel_id_hash[:8]}"


class InformationRequest(models.Model):
    """An information e-mail a participant asked for, and whether it was sent (see ``tasks.py``)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Being sent"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed (see the reason)"

    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="information_requests")
    topic = models.CharField(max_length=40)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True, help_text="When the sweep tries again after a failure.")
    claimed_at = models.DateTimeField(null=True, blank=True, help_text="When the last attempt started sending.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["participant", "topic"], name="one_request_per_topic")]

    def __str__(self) -> str:
        return f"{self.topic} for {self.participant_id} ({self.status})"

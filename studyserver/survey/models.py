"""Participants, their page submissions and their personal data (kept apart from the answers)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models

from studyserver.core.compiled import converted

if TYPE_CHECKING:
    from studyserver.instrument.definition import Instrument


def new_token() -> str:
    return secrets.token_urlsafe(24)


def panel_id_digest(study_slug: str, panel_id: str) -> str:
    """A keyed hash of the panel id: enough to refuse a second attempt, useless to re-identify."""
    message = f"{study_slug}:{panel_id.strip()}".encode()
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()


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
        if self._state.adding and self.questionnaire_id is None and self.study.questionnaire_id:
            self._take_study_version()
        super().save(*args, **kwargs)

    def _take_study_version(self) -> None:
        from studyserver.instrument.models import InstrumentVersion

        version = (InstrumentVersion.objects.only("content_hash", "label")
                   .get(content_hash=self.study.questionnaire_id))
        self.questionnaire_id = version.content_hash
        self.instrument_version = self.instrument_version or version.label

    @property
    def instrument(self) -> Instrument:
        """The parsed questionnaire version this participant answers (no query once parsed)."""
        from studyserver.instrument.models import instrument_for_hash

        return instrument_for_hash(self.questionnaire_id) if self.questionnaire_id else self.study.instrument

    @property
    def is_finished(self) -> bool:
        return self.state in {self.State.COMPLETED, self.State.SCREENED_OUT, self.State.WITHDRAWN}

    def answers(self) -> dict[str, object]:
        """Every stored (non-personal) answer, by item code."""
        return merged_answers(self.submissions.all())


_PAGE_QUERIES: dict[str, tuple] = {}


def _page_query(alias: str) -> tuple:
    """The participant query of a page, compiled once per process: (sql, columns, converters, populators).

    Compiling a four-table ``select_related`` query costs more than running it; its SQL and the
    ORM's own row-to-object machinery (converters, related populators) depend on nothing but the
    models, so they are built from the very same queryset once and reused for every token.
    """
    cached = _PAGE_QUERIES.get(alias)
    if cached is None:
        from django.db.models.query import get_related_populators

        # The district's boundary (up to megabytes for the North) is never needed to serve a page.
        queryset = (Participant.objects.using(alias).select_related("study", "district", "assignment", "exposure")
                    .defer("district__geometry_wkb").filter(token="-"))
        compiler = queryset.query.get_compiler(using=alias)
        sql, _ = compiler.as_sql()
        select, klass_info = compiler.select, compiler.klass_info
        start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
        columns = [column[0].target.attname for column in select[start:end]]
        converters = compiler.get_converters([column[0] for column in select])
        cached = (sql, columns, (start, end), converters, get_related_populators(klass_info, select, alias))
        _PAGE_QUERIES[alias] = cached
    return cached


def participant_for_page(token: str, session: object = None, alias: str = "default") -> Participant | None:
    """The participant with ``token``, with their study, district (no boundary), assignment and exposure.

    The same objects as ``Participant.objects.select_related("study", "district", "assignment",
    "exposure").defer("district__geometry_wkb").filter(token=token).first()`` (the token is unique), without
    compiling the query on every page.

    ``session``: the request's session, not yet read. With the database session store, its row is
    read in the same round trip (the same row Django would read: this key, not expired) and the
    session is handed its decoded data, so the page does not read it again.
    """
    from django.contrib.sessions.backends.db import SessionStore
    from django.db import connections
    from django.utils import timezone

    sql, columns, (start, end), converters, populators = _page_query(alias)
    connection = connections[alias]
    params: list[object] = [token]
    with_session = (type(session) is SessionStore and session.session_key is not None
                    and not hasattr(session, "_session_cache") and sql.startswith("SELECT "))
    if with_session:
        model = session.model
        table = connection.ops.quote_name(model._meta.db_table)
        key, expires = (connection.ops.quote_name(model._meta.get_field(name).column) for name in ("session_key", "expire_date"))
        data = connection.ops.quote_name(model._meta.get_field("session_data").column)
        sql = (f"SELECT (SELECT {table}.{data} FROM {table} WHERE {table}.{key} = %s AND {table}.{expires} > %s), "
               + sql.removeprefix("SELECT "))
        now = model._meta.get_field("expire_date").get_db_prep_value(timezone.now(), connection)
        params = [session.session_key, now, token]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    if with_session:
        if row[0] is not None:
            session._session_cache = session.decode(row[0])
        row = row[1:]
    row = converted(row, converters, connection)
    participant = Participant.from_db(alias, columns, row[start:end])
    for populator in populators:
        populator.populate(row, participant)
    return participant


def page_submissions(participant: Participant, alias: str = "default") -> list[tuple[str, dict, object]]:
    """(step, answers, submitted_at) of every page the participant submitted, by submission time.

    What a questionnaire page needs of them (see :func:`merged_answers`), from a query compiled once
    per process, without building a model per page.
    """
    from django.db import connections

    cached = _PAGE_QUERIES.get(f"submissions:{alias}")
    if cached is None:
        queryset = (PageSubmission.objects.using(alias).filter(participant_id=uuid.UUID(int=0))
                    .values_list("step", "answers", "submitted_at"))
        compiler = queryset.query.get_compiler(using=alias)
        sql, _ = compiler.as_sql()
        cached = (sql, compiler.get_converters([column[0] for column in compiler.select]))
        _PAGE_QUERIES[f"submissions:{alias}"] = cached
    sql, converters = cached
    connection = connections[alias]
    key = PageSubmission._meta.get_field("participant").get_db_prep_value(participant.pk, connection)
    with connection.cursor() as cursor:
        cursor.execute(sql, [key])
        rows = cursor.fetchall()
    return [converted(row, converters, connection) for row in rows]


def merged_answers(submissions: Iterable[PageSubmission]) -> dict[str, object]:
    """The answers of several page submissions by item code, a later page's winning."""
    merged: dict[str, object] = {}
    for submission in sorted(submissions, key=lambda s: s.submitted_at):
        merged.update(submission.answers)
    return merged


class PageView(models.Model):
    """When the server served a page (first and last time): the basis of time-on-page."""

    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="page_views")
    step = models.CharField(max_length=40)
    first_served_at = models.DateTimeField()
    last_served_at = models.DateTimeField()
    times_served = models.PositiveIntegerField(default=1)

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

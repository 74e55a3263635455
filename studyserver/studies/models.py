"""A study: one fielded experiment with its versioned consent, instrument and exit redirects."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models, transaction
from django.db.models import F
from django.utils import timezone

from studyserver.core.rows import RowCache
from studyserver.geo.models import District
from studyserver.geo.postal import PROVINCE_NAMES
from studyserver.instrument.definition import Instrument, get_instrument
from studyserver.instrument.models import InstrumentVersion, instrument_for_hash
from studyserver.instrument.versions import default_version

#: The panel exits, in the order the admin shows them.
EXIT_KINDS: tuple[str, ...] = ("complete", "screenout", "overquota", "declined")
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
UNCLOSED_PLACEHOLDER = re.compile(r"\{[^{}]*")  # what is left of a "{" once the closed ones are taken out
PARAMETER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,39}$")
_CODES = re.compile(r"[\s,;]+")
parameter_name_validator = RegexValidator(
    PARAMETER_NAME, "A URL parameter name: letters, digits, _ . - (e.g. pid, PROLIFIC_PID, rid)."
)


def split_codes(value: str) -> list[str]:
    """Codes typed as a list (commas, semicolons, spaces or new lines), in order, without repeats."""
    return list(dict.fromkeys(code for code in _CODES.split(value or "") if code))


def exit_url_problems(template: str, allowed: set[str], *, allow_local: bool = False) -> list[str]:
    """What is wrong with a panel exit URL template (empty: nothing).

    Only absolute http(s) URLs (a ``javascript:`` or ``data:`` URL would run in the participant's
    browser); every ``{placeholder}`` must be one the study fills in, and at least one must be
    there, or the panel cannot tell who came back. ``allow_local`` accepts a path on this site
    (the demo's stand-in panel pages).
    """
    problems = []
    parts = urlsplit(template.strip())
    local = allow_local and template.startswith("/") and not template.startswith("//")
    if not local and (parts.scheme not in {"http", "https"} or not parts.netloc):
        problems.append("Must be a full http:// or https:// address, e.g. https://panel.example/complete?id={pid}.")
    names = PLACEHOLDER.findall(template)
    unknown = sorted(set(names) - allowed)
    if unknown:
        problems.append(
            f"Unknown placeholder {', '.join('{' + n + '}' for n in unknown)}: use "
            f"{', '.join('{' + n + '}' for n in sorted(allowed))}."
        )
    unclosed = UNCLOSED_PLACEHOLDER.findall(PLACEHOLDER.sub("", template))
    if unclosed:
        # "{pid" is a placeholder with its brace missing, not a URL without one.
        problems.append(f"Placeholder {', '.join(unclosed)} is not closed: write "
                        f"{', '.join(u + '}' for u in unclosed)}.")
    elif not names:
        problems.append("Has no placeholder: add {pid} (the respondent id) so the panel knows who came back.")
    return problems

logger = logging.getLogger(__name__)

# The entry link's signature parameter: ?pid=<panel id>&sig=<hex HMAC-SHA256(secret, "<slug>:<panel id>")>.
SIGNATURE_PARAMETER = "sig"


def entry_message(slug: str, panel_id: str) -> bytes:
    """What an entry signature signs: the study's slug, a colon, the panel id (UTF-8).

    The slug binds the signature to one study: a link signed for a pilot never opens its copy or
    another study sharing the secret (a slug has no colon, so the message is unambiguous).
    """
    return f"{slug}:{panel_id}".encode()


def new_entry_secret() -> str:
    return secrets.token_hex(32)


def is_safe_exit_url(url: str) -> bool:
    """An http(s) URL or a path on this site: never javascript:, data: or a scheme-relative //host."""
    parts = urlsplit(url)
    if parts.scheme:
        return parts.scheme.lower() in {"http", "https"} and bool(parts.netloc)
    return url.startswith("/") and not url.startswith("//") and "\\" not in url


class Study(models.Model):
    QUOTA_MESSAGE = "A quota is at least 1; leave it empty for none."

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
    exclusion_flags = models.JSONField(
        default=list, blank=True, verbose_name="pre-registered exclusions",
        help_text="Respondent-quality flags that exclude a participant from the pre-registered sample "
        "(the export's excluded column). Nobody is told or stopped for a flag. Frozen when the study "
        "first opens.",
    )
    exclusion_frozen_at = models.DateTimeField(
        null=True, blank=True, editable=False,
        help_text="When the exclusion rule was frozen (the study's first opening); it cannot change since.",
    )
    class Scope(models.TextChoices):
        ALL = "all", "Every district of the representation order"
        PROVINCES = "provinces", "Some provinces or territories"
        DISTRICTS = "districts", "A list of districts"

    scope = models.CharField(
        max_length=10, choices=Scope.choices, default=Scope.ALL,
        help_text="Where participants may live. Coverage, readiness and eligibility follow it: someone "
        "outside the scope is screened out as soon as their district is known.",
    )
    scope_provinces = models.CharField(
        max_length=100, blank=True,
        help_text="Scope = provinces: two-letter codes separated by commas, e.g. QC, ON, NB.",
    )
    scope_districts = models.TextField(
        blank=True, help_text="Scope = districts: riding codes (fed_code) separated by commas or new lines, "
        "e.g. 24053, 35075.",
    )
    panel_id_parameter = models.CharField(
        max_length=40, default="pid", validators=[parameter_name_validator],
        help_text="Name of the entry link's respondent-id parameter: pid, PROLIFIC_PID, rid, psid…",
    )
    panel_parameters = models.CharField(
        max_length=300, blank=True,
        help_text="Other entry-link parameters to keep with the participant (as personal data) and to "
        "pass back as {NAME} in the exit URLs, separated by commas, e.g. STUDY_ID, SESSION_ID.",
    )
    complete_url_template = models.CharField(
        max_length=500, blank=True, help_text="Empty: PANEL_COMPLETE_URL. {pid} is the respondent id.")
    screenout_url_template = models.CharField(max_length=500, blank=True, help_text="Empty: PANEL_SCREENOUT_URL.")
    overquota_url_template = models.CharField(max_length=500, blank=True, help_text="Empty: PANEL_OVERQUOTA_URL.")
    declined_url_template = models.CharField(
        max_length=500, blank=True, help_text="Declined consent. Empty: PANEL_DECLINED_URL.")
    assignment_quota = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1, QUOTA_MESSAGE)],
        help_text="Stop after this many participants are randomized: later ones go to the over-quota URL. "
        "Empty: no quota.",
    )
    require_signed_entry = models.BooleanField(
        default=False,
        help_text="Refuse entry links without a valid signature: sig = hex HMAC-SHA256 of "
        "\"<study slug>:<panel id>\" keyed with the entry secret below (set it in the panel's redirect). "
        "Stops anyone entering or resuming with a guessed panel id.",
    )
    entry_secret = models.CharField(
        max_length=64, default=new_entry_secret,
        help_text="Shared with the panel only; changing it (or the slug) invalidates every signed link sent "
        "so far. A copy of the study gets a new one.",
    )
    # Geocoding: when a postal code is placed without asking the participant (geo/README.md).
    fsa_area_threshold = models.FloatField(
        default=0.99, validators=[MinValueValidator(0.5), MaxValueValidator(1.0)],
        help_text="An FSA is placed without asking when one district holds at least this share of its area.",
    )
    postal_code_threshold = models.FloatField(
        default=0.95, validators=[MinValueValidator(0.5), MaxValueValidator(1.0)],
        help_text="A full postal code is placed without asking when one district holds at least this share "
        "of its addresses.",
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
            ("open_study", "Can open a study to participants (after its readiness check)"),
        ]

    def __str__(self) -> str:
        return self.title

    def save(self, *args: Any, **kwargs: Any) -> None:
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
        self._freeze_exclusions()
        self.consent_version = self.questionnaire.consent_version
        update_fields = kwargs.get("update_fields")
        if update_fields is not None:
            kwargs["update_fields"] = {*update_fields, "questionnaire", "questionnaire_since", "consent_version",
                                       "exclusion_frozen_at"}
        super().save(*args, **kwargs)

    def _freeze_exclusions(self) -> None:
        """Pre-registration: the exclusion rule is frozen when the study first opens, and stays so."""
        if self.pk is not None:
            stored = Study.objects.filter(pk=self.pk).values_list("exclusion_flags", "exclusion_frozen_at").first()
            if stored is not None and stored[1] is not None:
                if sorted(stored[0]) != sorted(self.exclusion_flags or []):
                    raise ValidationError({"exclusion_flags": (
                        f"The exclusion rule was frozen when the study opened ({stored[1]:%Y-%m-%d %H:%M} UTC): "
                        f"{', '.join(stored[0]) or 'no flag'}. It cannot change; a new study can have another.")})
                self.exclusion_frozen_at = stored[1]
        if self.is_open and self.exclusion_frozen_at is None:
            self.exclusion_frozen_at = timezone.now()

    def open_to_participants(self) -> None:
        """Open the study (after its readiness check), freezing its exclusion rule if not yet frozen."""
        self.is_open = True
        self.save(update_fields=["is_open"])

    @property
    def exclusion_rule(self) -> list[str]:
        """The flags that exclude a participant: the frozen rule once opened, the chosen one before."""
        return list(self.exclusion_flags or [])

    @property
    def instrument(self) -> Instrument:
        """The parsed questionnaire new participants get (no query once parsed in this process)."""
        return instrument_for_hash(self.questionnaire_id) if self.questionnaire_id else get_instrument()

    def questionnaire_versions(self) -> list[InstrumentVersion]:
        """Every version this study's participants answered, and the current one, oldest first."""
        used = set(self.participants.filter(questionnaire__isnull=False)
                   .values_list("questionnaire_id", flat=True).distinct())
        if self.questionnaire_id:
            used.add(self.questionnaire_id)
        return list(InstrumentVersion.objects.filter(content_hash__in=used).defer("source").order_by("created_at", "id"))

    def move_to_version(self, version: InstrumentVersion, user: Any = None) -> StudyVersionChange:
        """Point the study at ``version`` from now on; participants keep the version they started with."""
        with transaction.atomic():
            study = Study.objects.select_for_update().get(pk=self.pk)
            if study.questionnaire_id == version.content_hash:
                raise ValidationError(f"The study already uses {version}.")
            try:
                scheme = study.allocation_scheme  # assignment's, a layer above: reached by the relation
            except ObjectDoesNotExist:
                scheme = None
            problem = scheme.version_problem(version.instrument) if scheme is not None else ""
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

    # --- the panel ------------------------------------------------------------------------------

    def kept_parameters(self) -> list[str]:
        """Names of the extra entry-link parameters this study keeps (the respondent id apart)."""
        return [name for name in split_codes(self.panel_parameters) if name != self.panel_id_parameter]

    def exit_template(self, kind: str) -> str:
        """The exit URL template for ``kind`` (one of :data:`EXIT_KINDS`): the study's or the setting."""
        own = getattr(self, f"{kind}_url_template")
        return own or getattr(settings, f"PANEL_{kind.upper()}_URL")

    def exit_url(self, kind: str, panel_id: str | None, parameters: Mapping[str, str] | None = None) -> str:
        """The panel redirect for ``kind``, with ``{pid}`` and the kept parameters filled in (URL-encoded)."""
        values = {name: (parameters or {}).get(name, "") for name in self.kept_parameters()}
        values["pid"] = panel_id or ""

        def filled(template: str) -> str:
            return PLACEHOLDER.sub(
                lambda m: quote(values[m.group(1)], safe="") if m.group(1) in values else m.group(0), template)

        url = filled(self.exit_template(kind))
        if is_safe_exit_url(url):
            return url
        # Defence in depth: the templates are validated when saved, but a participant's exit link
        # must never run script on this site (researchers are logged in here).
        logger.error("study %s: refused a %s exit URL that is neither http(s) nor a path", self.slug, kind)
        fallback = filled(getattr(settings, f"PANEL_{kind.upper()}_URL"))
        return fallback if is_safe_exit_url(fallback) else "/"

    def entry_url(self, panel_id: str = "TEST") -> str:
        """This study's entry link (path only) as a panel would open it, with test values (signed if required)."""
        from urllib.parse import urlencode

        from django.urls import reverse

        query = {self.panel_id_parameter: panel_id, **{name: f"TEST-{name}" for name in self.kept_parameters()}}
        if self.require_signed_entry:
            query[SIGNATURE_PARAMETER] = self.entry_signature(panel_id)
        return f"{reverse('survey:enter', args=[self.slug])}?{urlencode(query)}"

    def entry_signature(self, panel_id: str) -> str:
        """The ``sig`` a signed entry link carries for ``panel_id`` (see :func:`entry_message`)."""
        return hmac.new(self.entry_secret.encode(), entry_message(self.slug, panel_id), hashlib.sha256).hexdigest()

    def entry_link(self, base_url: str, panel_id: str) -> str:
        """The full entry link for ``panel_id`` (signed), e.g. to send it yourself."""
        from urllib.parse import urlencode

        from django.urls import reverse

        query = urlencode({self.panel_id_parameter: panel_id, SIGNATURE_PARAMETER: self.entry_signature(panel_id)})
        return f"{base_url.rstrip('/')}{reverse('survey:enter', args=[self.slug])}?{query}"

    def entry_link_is_valid(self, panel_id: str, signature: str) -> bool:
        """True when signatures are not required, or ``signature`` matches the panel id."""
        if not self.require_signed_entry:
            return True
        if not panel_id or not signature or not self.entry_secret:
            return False
        return hmac.compare_digest(self.entry_signature(panel_id), signature.strip().lower())

    # --- the scope -------------------------------------------------------------------------------

    def scope_province_codes(self) -> list[str]:
        return [code.upper() for code in split_codes(self.scope_provinces)]

    def scope_fed_codes(self) -> list[str]:
        return split_codes(self.scope_districts)

    def districts_in_scope(self) -> Any:
        """The districts participants may come from (a queryset of ``geo.District``)."""
        districts = District.objects.filter(representation_order=self.representation_order)
        if self.scope == self.Scope.PROVINCES:
            return districts.filter(province_code__in=self.scope_province_codes())
        if self.scope == self.Scope.DISTRICTS:
            return districts.filter(fed_code__in=self.scope_fed_codes())
        return districts

    def in_scope(self, district: Any) -> bool:
        if district is None or district.representation_order != self.representation_order:
            return False
        if self.scope == self.Scope.PROVINCES:
            return district.province_code in self.scope_province_codes()
        if self.scope == self.Scope.DISTRICTS:
            return district.fed_code in self.scope_fed_codes()
        return True

    def scope_summary(self) -> str:
        if self.scope == self.Scope.PROVINCES:
            return f"provinces {', '.join(self.scope_province_codes()) or '(none listed)'}"
        if self.scope == self.Scope.DISTRICTS:
            return f"{len(self.scope_fed_codes())} listed district(s)"
        return "all districts"

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        if self.scope == self.Scope.PROVINCES:
            codes = self.scope_province_codes()
            unknown = [code for code in codes if code not in PROVINCE_NAMES]
            if not codes:
                errors.setdefault("scope_provinces", []).append("List at least one province (e.g. QC, ON).")
            if unknown:
                errors.setdefault("scope_provinces", []).append(
                    f"Not a province or territory code: {', '.join(unknown)} (use {', '.join(PROVINCE_NAMES)}).")
        if self.scope == self.Scope.DISTRICTS:
            codes = self.scope_fed_codes()
            known = set(District.objects.filter(representation_order=self.representation_order, fed_code__in=codes)
                        .values_list("fed_code", flat=True))
            unknown = [code for code in codes if code not in known]
            if not codes:
                errors.setdefault("scope_districts", []).append("List at least one riding code (e.g. 24053).")
            if unknown:
                errors.setdefault("scope_districts", []).append(
                    f"No district {', '.join(unknown)} in the {self.representation_order} representation order "
                    "(are its districts loaded?).")
        from .exclusions import unknown_flags

        unknown = unknown_flags(list(self.exclusion_flags or []))
        if unknown:
            errors["exclusion_flags"] = [f"Not a respondent-quality flag: {', '.join(unknown)}."]
        bad_names = [name for name in split_codes(self.panel_parameters) if not PARAMETER_NAME.match(name)]
        if bad_names:
            errors["panel_parameters"] = [f"Not a URL parameter name: {', '.join(bad_names)}."]
        allowed = {"pid", *self.kept_parameters()}
        for kind in EXIT_KINDS:
            template = getattr(self, f"{kind}_url_template")
            problems = exit_url_problems(template, allowed) if template else []
            if problems:
                errors[f"{kind}_url_template"] = problems
        if errors:
            raise ValidationError(errors)

    def quota_reached(self) -> bool:
        """True when the study has randomized as many participants as its quota allows."""
        if self.assignment_quota is None:
            return False
        return self.assignments.count() >= self.assignment_quota  # assignment's rows, by the relation

    def record_decline(self) -> None:
        Study.objects.filter(pk=self.pk).update(declined_count=F("declined_count") + 1)
        STUDY_ROWS.forget(instance=self)



# Every participant page reads its study (exits, minimum display time, scope); researchers edit it
# in the admin, which saves it (the cached row goes).
STUDY_ROWS: RowCache[Study] = RowCache(Study, seconds=300)

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

"""Stratified permuted-block allocation: the scheme, the recorded sequence and every draw.

Three kinds of rows:

* :class:`AllocationScheme` — one per study: arms with integer ratios, the stratification factor,
  the allowed block sizes and the seed (null: cryptographic RNG). Frozen once a slot exists.
* :class:`AllocationSlot` — the allocation sequence, one row per position per stratum, generated
  lazily one block at a time (so future allocations are not stored before they are needed).
  Append-only.
* :class:`Assignment` — a draw: which participant took which slot, when, from which process.
  Append-only; one per participant (unique) and one per slot (unique).

:class:`StratumCursor` is bookkeeping, not a record: the next position to hand out in a stratum.
Its row is the lock that serializes draws within a stratum (see ``services.assign``).
The algorithm that turns a seed into a sequence is documented in ``services``.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import models

from studyserver.instrument.definition import Instrument, get_instrument
from studyserver.studies.arms import ARMS

SEQUENCE_ALGORITHM = "floodlight-pbr/v1"  # HMAC-SHA256 counter stream + Fisher–Yates (services)


class AppendOnlyError(RuntimeError):
    """Raised on any attempt to change or delete a recorded allocation row."""


class AppendOnlyQuerySet(models.QuerySet):
    """No bulk update or delete: the recorded sequence and draws can only grow."""

    def update(self, **kwargs: Any) -> int:
        raise AppendOnlyError(f"{self.model.__name__} rows are append-only: no update.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError(f"{self.model.__name__} rows are append-only: no delete.")

    # Django routes some internal updates here; refuse them as well.
    def _update(self, values: Any) -> int:
        raise AppendOnlyError(f"{self.model.__name__} rows are append-only: no update.")


class AppendOnlyModel(models.Model):
    """A row that can be inserted once and never changed or deleted through the ORM."""

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        # The key is the database's (an auto field): a row that has one was inserted already.
        if self.pk is not None:
            raise AppendOnlyError(
                f"{type(self).__name__} {self.pk} is append-only: it cannot be changed."
            )
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise AppendOnlyError(
            f"{type(self).__name__} {self.pk} is append-only: it cannot be deleted."
        )


def default_arms() -> list[dict[str, Any]]:
    return [{"arm": arm, "ratio": 1} for arm in ARMS]


def default_block_multiples() -> list[int]:
    # Blocks of 1x or 2x the ratio sum (5 or 10 for the default 1:1:1:1:1), chosen at random per
    # block, so that the end of a block cannot be inferred from the arms seen so far.
    return [1, 2]


class AllocationScheme(models.Model):
    class Strata(models.TextChoices):
        NONE = "none", "No stratification"
        PROVINCE = "province", "Province"
        ITEM = "item", "A pre-treatment questionnaire item"

    study = models.OneToOneField(
        "studies.Study", on_delete=models.PROTECT, related_name="allocation_scheme"
    )
    arm_ratios = models.JSONField(
        default=default_arms,
        help_text='Ordered list of {"arm": name, "ratio": positive integer}; the order is part of the algorithm.',
    )
    strata = models.CharField(max_length=10, choices=Strata.choices, default=Strata.PROVINCE)
    strata_item = models.CharField(
        max_length=60,
        blank=True,
        help_text="Item code of a pre-treatment question (strata = item).",
    )
    block_multiples = models.JSONField(
        default=default_block_multiples,
        help_text="Block sizes as multiples of the ratio sum; one is drawn at random for each block.",
    )
    seed = models.PositiveBigIntegerField(
        null=True,
        blank=True,
        help_text="Empty: a cryptographic RNG (unpredictable). A number: auditors can regenerate the exact sequence.",
    )
    algorithm = models.CharField(max_length=40, default=SEQUENCE_ALGORITHM, editable=False)
    is_simulation = models.BooleanField(
        default=False,
        editable=False,
        help_text="Throwaway scheme of simulate_assignments (purged afterwards).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    FROZEN_FIELDS = (
        "arm_ratios",
        "strata",
        "strata_item",
        "block_multiples",
        "seed",
        "algorithm",
        "is_simulation",
    )

    def __str__(self) -> str:
        ratio = ":".join(str(r) for r in self.ratios.values())
        return (
            f"{self.study} — {', '.join(self.arms)} ({ratio}), strata: {self.get_strata_display()}"
        )

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and self.slots.exists():
            stored = (
                AllocationScheme.objects.filter(pk=self.pk).values(*self.FROZEN_FIELDS).first()
                or {}
            )
            changed = [
                name for name in self.FROZEN_FIELDS if stored.get(name) != getattr(self, name)
            ]
            if changed:
                raise AppendOnlyError(
                    f"The allocation sequence has started; {', '.join(changed)} can no longer change."
                )
        self.clean()
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        if self.sequence_started:
            raise AppendOnlyError(
                "The allocation sequence has started; the scheme cannot be deleted."
            )
        return super().delete(*args, **kwargs)

    @property
    def ratios(self) -> dict[str, int]:
        """``{arm: ratio}`` in the configured order (arms with ratio 0 are left out)."""
        return {
            entry["arm"]: int(entry["ratio"])
            for entry in self.arm_ratios
            if int(entry["ratio"]) > 0
        }

    @property
    def arms(self) -> tuple[str, ...]:
        return tuple(self.ratios)

    @property
    def ratio_sum(self) -> int:
        return sum(self.ratios.values())

    @property
    def block_sizes(self) -> list[int]:
        return [self.ratio_sum * int(m) for m in self.block_multiples]

    @property
    def sequence_started(self) -> bool:
        return self.pk is not None and self.slots.exists()

    def version_problem(self, instrument: Instrument) -> str:
        """Why this scheme cannot randomize participants of ``instrument`` ('' when it can): a
        scheme stratified on an item needs it among that version's pre-treatment items. Asked by
        ``Study.move_to_version`` through the study's relation (studies sits below assignment)."""
        if self.strata != self.Strata.ITEM:
            return ""
        return pre_treatment_item_problem(self.strata_item, instrument)

    def clean(self) -> None:
        errors: dict[str, str] = {}
        entries = self.arm_ratios if isinstance(self.arm_ratios, list) else None
        if not entries:
            errors["arm_ratios"] = 'Give a list of {"arm": name, "ratio": integer}.'
        else:
            names = [e.get("arm") if isinstance(e, dict) else None for e in entries]
            ratios = [e.get("ratio") if isinstance(e, dict) else None for e in entries]
            if any(name not in ARMS for name in names):
                errors["arm_ratios"] = f"Arms must be among {', '.join(ARMS)}."
            elif len(set(names)) != len(names):
                errors["arm_ratios"] = "Each arm may appear once."
            elif any(not isinstance(r, int) or isinstance(r, bool) or r < 0 for r in ratios):
                errors["arm_ratios"] = "Ratios are non-negative integers."
            elif sum(1 for r in ratios if r > 0) < 2:
                errors["arm_ratios"] = "At least two arms need a positive ratio."
        multiples = self.block_multiples if isinstance(self.block_multiples, list) else None
        if not multiples or any(
            not isinstance(m, int) or isinstance(m, bool) or m < 1 for m in multiples
        ):
            errors["block_multiples"] = (
                "Give a non-empty list of positive integers (multiples of the ratio sum)."
            )
        elif len(set(multiples)) != len(multiples):
            errors["block_multiples"] = "Each multiple may appear once."
        if self.strata == self.Strata.ITEM:
            problem = pre_treatment_item_problem(self.strata_item, self.study.instrument if self.study_id else None)
            if problem:
                errors["strata_item"] = problem
        elif self.strata_item:
            errors["strata_item"] = "Only used when strata = item."
        if errors:
            raise ValidationError(errors)


def pre_treatment_item_problem(code: str, instrument: Instrument | None = None) -> str:
    """Why ``code`` cannot stratify randomization ('' when it can): it must be a pre-treatment item
    of ``instrument`` (the study's questionnaire version; default: the default questionnaire)."""
    if not code:
        return "Name the item code to stratify on."
    try:
        item = (instrument or get_instrument()).item(code)
    except KeyError:
        return f"No item {code!r} in the instrument."
    if item.phase != "pre":
        return f"Item {code!r} is measured after treatment; strata must be pre-treatment."
    if item.is_personal:
        return f"Item {code!r} is personal data."
    if item.type not in {"choice", "scale", "yesno", "integer"}:
        return f"Item {code!r} ({item.type}) has no categories to stratify on."
    return ""


class StratumCursor(models.Model):
    """Where a stratum's sequence stands. Its row lock serializes the draws of that stratum."""

    scheme = models.ForeignKey(AllocationScheme, on_delete=models.PROTECT, related_name="cursors")
    stratum = models.CharField(max_length=80)
    next_position = models.PositiveIntegerField(default=1)
    slots_generated = models.PositiveIntegerField(default=0)
    blocks_generated = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["scheme", "stratum"], name="one_cursor_per_stratum")
        ]

    def __str__(self) -> str:
        return f"{self.stratum}: next {self.next_position}"


class AllocationSlot(AppendOnlyModel):
    """One position of the allocation sequence of a stratum."""

    scheme = models.ForeignKey(AllocationScheme, on_delete=models.PROTECT, related_name="slots")
    stratum = models.CharField(max_length=80)
    position = models.PositiveIntegerField(
        help_text="1-based position within the stratum's sequence."
    )
    block_number = models.PositiveIntegerField(help_text="1-based block number within the stratum.")
    block_size = models.PositiveIntegerField()
    position_in_block = models.PositiveIntegerField()
    arm = models.CharField(max_length=30)
    generated_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["scheme", "stratum", "position"], name="one_slot_per_position"
            )
        ]
        ordering = ["scheme", "stratum", "position"]

    def __str__(self) -> str:
        return f"{self.stratum} #{self.position} (block {self.block_number}) → {self.arm}"


class Assignment(AppendOnlyModel):
    """A draw: a participant took a slot. Never changed, never deleted, never re-drawn."""

    participant = models.OneToOneField(
        "survey.Participant", on_delete=models.PROTECT, related_name="assignment"
    )
    study = models.ForeignKey("studies.Study", on_delete=models.PROTECT, related_name="assignments")
    slot = models.OneToOneField(AllocationSlot, on_delete=models.PROTECT, related_name="assignment")
    arm = models.CharField(max_length=30, db_index=True)
    stratum = models.CharField(max_length=80)
    sequence_position = models.PositiveIntegerField()
    assigned_at = models.DateTimeField(auto_now_add=True)
    assigned_by = models.CharField(
        max_length=120, blank=True, help_text="host:pid of the process that drew."
    )

    class Meta:
        # participant and slot are one-to-one, i.e. UNIQUE in the database: the last line of defence
        # behind the locks (one arm per participant, one participant per slot).
        indexes = [models.Index(fields=["study", "stratum", "arm"])]
        ordering = ["assigned_at"]

    def __str__(self) -> str:
        return f"{self.participant_id} → {self.arm} ({self.stratum} #{self.sequence_position})"


def participant_model() -> type[models.Model]:
    """The participant model (survey's), reached through the assignment's one-to-one field.

    Assignment is the layer below survey (survey's flow asks it to draw): it works on the
    participant row it locks and marks assigned without importing any survey module.
    """
    return Assignment._meta.get_field("participant").related_model


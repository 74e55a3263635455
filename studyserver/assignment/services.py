"""Random assignment: eligibility first, then one draw per participant from a recorded sequence.

What survey, the layer above, uses (ARCHITECTURE.md): ``check_eligibility(participant) -> Eligibility``,
``assign(participant) -> Assignment`` (idempotent), ``ensure_scheme(study) -> AllocationScheme``.

Design, as a trial statistician would audit it
---------------------------------------------

*Stratified permuted blocks.* Each stratum (province by default; or none; or the answer to one
pre-treatment item) has its own sequence of slots, positions 1, 2, 3, … . The sequence is cut into
blocks; every block contains each arm exactly ``ratio × multiple`` times, where ``multiple`` is
drawn at random for that block from the scheme's ``block_multiples`` (block size = multiple ×
ratio sum). Within any stratum the arm counts therefore differ from the target by less than one
block at any moment.

*Sequence algorithm* ``floodlight-pbr/v1`` (re-implementable from this text alone). For the block
number ``b`` (1-based) of stratum ``s`` a stream of random integers is drawn from a source ``R``:

1. ``m = multiples[R.randbelow(len(multiples))]`` (a draw is made even when there is one multiple);
2. ``arms`` = the scheme's arms in their configured order, each repeated ``ratio × m`` times
   (arms with ratio 0 are left out), e.g. ``[control, control, distant, distant, …]``;
3. Fisher–Yates, from the end: for ``i = len(arms) − 1`` down to ``1``: ``j = R.randbelow(i + 1)``,
   swap ``arms[i]`` and ``arms[j]``;
4. the block's slots are positions ``P+1 … P+len(arms)`` in that order, ``P`` being the number of
   slots of the stratum's earlier blocks.

With a **seed** (a non-negative integer), ``R`` for block ``b`` of stratum ``s`` is: key =
the decimal seed in ASCII (``b"12345"``); word number ``k`` (k = 0, 1, 2, …, one counter per
block) is the first 8 bytes, read as a big-endian unsigned integer, of
``HMAC-SHA256(key, f"floodlight-pbr/v1|{s}|{b}|{k}".encode("utf-8"))``; and
``randbelow(n)`` takes words until one is below ``2**64 − (2**64 mod n)`` and returns it ``mod n``
(rejection sampling: exactly uniform). Stratum names are ``all`` (no strata), the two-letter
province code (``QC``), or ``<item>=<value>`` (``worry=3``; ``<item>=missing`` when unanswered).
Because each block has its own stream, any block can be regenerated alone, in any order.
Without a seed, ``R`` is :class:`secrets.SystemRandom` (the operating system's CSPRNG): nobody,
not even the server's operators, can predict the next block. Either way every slot is recorded.

*Concurrency.* A draw is one transaction that (1) locks the participant's row (``SELECT … FOR
UPDATE``, fetching its study, scheme and any assignment in the same statement) and returns the
existing assignment if there is one — idempotence from any process —, (2) checks eligibility under
that lock, (3) sets the participant's state, (4) locks the stratum's cursor row and takes its next
position in one statement (``UPDATE … SET next_position = next_position + 1 … RETURNING``; the
cursor is created with ``INSERT … ON CONFLICT DO NOTHING``), generates the next block if that
position is beyond the slots generated so far (so each block is generated exactly once, under the
lock), (5) inserts the assignment for the slot at that position. Locks are always taken in that
order (participant, then stratum), so draws cannot deadlock; different strata draw in parallel;
the stratum lock is held only for the last few statements and the commit. Slots are consumed
strictly in sequence order — deliberately *not* ``SKIP LOCKED``, which suits work queues but
would let slots be consumed out of order (or leave holes after a rollback), which an auditor
could not tell from tampering. A rolled-back draw rolls the cursor back with it: no slot is
skipped. The one-to-one constraints on ``Assignment.participant`` and ``Assignment.slot`` are the
last line of defence.
On SQLite (the embedded default, no row locks) the transaction's first statement is a write, which
takes SQLite's single writer lock at once (waiting up to the busy timeout), so draws serialize.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import socket
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.core.exceptions import ObjectDoesNotExist
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F

from studyserver.treatments.services import arms_missing_material

from .models import (
    SEQUENCE_ALGORITHM,
    AllocationScheme,
    AllocationSlot,
    Assignment,
    StratumCursor,
    participant_model,
)

__all__ = [
    "Eligibility",
    "IneligibleError",
    "allocation_table",
    "assign",
    "check_eligibility",
    "ensure_scheme",
    "generate_block",
    "max_stratum_imbalance",
    "regenerate_stratum",
    "SeededStream",
    "stratum_of",
    "verify_sequence",
]

MissingMaterial = Callable[[Any, Any], Sequence[str]]


# --- eligibility -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Eligibility:
    """Settled before randomization. ``reason`` is a stable code (see :func:`check_eligibility`)."""

    eligible: bool
    reason: str
    missing_arms: list[str] = field(default_factory=list)


class IneligibleError(RuntimeError):
    """``assign`` refused: the participant is not eligible, so no slot was drawn."""

    def __init__(self, eligibility: Eligibility) -> None:
        super().__init__(
            f"not eligible for randomization: {eligibility.reason} {eligibility.missing_arms or ''}".strip()
        )
        self.eligibility = eligibility


def check_eligibility(
    participant: Any, *, missing_material: MissingMaterial | None = None
) -> Eligibility:
    """May this participant be randomized? Reasons: ``eligible``, ``already_assigned`` (eligible:
    an assigned participant is never screened out afterwards), ``not_placed`` (state is not
    'placed'), ``no_district`` (no confirmed district), ``out_of_scope`` (the district is outside the
    study's scope), ``material_missing`` (some arm's approved
    treatment image is missing for the district/province; ``missing_arms`` lists them).

    ``missing_material(study, district) -> list[str]`` defaults to
    ``studyserver.treatments.services.arms_missing_material`` (the one coverage query).
    """
    Participant = participant_model()

    if Assignment.objects.filter(participant_id=participant.pk).exists():
        return Eligibility(True, "already_assigned")
    if participant.state != Participant.State.PLACED:
        return Eligibility(False, "not_placed")
    if participant.district_id is None:
        return Eligibility(False, "no_district")
    if not participant.study.in_scope(participant.district):
        return Eligibility(False, "out_of_scope")
    if missing_material is None:
        missing_material = arms_missing_material
    scheme = ensure_scheme(participant.study)
    missing = [
        arm
        for arm in missing_material(participant.study, participant.district)
        if arm in scheme.arms
    ]
    missing = [arm for arm in missing if arm != "control"]
    if missing:
        return Eligibility(False, "material_missing", missing)
    return Eligibility(True, "eligible")


# --- the scheme and its sequence ---------------------------------------------------------------


def ensure_scheme(study: Any) -> AllocationScheme:
    """The study's allocation scheme, created with the defaults (five arms 1:1:1:1:1, strata by
    province, blocks of 5 or 10, cryptographic RNG) the first time it is asked for."""
    try:
        return study.allocation_scheme
    except ObjectDoesNotExist:
        pass
    scheme, _ = AllocationScheme.objects.get_or_create(study=study)
    return scheme


class RandomSource(Protocol):
    def randbelow(self, n: int) -> int: ...


class SeededStream:
    """The seeded source of ``floodlight-pbr/v1``: an HMAC-SHA256 counter stream per block."""

    _WORD = 1 << 64

    def __init__(self, seed: int, stratum: str, block_number: int) -> None:
        self._key = str(int(seed)).encode("ascii")
        self._prefix = f"{SEQUENCE_ALGORITHM}|{stratum}|{block_number}|"
        self._counter = 0

    def _word(self) -> int:
        message = f"{self._prefix}{self._counter}".encode()
        self._counter += 1
        return int.from_bytes(hmac.new(self._key, message, hashlib.sha256).digest()[:8], "big")

    def randbelow(self, n: int) -> int:
        if n < 1:
            raise ValueError("randbelow needs n >= 1")
        limit = self._WORD - (self._WORD % n)
        while True:
            word = self._word()
            if word < limit:
                return word % n


class SystemStream:
    """The unseeded source: the operating system's CSPRNG."""

    def __init__(self) -> None:
        self._random = secrets.SystemRandom()

    def randbelow(self, n: int) -> int:
        return self._random.randrange(n)


def generate_block(
    ratios: dict[str, int], block_multiples: Sequence[int], source: RandomSource
) -> list[str]:
    """One permuted block (steps 1–3 of the algorithm in the module docstring)."""
    multiple = int(block_multiples[source.randbelow(len(block_multiples))])
    arms = [arm for arm, ratio in ratios.items() for _ in range(ratio * multiple)]
    for i in range(len(arms) - 1, 0, -1):
        j = source.randbelow(i + 1)
        arms[i], arms[j] = arms[j], arms[i]
    return arms


def _source_for(scheme: AllocationScheme, stratum: str, block_number: int) -> RandomSource:
    if scheme.seed is None:
        return SystemStream()
    return SeededStream(scheme.seed, stratum, block_number)


def regenerate_stratum(
    seed: int, ratios: dict[str, int], block_multiples: Sequence[int], stratum: str, blocks: int
) -> list[tuple[int, int, str]]:
    """An auditor's regeneration: ``[(block_number, block_size, arm), …]`` for the first
    ``blocks`` blocks of ``stratum``, from the seed alone (no database)."""
    sequence: list[tuple[int, int, str]] = []
    for block_number in range(1, blocks + 1):
        block = generate_block(ratios, block_multiples, SeededStream(seed, stratum, block_number))
        sequence.extend((block_number, len(block), arm) for arm in block)
    return sequence


def stratum_of(scheme: AllocationScheme, participant: Any) -> str:
    """The participant's stratum name (see the module docstring for the naming)."""
    if scheme.strata == AllocationScheme.Strata.NONE:
        return "all"
    if scheme.strata == AllocationScheme.Strata.PROVINCE:
        code = participant.province_code or (
            participant.district.province_code if participant.district_id else ""
        )
        return code or "unknown"
    value = participant.answers().get(scheme.strata_item)
    return f"{scheme.strata_item}={'missing' if value in (None, '') else value}"


def _advance_cursor(scheme: AllocationScheme, stratum: str) -> tuple[int, int, int, int] | None:
    """Lock the stratum's cursor and take its next position, in one statement (UPDATE …
    RETURNING: PostgreSQL, SQLite ≥ 3.35). Returns (cursor id, position taken, slots generated,
    blocks generated), or None when the stratum has no cursor yet."""
    table = StratumCursor._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET next_position = next_position + 1 "
            "WHERE scheme_id = %s AND stratum = %s "
            "RETURNING id, next_position - 1, slots_generated, blocks_generated",
            [scheme.pk, stratum],
        )
        return cursor.fetchone()


def _append_block(scheme: AllocationScheme, cursor: StratumCursor) -> list[AllocationSlot]:
    """Generate and record the stratum's next block (caller holds the cursor lock)."""
    block_number = cursor.blocks_generated + 1
    arms = generate_block(
        scheme.ratios, scheme.block_multiples, _source_for(scheme, cursor.stratum, block_number)
    )
    slots = [
        AllocationSlot(
            scheme=scheme,
            stratum=cursor.stratum,
            position=cursor.slots_generated + offset + 1,
            block_number=block_number,
            block_size=len(arms),
            position_in_block=offset + 1,
            arm=arm,
        )
        for offset, arm in enumerate(arms)
    ]
    AllocationSlot.objects.bulk_create(slots)
    StratumCursor.objects.filter(pk=cursor.pk).update(
        slots_generated=F("slots_generated") + len(slots),
        blocks_generated=F("blocks_generated") + 1,
    )
    cursor.slots_generated += len(slots)
    cursor.blocks_generated += 1
    return slots


def _take_next_slot(scheme: AllocationScheme, stratum: str) -> AllocationSlot:
    row = _advance_cursor(scheme, stratum)
    if row is None:
        # INSERT … ON CONFLICT DO NOTHING: a concurrent creator makes us wait for its commit, and
        # the UPDATE that follows (a new statement) then finds its row.
        StratumCursor.objects.bulk_create(
            [StratumCursor(scheme=scheme, stratum=stratum)], ignore_conflicts=True
        )
        row = _advance_cursor(scheme, stratum)
    cursor_id, position, slots_generated, blocks_generated = row
    if position > slots_generated:
        cursor = StratumCursor(
            pk=cursor_id,
            scheme=scheme,
            stratum=stratum,
            slots_generated=slots_generated,
            blocks_generated=blocks_generated,
        )
        return next(slot for slot in _append_block(scheme, cursor) if slot.position == position)
    return AllocationSlot.objects.get(scheme=scheme, stratum=stratum, position=position)


def _this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:120]


def _lock_participant(participant_id: Any) -> Any:
    Participant = participant_model()

    if connection.vendor == "sqlite":
        # No row locks in SQLite: a first write takes the database's writer lock for the whole
        # transaction (a read first could fail with "database is locked" on the lock upgrade).
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {Participant._meta.db_table} SET state = state WHERE id = %s",
                [Participant._meta.pk.get_db_prep_value(participant_id, connection)],
            )
    # One statement: the participant (locked), its study, the study's scheme, any assignment.
    return (
        Participant.objects.select_for_update(of=("self",))
        .select_related("study__allocation_scheme", "assignment")
        .get(pk=participant_id)
    )


def assign(
    participant: Any,
    *,
    verify_eligibility: bool = True,
    missing_material: MissingMaterial | None = None,
) -> Assignment:
    """Draw the participant's arm once; every later call, from any process, returns the same row.

    Raises :class:`IneligibleError` (and draws nothing) for an ineligible participant.
    ``verify_eligibility=False`` skips the check; only ``simulate_assignments`` uses it, for its
    synthetic participants that have no district or treatment material.
    """
    Participant = participant_model()

    try:
        with transaction.atomic():
            locked = _lock_participant(participant.pk)
            existing = getattr(locked, "assignment", None)
            if existing is None:
                if verify_eligibility:
                    eligibility = check_eligibility(locked, missing_material=missing_material)
                    if not eligibility.eligible:
                        raise IneligibleError(eligibility)
                scheme = ensure_scheme(locked.study)
                stratum = stratum_of(scheme, locked)
                # Everything that does not need the stratum's lock is done before taking it, so
                # the lock is held as briefly as possible (a few statements and the commit).
                Participant.objects.filter(pk=locked.pk).update(state=Participant.State.ASSIGNED)
                slot = _take_next_slot(scheme, stratum)
                existing = Assignment.objects.create(
                    participant=locked,
                    study_id=locked.study_id,
                    slot=slot,
                    arm=slot.arm,
                    stratum=stratum,
                    sequence_position=slot.position,
                    assigned_by=_this_process(),
                )
    except IntegrityError:
        # Only reachable if something drew for this participant without its row lock: the
        # unique constraint refused a second arm, and the first one stands.
        existing = Assignment.objects.filter(participant_id=participant.pk).first()
        if existing is None:
            raise
    participant.state = Participant.State.ASSIGNED
    return existing


# --- reporting and audit -----------------------------------------------------------------------


def allocation_table(study: Any) -> dict[str, dict[str, int]]:
    """``{stratum: {arm: count}}`` of the study's assignments, every scheme arm present (0 if none)."""
    scheme = ensure_scheme(study)
    table: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(scheme.arms, 0))
    rows = Assignment.objects.filter(study=study).values("stratum", "arm").annotate(n=Count("pk"))
    for row in rows.order_by():
        table[row["stratum"]][row["arm"]] = row["n"]
    return dict(sorted(table.items()))


def max_stratum_imbalance(table: dict[str, dict[str, int]]) -> int:
    """Over all strata, the largest difference between any two arms' counts."""
    return max(
        (max(counts.values()) - min(counts.values()) for counts in table.values() if counts),
        default=0,
    )


def arm_totals(table: dict[str, dict[str, int]], arms: Iterable[str]) -> dict[str, int]:
    totals = dict.fromkeys(arms, 0)
    for counts in table.values():
        for arm, n in counts.items():
            totals[arm] = totals.get(arm, 0) + n
    return totals


def verify_sequence(scheme: AllocationScheme) -> list[str]:
    """Audit the recorded sequence; returns the problems found (empty: all is well).

    Every stratum: positions 1..n with no gap; every block a permutation of the right multiset of
    arms with a configured size; with a seed, each block equal to its regeneration; the taken
    slots a prefix of the sequence (none skipped); every assignment's arm that of its slot.
    """
    problems: list[str] = []
    slots_by_stratum: dict[str, list[AllocationSlot]] = defaultdict(list)
    for slot in AllocationSlot.objects.filter(scheme=scheme).order_by("stratum", "position"):
        slots_by_stratum[slot.stratum].append(slot)
    taken = dict(
        Assignment.objects.filter(slot__scheme=scheme).values_list("slot_id", "arm").order_by()
    )
    allowed_sizes = set(scheme.block_sizes)
    for stratum, slots in slots_by_stratum.items():
        if [s.position for s in slots] != list(range(1, len(slots) + 1)):
            problems.append(f"{stratum}: positions are not 1..{len(slots)}")
        blocks: dict[int, list[AllocationSlot]] = defaultdict(list)
        for slot in slots:
            blocks[slot.block_number].append(slot)
        for number, block in sorted(blocks.items()):
            arms = [s.arm for s in sorted(block, key=lambda s: s.position_in_block)]
            size = len(arms)
            if size not in allowed_sizes or any(s.block_size != size for s in block):
                problems.append(
                    f"{stratum} block {number}: size {size} not among {sorted(allowed_sizes)}"
                )
            multiple = size // scheme.ratio_sum if scheme.ratio_sum else 0
            expected = {arm: ratio * multiple for arm, ratio in scheme.ratios.items()}
            if {arm: arms.count(arm) for arm in expected} != expected or len(arms) != sum(
                expected.values()
            ):
                problems.append(f"{stratum} block {number}: arms are not balanced {expected}")
            if scheme.seed is not None:
                regenerated = generate_block(
                    scheme.ratios,
                    scheme.block_multiples,
                    SeededStream(scheme.seed, stratum, number),
                )
                if regenerated != arms:
                    problems.append(
                        f"{stratum} block {number}: differs from its regeneration from the seed"
                    )
        flags = [slot.pk in taken for slot in slots]
        used = sum(flags)
        if flags[:used] != [True] * used:
            problems.append(
                f"{stratum}: a slot was skipped (taken slots are not a prefix of the sequence)"
            )
        for slot in slots:
            if slot.pk in taken and taken[slot.pk] != slot.arm:
                problems.append(f"{stratum} #{slot.position}: assignment arm differs from its slot")
    return problems

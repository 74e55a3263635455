"""The sequence: permuted blocks, seeded regeneration (from the documented algorithm), CSPRNG."""

from __future__ import annotations

import hashlib
import hmac
from collections import Counter

import pytest
from django.core.exceptions import ValidationError

from studyserver.assignment.models import AllocationScheme, AllocationSlot, AppendOnlyError
from studyserver.assignment.services import (
    SeededStream,
    assign,
    generate_block,
    regenerate_stratum,
    verify_sequence,
)
from studyserver.studies.arms import ARMS

from .helpers import make_participants, make_study

pytestmark = pytest.mark.django_db


def _recorded(scheme: AllocationScheme, stratum: str) -> list[tuple[int, int, str]]:
    return list(
        AllocationSlot.objects.filter(scheme=scheme, stratum=stratum)
        .order_by("position")
        .values_list("block_number", "block_size", "arm")
    )


def test_defaults_are_five_equal_arms_stratified_by_province():
    study = make_study()
    from studyserver.assignment.services import ensure_scheme

    scheme = ensure_scheme(study)
    assert scheme.arms == ARMS
    assert scheme.ratios == dict.fromkeys(ARMS, 1)
    assert scheme.strata == "province"
    assert scheme.block_sizes == [5, 10]
    assert scheme.seed is None
    assert ensure_scheme(study).pk == scheme.pk


def test_every_block_is_a_permutation_of_the_ratios():
    ratios = {"control": 2, "house": 1, "distant": 3}
    for block_number in range(1, 40):
        block = generate_block(ratios, [1, 2, 3], SeededStream(99, "QC", block_number))
        multiple = len(block) // 6
        assert multiple in (1, 2, 3)
        assert Counter(block) == {arm: r * multiple for arm, r in ratios.items()}


def test_seeded_sequence_regenerates_exactly():
    study = make_study(seed=20240917, strata="none", block_multiples=[1, 2])
    scheme = study.allocation_scheme
    participants = make_participants(study, 37)
    arms = [assign(p, verify_eligibility=False).arm for p in participants]
    recorded = _recorded(scheme, "all")
    blocks = recorded[-1][0]
    assert regenerate_stratum(20240917, scheme.ratios, [1, 2], "all", blocks) == recorded
    assert arms == [arm for _, _, arm in recorded[:37]]
    assert verify_sequence(scheme) == []
    # Another study with the same seed and configuration gets the very same sequence.
    twin = make_study(seed=20240917, strata="none", block_multiples=[1, 2])
    twin_arms = [assign(p, verify_eligibility=False).arm for p in make_participants(twin, 37)]
    assert twin_arms == arms


def _independent_block(
    seed: int, stratum: str, block_number: int, arms_ratios, multiples
) -> list[str]:
    """The algorithm re-implemented from the services docstring alone, as an auditor would."""
    counter = 0

    def word() -> int:
        nonlocal counter
        message = f"floodlight-pbr/v1|{stratum}|{block_number}|{counter}".encode()
        counter += 1
        return int.from_bytes(
            hmac.new(str(seed).encode(), message, hashlib.sha256).digest()[:8], "big"
        )

    def randbelow(n: int) -> int:
        while True:
            w = word()
            if w < 2**64 - (2**64 % n):
                return w % n

    m = multiples[randbelow(len(multiples))]
    block = [arm for arm, ratio in arms_ratios for _ in range(ratio * m)]
    for i in range(len(block) - 1, 0, -1):
        j = randbelow(i + 1)
        block[i], block[j] = block[j], block[i]
    return block


def test_documented_algorithm_matches_an_independent_reimplementation():
    ratios = [
        ("control", 1),
        ("distant", 1),
        ("house", 2),
        ("district_landmark", 1),
        ("provincial_landmark", 1),
    ]
    for stratum in ("all", "ON", "worry=3"):
        for block_number in (1, 2, 17):
            expected = _independent_block(4242, stratum, block_number, ratios, [1, 2, 4])
            assert (
                generate_block(dict(ratios), [1, 2, 4], SeededStream(4242, stratum, block_number))
                == expected
            )


def test_unseeded_sequences_differ_between_studies():
    sequences = []
    for _ in range(2):
        study = make_study(strata="none")
        arms = [assign(p, verify_eligibility=False).arm for p in make_participants(study, 40)]
        assert (
            Counter(arms) == dict.fromkeys(ARMS, 8)
            or max(Counter(arms).values()) - min(Counter(arms).values()) <= 2
        )
        sequences.append(arms)
    # 40 draws from blocks of 5/10: two independent CSPRNG sequences coincide with probability < 1e-20.
    assert sequences[0] != sequences[1]


def test_unequal_ratios_and_fixed_block_size():
    study = make_study(
        seed=5,
        strata="none",
        arm_ratios=[
            {"arm": "control", "ratio": 2},
            {"arm": "house", "ratio": 1},
            {"arm": "distant", "ratio": 0},
        ],
        block_multiples=[2],
    )
    arms = [assign(p, verify_eligibility=False).arm for p in make_participants(study, 12)]
    assert Counter(arms) == {"control": 8, "house": 4}
    assert set(
        AllocationSlot.objects.filter(scheme=study.allocation_scheme).values_list(
            "block_size", flat=True
        )
    ) == {6}
    assert verify_sequence(study.allocation_scheme) == []


def test_scheme_validation_and_freeze_once_the_sequence_started():
    study = make_study()
    with pytest.raises(ValidationError):
        AllocationScheme.objects.create(study=study, arm_ratios=[{"arm": "nonsense", "ratio": 1}])
    with pytest.raises(ValidationError):
        AllocationScheme.objects.create(study=study, block_multiples=[0])
    with pytest.raises(ValidationError):
        AllocationScheme.objects.create(
            study=study, strata="item", strata_item="emo_anxious"
        )  # post-treatment
    scheme = AllocationScheme.objects.create(study=study, strata="none", seed=1)
    scheme.block_multiples = [3]
    scheme.save()  # still editable: nothing drawn yet
    assign(make_participants(study, 1)[0], verify_eligibility=False)
    scheme.refresh_from_db()
    scheme.seed = 2
    with pytest.raises(AppendOnlyError):
        scheme.save()
    with pytest.raises(AppendOnlyError):
        scheme.delete()

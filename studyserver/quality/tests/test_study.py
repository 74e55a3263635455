"""Flags from the database: the export's columns, the frozen exclusion rule, the funnel, the command."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command

from studyserver.exports.codebook import build_codebook
from studyserver.exports.export import QUALITY_COLUMNS, build_export, export_columns
from studyserver.exports.funnel import funnel
from studyserver.exports.tests.factories import make_district, make_participant, make_study
from studyserver.instrument.definition import get_instrument
from studyserver.quality.flags import FLAG_NAMES
from studyserver.quality.models import ParticipantQuality
from studyserver.quality.services import record_flags, store_study
from studyserver.studies.models import Study
from studyserver.survey.flow import withdraw
from studyserver.survey.models import Participant

pytestmark = pytest.mark.django_db
INSTRUMENT = get_instrument()
VALUES = [item.code for item in INSTRUMENT.page("values").items]


def _people(study: Study) -> dict[str, Participant]:
    district = make_district()
    people = {}
    for number in range(10):  # ten ordinary completes, varied answers, 20 s a page
        pages = {"values": {code: 1 + (number + i) % 7 for i, code in enumerate(VALUES)}, "ses": {}, "climate": {}}
        people[f"normal{number}"] = make_participant(study, arm="control" if number % 2 else "house",
                                                      district=district, pages=pages)
    people["liner"] = make_participant(study, arm="house", district=district,
                                       pages={"values": dict.fromkeys(VALUES, 4), "ses": {}, "climate": {}})
    people["speeder"] = make_participant(study, arm="control", district=district, seconds=7.0,
                                         pages={"values": {c: 1 + i for i, c in enumerate(VALUES)}, "ses": {}, "climate": {}})
    people["inattentive"] = make_participant(study, arm="house", district=district, attention_passed=False)
    people["bot"] = make_participant(study, arm="house", district=district, attention_passed=None)
    Participant.objects.filter(pk=people["bot"].pk).update(honeypot_step="ses")
    people["first"] = make_participant(study, state="assigned", arm="control", district=district)
    people["again"] = make_participant(study, state="assigned", arm="control", district=district)
    Participant.objects.filter(pk__in=[people["first"].pk, people["again"].pk]).update(browser_id="b" * 32)
    Participant.objects.filter(pk=people["again"].pk).update(started_at=people["first"].started_at.replace(year=2030))
    return people


def test_the_export_carries_the_flags_and_the_frozen_exclusion(db):
    study = make_study(exclusion_flags=["straight_lining", "honeypot"], is_open=True)
    people = _people(study)
    frame = build_export(study).set_index("participant_id")
    assert list(frame.reset_index().columns) == export_columns(INSTRUMENT) and set(QUALITY_COLUMNS) <= set(frame.columns)
    expected = {"liner": "straight_lining", "speeder": "speeding", "inattentive": "attention_failed",
                "bot": "honeypot", "again": "duplicate_taker", "first": "", "normal0": ""}
    for name, flags in expected.items():
        row = frame.loc[str(people[name].pk)]
        assert row["quality_flags"] == flags, name
        for flag in FLAG_NAMES:
            assert row[f"flag_{flag}"] == int(flag == flags), (name, flag)
        assert row["excluded"] == int(flags in {"straight_lining", "honeypot"}), name
    # The codebook documents every quality column, from the flags' own definitions.
    rows = {row.variable: row for row in build_codebook(study=study)}
    assert all(column in rows for column in QUALITY_COLUMNS)
    assert "straight_lining, honeypot" in rows["excluded"].notes and "40 %" in rows["flag_speeding"].notes


def test_a_withdrawn_participant_keeps_no_flag(db):
    study = make_study(is_open=True)
    people = _people(study)
    store_study(study)
    withdraw(people["bot"])
    assert not ParticipantQuality.objects.filter(participant=people["bot"]).exists()
    row = build_export(study).set_index("participant_id").loc[str(people["bot"].pk)]
    assert pd_isna(row["quality_flags"]) and pd_isna(row["excluded"])


def pd_isna(value) -> bool:
    import pandas as pd

    return bool(pd.isna(value))


def test_the_rule_is_frozen_when_the_study_opens_and_cannot_change_after(db):
    study = make_study(exclusion_flags=["speeding"])
    assert study.exclusion_frozen_at is None
    study.exclusion_flags = ["speeding", "too_fast"]
    study.save()  # not open yet: still a choice
    out = StringIO()
    with pytest.raises(Exception):  # noqa: B017 (not ready: no districts; the rule stays open)
        call_command("study_readiness", study.slug, "--open", stdout=out)
    study.refresh_from_db()
    assert study.exclusion_frozen_at is None
    study.demo = True
    study.save()
    make_district(order=study.representation_order)
    call_command("study_readiness", study.slug, "--open", stdout=out)
    study.refresh_from_db()
    assert study.is_open and study.exclusion_frozen_at is not None
    assert "exclusion rule frozen" in out.getvalue() and "speeding, too_fast" in out.getvalue()
    study.exclusion_flags = ["speeding"]
    with pytest.raises(ValidationError, match="frozen"):
        study.save()
    Study.objects.filter(pk=study.pk).update(is_open=False)
    closed = Study.objects.get(pk=study.pk)
    closed.exclusion_flags = []
    with pytest.raises(ValidationError, match="frozen"):  # closing and reopening does not reopen the choice
        closed.save()
    with pytest.raises(ValidationError, match="Not a respondent-quality flag: fast"):
        Study(slug="x", title="x", exclusion_flags=["fast"]).clean()


def test_the_funnel_and_the_command_count_each_flag_by_arm(db):
    study = make_study(exclusion_flags=["honeypot", "duplicate_taker"], is_open=True)
    people = _people(study)
    counts = funnel(study)
    assert counts["quality_flags"]["honeypot"]["house"] == 1 and counts["quality_flags"]["honeypot"]["control"] == 0
    assert counts["quality_flags"]["duplicate_taker"]["control"] == 1
    assert counts["quality_flags_total"]["straight_lining"] == 1
    assert counts["excluded"] == {**dict.fromkeys(counts["assigned"], 0), "house": 1, "control": 1}
    assert counts["excluded_total"] == 2 and counts["exclusion_rule"] == ["honeypot", "duplicate_taker"]
    out = StringIO()
    call_command("quality_flags", study.slug, "--json", "--store", stdout=out)
    printed = json.loads(out.getvalue())
    assert printed["quality_flags"] == counts["quality_flags"] and printed["stored_changes"] == len(people)
    assert ParticipantQuality.objects.get(participant=people["liner"]).flags == "straight_lining"
    assert store_study(study) == 0  # nothing changed since
    assert record_flags(people["bot"].pk) == ["honeypot"]


def test_readiness_and_the_admin_say_what_opening_freezes(admin_client):
    from django.utils import timezone

    from studyserver.fielding.readiness import readiness

    study = make_study(demo=True, exclusion_flags=["honeypot", "too_fast"])
    assert "honeypot, too_fast" in {r.code: r.message for r in readiness(study)}["exclusions"]
    study.exclusion_flags = []
    assert "no_exclusions" in {r.code for r in readiness(study)}
    url = f"/admin/studies/study/{study.pk}/change/"
    page = admin_client.get(url).content.decode()
    assert all(f'name="exclusion_flags" value="{name}"' in page for name in FLAG_NAMES)  # the registered flags
    Study.objects.filter(pk=study.pk).update(exclusion_frozen_at=timezone.now())
    page = admin_client.get(url).content.decode()
    assert 'name="exclusion_flags"' not in page and "honeypot" in page  # shown, no longer editable
    assert "exclusions" not in {r.code for r in readiness(Study.objects.get(pk=study.pk))}

"""Models, the coverage query, stimulus choice and review actions."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from studyserver.studies.arms import ARMS
from studyserver.studies.models import Study
from studyserver.treatments import services
from studyserver.treatments.models import ReviewEvent, SourcePhoto, Stimulus

APPROVED, GENERATED, QUEUED = Stimulus.Status.APPROVED, Stimulus.Status.GENERATED, Stimulus.Status.QUEUED
TREATMENT_ARMS = ["distant", "house", "district_landmark", "provincial_landmark"]


@pytest.fixture
def study(db):
    return Study.objects.create(slug="real-study", title="Real", representation_order="2023", demo=False)


@pytest.fixture
def demo_study(db):
    return Study.objects.create(slug="demo-study", title="Demo", representation_order="2023", demo=True)


def full_material(make_stimulus, district, *, is_demo=False, seed=0):
    make_stimulus("house", district, is_demo=is_demo, seed=seed)
    make_stimulus("district_landmark", district, is_demo=is_demo, seed=seed + 1)
    make_stimulus("provincial_landmark", None, district.province_code, is_demo=is_demo, seed=seed + 2)
    make_stimulus("distant", is_demo=is_demo, seed=seed + 3)


def test_slot_validation(districts, media):
    quebec = districts[0]
    with pytest.raises(ValidationError):
        SourcePhoto(kind="house", place_name_en="x", image="a.png").full_clean()
    with pytest.raises(ValidationError):
        SourcePhoto(kind="provincial_landmark", district=quebec, place_name_en="x", image="a.png").full_clean()
    with pytest.raises(ValidationError):
        SourcePhoto(kind="distant", province_code="QC", place_name_en="x", image="a.png").full_clean()
    SourcePhoto(kind="provincial_landmark", province_code="QC", place_name_en="x", image="a.png").full_clean()


def test_district_photo_takes_its_districts_province(make_source, districts):
    source = make_source("house", districts[2], province_code="QC")
    assert source.province_code == "ON"


def test_nothing_approved_means_every_treatment_arm_missing(study, districts):
    assert services.arms_missing_material(study, districts[0]) == TREATMENT_ARMS


def test_full_material_means_nothing_missing(study, districts, make_stimulus):
    full_material(make_stimulus, districts[0])
    assert services.arms_missing_material(study, districts[0]) == []
    # Same province and the distant photo carry over; the district's own photos do not.
    assert services.arms_missing_material(study, districts[1]) == ["house", "district_landmark"]
    assert services.arms_missing_material(study, districts[2]) == [
        "house", "district_landmark", "provincial_landmark"
    ]


def test_unapproved_states_are_still_missing(study, districts, make_stimulus):
    quebec = districts[0]
    make_stimulus("house", quebec, status=GENERATED)
    make_stimulus("district_landmark", quebec, status=QUEUED, seed=1)
    make_stimulus("provincial_landmark", None, "QC", status=Stimulus.Status.REJECTED, seed=2)
    make_stimulus("distant", status=APPROVED, seed=3)
    assert services.arms_missing_material(study, quebec) == ["house", "district_landmark", "provincial_landmark"]
    states = services.material_coverage([quebec])[quebec.pk]
    assert states == {"house": "generated", "district_landmark": "queued",
                      "provincial_landmark": "missing", "distant": "approved"}


def test_coverage_is_one_query(study, districts, make_stimulus, django_assert_num_queries):
    full_material(make_stimulus, districts[0])
    with django_assert_num_queries(1):
        coverage = services.material_coverage(districts)
    assert coverage[districts[0].pk]["house"] == "approved"
    assert coverage[districts[2].pk]["provincial_landmark"] == "missing"


def test_demo_material_counts_only_for_a_demo_study(study, demo_study, districts, make_stimulus):
    full_material(make_stimulus, districts[0], is_demo=True)
    assert services.arms_missing_material(demo_study, districts[0]) == []
    assert services.arms_missing_material(study, districts[0]) == TREATMENT_ARMS
    assert services.stimulus_for("house", districts[0], study=study) is None
    assert services.stimulus_for("house", districts[0], study=demo_study) is not None


def test_control_is_never_missing_and_has_no_stimulus(study, districts):
    assert "control" not in services.arms_missing_material(study, districts[0])
    assert services.stimulus_for("control", districts[0]) is None
    assert services.arms_missing_material(study, None) == TREATMENT_ARMS


def test_stimulus_for_picks_latest_approved_real_before_demo(districts, make_stimulus):
    quebec = districts[0]
    first = make_stimulus("house", quebec, seed=1)
    second = make_stimulus("house", quebec, seed=2)
    make_stimulus("house", quebec, seed=3, status=GENERATED)
    make_stimulus("house", quebec, seed=4, is_demo=True)  # newer, but DEMO: real material wins
    assert services.stimulus_for("house", quebec) == second
    services.reject(second)
    assert services.stimulus_for("house", quebec) == first
    assert services.stimulus_for("house", districts[1]) is None


def test_stimulus_contract(districts, make_stimulus):
    stimulus = make_stimulus("provincial_landmark", None, "QC")
    found = services.stimulus_for("provincial_landmark", districts[1])
    assert found == stimulus
    assert len(found.public_id) >= 20 and str(found.pk) != found.public_id
    assert found.image_url == f"/stimuli/{found.public_id}.jpg"
    assert found.place_name("en") == "Somewhere" and found.place_name("fr") == "Somewhere (fr)"
    assert found.provenance() == {"stimulus_id": found.public_id, "generator_backend": "reference",
                                  "model_version": "v-test"}


def test_public_ids_are_random_and_unique(districts, make_stimulus):
    ids = {make_stimulus("house", districts[0], seed=i).public_id for i in range(5)}
    assert len(ids) == 5


def test_review_actions_append_history(districts, make_stimulus, django_capture_on_commit_callbacks):
    reviewer = get_user_model().objects.create_user("reviewer", is_staff=True)
    stimulus = make_stimulus("house", districts[0], status=GENERATED)
    services.approve(stimulus, reviewer, "looks real")
    stimulus.refresh_from_db()
    assert stimulus.status == APPROVED and stimulus.approved_at is not None
    services.reject(stimulus, reviewer, "water too dark")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        replacement = services.regenerate(stimulus, reviewer, "try again")
    assert len(callbacks) == 1  # the generation task is sent once the row is committed
    assert replacement.source_id == stimulus.source_id and replacement.seed == stimulus.seed + 1
    assert replacement.status == QUEUED
    events = list(stimulus.review_events.values_list("action", "actor__username"))
    assert events == [("approve", "reviewer"), ("reject", "reviewer"), ("regenerate", "reviewer")]
    event = stimulus.review_events.first()
    event.note = "edited"
    with pytest.raises(ValueError):
        event.save()
    with pytest.raises(ValueError):
        event.delete()
    assert ReviewEvent.objects.filter(note="edited").count() == 0


def test_review_actions_refuse_wrong_states(districts, make_stimulus):
    queued = make_stimulus("house", districts[0], status=QUEUED)
    with pytest.raises(services.ReviewError):
        services.approve(queued)
    with pytest.raises(services.ReviewError):
        services.reject(queued)
    with pytest.raises(services.ReviewError):
        services.regenerate(queued)


def test_only_the_studys_arms_count(study, districts):
    from studyserver.assignment.services import ensure_scheme

    scheme = ensure_scheme(study)
    scheme.arm_ratios = [{"arm": arm, "ratio": 0 if arm == "house" else 1} for arm in ARMS]
    scheme.save()
    study.refresh_from_db()
    assert services.arms_missing_material(study, districts[0]) == ["distant", "district_landmark",
                                                                   "provincial_landmark"]

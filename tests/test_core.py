"""studyserver.core: the shared plain helpers."""

import pytest

from studyserver.core.geometry import great_circle_km


def test_great_circle_distance():
    assert great_circle_km(45.4215, -75.6972, 45.4215, -75.6972) == 0
    assert great_circle_km(0, 0, 0, 1) == pytest.approx(111.195, abs=0.001)  # one degree of the equator
    ottawa_montreal = great_circle_km(45.4215, -75.6972, 45.5019, -73.5674)
    assert ottawa_montreal == pytest.approx(166.0, abs=1.5)
    assert great_circle_km(45.5019, -73.5674, 45.4215, -75.6972) == ottawa_montreal


# --- rows that rarely change, in the cache (core.rows) ----------------------------------------


@pytest.fixture
def district(db):
    from studyserver.geo.models import District

    return District.objects.create(representation_order="2023", fed_code="99001", name_en="Test Riding",
                                   name_fr="Circonscription test", province_code="YT", geometry_wkb=b"\x01" * 64)


def test_a_cached_row_is_read_once_and_each_caller_gets_a_copy_of_its_own(district, django_assert_num_queries):
    from studyserver.geo.models import DISTRICT_ROWS

    with django_assert_num_queries(1):
        first = DISTRICT_ROWS.get(district.pk)
    with django_assert_num_queries(0):
        second = DISTRICT_ROWS.get(district.pk)
    assert first == second == district and first is not second
    assert first.get_deferred_fields() == {"geometry_wkb"}  # the boundary is never kept for pages
    first.name_en = "changed by one caller"
    assert DISTRICT_ROWS.get(district.pk).name_en == "Test Riding"


def test_a_saved_or_deleted_row_is_read_afresh(district, django_assert_num_queries):
    from studyserver.geo.models import DISTRICT_ROWS, District

    DISTRICT_ROWS.get(district.pk)
    district.name_en = "Renamed Riding"
    district.save()
    with django_assert_num_queries(1):
        assert DISTRICT_ROWS.get(district.pk).name_en == "Renamed Riding"
    pk = district.pk
    district.delete()
    with pytest.raises(District.DoesNotExist):
        DISTRICT_ROWS.get(pk)


def test_a_study_counted_by_an_update_is_read_afresh(db):
    from studyserver.studies.models import STUDY_ROWS, Study

    study = Study.objects.create(slug="rows", title="Rows")
    assert STUDY_ROWS.get(study.pk).declined_count == 0
    study.record_decline()  # a queryset update(): no signal, the study forgets itself
    assert STUDY_ROWS.get(study.pk).declined_count == 1
    study.refresh_from_db()
    study.min_exposure_seconds = 3
    study.save()  # as the admin saves it
    assert STUDY_ROWS.get(study.pk).min_exposure_seconds == 3

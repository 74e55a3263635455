"""Queries compiled once (survey.compiled) give the objects the ORM's queryset.first() gives."""

from __future__ import annotations

import pytest

from studyserver.geo.models import District
from studyserver.letters.addressing import current_representative
from studyserver.letters.models import Representative
from studyserver.treatments.models import DISTRICT_KINDS, Kind, Stimulus
from studyserver.treatments.services import MATERIAL_KINDS, stimulus_for

from .conftest import make_study


def _fields(instance):
    if instance is None:
        return None
    return {f.attname: f.value_from_object(instance) for f in instance._meta.concrete_fields}


def _orm_stimulus_for(arm, district, study=None):
    """stimulus_for as the ORM queryset it was before it was compiled once."""
    stimuli = Stimulus.objects.filter(status=Stimulus.Status.APPROVED, source__kind=arm).exclude(result="")
    if arm in DISTRICT_KINDS:
        stimuli = stimuli.filter(source__district=district)
    elif arm == Kind.PROVINCIAL_LANDMARK:
        stimuli = stimuli.filter(source__province_code=district.province_code)
    if study is not None and not getattr(study, "demo", False):
        stimuli = stimuli.filter(source__is_demo=False)
    return stimuli.select_related("source").order_by("source__is_demo", "-approved_at", "-id").first()


@pytest.mark.django_db
def test_the_stimulus_shown_is_the_orms_for_every_arm_district_and_study(yukon):
    from tests.support.treatments import approve_images_for

    others = list(District.objects.filter(representation_order="2013").exclude(pk=yukon.pk)[:2])
    approve_images_for(others[0], seed=1)
    studies = [None, make_study(slug="real"), make_study(slug="demo", demo=True)]
    found = 0
    for district in [yukon, *others]:
        for arm in MATERIAL_KINDS:
            for study in studies:
                expected = _orm_stimulus_for(arm, district, study)
                shown = stimulus_for(arm, district, study=study)
                assert _fields(shown) == _fields(expected), (arm, district.fed_code, study)
                assert _fields(shown and shown.source) == _fields(expected and expected.source)
                found += shown is not None
    assert found > 5  # some found, and (the third district has no images) some not


@pytest.mark.django_db
def test_the_current_representative_is_the_orms(geo2013):
    from django.utils import timezone

    now = timezone.now()
    districts = list(District.objects.filter(representation_order="2013")[:3])
    Representative.objects.create(district=districts[0], first_name="Ann", last_name="Old", is_current=False,
                                  current_since=now)
    Representative.objects.create(district=districts[0], first_name="Bea", last_name="New", is_current=True,
                                  current_since=now)
    Representative.objects.create(district=districts[1], first_name="Cy", last_name="Gone", is_current=False,
                                  current_since=now)
    for district in districts:
        expected = Representative.objects.filter(district=district, is_current=True).first()
        assert _fields(current_representative(district)) == _fields(expected)
    assert current_representative(districts[0]).last_name == "New"
    assert current_representative(districts[1]) is None

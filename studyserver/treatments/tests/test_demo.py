"""DEMO seeding through the real task path and the real (reference) generator."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from studyserver.studies.models import Study
from studyserver.treatments import services
from studyserver.treatments.demo import AUTO_APPROVAL_NOTE, seed_demo_stimuli
from studyserver.treatments.models import ReviewEvent, SourcePhoto, Stimulus


def test_demo_seeds_approved_labelled_material(districts, media):
    progress = io.StringIO()
    summary = seed_demo_stimuli("2099", progress=progress, limit_districts=2)
    # 2 districts × 2 kinds + 1 province (both in QC) + 1 distant
    assert summary["created"] == 6 and SourcePhoto.objects.filter(is_demo=True, origin="demo").count() == 6
    assert "6/6 DEMO images" in progress.getvalue()
    assert Stimulus.objects.filter(status="approved").count() == 6
    assert ReviewEvent.objects.filter(action="approve", note=AUTO_APPROVAL_NOTE, actor=None).count() == 6
    demo_study = Study.objects.create(slug="demo-t", title="Demo", demo=True, representation_order="2099")
    real_study = Study.objects.create(slug="real-t", title="Real", demo=False, representation_order="2099")
    for district in districts[:2]:
        assert services.arms_missing_material(demo_study, district) == []
        assert services.arms_missing_material(real_study, district) == ["distant", "house", "district_landmark",
                                                                        "provincial_landmark"]
    house = services.stimulus_for("house", districts[0])
    assert house.backend not in ("", "photo") and house.model_version and house.mask
    assert house.place_name("en") == districts[0].name_en
    assert services.stimulus_for("provincial_landmark", districts[0]).place_name("fr") == "Québec"
    distant = services.stimulus_for("distant", districts[0])
    assert distant.backend == "photo" and not distant.mask
    # The DEMO badge (red box, top-left) survives the flooding.
    source = np.asarray(Image.open(house.source.image.path).convert("RGB"), dtype=int)
    result = np.asarray(Image.open(house.result.path).convert("RGB"), dtype=int)
    assert tuple(source[5, 5]) == (200, 20, 20)
    assert result[5, 5, 0] > 150 and result[5, 5, 1] < 60
    # Different scenes for different slots.
    sources = [np.asarray(Image.open(s.image.path)) for s in SourcePhoto.objects.filter(kind="house")]
    assert not np.array_equal(sources[0], sources[1])

    again = seed_demo_stimuli("2099", limit_districts=2)
    assert again["created"] == 0 and again["already_approved"] == 6
    assert Stimulus.objects.count() == 6

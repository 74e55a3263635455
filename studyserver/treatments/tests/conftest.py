"""Fixtures for the treatment tests: districts, small real image files, stimuli in any state."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from studyserver.geo.models import District
from studyserver.treatments.models import SourcePhoto, Stimulus
from tests.support.treatments import picture_bytes


def png_bytes(seed: int = 0, size: int = 32) -> bytes:
    return picture_bytes(seed, size)


def jpeg_bytes(seed: int = 0, size: int = 32) -> bytes:
    return picture_bytes(seed, size, fmt="JPEG")


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def districts(db):
    rows = [
        ("24001", "Abitibi—Témiscamingue", "Abitibi—Témiscamingue", "QC"),
        ("24002", "Ahuntsic-Cartierville", "Ahuntsic-Cartierville", "QC"),
        ("35001", "Ajax", "Ajax", "ON"),
    ]
    return [
        District.objects.create(representation_order="2099", fed_code=code, name_en=en, name_fr=fr, province_code=prov)
        for code, en, fr, prov in rows
    ]


@pytest.fixture
def make_source(db, media):
    def make(kind: str, district=None, province_code: str = "", *, is_demo: bool = False, seed: int = 0,
             name: str = "Somewhere") -> SourcePhoto:
        source = SourcePhoto(kind=kind, district=district, province_code=province_code, place_name_en=name,
                             place_name_fr=f"{name} (fr)", is_demo=is_demo)
        source.image.save(f"src{seed}.png", ContentFile(png_bytes(seed)), save=False)
        source.full_clean()
        source.save()
        return source
    return make


@pytest.fixture
def make_stimulus(make_source):
    def make(kind: str, district=None, province_code: str = "", status: str = Stimulus.Status.APPROVED,
             *, is_demo: bool = False, seed: int = 0, source: SourcePhoto | None = None) -> Stimulus:
        source = source or make_source(kind, district, province_code, is_demo=is_demo, seed=seed)
        stimulus = Stimulus(source=source, status=status, seed=seed, backend="reference", model_version="v-test")
        if status in (Stimulus.Status.GENERATED, Stimulus.Status.APPROVED, Stimulus.Status.REJECTED):
            stimulus.result.save(f"res{seed}.jpg", ContentFile(jpeg_bytes(seed)), save=False)
            stimulus.mask.save(f"mask{seed}.png", ContentFile(png_bytes(seed + 100)), save=False)
            stimulus.generated_at = timezone.now()
        if status == Stimulus.Status.APPROVED:
            stimulus.approved_at = timezone.now()
        stimulus.save()
        return stimulus
    return make

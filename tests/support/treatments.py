"""Approved treatment images made on the spot, for tests and benchmarks (no generation run)."""

from __future__ import annotations

import io

import numpy as np
from django.core.files.base import ContentFile
from django.utils import timezone
from PIL import Image

from studyserver.geo.models import District
from studyserver.treatments.models import SourcePhoto, Stimulus


def picture_bytes(seed: int = 0, size: int = 32, fmt: str = "PNG") -> bytes:
    """Smooth random colours (a 4x4 grid upscaled), so JPEG round trips stay close to the source."""
    pixels = np.random.default_rng(seed).integers(0, 255, (4, 4, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).resize((size, size), Image.BILINEAR).save(buffer, format=fmt)
    return buffer.getvalue()


def approve_images_for(district: District, seed: int = 0) -> dict[str, Stimulus]:
    """An approved image for every treatment arm a participant of ``district`` can draw."""
    slots = {
        "house": {"district": district},
        "district_landmark": {"district": district},
        "provincial_landmark": {"province_code": district.province_code},
        "distant": {},
    }
    made = {}
    for offset, (kind, where) in enumerate(slots.items()):
        source = SourcePhoto(kind=kind, place_name_en=f"{kind} place", place_name_fr=f"lieu {kind}", **where)
        source.image.save(f"src-{kind}.png", ContentFile(picture_bytes(seed + offset)), save=False)
        source.save()
        stimulus = Stimulus(source=source, status=Stimulus.Status.APPROVED, seed=seed, backend="reference",
                            model_version="test", generated_at=timezone.now(), approved_at=timezone.now())
        stimulus.result.save(f"res-{kind}.jpg", ContentFile(picture_bytes(seed + offset, fmt="JPEG")), save=False)
        stimulus.save()
        made[kind] = stimulus
    return made



"""DEMO treatment material for every district, so the whole study runs from the README's first command.

There is no real photo of any district (nor of a flood in Bangladesh) in the repository, so the
demo uses pictures of the project's simulated street world (``generator.simworld``), each with a
red "DEMO" badge and ``is_demo=True``: a house and a landmark per district, a landmark per
province, and a simulated flooded street standing in for the distant arm's real flood photo. Each
picture goes through the real generation task (``treatments.generate_stimulus``, run in this
process) and is approved with a ReviewEvent noting the automatic approval. A real study never
shows DEMO material (see ``services.arms_missing_material``).

Run again, it only adds what is missing. Pictures are small (256×192) so ~690 of them take a couple
of minutes on two CPU cores; rendering runs in a small process pool beside the generation.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import IO, Any

from django.core.files.base import ContentFile
from django.db import transaction
from PIL import Image, ImageDraw, ImageFont

from generator.simworld import render_scene, write_demo_photos
from studyserver.geo.models import District
from studyserver.geo.services import province_name

from . import services
from .models import Kind, SourcePhoto, Stimulus
from .tasks import generate_stimulus

DEMO_SIZE = (192, 256)  # (height, width)
DEMO_DISTANT_WATER_HEIGHT = 0.7  # metres above the road in the simulated flooded street
AUTO_APPROVAL_NOTE = "demo auto-approval (simulated-world DEMO picture, not reviewed by a person)"
POOL_THRESHOLD = 24  # below this many pictures a process pool costs more than it saves

PROVINCE_NAMES = {
    "AB": ("Alberta", "Alberta"), "BC": ("British Columbia", "Colombie-Britannique"),
    "MB": ("Manitoba", "Manitoba"), "NB": ("New Brunswick", "Nouveau-Brunswick"),
    "NL": ("Newfoundland and Labrador", "Terre-Neuve-et-Labrador"),
    "NS": ("Nova Scotia", "Nouvelle-Écosse"), "NT": ("Northwest Territories", "Territoires du Nord-Ouest"),
    "NU": ("Nunavut", "Nunavut"), "ON": ("Ontario", "Ontario"),
    "PE": ("Prince Edward Island", "Île-du-Prince-Édouard"), "QC": ("Quebec", "Québec"),
    "SK": ("Saskatchewan", "Saskatchewan"), "YT": ("Yukon", "Yukon"),
}


@dataclass(frozen=True)
class _Slot:
    kind: str
    district: Any
    province_code: str
    place_name_en: str
    place_name_fr: str

    @property
    def key(self) -> str:
        where = self.district.fed_code if self.district is not None else self.province_code or "world"
        return f"{self.kind}-{where}"

    def seed(self, representation_order: str) -> int:
        # Different, reproducible scenes for every district, kind and province.
        return zlib.crc32(f"{representation_order}:{self.key}".encode()) % 1_000_000


def _province_name(code: str, language: str) -> str:
    try:
        return province_name(code, language)
    except (KeyError, ValueError):
        english, french = PROVINCE_NAMES.get(code, (code, code))
        return french if language == "fr" else english


def _slots(districts: list[Any]) -> list[_Slot]:
    slots = []
    for district in districts:
        for kind in (Kind.HOUSE, Kind.DISTRICT_LANDMARK):
            slots.append(_Slot(kind.value, district, district.province_code, district.name_en, district.name_fr))
    for code in sorted({district.province_code for district in districts}):
        slots.append(_Slot(Kind.PROVINCIAL_LANDMARK.value, None, code, _province_name(code, "en"),
                           _province_name(code, "fr")))
    slots.append(_Slot(Kind.DISTANT.value, None, "", "Bangladesh", "Bangladesh"))
    return slots


def _existing_demo_sources() -> dict[str, SourcePhoto]:
    sources = {}
    for source in SourcePhoto.objects.filter(is_demo=True).select_related("district"):
        slot = _Slot(source.kind, source.district, source.province_code, "", "")
        sources.setdefault(slot.key, source)
    return sources


def _draw_badge(image: Image.Image, text: str) -> Image.Image:
    draw = ImageDraw.Draw(image)
    font_size = max(10, image.height // 16)
    try:
        font = ImageFont.load_default(size=font_size)
    except TypeError:  # Pillow without a scalable default font
        font = ImageFont.load_default()
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    pad = max(2, font_size // 4)
    draw.rectangle((4, 4, 4 + right - left + 2 * pad, 4 + bottom - top + 2 * pad), fill=(200, 20, 20))
    draw.text((4 + pad - left, 4 + pad - top), text, fill=(255, 255, 255), font=font)
    return image


def _distant_picture(out_dir: Path, seed: int) -> Path:
    """A simulated flooded street, labelled DEMO: the stand-in for a real flood photo."""
    sample = render_scene(seed, size=DEMO_SIZE, domain="real", water_heights=(DEMO_DISTANT_WATER_HEIGHT,))
    path = out_dir / "distant-demo.png"
    _draw_badge(Image.fromarray(sample.flooded[0]), "DEMO (simulated)").save(path)
    return path


def _render_jobs(executor: Executor | None, slots: list[_Slot], out_dir: Path, order: str) -> Any:
    """Yield ``(slot, picture path)`` in order; rendering runs ahead in the pool when there is one."""
    def job(slot: _Slot) -> tuple[Any, ...]:
        return (write_demo_photos, out_dir, 1, DEMO_SIZE, slot.seed(order), "real", True, slot.key)

    if executor is None:
        for slot in slots:
            if slot.kind == Kind.DISTANT:
                yield slot, _distant_picture(out_dir, slot.seed(order))
            else:
                function, *args = job(slot)
                yield slot, function(*args)[0]
        return
    futures = [
        None if slot.kind == Kind.DISTANT else executor.submit(*job(slot)) for slot in slots
    ]
    for slot, future in zip(slots, futures, strict=True):
        yield slot, _distant_picture(out_dir, slot.seed(order)) if future is None else future.result()[0]


def _generate_and_approve(source: SourcePhoto) -> Stimulus:
    stimulus = source.stimuli.filter(status__in=[Stimulus.Status.GENERATED, Stimulus.Status.APPROVED]).first()
    if stimulus is None:
        stimulus = Stimulus.objects.create(source=source, seed=services.next_seed(source))
        # The task body itself, run here: the same code a gpu worker runs, whatever the broker.
        generate_stimulus.apply(args=[stimulus.pk], throw=True)
        stimulus.refresh_from_db()
    if stimulus.status == Stimulus.Status.GENERATED:
        stimulus = services.approve(stimulus, None, AUTO_APPROVAL_NOTE)
    if stimulus.status != Stimulus.Status.APPROVED:
        raise RuntimeError(f"demo stimulus {stimulus.pk} ended {stimulus.status}: {stimulus.error}")
    return stimulus


def seed_demo_stimuli(representation_order: str, progress: IO[str] | None = None,
                      limit_districts: int | None = None) -> dict[str, Any]:
    """Seed approved DEMO stimuli for every district (or the first ``limit_districts``).

    Returns counts and the elapsed time; ``progress`` (a text stream) gets a line every ~10%.
    """
    with _quiet_task_log():
        return _seed(representation_order, progress, limit_districts)


@contextlib.contextmanager
def _quiet_task_log() -> Iterator[None]:
    """Hide Celery's one-line-per-task success log while hundreds of demo tasks run inline."""
    trace_logger = logging.getLogger("celery.app.trace")
    level = trace_logger.level
    trace_logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        trace_logger.setLevel(level)


@contextlib.contextmanager
def _torch_threads(count: int | None) -> Iterator[None]:
    """Run with ``count`` torch threads (None: unchanged), restoring the previous number after."""
    if count is None:
        yield
        return
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(max(1, count))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _seed(representation_order: str, progress: IO[str] | None, limit_districts: int | None) -> dict[str, Any]:
    started = time.monotonic()
    districts = list(District.objects.filter(representation_order=representation_order)
                     .order_by("fed_code"))
    if limit_districts is not None:
        districts = districts[:limit_districts]
    slots = _slots(districts)
    existing = _existing_demo_sources()
    approved_keys = {
        key for key, source in existing.items()
        if source.stimuli.filter(status=Stimulus.Status.APPROVED).exists()
    }
    todo = [slot for slot in slots if slot.key not in approved_keys]
    to_render = [slot for slot in todo if slot.key not in existing]
    reuse = [existing[slot.key] for slot in todo if slot.key in existing]
    for source in reuse:  # an interrupted earlier run: finish those first
        _generate_and_approve(source)

    done = 0
    step = max(1, len(to_render) // 10)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    use_pool = len(to_render) >= POOL_THRESHOLD and cores > 1
    with tempfile.TemporaryDirectory(prefix="floodlight-demo-") as tmp, _torch_threads(cores - 1 if use_pool else None):
        # Rendering (numpy, one core per process) runs beside generation (torch): one core is
        # left to torch and the rest render, because oversubscribed torch threads spin and
        # slow everything down several times. Fork: the pool starts before this process loads
        # torch or uses its database connection in a child, and unlike spawn it does not re-run
        # the caller's main script.
        executor = ProcessPoolExecutor(max(1, cores - 1), mp_context=get_context("fork")) if use_pool else None
        try:
            for slot, picture in _render_jobs(executor, to_render, Path(tmp), representation_order):
                with transaction.atomic():
                    source = SourcePhoto(
                        kind=slot.kind, district=slot.district, province_code=slot.province_code,
                        place_name_en=slot.place_name_en, place_name_fr=slot.place_name_fr,
                        origin=SourcePhoto.Origin.DEMO, is_demo=True,
                        credit="DEMO: Floodlight simulated street world (generator.simworld), not a real photo",
                    )
                    source.image.save(f"demo-{slot.key}.png", ContentFile(Path(picture).read_bytes()), save=False)
                    source.save()
                _generate_and_approve(source)
                Path(picture).unlink(missing_ok=True)
                done += 1
                if progress is not None and (done % step == 0 or done == len(to_render)):
                    progress.write(f"      {done}/{len(to_render)} DEMO images "
                                   f"({time.monotonic() - started:.0f} s)\n")
        finally:
            if executor is not None:
                executor.shutdown(cancel_futures=True)
    elapsed = time.monotonic() - started
    summary = {"districts": len(districts), "slots": len(slots), "created": done,
               "resumed": len(reuse), "already_approved": len(slots) - len(todo), "seconds": round(elapsed, 1)}
    if progress is not None:
        progress.write(f"      DEMO images: {done} new, {len(reuse)} resumed, "
                       f"{summary['already_approved']} already there, {elapsed:.0f} s\n")
    return summary

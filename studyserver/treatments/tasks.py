"""The GPU-queue task: flood one stimulus' source photo and store its result and mask.

Routed to queue ``gpu`` by name (settings: ``treatments.*``). Delivery guarantees come from Celery:
``acks_late`` + ``reject_on_worker_lost`` mean a worker that dies mid-task leaves the message in the
broker for another worker (the stimulus stays ``queued``, never lost). Retries back off
exponentially; a hard time limit ends a stuck generation. The task is idempotent: a stimulus that
already has its result is left alone, and the same source, model version and parameters map to the
same storage names, so a redelivered or repeated task reuses what is stored.

The worker reads the source through Django's default storage (a path on a shared filesystem, or a
download to a temporary file for object storage) and calls ``generator.service``, which knows
nothing of Django.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from celery import shared_task
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone
from PIL import Image

from .models import PHOTO_BACKEND, Kind, Stimulus

logger = logging.getLogger(__name__)

MAX_RETRIES = 5
RESULT_JPEG_QUALITY = 92
# Test hook for the killed-worker test: a worker started with this variable holds each task for
# that many seconds after marking it started, so the test can SIGKILL it mid-task. Unset in any
# real deployment (it is read from the worker's own environment, never from a message).
HOLD_ENV = "FLOODLIGHT_TREATMENTS_TEST_HOLD_SECONDS"


class GenerationError(RuntimeError):
    """The generator could not produce an image (bad source, model failure)."""


# Failures that another attempt cannot fix: recorded as failed at once. Everything else (I/O,
# storage, the soft time limit, a flaky device) is retried with backoff.
NOT_RETRIED = (GenerationError, ImportError, TypeError, ValueError)


@contextlib.contextmanager
def local_copy(name: str) -> Iterator[Path]:
    """A local path to the stored file ``name``: the file itself on a filesystem storage, else a temp copy."""
    try:
        path = Path(default_storage.path(name))
    except NotImplementedError:  # object storage: no local path
        path = None
    if path is not None and path.exists():
        yield path
        return
    suffix = Path(name).suffix or ".img"
    with tempfile.NamedTemporaryFile(suffix=suffix) as handle, default_storage.open(name, "rb") as stored:
        shutil.copyfileobj(stored, handle)
        handle.flush()
        yield Path(handle.name)


def retry_delay(retries: int) -> int:
    """Exponential backoff with a cap: 10 s, 20 s, 40 s, ... at most 10 minutes."""
    return min(600, 10 * 2**retries)


def _pipeline() -> Any:
    """This process' pipeline for the configured checkpoints (loaded once, then cached)."""
    from generator import service

    return service.get_pipeline(
        settings.GENERATOR_MASKER_CHECKPOINT or "",
        settings.GENERATOR_PAINTER_CHECKPOINT or "",
        settings.GENERATOR_DEVICE or "cpu",
    )


def _planned(params: dict) -> tuple[str, str, dict[str, Any]]:
    """Backend, model version and effective parameters that generating with ``params`` means."""
    from generator import service

    pipeline = _pipeline()
    try:
        flood_params = service.FloodParams.from_value(params)
    except ValueError as error:
        raise GenerationError(f"bad generation parameters: {error}") from error
    return pipeline.backend, pipeline.model_version, service.effective_params(flood_params, pipeline)


def _flood(source_path: Path, out_dir: Path, params: dict) -> dict[str, Any]:
    """Run the generation service on one file; returns the fields the stimulus keeps."""
    from generator import service

    try:
        record = service.flood_file(source_path, out_dir, params, _pipeline())
    except service.SourceImageError as error:
        raise GenerationError(f"unreadable source image: {error}") from error
    except ValueError as error:
        raise GenerationError(str(error)) from error
    return {
        "output": Path(record.output), "mask": Path(record.mask), "backend": record.backend,
        "model_version": record.model_version, "params": dict(record.params),
        "timings": {f"{name}_ms": value for name, value in record.timings_ms.items()},
    }


def _content_key(source_bytes: bytes, backend: str, model_version: str, params: dict) -> str:
    blob = json.dumps({"backend": backend, "model_version": model_version, "params": params}, sort_keys=True)
    return hashlib.sha256(hashlib.sha256(source_bytes).digest() + blob.encode()).hexdigest()


def _save_once(name: str, data: bytes) -> str:
    """Store ``data`` under ``name`` unless that (content-addressed) name already exists."""
    if default_storage.exists(name):
        return name
    return default_storage.save(name, ContentFile(data))


def _as_jpeg(path: Path) -> bytes:
    with Image.open(path) as image:
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="JPEG", quality=RESULT_JPEG_QUALITY, subsampling=0)
    return buffer.getvalue()


def _as_png(path: Path) -> bytes:
    with Image.open(path) as image:
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
    return buffer.getvalue()


def _mark_started(stimulus_id: int, task_id: str) -> Stimulus | None:
    with transaction.atomic():
        stimulus = Stimulus.objects.select_for_update().select_related("source").filter(pk=stimulus_id).first()
        if stimulus is None or stimulus.status != Stimulus.Status.QUEUED:
            return stimulus
        stimulus.attempts += 1
        stimulus.started_at = timezone.now()
        stimulus.task_id = task_id or ""
        stimulus.save(update_fields=["attempts", "started_at", "task_id"])
        return stimulus


def _generate(stimulus: Stimulus) -> dict[str, Any]:
    """Produce the files for ``stimulus`` and store them; returns the fields to save.

    Stored names derive from the source's bytes, backend, model version and parameters, so the
    same request is answered from storage without running a model (here or on another worker).
    """
    source = stimulus.source
    with default_storage.open(source.image.name, "rb") as handle:
        source_bytes = handle.read()
    if source.kind == Kind.DISTANT:
        # A real flood photo is shown as is: no model, no mask.
        key = _content_key(source_bytes, PHOTO_BACKEND, "", {})
        with local_copy(source.image.name) as path:
            result = _save_once(f"treatments/results/{key[:2]}/{key}.jpg", _as_jpeg(path))
        return {"result": result, "mask": "", "backend": PHOTO_BACKEND, "model_version": "",
                "params": {}, "timings": {}}
    started = time.perf_counter()
    params = {**(stimulus.params or {}), "seed": stimulus.seed}
    backend, model_version, effective = _planned(params)
    key = _content_key(source_bytes, backend, model_version, effective)
    result_name, mask_name = f"treatments/results/{key[:2]}/{key}.jpg", f"treatments/masks/{key[:2]}/{key}.png"
    if default_storage.exists(result_name) and default_storage.exists(mask_name):
        return {"result": result_name, "mask": mask_name, "backend": backend, "model_version": model_version,
                "params": effective, "timings": {"reused": True}}
    with local_copy(source.image.name) as path, tempfile.TemporaryDirectory(prefix="floodlight-") as out:
        produced = _flood(path, Path(out), params)
        mask = _save_once(mask_name, _as_png(produced["mask"]))
        result = _save_once(result_name, _as_jpeg(produced["output"]))  # last: its presence means done
    timings = {**produced["timings"], "task_total_s": round(time.perf_counter() - started, 4)}
    return {"result": result, "mask": mask, "backend": produced["backend"],
            "model_version": produced["model_version"], "params": produced["params"], "timings": timings}


@shared_task(
    bind=True,
    name="treatments.generate_stimulus",
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=MAX_RETRIES,
    time_limit=settings.CELERY_TASK_TIME_LIMIT,
    soft_time_limit=settings.CELERY_TASK_SOFT_TIME_LIMIT,
)
def generate_stimulus(self: Any, stimulus_id: int) -> str:
    """Flood stimulus ``stimulus_id``'s source and store result and mask; returns what happened."""
    stimulus = _mark_started(stimulus_id, self.request.id)
    if stimulus is None:
        return "gone"
    if stimulus.status != Stimulus.Status.QUEUED:
        return f"already {stimulus.status}"  # a redelivery after completion, or a reviewed stimulus
    hold = float(os.environ.get(HOLD_ENV, "0") or 0)
    if hold > 0:
        time.sleep(hold)
    try:
        fields = _generate(stimulus)
    except Exception as error:  # any failure must end in a retry or a recorded failure, never silence
        logger.warning("stimulus %s: generation failed (attempt %s): %s", stimulus_id, self.request.retries + 1, error)
        if self.request.retries < self.max_retries and not isinstance(error, NOT_RETRIED):
            Stimulus.objects.filter(pk=stimulus_id).update(error=f"{type(error).__name__}: {error}"[:2000])
            if self.request.is_eager:
                # Eager mode (the embedded default) has no broker to hold a delayed retry: retry inline.
                return self.apply(args=[stimulus_id], retries=self.request.retries + 1, throw=True).get()
            raise self.retry(exc=error, countdown=retry_delay(self.request.retries)) from error
        Stimulus.objects.filter(pk=stimulus_id, status=Stimulus.Status.QUEUED).update(
            status=Stimulus.Status.FAILED, error=f"{type(error).__name__}: {error}"[:2000]
        )
        return "failed"
    updated = Stimulus.objects.filter(pk=stimulus_id, status=Stimulus.Status.QUEUED).update(
        status=Stimulus.Status.GENERATED, generated_at=timezone.now(), error="", **fields
    )
    return "generated" if updated else "superseded"

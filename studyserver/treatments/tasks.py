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
import io
import logging
import shutil
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from celery import shared_task
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from PIL import Image

from generator.params import content_key
from studyserver.retries import policy
from studyserver.retries.policy import GENERATION_MAX_RETRIES, generation_retry_delay

from .models import PHOTO_BACKEND, Kind, Stimulus

logger = logging.getLogger(__name__)

RESULT_JPEG_QUALITY = 92


class GenerationError(RuntimeError):
    """The generator could not produce an image (bad source, model failure)."""


# Failures that another attempt cannot fix: recorded as failed at once. Everything else (I/O,
# storage, the soft time limit, a flaky device) is retried with backoff (studyserver.retries.policy).
NOT_RETRIED = (GenerationError, ImportError, TypeError, ValueError)


@contextlib.contextmanager
def stored_file_on_disk(name: str) -> Iterator[Path]:
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


def _flood_batch(sources: list[Path], out_dir: Path, params: list[dict]) -> list[dict[str, Any] | Exception]:
    """Run the generation service on several files in one batch; one result or error per source.

    An unreadable source or bad parameters give a :class:`GenerationError` (not retried); any
    other failure (a model or device error fails its whole batch) is returned as is, to be retried.
    """
    from generator import service

    records = service.flood_many(sources, out_dir, params, _pipeline(), max_batch=max(1, len(sources)))
    results: list[dict[str, Any] | Exception] = []
    for record in records:
        if isinstance(record, service.FloodFailure):
            error_type = GenerationError if record.kind in {"SourceImageError", "ValueError"} else RuntimeError
            results.append(error_type(f"{record.kind}: {record.error}"))
            continue
        results.append({
            "output": Path(record.output), "mask": Path(record.mask), "backend": record.backend,
            "model_version": record.model_version, "params": dict(record.params),
            "timings": {f"{name}_ms": value for name, value in record.timings_ms.items()},
        })
    return results


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
        lease_start = timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)
        claimed_elsewhere = stimulus.task_id not in ("", task_id or "") and stimulus.started_at is not None
        if claimed_elsewhere and stimulus.started_at >= lease_start:
            return stimulus  # in another task's batch (see _claim_companions)
        stimulus.attempts += 1
        stimulus.started_at = timezone.now()
        stimulus.task_id = task_id or ""
        stimulus.save(update_fields=["attempts", "started_at", "task_id"])
        return stimulus


def _generate_many(stimuli: list[Stimulus]) -> dict[int, dict[str, Any] | Exception]:
    """Produce and store the files of several stimuli, flooding together those that need a model.

    Returns, per stimulus id, the fields to save or the error it met. Stored names derive from the
    source's bytes, backend, model version and parameters, so the same request is answered from
    storage without running a model (here or on another worker).
    """
    outcomes: dict[int, dict[str, Any] | Exception] = {}
    to_flood: list[tuple[Stimulus, dict, str, str]] = []  # (stimulus, params, result name, mask name)
    for stimulus in stimuli:
        try:
            planned = _plan(stimulus)
        except Exception as error:  # noqa: BLE001 (one stimulus' failure is recorded, the others go on)
            outcomes[stimulus.pk] = error
            continue
        if isinstance(planned, dict):
            outcomes[stimulus.pk] = planned
        else:
            to_flood.append(planned)
    if not to_flood:
        return outcomes
    started = time.perf_counter()
    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory(prefix="floodlight-") as out:
        paths = [stack.enter_context(stored_file_on_disk(item[0].source.image.name)) for item in to_flood]
        try:
            produced_all = _flood_batch(paths, Path(out), [item[1] for item in to_flood])
        except Exception as error:  # noqa: BLE001 (the whole batch failed: every member records it)
            produced_all = [error] * len(to_flood)
        for (stimulus, _params, result_name, mask_name), produced in zip(to_flood, produced_all, strict=True):
            if isinstance(produced, Exception):
                outcomes[stimulus.pk] = produced
                continue
            mask = _save_once(mask_name, _as_png(produced["mask"]))
            result = _save_once(result_name, _as_jpeg(produced["output"]))  # last: its presence means done
            timings = {**produced["timings"], "batch_size": len(to_flood),
                       "task_total_s": round(time.perf_counter() - started, 4)}
            outcomes[stimulus.pk] = {
                "result": result, "mask": mask, "backend": produced["backend"],
                "model_version": produced["model_version"], "params": produced["params"], "timings": timings,
            }
    return outcomes


def _plan(stimulus: Stimulus) -> dict[str, Any] | tuple[Stimulus, dict, str, str]:
    """The saved fields when nothing needs a model (a distant photo, a stored result), else what to flood."""
    source = stimulus.source
    with default_storage.open(source.image.name, "rb") as handle:
        source_bytes = handle.read()
    if source.kind == Kind.DISTANT:
        # A real flood photo is shown as is: no model, no mask.
        key = content_key(source_bytes, PHOTO_BACKEND, "", {})
        with stored_file_on_disk(source.image.name) as path:
            result = _save_once(f"treatments/results/{key[:2]}/{key}.jpg", _as_jpeg(path))
        return {"result": result, "mask": "", "backend": PHOTO_BACKEND, "model_version": "",
                "params": {}, "timings": {}}
    params = {**(stimulus.params or {}), "seed": stimulus.seed}
    backend, model_version, effective = _planned(params)
    key = content_key(source_bytes, backend, model_version, effective)
    result_name, mask_name = f"treatments/results/{key[:2]}/{key}.jpg", f"treatments/masks/{key[:2]}/{key}.png"
    if default_storage.exists(result_name) and default_storage.exists(mask_name):
        return {"result": result_name, "mask": mask_name, "backend": backend, "model_version": model_version,
                "params": effective, "timings": {"reused": True}}
    return stimulus, params, result_name, mask_name


def _claim_companions(stimulus: Stimulus, task_id: str) -> list[Stimulus]:
    """Other queued stimuli no live task is working on, claimed to be flooded in this task's batch.

    Claimed ones carry this task's id and start time; their own messages, when delivered, see the
    claim and return. Should this worker die, the redelivered message of this task claims them
    again (same task id), and ``generate_treatments`` resends any claim older than the time limit.
    """
    size = int(getattr(settings, "GENERATOR_BATCH_SIZE", 1))
    if size <= 1 or not task_id or stimulus.source.kind == Kind.DISTANT:
        return []
    lease_start = timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)
    with transaction.atomic():
        companions = list(
            Stimulus.objects.select_for_update(skip_locked=True).select_related("source")
            .filter(status=Stimulus.Status.QUEUED, result="")
            .exclude(pk=stimulus.pk).exclude(source__kind=Kind.DISTANT)
            .filter(Q(started_at__isnull=True) | Q(started_at__lt=lease_start) | Q(task_id=task_id))
            .order_by("pk")[: size - 1]
        )
        now = timezone.now()
        for companion in companions:
            companion.attempts += 1
            companion.started_at = now
            companion.task_id = task_id
            companion.save(update_fields=["attempts", "started_at", "task_id"])
    return companions


def _finish(stimulus_id: int, fields: dict[str, Any]) -> bool:
    return bool(Stimulus.objects.filter(pk=stimulus_id, status=Stimulus.Status.QUEUED).update(
        status=Stimulus.Status.GENERATED, generated_at=timezone.now(), error="", **fields
    ))


def _release(stimulus_id: int, error: Exception) -> None:
    """A companion that failed in someone else's batch goes back to its own task and retries."""
    Stimulus.objects.filter(pk=stimulus_id, status=Stimulus.Status.QUEUED).update(
        started_at=None, task_id="", error=f"{type(error).__name__}: {error}"[:2000])
    transaction.on_commit(lambda: send_generation_task(stimulus_id, countdown=generation_retry_delay(0)))


@shared_task(
    bind=True,
    name="treatments.generate_stimulus",
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=GENERATION_MAX_RETRIES,
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
    if stimulus.task_id != (self.request.id or ""):
        return f"in the batch of task {stimulus.task_id}"
    companions = [] if self.request.retries else _claim_companions(stimulus, self.request.id or "")
    outcomes = _generate_many([stimulus, *companions])
    for companion in companions:
        outcome = outcomes[companion.pk]
        if isinstance(outcome, Exception):
            _release(companion.pk, outcome)
        else:
            _finish(companion.pk, outcome)
    outcome = outcomes[stimulus_id]
    if isinstance(outcome, Exception):
        error = outcome
        logger.warning("stimulus %s: generation failed (attempt %s): %s", stimulus_id, self.request.retries + 1, error)
        if self.request.retries < self.max_retries and not isinstance(error, NOT_RETRIED):
            Stimulus.objects.filter(pk=stimulus_id).update(error=f"{type(error).__name__}: {error}"[:2000])
            if self.request.is_eager:
                # Eager mode (the embedded default) has no broker to hold a delayed retry: retry inline.
                return self.apply(args=[stimulus_id], retries=self.request.retries + 1,
                                  task_id=self.request.id, throw=True).get()
            raise self.retry(exc=error, countdown=generation_retry_delay(self.request.retries)) from error
        Stimulus.objects.filter(pk=stimulus_id, status=Stimulus.Status.QUEUED).update(
            status=Stimulus.Status.FAILED, error=f"{type(error).__name__}: {error}"[:2000]
        )
        return "failed"
    return "generated" if _finish(stimulus_id, outcome) else "superseded"


def send_generation_task(stimulus_id: int, countdown: float | None = None) -> bool:
    """Hand the stimulus' generation task to the broker; a broker that is down is left to the sweep.

    Sending twice is harmless (the task claims the stimulus under a row lock and a second message
    finds it claimed or done), so the sweep may resend whatever it cannot prove was sent.
    """
    try:
        generate_stimulus.apply_async(args=[stimulus_id], countdown=countdown)
    except Exception as error:  # noqa: BLE001 (any broker failure: recorded, retried by the sweep)
        logger.warning("generation of stimulus %s not queued; the sweep will send it: %s", stimulus_id, error)
        stimulus = Stimulus.objects.filter(pk=stimulus_id).only("sends").first()
        sends = (stimulus.sends if stimulus else 0) + 1
        Stimulus.objects.filter(pk=stimulus_id, status=Stimulus.Status.QUEUED).update(
            sends=sends, send_error=f"{type(error).__name__}: {error}"[:2000],
            next_attempt_at=policy.next_attempt_at(timezone.now(), sends))
        return False
    Stimulus.objects.filter(pk=stimulus_id).update(sends=F("sends") + 1, send_error="", next_attempt_at=None)
    return True

"""The generation task: storage in and out, idempotence, retries and failures, the command."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from PIL import Image

from studyserver.geo.models import District
from studyserver.retries import policy
from studyserver.treatments import tasks
from studyserver.treatments.models import Stimulus
from studyserver.treatments.tasks import generate_stimulus

QUEUED = Stimulus.Status.QUEUED


def fake_flood(calls: list):
    """A stand-in generator for the Django-side logic: darkens the lower half, mask = lower half."""
    def flood(source_path: Path, out_dir: Path, params: dict) -> dict:
        calls.append(params)
        image = np.asarray(Image.open(source_path).convert("RGB")).copy()
        mask = np.zeros(image.shape[:2], np.uint8)
        mask[image.shape[0] // 2:] = 255
        image[mask > 0] //= 2
        Image.fromarray(image).save(out_dir / "out.png")
        Image.fromarray(mask).save(out_dir / "mask.png")
        return {"output": out_dir / "out.png", "mask": out_dir / "mask.png", "backend": "fake",
                "model_version": "fake-1", "params": params, "timings": {"flood_s": 0.001}}
    return flood


def batch_of(flood, batches: list | None = None):
    """``_flood_batch`` from a one-image stand-in; ``batches`` records the size of every call."""
    def flood_batch(paths: list[Path], out_dir: Path, params: list[dict]) -> list:
        if batches is not None:
            batches.append(len(paths))
        results = []
        for index, (path, item_params) in enumerate(zip(paths, params, strict=True)):
            folder = out_dir / str(index)
            folder.mkdir()
            try:
                results.append(flood(path, folder, item_params))
            except Exception as error:  # noqa: BLE001 (mirrors the real batch: one outcome per image)
                results.append(error)
        return results
    return flood_batch


def test_distant_photo_is_shown_as_is(make_stimulus, media):
    stimulus = make_stimulus("distant", status=QUEUED)
    assert generate_stimulus.delay(stimulus.pk).get() == "generated"
    stimulus.refresh_from_db()
    assert stimulus.status == "generated" and stimulus.backend == "photo" and not stimulus.mask
    source = np.asarray(Image.open(stimulus.source.image.path).convert("RGB"), dtype=int)
    result = np.asarray(Image.open(stimulus.result.path), dtype=int)
    assert result.shape == source.shape and np.abs(result - source).mean() < 12  # JPEG of the same photo


def test_task_stores_result_and_mask_and_is_idempotent(make_stimulus, make_source, districts, media, monkeypatch):
    calls: list = []
    monkeypatch.setattr(tasks, "_flood_batch", batch_of(fake_flood(calls)))
    source = make_source("house", districts[0])
    first = make_stimulus("house", status=QUEUED, source=source, seed=3)
    assert generate_stimulus.delay(first.pk).get() == "generated"
    first.refresh_from_db()
    assert first.status == "generated" and first.backend == "fake" and first.model_version == "fake-1"
    assert first.params["seed"] == 3 and first.attempts == 1 and first.timings["flood_s"] == 0.001
    mask = np.asarray(Image.open(first.mask.path))
    assert mask[-1].min() == 255 and mask[0].max() == 0
    # Redelivered after completion: nothing happens again.
    assert generate_stimulus.delay(first.pk).get() == "already generated"
    assert len(calls) == 1
    # Same source, model and parameters: the same stored files are reused, not duplicated.
    twin = make_stimulus("house", status=QUEUED, source=source, seed=3)
    generate_stimulus.delay(twin.pk).get()
    twin.refresh_from_db()
    assert (twin.result.name, twin.mask.name) == (first.result.name, first.mask.name)
    other_seed = make_stimulus("house", status=QUEUED, source=source, seed=4)
    generate_stimulus.delay(other_seed.pk).get()
    other_seed.refresh_from_db()
    assert other_seed.result.name != first.result.name


def test_transient_errors_retry_then_fail(make_stimulus, districts, media, monkeypatch):
    attempts = []

    def broken(source_path, out_dir, params):
        attempts.append(1)
        raise OSError("disk on fire")

    monkeypatch.setattr(tasks, "_flood_batch", batch_of(broken))
    stimulus = make_stimulus("house", districts[0], status=QUEUED)
    generate_stimulus.apply(args=[stimulus.pk])
    stimulus.refresh_from_db()
    assert len(attempts) == policy.GENERATION_MAX_RETRIES + 1
    assert stimulus.status == "failed" and "disk on fire" in stimulus.error


def test_generation_error_fails_at_once(make_stimulus, districts, media, monkeypatch):
    def refuses(source_path, out_dir, params):
        raise tasks.GenerationError("not a street photo")

    monkeypatch.setattr(tasks, "_flood_batch", batch_of(refuses))
    stimulus = make_stimulus("house", districts[0], status=QUEUED)
    assert generate_stimulus.apply(args=[stimulus.pk]).get() == "failed"
    stimulus.refresh_from_db()
    assert stimulus.status == "failed" and stimulus.attempts == 1


def test_reviewed_or_missing_stimulus_is_left_alone(make_stimulus, districts, media):
    approved = make_stimulus("house", districts[0])
    assert generate_stimulus.apply(args=[approved.pk]).get() == "already approved"
    assert generate_stimulus.apply(args=[987654321]).get() == "gone"


def test_tasks_route_to_the_gpu_queue():
    from studyserver.celery import app

    route = app.amqp.router.route({}, "treatments.generate_stimulus", args=(1,), kwargs={})
    assert route["queue"].name == "gpu"
    assert generate_stimulus.acks_late and generate_stimulus.reject_on_worker_lost


@pytest.mark.django_db(transaction=True)
def test_generate_treatments_command_skips_what_exists(make_source, make_stimulus, districts, media, monkeypatch,
                                                       settings):
    settings.GENERATOR_BATCH_SIZE = 1  # no batching: the queued stimulus below waits for its own task
    calls: list = []
    monkeypatch.setattr(tasks, "_flood_batch", batch_of(fake_flood(calls)))
    quebec, montreal, ajax = districts
    done = make_source("house", quebec, seed=1)
    make_stimulus("house", status="approved", source=done, seed=0)
    in_queue = make_source("district_landmark", quebec, seed=2)
    make_stimulus("district_landmark", status=QUEUED, source=in_queue, seed=0)
    rejected = make_source("house", montreal, seed=3)
    make_stimulus("house", status="rejected", source=rejected, seed=0)
    make_source("house", ajax, seed=4)
    make_source("provincial_landmark", None, "QC", seed=5)
    make_source("distant", seed=6)

    out = io.StringIO()
    call_command("generate_treatments", district="24002", representation_order="2099", stdout=out,
                 stderr=io.StringIO())
    # Montréal's district needs: its rejected house photo (new seed), Quebec's landmark, the distant photo.
    assert "queued 3, skipped 0" in out.getvalue()
    assert rejected.stimuli.get(status="generated").seed == 1
    out = io.StringIO()
    call_command("generate_treatments", all=True, representation_order="2099", stdout=out, stderr=io.StringIO())
    assert "queued 1, skipped 5" in out.getvalue()  # only Ajax's house photo was left
    out = io.StringIO()
    call_command("generate_treatments", kind="house", representation_order="2099", stdout=out, stderr=io.StringIO())
    assert "queued 0, skipped 3" in out.getvalue()
    # A queued stimulus whose task started long ago (hard time limit hit) is sent again.
    stuck = in_queue.stimuli.get()
    Stimulus.objects.filter(pk=stuck.pk).update(started_at=timezone.now() - timedelta(hours=2))
    out = io.StringIO()
    call_command("generate_treatments", kind="district_landmark", representation_order="2099", stdout=out,
                 stderr=io.StringIO())
    assert "resent 1 stale" in out.getvalue()
    stuck.refresh_from_db()
    assert stuck.status == "generated" and stuck.attempts == 1


def test_generate_treatments_right_after_an_upload_counts_what_the_review_queue_shows(make_source, make_stimulus,
                                                                                    districts, media):
    from studyserver.treatments.services import review_queue

    quebec, montreal, ajax = districts
    # What a bulk upload with "Queue generation" leaves once the worker is done: images to review.
    for seed, district in enumerate(districts):
        make_stimulus("house", status="generated", source=make_source("house", district, seed=seed), seed=0)
    make_stimulus("distant", status="approved", source=make_source("distant", seed=9), seed=0)
    out = io.StringIO()
    call_command("generate_treatments", representation_order="2099", stdout=out, stderr=io.StringIO())
    assert review_queue().count() == 3
    assert ("queued 0, skipped 4 (already queued, generated or approved), resent 0 stale; now: 3 generated and "
            "waiting for review, 0 queued, 1 approved, 0 failed (of 4 source photos considered)") in out.getvalue()


def test_the_embedded_broker_url_names_a_host(caplog):
    """Eager Celery still opens a producer: kombu warns 'No hostname was supplied' on a bare memory://."""
    from celery import Celery
    from django.conf import settings as django_settings

    app = Celery("embedded-check", broker=django_settings.EMBEDDED_BROKER_URL, backend="cache+memory://")
    app.conf.task_always_eager = True

    @app.task
    def echo(value):
        return value

    with caplog.at_level("WARNING"):
        assert echo.apply_async(args=[3]).get() == 3
    assert "No hostname" not in caplog.text


@pytest.mark.django_db(transaction=True)
def test_generate_treatments_runs_bare_and_with_district_alone(make_source, districts, media, monkeypatch, settings):
    """No --representation-order: the latest study's order, or the only order loaded (was an AttributeError)."""
    from studyserver.studies.models import Study

    settings.GENERATOR_BATCH_SIZE = 1
    monkeypatch.setattr(tasks, "_flood_batch", batch_of(fake_flood([])))
    quebec, montreal, ajax = districts
    make_source("house", ajax, seed=1)
    make_source("house", quebec, seed=2)
    out, err = io.StringIO(), io.StringIO()
    call_command("generate_treatments", district="35001", stdout=out, stderr=err)  # only 2099 is loaded
    assert "queued 1, skipped 0" in out.getvalue()
    assert "tiny test weights" in err.getvalue()  # real photos, no trained weights configured
    out = io.StringIO()
    call_command("generate_treatments", stdout=out, stderr=io.StringIO())  # bare, as the README shows it
    assert "queued 1, skipped 1" in out.getvalue()
    District.objects.create(representation_order="2023", fed_code="35001", name_en="Ajax", name_fr="Ajax",
                            province_code="ON")
    with pytest.raises(CommandError, match="several representation orders"):
        call_command("generate_treatments", kind="house", stdout=io.StringIO(), stderr=io.StringIO())
    Study.objects.create(slug="s", title="S", representation_order="2099")
    out = io.StringIO()
    call_command("generate_treatments", kind="house", stdout=out, stderr=io.StringIO())
    assert "queued 0, skipped 2" in out.getvalue()


def test_retry_backoff_is_exponential_and_capped():
    assert [policy.generation_retry_delay(n) for n in range(8)] == [10, 20, 40, 80, 160, 320, 600, 600]


def test_waiting_stimuli_are_flooded_in_one_batch(make_source, make_stimulus, districts, media, monkeypatch, settings):
    settings.GENERATOR_BATCH_SIZE = 3
    calls: list = []
    batches: list = []
    monkeypatch.setattr(tasks, "_flood_batch", batch_of(fake_flood(calls), batches))
    waiting = [make_stimulus("house", districts[i % 3], status=QUEUED,
                             source=make_source("house", districts[i % 3], seed=i), seed=0) for i in range(4)]
    assert generate_stimulus.apply(args=[waiting[0].pk]).get() == "generated"
    assert batches == [3]  # itself and the two oldest waiting ones
    states = {s.pk: s for s in Stimulus.objects.filter(pk__in=[w.pk for w in waiting])}
    assert [states[w.pk].status for w in waiting] == ["generated", "generated", "generated", "queued"]
    assert states[waiting[1].pk].timings["batch_size"] == 3 and states[waiting[1].pk].attempts == 1
    # Their own messages arrive later and find the work done; the fourth gets its own batch.
    assert generate_stimulus.apply(args=[waiting[1].pk]).get() == "already generated"
    assert generate_stimulus.apply(args=[waiting[3].pk]).get() == "generated"
    assert batches == [3, 1] and len(calls) == 4


def test_a_stimulus_claimed_by_a_running_batch_is_not_flooded_twice(make_source, make_stimulus, districts, media,
                                                                    monkeypatch, settings):
    monkeypatch.setattr(tasks, "_flood_batch", batch_of(fake_flood([])))
    claimed = make_stimulus("house", districts[0], status=QUEUED)
    Stimulus.objects.filter(pk=claimed.pk).update(task_id="batch-task", started_at=timezone.now())
    assert generate_stimulus.apply(args=[claimed.pk]).get() == "in the batch of task batch-task"
    # A claim older than the hard time limit is a dead worker's: the stimulus' own task takes over.
    Stimulus.objects.filter(pk=claimed.pk).update(
        started_at=timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 1))
    assert generate_stimulus.apply(args=[claimed.pk]).get() == "generated"


def test_a_companion_that_fails_goes_back_to_its_own_task(make_source, make_stimulus, districts, media, monkeypatch,
                                                          settings, django_capture_on_commit_callbacks):
    settings.GENERATOR_BATCH_SIZE = 2
    sources = [make_source("house", districts[0], seed=1), make_source("house", districts[1], seed=2)]
    leader, companion = (make_stimulus("house", status=QUEUED, source=source, seed=0) for source in sources)
    failures = {sources[1].image.name}

    def flaky(source_path, out_dir, params):
        if any(str(source_path).endswith(name) for name in failures):
            raise OSError("device hiccup")
        return fake_flood([])(source_path, out_dir, params)

    monkeypatch.setattr(tasks, "_flood_batch", batch_of(flaky))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert generate_stimulus.apply(args=[leader.pk]).get() == "generated"
    companion.refresh_from_db()
    assert companion.status == QUEUED and companion.task_id == "" and "device hiccup" in companion.error
    assert len(callbacks) == 1  # its task is sent again
    failures.clear()
    assert generate_stimulus.apply(args=[companion.pk]).get() == "generated"


def test_regenerating_a_generated_stimulus_generates_again(make_stimulus, districts, media,
                                                           django_capture_on_commit_callbacks):
    from studyserver.treatments import services

    first = make_stimulus("house", districts[0], status=QUEUED)
    assert generate_stimulus.apply(args=[first.pk]).get() == "generated"  # the real reference backend
    first.refresh_from_db()
    # What is recorded are the effective parameters, richer than a request may be.
    assert set(first.params) - {"event", "format", "size", "threshold", "seed"}
    with django_capture_on_commit_callbacks(execute=True):
        replacement = services.regenerate(first, note="another seed")
    replacement.refresh_from_db()
    assert replacement.status == "generated", replacement.error
    assert replacement.seed == first.seed + 1 and replacement.result.name != first.result.name

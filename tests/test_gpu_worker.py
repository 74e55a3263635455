"""Real task delivery: Redis, a real ``celery worker`` process, the generator, shared storage.

Each test starts worker subprocesses (``celery -A studyserver worker -Q <queue> -c 1 --pool
prefork``) against the pytest test database (``transaction=True``: the worker only sees committed
rows) and Redis db 15, on a queue name unique to the test so no other run can take its messages.

1. A real image goes through the broker and a worker, and the result and mask come back to storage:
   pixels outside the mask unchanged (up to JPEG rounding), the mask not empty.
2. A worker SIGKILLed mid-task (with its pool child) leaves the message unacknowledged (acks_late);
   after the visibility timeout a second worker gets it again and completes it; the stimulus was
   ``queued`` the whole time in between (never lost).
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import connection
from PIL import Image

from studyserver.treatments.models import SourcePhoto, Stimulus
from studyserver.treatments.tasks import generate_stimulus
from tests.support.held_worker import HOLD_SECONDS_ENV

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

REPO = Path(__file__).resolve().parent.parent
# The broker the test process sends to (settings_test: REDIS_URL, else database 15): the worker
# must listen there too, whatever a developer's shell exports.
REDIS_URL = settings.CELERY_BROKER_URL
VISIBILITY_TIMEOUT_S = 3
KILL_KIND = "house"


@pytest.fixture
def broker_mode(settings, tmp_path):
    """Send tasks through Redis from this process, and share MEDIA_ROOT with the workers."""
    from studyserver.celery import app

    settings.MEDIA_ROOT = tmp_path / "media"
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    yield tmp_path
    app.conf.task_always_eager = eager


def start_worker(tmp_path: Path, queue: str, name: str, app: str = "studyserver",
                 **extra_env: str) -> subprocess.Popen:
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "studyserver.settings_test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": REDIS_URL,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "MEDIA_ROOT": str(tmp_path / "media"),
        "GENERATOR_DEVICE": "cpu",
        "GENERATOR_MASKER_CHECKPOINT": "",
        "GENERATOR_PAINTER_CHECKPOINT": "",
        "OMP_NUM_THREADS": "1",
        **extra_env,
    }
    log = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115 (closed when the process is reaped)
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", app, "worker", "-Q", queue, "-c", "1",
         "--pool", "prefork", "-n", f"{name}-{queue}@%h", "--without-gossip", "--without-mingle",
         "--without-heartbeat", "-l", "INFO"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )


def stop(worker: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    if worker.poll() is None:
        os.killpg(worker.pid, sig)  # the worker and its prefork child: its own session
        worker.wait(timeout=20)


def logs(tmp_path: Path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in sorted(tmp_path.glob("*.log")))


def wait_for(predicate, timeout: float, tmp_path: Path, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}\n{logs(tmp_path)}")


def street_photo_source(district, kind: str = "house") -> SourcePhoto:
    """A real image file: a simulated street photo at a small size."""
    from generator.simworld import render_scene

    buffer = io.BytesIO()
    Image.fromarray(render_scene(11, size=(96, 128), domain="real", water_heights=()).image).save(buffer, "PNG")
    source = SourcePhoto(kind=kind, district=district if kind == "house" else None, place_name_en="Test street",
                         is_demo=True, origin=SourcePhoto.Origin.DEMO)
    source.image.save("street.png", ContentFile(buffer.getvalue()), save=False)
    source.save()
    return source


@pytest.fixture
def district(db):
    from studyserver.geo.models import District

    return District.objects.create(representation_order="2099", fed_code="99001", name_en="Testville",
                                   name_fr="Testville", province_code="QC")


def test_real_image_goes_through_redis_and_a_worker(broker_mode, district):
    tmp_path = broker_mode
    queue = f"gpu-test-{uuid.uuid4().hex[:10]}"
    source = street_photo_source(district)
    stimulus = Stimulus.objects.create(source=source, seed=0)
    # Two more requests waiting in the queue when the worker starts: flooded in the same batch.
    others = [Stimulus.objects.create(source=street_photo_source(district), seed=seed) for seed in (1, 2)]
    for waiting in (stimulus, *others):
        generate_stimulus.apply_async(args=[waiting.pk], queue=queue)
    worker = start_worker(tmp_path, queue, "w1")
    try:
        wait_for(lambda: not Stimulus.objects.filter(status="queued").exists(),
                 60, tmp_path, "the worker to generate the stimuli")
    finally:
        stop(worker, signal.SIGTERM)
    batch = Stimulus.objects.filter(pk__in=[stimulus.pk, *(o.pk for o in others)])
    assert {s.status for s in batch} == {"generated"}, logs(tmp_path)
    assert [s.timings["batch_size"] for s in batch.order_by("pk")] == [3, 3, 3]
    assert len({s.result.name for s in batch}) == 3  # three seeds, three images
    stimulus.refresh_from_db()
    assert stimulus.status == "generated", f"{stimulus.status}: {stimulus.error}\n{logs(tmp_path)}"
    assert stimulus.backend and stimulus.model_version and stimulus.attempts == 1
    assert stimulus.params.get("seed") == 0
    source_pixels = np.asarray(Image.open(source.image.path).convert("RGB"), dtype=int)
    result = np.asarray(Image.open(stimulus.result.path).convert("RGB"), dtype=int)
    mask = np.asarray(Image.open(stimulus.mask.path).convert("L"), dtype=int)
    assert result.shape == source_pixels.shape and mask.shape == source_pixels.shape[:2]
    water = mask > 127
    assert 0 < water.mean() < 1
    # Outside the mask (away from its edge, where JPEG blocks mix both sides) the photo is unchanged.
    dry = ~water
    for axis in (0, 1):
        for shift in (-8, 8):
            dry &= ~np.roll(water, shift, axis=axis)
    assert dry.sum() > 100
    assert np.abs(result - source_pixels)[dry].mean() < 6
    assert np.abs(result - source_pixels)[water].mean() > np.abs(result - source_pixels)[dry].mean() + 5


def test_killed_worker_task_is_redelivered_and_completes(broker_mode, district):
    tmp_path = broker_mode
    queue = f"gpu-test-{uuid.uuid4().hex[:10]}"
    stimulus = Stimulus.objects.create(source=street_photo_source(district, KILL_KIND), seed=0)
    short_visibility = {"CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT_S)}
    doomed = start_worker(tmp_path, queue, "doomed", app="tests.support.held_worker",
                          **short_visibility, **{HOLD_SECONDS_ENV: "60"})
    rescuer = None
    try:
        generate_stimulus.apply_async(args=[stimulus.pk], queue=queue)
        wait_for(lambda: Stimulus.objects.filter(pk=stimulus.pk, attempts=1).exists(),
                 30, tmp_path, "the first worker to start the task")
        killed_at = time.monotonic()
        stop(doomed, signal.SIGKILL)
        assert Stimulus.objects.get(pk=stimulus.pk).status == "queued"
        # The message is redelivered once it has been unacknowledged for the visibility timeout.
        time.sleep(max(0.0, VISIBILITY_TIMEOUT_S + 0.5 - (time.monotonic() - killed_at)))
        rescuer = start_worker(tmp_path, queue, "rescuer", **short_visibility)
        wait_for(lambda: Stimulus.objects.filter(pk=stimulus.pk).exclude(status="queued").exists(),
                 45, tmp_path, "the second worker to complete the redelivered task")
    finally:
        stop(doomed)
        if rescuer is not None:
            stop(rescuer, signal.SIGTERM)
    stimulus.refresh_from_db()
    assert stimulus.status == "generated", f"{stimulus.status}: {stimulus.error}\n{logs(tmp_path)}"
    assert stimulus.attempts == 2 and stimulus.result and stimulus.mask
    assert "succeeded" in (tmp_path / "rescuer.log").read_text()
    assert "succeeded" not in (tmp_path / "doomed.log").read_text()

"""Imported ClimateGAN weights through the GPU task and the review queue (small images, CPU).

``climategan_checkpoints`` (root conftest) is a random release-shaped ClimateGAN release imported
with ``python -m generator import-climategan``'s code: the real architecture and file format.
"""

from __future__ import annotations

import numpy as np
import pytest
from django.urls import reverse
from PIL import Image

from generator import service
from generator.checkpoint import load_checkpoint
from studyserver.treatments.models import Stimulus
from studyserver.treatments.tasks import generate_stimulus


@pytest.fixture
def climategan_worker(settings, climategan_checkpoints):
    """The worker's settings pointing at the imported checkpoints; the cached pipeline dropped
    afterwards (it holds 430 MB of weights)."""
    masker, painter = climategan_checkpoints
    settings.GENERATOR_MASKER_CHECKPOINT, settings.GENERATOR_PAINTER_CHECKPOINT = str(masker), str(painter)
    settings.GENERATOR_DEVICE = "cpu"
    service.get_pipeline.cache_clear()
    yield masker, painter
    service.get_pipeline.cache_clear()


@pytest.mark.slow
def test_imported_weights_generate_a_stimulus_the_review_queue_approves(
        climategan_worker, make_stimulus, districts, media, client, django_user_model):
    stimulus = make_stimulus("house", districts[0], status=Stimulus.Status.QUEUED, seed=2)
    stimulus.params = {"size": 256}  # the published 640 is too slow for a CPU test
    stimulus.save(update_fields=["params"])

    assert generate_stimulus.delay(stimulus.pk).get() == "generated"
    stimulus.refresh_from_db()
    versions = [load_checkpoint(path, verify_hash=False).content_hash for path in climategan_worker]
    assert stimulus.backend == "checkpoint" and stimulus.model_version == "-".join(versions)
    assert stimulus.params["frame"] == "crop" and stimulus.params["size"] == 256
    source = np.asarray(Image.open(stimulus.source.image.path).convert("RGB"))
    result = np.asarray(Image.open(stimulus.result.path).convert("RGB"))
    mask = np.asarray(Image.open(stimulus.mask.path))
    assert result.shape == source.shape and mask.shape == source.shape[:2]
    assert set(np.unique(mask)) <= {0, 255}

    staff = django_user_model.objects.create_user("curator", password="pw", is_staff=True, is_superuser=True)
    client.force_login(staff)
    url = reverse("admin:treatments_review_queue")
    html = client.get(url).content.decode()
    assert reverse("admin:treatments_stimulus_file", args=[stimulus.pk, "result"]) in html
    assert client.get(reverse("admin:treatments_stimulus_file", args=[stimulus.pk, "mask"])).status_code == 200
    client.post(url, {"stimulus": stimulus.pk, "action": "approve", "note": "published weights"})
    stimulus.refresh_from_db()
    assert stimulus.status == "approved"

"""Review decisions (approve, reject, regenerate) are POSTs only a reviewer's account can make."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import reverse

from studyserver.accounts.roles import DATA_MANAGER, PERSONAL_DATA, REVIEWER, STUDY_ADMIN
from studyserver.exports.tests.factories import make_district, make_stimulus
from studyserver.treatments.models import Stimulus
from tests.support.accounts import staff_with_roles
from tests.support.treatments import picture_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def generated(settings, tmp_path) -> Stimulus:
    settings.MEDIA_ROOT = tmp_path
    stimulus = make_stimulus("house", make_district())
    stimulus.result.save("r.jpg", ContentFile(picture_bytes(2, fmt="JPEG")), save=False)
    stimulus.status = Stimulus.Status.GENERATED
    stimulus.save()
    return stimulus


@pytest.mark.parametrize("action", ["approve", "reject", "regenerate"])
@pytest.mark.parametrize("roles", [(), (DATA_MANAGER,), (PERSONAL_DATA,), (STUDY_ADMIN,)])
def test_a_non_reviewer_review_post_is_refused_and_changes_nothing(generated, action, roles):
    client = Client()
    client.force_login(staff_with_roles("staff", *roles))
    response = client.post(reverse("admin:treatments_review_queue"),
                           {"stimulus": generated.pk, "action": action, "note": "looks fine"})
    assert response.status_code == 403
    generated.refresh_from_db()
    assert generated.status == Stimulus.Status.GENERATED and Stimulus.objects.count() == 1


@pytest.mark.parametrize("action", ["approve", "reject", "regenerate"])
def test_an_anonymous_or_non_staff_review_post_goes_to_the_login(generated, django_user_model, action):
    user = Client()
    user.force_login(django_user_model.objects.create_user("participant-ish", password="x"))
    for client in (Client(), user):
        response = client.post(reverse("admin:treatments_review_queue"), {"stimulus": generated.pk, "action": action})
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
    generated.refresh_from_db()
    assert generated.status == Stimulus.Status.GENERATED and Stimulus.objects.count() == 1


def test_a_reviewer_may_reject(generated):
    client = Client()
    client.force_login(staff_with_roles("rev", REVIEWER))
    assert client.post(reverse("admin:treatments_review_queue"),
                       {"stimulus": generated.pk, "action": "reject", "note": "blurry"}).status_code == 302
    generated.refresh_from_db()
    assert generated.status == Stimulus.Status.REJECTED

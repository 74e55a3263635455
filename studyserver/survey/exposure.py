"""Server-side exposure timing: the moment the treatment image's bytes are sent to the participant.

The exposure itself (its row, the clock started when the page is first served, the minimum
display time) is the flow's: :mod:`studyserver.survey.flow.treatment`.
"""

from __future__ import annotations

from django.http import HttpRequest
from django.utils import timezone

from .models import Exposure, Participant
from .sessions import browser_participants


def note_image_served(request: HttpRequest, stimulus_id: str) -> None:
    """Record the first time the image is served to a participant of this browser who was shown it.

    The image URL carries no participant data; the browser's participants cookie says who is looking. Other viewers
    (researchers in the admin, a second tab after submission) change nothing.
    """
    tokens = browser_participants(request).tokens
    if not tokens or not stimulus_id:
        return
    Exposure.objects.filter(
        participant__token__in=tokens,
        participant__state=Participant.State.ASSIGNED,
        stimulus_id=stimulus_id,
        image_loaded_at__isnull=True,
    ).update(image_loaded_at=timezone.now())


def on_image_served(sender: object, request: HttpRequest, public_id: str, **kwargs: object) -> None:
    """Receiver of ``treatments.signals.image_served`` (connected in ``SurveyConfig.ready``)."""
    note_image_served(request, public_id)

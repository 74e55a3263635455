"""What the treatment images tell the apps above them, without knowing who listens."""

from django.dispatch import Signal

#: Sent when a participant-facing image's bytes are sent (GET, not a 304), with ``request`` and
#: ``public_id``: the survey records the server-side moment of exposure (survey/apps.py).
image_served = Signal()

"""Participant-facing treatment images: ``/stimuli/<public_id>.jpg`` (approved stimuli only)."""

from django.urls import re_path

from . import views

app_name = "treatments"
urlpatterns = [
    re_path(r"^(?P<public_id>[A-Za-z0-9_-]{16,32})\.jpg$", views.stimulus_image, name="image"),
]

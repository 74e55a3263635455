"""Floodlight study server: the Django project, its apps and the Celery app."""

from .celery import app as celery_app

__all__ = ["celery_app"]

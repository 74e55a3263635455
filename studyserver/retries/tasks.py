"""Celery finds the sweep's task here (``app.autodiscover_tasks``)."""

from .sweep import sweep_task

__all__ = ["sweep_task"]

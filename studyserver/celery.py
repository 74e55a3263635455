"""The Celery application shared by the web process and the workers.

Web-side tasks (e-mails) run on the default queue; image generation runs on the ``gpu`` queue
(``celery -A studyserver worker -Q gpu``). With no ``REDIS_URL`` the settings switch Celery to eager
mode, so the embedded default needs no broker.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studyserver.settings")

app = Celery("studyserver")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

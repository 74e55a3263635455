from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class StudiesConfig(AppConfig):
    name = "studyserver.studies"
    label = "studies"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401 (registers the system check)
        from .models import STUDY_ROWS, Study

        post_save.connect(STUDY_ROWS.forget, sender=Study, dispatch_uid="studies.study_saved")
        post_delete.connect(STUDY_ROWS.forget, sender=Study, dispatch_uid="studies.study_deleted")

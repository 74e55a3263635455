from django.apps import AppConfig


class StudiesConfig(AppConfig):
    name = "studyserver.studies"
    label = "studies"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401 (registers the system check)

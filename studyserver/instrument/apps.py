from django.apps import AppConfig


class InstrumentConfig(AppConfig):
    verbose_name = "Questionnaire instrument"
    name = "studyserver.instrument"
    label = "instrument"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401 - registers the system check

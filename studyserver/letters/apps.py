from django.apps import AppConfig


class LettersConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "studyserver.letters"
    verbose_name = "Letters to MPs"

    def ready(self) -> None:
        from . import checks  # noqa: F401 (registers the system check)

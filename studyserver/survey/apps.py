from django.apps import AppConfig


class SurveyConfig(AppConfig):
    name = "studyserver.survey"
    label = "survey"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from studyserver.retries.sweep import register_sweep

        from .tasks import sweep_information_requests

        register_sweep("information_emails", "information e-mails", sweep_information_requests)

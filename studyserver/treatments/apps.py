from django.apps import AppConfig


class TreatmentsConfig(AppConfig):
    name = "studyserver.treatments"
    label = "treatments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from studyserver.retries.sweep import register_sweep

        from .services import sweep_generation_requests

        register_sweep("generation_requests", "image generation requests", sweep_generation_requests)

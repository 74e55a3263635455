from django.apps import AppConfig


class TreatmentsConfig(AppConfig):
    name = "studyserver.treatments"
    label = "treatments"
    default_auto_field = "django.db.models.BigAutoField"

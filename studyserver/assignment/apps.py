from django.apps import AppConfig


class AssignmentConfig(AppConfig):
    name = "studyserver.assignment"
    label = "assignment"
    default_auto_field = "django.db.models.BigAutoField"

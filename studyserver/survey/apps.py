from django.apps import AppConfig


class SurveyConfig(AppConfig):
    name = "studyserver.survey"
    label = "survey"
    default_auto_field = "django.db.models.BigAutoField"

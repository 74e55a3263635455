from django.apps import AppConfig


class FieldingConfig(AppConfig):
    name = "studyserver.fielding"
    label = "fielding"
    verbose_name = "Fielding studies"

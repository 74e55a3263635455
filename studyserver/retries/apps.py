from django.apps import AppConfig


class RetriesConfig(AppConfig):
    name = "studyserver.retries"
    verbose_name = "Deferred work: automatic retries"

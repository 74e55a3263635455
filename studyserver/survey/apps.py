from django.apps import AppConfig


class SurveyConfig(AppConfig):
    name = "studyserver.survey"
    label = "survey"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The apps below survey know nothing of it: it registers its deferred work with retries
        # and listens to the treatment images being served (the exposure timing).
        from studyserver.retries.sweep import register_sweep
        from studyserver.treatments.signals import image_served

        from .exposure import on_image_served
        from .tasks import sweep_information_requests

        register_sweep("information_emails", "information e-mails", sweep_information_requests)
        image_served.connect(on_image_served, dispatch_uid="survey.exposure")

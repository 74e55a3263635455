from django.apps import AppConfig


class LettersConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "studyserver.letters"
    verbose_name = "Letters to MPs"

    def ready(self) -> None:
        from studyserver.survey.signals import page_context, participant_withdrawn

        from . import checks  # noqa: F401 (registers the system check)
        from .addressing import delete_letter_of, letter_page_context

        # survey (the layer below) shows the letter and withdraws participants: it sends, we listen.
        page_context.connect(letter_page_context, dispatch_uid="letters.page_context")
        participant_withdrawn.connect(delete_letter_of, dispatch_uid="letters.withdrawal")

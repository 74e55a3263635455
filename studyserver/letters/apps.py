from django.apps import AppConfig


class LettersConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "studyserver.letters"
    verbose_name = "Letters to MPs"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from studyserver.survey.signals import page_context, page_submitted, participant_withdrawn

        from . import checks  # noqa: F401 (registers the system check)
        from .addressing import (
            delete_letter_of,
            forget_representatives,
            letter_page_context,
            record_letter,
        )
        from .models import Representative

        # survey (the layer below) shows and stores the letter page and withdraws participants: it
        # sends, we listen.
        page_context.connect(letter_page_context, dispatch_uid="letters.page_context")
        page_submitted.connect(record_letter, dispatch_uid="letters.page_submitted")
        participant_withdrawn.connect(delete_letter_of, dispatch_uid="letters.withdrawal")
        post_save.connect(forget_representatives, sender=Representative, dispatch_uid="letters.representative_saved")
        post_delete.connect(forget_representatives, sender=Representative, dispatch_uid="letters.representative_deleted")

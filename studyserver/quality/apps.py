from django.apps import AppConfig


class QualityConfig(AppConfig):
    name = "studyserver.quality"
    label = "quality"
    verbose_name = "Respondent quality flags"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from studyserver.studies.exclusions import register_flag

        from . import receivers  # noqa: F401 (connects the signal receivers)
        from .flags import FLAGS

        # The study's exclusion rule offers exactly these flags (studies never imports quality).
        for flag in FLAGS:
            register_flag(flag.name, flag.label_en)

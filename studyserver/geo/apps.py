from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class GeoConfig(AppConfig):
    name = "studyserver.geo"
    label = "geo"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from .models import DISTRICT_ROWS, District

        post_save.connect(DISTRICT_ROWS.forget, sender=District, dispatch_uid="geo.district_saved")
        post_delete.connect(DISTRICT_ROWS.forget, sender=District, dispatch_uid="geo.district_deleted")

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _sync_roles(sender, using: str = "default", **kwargs) -> None:
    from .roles import sync_roles

    # This app is last in INSTALLED_APPS, so every app's permissions exist by now; strict=False
    # still tolerates a migrate run that left some app out.
    sync_roles(strict=False)


class AccountsConfig(AppConfig):
    name = "studyserver.accounts"
    label = "accounts"
    verbose_name = "Researchers' accounts and roles"

    def ready(self) -> None:
        # Once per migrate, after django.contrib.auth created the permissions of every app
        # (this app is the last installed one).
        post_migrate.connect(_sync_roles, sender=self, dispatch_uid="studyserver.accounts.sync_roles")

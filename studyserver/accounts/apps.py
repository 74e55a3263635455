import os
from pathlib import Path

from django.apps import AppConfig
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db.models.signals import post_migrate


def _sync_roles(sender, using: str = "default", **kwargs) -> None:
    from .roles import sync_roles

    # This app is last in INSTALLED_APPS, so every app's permissions exist by now; strict=False
    # still tolerates a migrate run that left some app out.
    sync_roles(strict=False)


def prepare_private_folder() -> None:
    """Make ``VAR_DIR`` owner-only (0700) when something personal is written under it.

    The embedded SQLite database, uploaded files and mail files hold personal data. This runs once
    per process when the apps are ready (importing the settings writes nothing); a deployment that
    keeps all of them elsewhere (PostgreSQL, ``MEDIA_ROOT`` on a volume, SMTP) gets no folder.
    """
    var_dir = Path(settings.VAR_DIR).resolve()
    database = settings.DATABASES["default"]
    used = [Path(settings.MEDIA_ROOT)]
    if database["ENGINE"] == "django.db.backends.sqlite3":
        used.append(Path(database["NAME"]))
    if settings.EMAIL_BACKEND == "django.core.mail.backends.filebased.EmailBackend":
        used.append(Path(settings.EMAIL_FILE_PATH))
    if not any(path.resolve().is_relative_to(var_dir) for path in used):
        return
    try:
        var_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if var_dir.stat().st_uid == os.getuid():
            var_dir.chmod(0o700)  # mkdir's mode is masked by the umask, and an old folder may be open
    except OSError as exc:
        raise ImproperlyConfigured(
            f"FLOODLIGHT_VAR_DIR {var_dir} cannot be made owner-only ({exc}): point it at a folder "
            "this user may write."
        ) from exc
    if database["ENGINE"] == "django.db.backends.sqlite3":
        sqlite = Path(database["NAME"])
        if sqlite.exists() and sqlite.stat().st_uid == os.getuid():
            sqlite.chmod(0o600)  # owner only, even if the folder were opened up


class AccountsConfig(AppConfig):
    name = "studyserver.accounts"
    label = "accounts"
    verbose_name = "Researchers' accounts and roles"

    def ready(self) -> None:
        prepare_private_folder()
        # Once per migrate, after django.contrib.auth created the permissions of every app
        # (this app is the last installed one).
        post_migrate.connect(_sync_roles, sender=self, dispatch_uid="studyserver.accounts.sync_roles")
        from django.contrib import admin
        from django.contrib.auth.signals import user_login_failed

        from . import checks  # noqa: F401 - registers the deploy checks
        from .lockout import ThrottledAdminLoginForm, record_failure

        user_login_failed.connect(record_failure, dispatch_uid="studyserver.accounts.login_failures")
        admin.site.login_form = ThrottledAdminLoginForm

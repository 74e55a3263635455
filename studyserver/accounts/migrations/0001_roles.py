"""Create the researchers' roles as groups (studyserver/accounts/roles.py is the source of truth)."""

from django.db import migrations


def create_roles(apps, schema_editor):
    from django.apps import apps as global_apps
    from django.contrib.auth.management import create_permissions

    from studyserver.accounts.roles import sync_roles

    # Permissions are normally created after migrate (post_migrate); create them now so the
    # groups get them on a fresh database too.
    for app_config in global_apps.get_app_configs():
        create_permissions(app_config, verbosity=0, apps=apps)
    sync_roles(apps.get_model("auth", "Group"), apps.get_model("auth", "Permission"), strict=False)


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("treatments", "0003_review_permission"),
        ("survey", "0005_withdraw_permission"),
        ("exports", "0002_export_data_permission"),
        ("studies", "0006_signed_entry_links"),
        ("instrument", "0001_initial"),
        ("letters", "0001_representatives_and_addressed_letters"),
        ("assignment", "0001_initial"),
        ("geo", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]

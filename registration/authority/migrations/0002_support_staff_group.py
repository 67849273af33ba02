"""Create the "Support staff" group: view issued licenses, bindings and the audit log;
revoke licenses and unbind bindings. Nothing else: no add, change or delete."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP_NAME = "Support staff"
PERMISSIONS = [
    ("issuedlicense", "view_issuedlicense"),
    ("issuedlicense", "revoke_issuedlicense"),
    ("binding", "view_binding"),
    ("binding", "unbind_binding"),
    ("auditevent", "view_auditevent"),
]


def _ensure_permissions(apps, using):
    # Permissions are normally made after all migrations (post_migrate); on a fresh
    # database they do not exist yet, so make this app's now.
    app_config = apps.get_app_config("authority")
    app_config.models_module = True
    try:
        create_permissions(app_config, apps=apps, verbosity=0, using=using)
    finally:
        app_config.models_module = None


def create_group(apps, schema_editor):
    using = schema_editor.connection.alias
    _ensure_permissions(apps, using)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.using(using).get_or_create(name=GROUP_NAME)
    permissions = [
        Permission.objects.using(using).get(
            content_type__app_label="authority",
            content_type__model=model,
            codename=codename,
        )
        for model, codename in PERMISSIONS
    ]
    group.permissions.set(permissions)


def delete_group(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Group.objects.using(schema_editor.connection.alias).filter(name=GROUP_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("authority", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_group, delete_group)]

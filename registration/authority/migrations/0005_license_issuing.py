"""Issuing licenses in the browser (issue 16) and renewals (issue 15).

- the Can issue licenses permission, and the "License issuers" group that holds it with
  what an issuer needs to see: issued licenses and bindings (no revoke, no unbind, no
  download of files already issued);
- IssuedLicense.renews, the license a renewal renews (empty for an original);
- the audit action for a binding moved to a renewal.
"""

import django.db.models.deletion
from django.contrib.auth.management import create_permissions
from django.db import migrations, models

GROUP_NAME = "License issuers"
PERMISSIONS = [
    ("issuedlicense", "view_issuedlicense"),
    ("issuedlicense", "issue_license"),
    ("binding", "view_binding"),
]


def _ensure_permissions(apps, using):
    # Permissions are normally made after all migrations (post_migrate); on a fresh
    # database the new one does not exist yet, so make this app's now.
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
        ("authority", "0004_binding_chain"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="issuedlicense",
            options={
                "permissions": [
                    ("revoke_issuedlicense", "Can revoke issued licenses"),
                    ("download_issuedlicense", "Can download issued license files"),
                    ("issue_license", "Can issue licenses"),
                ],
                "verbose_name": "issued license",
                "verbose_name_plural": "issued licenses",
            },
        ),
        migrations.AddField(
            model_name="issuedlicense",
            name="renews",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="renewals",
                to="authority.issuedlicense",
                verbose_name="renews",
            ),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="action",
            field=models.CharField(
                choices=[
                    ("license_issued", "License issued"),
                    ("code_shown", "Verification code shown"),
                    ("binding_refused", "Binding refused"),
                    ("unbind", "License unbound"),
                    ("revoke", "License revoked"),
                    ("license_downloaded", "License file downloaded"),
                    ("copy_detected", "Copy of an installation detected"),
                    ("copy_resolved", "Copy resolved"),
                    ("binding_renewed", "Binding moved to a renewal"),
                ],
                max_length=32,
                verbose_name="action",
            ),
        ),
        migrations.RunPython(create_group, delete_group),
    ]

import os
import secrets
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from licserver.env import keys_from_dir
from licserver.files import private_dir
from registration.protocol.keys import generate_key_pair_files
from registration.protocol.license import minor_version

DEMO_KID = "demo"


class Command(BaseCommand):
    help = (
        "Prepare a local demo, keeping whatever exists: vendor keys under KEYS_DIR, a demo "
        "Container.lic under var/, and an admin account (DJANGO_SUPERUSER_USERNAME and "
        "DJANGO_SUPERUSER_PASSWORD when set, otherwise 'admin' with a random password "
        "printed once). Safe to run again."
    )

    def handle(self, *args, **options):
        # var/ gets the demo keys and the demo license: owner-only (0700) if made here,
        # before a key folder or a file inside it would make it with the umask's mode.
        private_dir(settings.VAR_DIR)
        self._keys()
        self._license()
        self._admin()

    def _keys(self) -> None:
        if settings.LICENSE_PUBLIC_KEYS and settings.AUTHORITY_PUBLIC_KEYS:
            return
        generate_key_pair_files(settings.KEYS_DIR, DEMO_KID)
        self.stdout.write(f"Created demo vendor keys in {settings.KEYS_DIR} (key id {DEMO_KID}).")
        # This process read the settings before the keys existed.
        settings.LICENSE_PUBLIC_KEYS = keys_from_dir(settings.KEYS_DIR, ".ed25519.pub")
        settings.AUTHORITY_PUBLIC_KEYS = keys_from_dir(settings.KEYS_DIR, ".x25519.pub")
        settings.AUTHORITY_PRIVATE_KEY_FILES = keys_from_dir(
            settings.KEYS_DIR, ".x25519.pem", content=False
        )
        settings.LICENSE_SIGNING_KEY_FILES = keys_from_dir(
            settings.KEYS_DIR, ".ed25519.pem", content=False
        )

    def _license(self) -> None:
        path = settings.VAR_DIR / "Container.lic"
        if path.exists() or not settings.LICENSE_SIGNING_KEY_FILES:
            return
        today = datetime.now(UTC).date()
        call_command(
            "issue_license",
            company="Demo Company",
            project_name="Demo Project",
            app_name=settings.APP_NAME,
            app_version=minor_version(settings.APP_VERSION),
            project_content=settings.PROJECT_CONTENT,
            contract_date=today.isoformat(),
            expires=(today + timedelta(days=365)).isoformat(),
            max_nodes=2,
            out=path,
            stdout=self.stdout,
        )
        self.stdout.write(f"Demo license: {path} (upload it on Registration Management).")

    def _admin(self) -> None:
        users = get_user_model()
        username = os.environ.get("DJANGO_SUPERUSER_USERNAME") or "admin"
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD")
        if users.objects.filter(username=username).exists():
            self.stdout.write(f"Admin account {username!r} exists; its password is unchanged.")
            return
        generated = password is None
        password = password or secrets.token_urlsafe(12)
        users.objects.create_superuser(username=username, email="", password=password)
        if generated:
            self.stdout.write(
                f"Created admin account {username!r} with password {password} "
                "(shown once; change it after logging in)."
            )
        else:
            self.stdout.write(f"Created admin account {username!r}.")

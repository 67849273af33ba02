import os
import secrets
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from licserver.env import keys_from_dir
from licserver.files import private_dir
from registration import clock
from registration.authority.models import IssuedLicense
from registration.authority.registry import record_issued_license
from registration.protocol.keys import generate_key_pair_files
from registration.protocol.license import LicenseError, minor_version, verify_license

DEMO_KID = "demo"


class Command(BaseCommand):
    help = (
        "Prepare a local demo, keeping whatever exists: vendor keys under KEYS_DIR (made "
        "first, before anything checks for them), the database migrated, a demo "
        "Container.lic under var/ recorded in this database's vendor registry, and an "
        "admin account (DJANGO_SUPERUSER_USERNAME and DJANGO_SUPERUSER_PASSWORD when set, "
        "otherwise 'admin' with a random password printed once, in a box, at the end). "
        "Safe to run again, and against another database (DATABASE_URL)."
    )
    # The system checks warn that no key is pinned: this command makes the keys, so it
    # runs them only once the keys exist (migrate below skips them as a called command).
    requires_system_checks: list[str] = []

    def handle(self, *args, **options):
        # var/ gets the demo keys and the demo license: owner-only (0700) if made here,
        # before a key folder or a file inside it would make it with the umask's mode.
        private_dir(settings.VAR_DIR)
        self._keys()
        call_command("migrate", interactive=False, verbosity=0, stdout=self.stdout)
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
        if path.exists():
            self._record(path)
            return
        if not settings.LICENSE_SIGNING_KEY_FILES:
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

    def _record(self, path) -> None:
        """Keep the existing demo license, and make sure this database's vendor registry
        knows it: a first `make run` recorded it in SQLite, and a vendor on another
        database (the README's two nodes on PostgreSQL) would refuse it as unknown."""
        text = path.read_text(encoding="ascii", errors="replace")
        try:
            lic = verify_license(
                text.encode("ascii", errors="replace"),
                settings.LICENSE_PUBLIC_KEYS,
                settings.LICENSE_MAX_BYTES,
            )
        except LicenseError as exc:
            self.stderr.write(
                f"{path} is kept, but it is not a license these keys signed ({exc}): "
                "delete it and run setup_demo again for a new demo license."
            )
            return
        if IssuedLicense.objects.filter(license_id=lic.license_id).exists():
            self.stdout.write(f"Demo license: {path} (kept).")
            return
        record_issued_license(lic, text, at=clock.now())
        self.stdout.write(
            f"Demo license: {path} (kept, and recorded in this database's vendor registry)."
        )

    def _admin(self) -> None:
        users = get_user_model()
        username = os.environ.get("DJANGO_SUPERUSER_USERNAME") or "admin"
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD")
        login = f"http://127.0.0.1:{settings.PORT}/accounts/login/"
        if users.objects.filter(username=username).exists():
            self._box(
                f"Log in at {login}",
                f"Username: {username} (exists; its password is unchanged)",
            )
            return
        generated = password is None
        password = password or secrets.token_urlsafe(12)
        users.objects.create_superuser(username=username, email="", password=password)
        if generated:
            self._box(
                f"Log in at {login}",
                f"Username: {username}",
                f"Password: {password}",
                "(shown once: change it after logging in)",
            )
        else:
            self._box(
                f"Log in at {login}",
                f"Username: {username} (created; password from DJANGO_SUPERUSER_PASSWORD)",
            )

    def _box(self, *lines: str) -> None:
        """Print lines in a box, the set-up's last output, so the login is easy to find."""
        width = max(len(line) for line in lines)
        rule = "+" + "-" * (width + 4) + "+"
        self.stdout.write("")
        self.stdout.write(rule)
        for line in lines:
            self.stdout.write(f"|  {line.ljust(width)}  |")
        self.stdout.write(rule)
        self.stdout.write("")

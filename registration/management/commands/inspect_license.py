import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from registration import clock
from registration.facts import local_facts
from registration.protocol.causes import AUTH_METHOD_LICENSE_TYPE, validate


class Command(BaseCommand):
    help = (
        "Print a license file's fields and every cause that would refuse it on this "
        "installation. Exit status: 0 when it would be accepted, 1 when it would be "
        "refused, 2 when the file cannot be read."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument(
            "--auth-method", default="container", choices=sorted(AUTH_METHOD_LICENSE_TYPE)
        )

    def handle(self, *args, file: Path, auth_method: str, **options):
        try:
            with file.open("rb") as handle:
                data = handle.read(settings.LICENSE_MAX_BYTES + 1)
        except OSError as exc:
            self.stderr.write(f"Cannot read {file}: {exc.strerror or exc}")
            sys.exit(2)
        result = validate(
            data,
            auth_method,
            local_facts(clock.now()),
            settings.LICENSE_PUBLIC_KEYS,
            settings.LICENSE_MAX_BYTES,
        )
        if result.license is not None:
            for name, value in result.license.to_payload().items():
                self.stdout.write(f"{name}: {value}")
            self.stdout.write(f"kid: {result.license.kid}")
        for cause in result.causes:
            self.stdout.write(f"CAUSE {cause.code}: {cause.title}")
            for line in cause.details:
                self.stdout.write(f"    {line}")
        if result.accepted:
            self.stdout.write("Would be accepted.")
            return
        sys.exit(1)

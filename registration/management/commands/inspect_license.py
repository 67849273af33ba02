import os
import stat
import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from registration import clock
from registration.facts import cluster_facts
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
            data = _read_regular_file(file, settings.LICENSE_MAX_BYTES + 1)
        except OSError as exc:
            self.stderr.write(f"Cannot read {file}: {exc.strerror or exc}")
            sys.exit(2)
        result = validate(
            data,
            auth_method,
            # This command is no node of the cluster: count the live nodes only, not the
            # host it runs on, so a full cluster's own license is not License Exhausted.
            cluster_facts(clock.now()),
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


def _read_regular_file(path: Path, limit: int) -> bytes:
    """Read at most limit bytes of a regular file; refuse anything else at once.

    Opened without blocking, so a FIFO (or a device) with no writer never hangs the
    command; its type is checked on the open descriptor, so it cannot change in between.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"not a regular file ({_kind(os.fstat(fd).st_mode)})")
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as handle:
            return handle.read(limit)
    finally:
        os.close(fd)


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a file"

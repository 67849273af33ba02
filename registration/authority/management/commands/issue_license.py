import os
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from licserver.files import create_private_file, private_dir
from registration import clock
from registration.authority.issuing import IssueError, Order, issue
from registration.protocol.license import LICENSE_TYPES


class Command(BaseCommand):
    help = (
        "Sign a Container.lic with the vendor's Ed25519 key (LICENSE_SIGNING_KEY_FILES, by "
        "--kid) and record it in the registry of issued licenses, which the verification "
        "service reads. Every field is checked as strictly as the console checks it, and "
        "an expiry date already past is refused (exit status 2); the file is written with "
        "mode 0600 and never overwritten. With --renews, the new license renews an issued "
        "one: same company, project, application name and content, later in expiry, nodes "
        "or minor version; the renewed license's binding moves to it."
    )

    def add_arguments(self, parser):
        parser.add_argument("--company", required=True)
        parser.add_argument("--project-name", required=True)
        parser.add_argument("--app-name", default=settings.APP_NAME)
        parser.add_argument("--app-version", required=True, help="major.minor, e.g. 11.0")
        parser.add_argument("--project-content", default=settings.PROJECT_CONTENT)
        parser.add_argument("--license-type", default="container", choices=LICENSE_TYPES)
        parser.add_argument("--contract-date", required=True, help="YYYY-MM-DD")
        parser.add_argument("--expires", required=True, help="last valid day, YYYY-MM-DD")
        parser.add_argument("--max-nodes", type=int, default=1)
        parser.add_argument("--kid", default="", help="signing key id (default: the last by name)")
        parser.add_argument("--license-id", default="", help="UUID (default: a new one)")
        parser.add_argument(
            "--renews", default="", metavar="LICENSE_ID", help="the license id this one renews"
        )
        parser.add_argument("--out", required=True, type=Path)

    def handle(self, *args, **opts):
        out: Path = opts["out"]
        if out.exists():
            raise CommandError(f"refusing to overwrite {out}")
        order = Order(
            company=opts["company"],
            project_name=opts["project_name"],
            app_name=opts["app_name"],
            app_version=opts["app_version"],
            project_content=opts["project_content"],
            license_type=opts["license_type"],
            contract_date=opts["contract_date"],
            expires=opts["expires"],
            max_nodes=opts["max_nodes"],
            kid=opts["kid"],
            license_id=opts["license_id"],
            renews=opts["renews"],
        )

        def write(text: str) -> None:
            # The file is a secret of its holder (it keys the QR codes' MACs, see
            # license.license_secret): mode 0600 from its creation, whatever the umask, in
            # a directory only its owner may enter when this command makes it.
            private_dir(out.parent)
            with os.fdopen(create_private_file(out), "w", encoding="ascii") as handle:
                handle.write(text)

        try:
            issued = issue(order, now=clock.now(), write=write)
        except IssueError as exc:
            raise CommandError(exc.message, returncode=exc.returncode) from None
        except OSError as exc:
            raise CommandError(f"cannot write {out}: {exc.strerror or exc}") from None
        lic = issued.license
        self.stdout.write(f"Wrote {out} (license {lic.license_id}, key {lic.kid})")
        if lic.renews is not None:
            self.stdout.write(f"It renews license {lic.renews}.")

import json
import os
import re
import uuid
from datetime import UTC, date
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError, transaction

from licserver.files import create_private_file, private_dir
from registration import clock
from registration.authority.registry import record_issued_license
from registration.protocol.keys import load_signing_key
from registration.protocol.license import (
    LICENSE_TYPES,
    MAX_NODES_LIMIT,
    License,
    LicenseError,
    parse_payload,
    sign_license,
)
from registration.protocol.text import format_date, format_datetime
from registration.protocol.validity import is_expired


def _date(value: str) -> date:
    # Only YYYY-MM-DD: fromisoformat alone would also take 20270131 or 2027-W05-1.
    try:
        if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a date (YYYY-MM-DD)") from None


class Command(BaseCommand):
    help = (
        "Sign a Container.lic with the vendor's Ed25519 key (LICENSE_SIGNING_KEY_FILES, by "
        "--kid) and record it in the registry of issued licenses, which the verification "
        "service reads. Every field is checked as strictly as the console checks it, and "
        "an expiry date already past is refused (exit status 2); the file is written with "
        "mode 0600 and never overwritten."
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
        parser.add_argument("--out", required=True, type=Path)

    def handle(self, *args, **opts):
        keys = settings.LICENSE_SIGNING_KEY_FILES
        kid = opts["kid"] or (sorted(keys)[-1] if len(keys) >= 1 else "")
        if kid not in keys:
            raise CommandError(f"no signing key {kid!r} in LICENSE_SIGNING_KEY_FILES")
        if not 1 <= opts["max_nodes"] <= MAX_NODES_LIMIT:
            raise CommandError(f"--max-nodes must be from 1 to {MAX_NODES_LIMIT}")
        out: Path = opts["out"]
        if out.exists():
            raise CommandError(f"refusing to overwrite {out}")
        try:
            license_id = uuid.UUID(opts["license_id"]) if opts["license_id"] else uuid.uuid4()
        except ValueError:
            raise CommandError(f"--license-id {opts['license_id']!r} is not a UUID") from None
        now = clock.now().astimezone(UTC).replace(microsecond=0)
        expires_at = _date(opts["expires"])
        # The console's one expiry rule: valid through the end of that day, UTC.
        if is_expired(expires_at, now):
            raise CommandError(
                f"--expires {expires_at.isoformat()} is already past: the license would have "
                f"been valid through {format_date(expires_at)} UTC, and it is now "
                f"{format_datetime(now)} UTC. Give the last day the license should be valid.",
                returncode=2,
            )
        lic = License(
            license_id=license_id,
            license_type=opts["license_type"],
            company=opts["company"],
            project_name=opts["project_name"],
            app_name=opts["app_name"],
            app_version=opts["app_version"],
            project_content=opts["project_content"],
            contract_date=_date(opts["contract_date"]),
            issued_at=now,
            expires_at=expires_at,
            max_nodes=opts["max_nodes"],
            kid=kid,
        )
        # Round-trip through the strict parser so the vendor never ships a bad file.
        try:
            parse_payload(json.dumps(lic.to_payload()).encode(), kid)
        except LicenseError as exc:
            raise CommandError(f"invalid license field: {exc}") from exc
        try:
            signing_key = load_signing_key(keys[kid])
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot load signing key {kid!r} from {keys[kid]}: {exc}") from None
        text = sign_license(lic, signing_key, kid)
        # The file is a secret of its holder (it keys the QR codes' MACs, see
        # license.license_secret): mode 0600 from its creation, whatever the umask, in a
        # directory only its owner may enter when this command makes it.
        private_dir(out.parent)
        # Record and write together: a file that cannot be written leaves no registry row.
        try:
            with transaction.atomic():
                record_issued_license(lic, text, at=lic.issued_at)
                with os.fdopen(create_private_file(out), "w", encoding="ascii") as handle:
                    handle.write(text)
        except IntegrityError:
            raise CommandError(f"license id {lic.license_id} was issued before") from None
        except OSError as exc:
            raise CommandError(f"cannot write {out}: {exc.strerror or exc}") from None
        self.stdout.write(f"Wrote {out} (license {lic.license_id}, key {kid})")

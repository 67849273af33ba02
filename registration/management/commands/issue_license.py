import json
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError

from registration.authority import record_issued_license
from registration.keys import load_signing_key
from registration.license import (
    LICENSE_TYPES,
    MAX_NODES_LIMIT,
    License,
    LicenseError,
    parse_payload,
    sign_license,
)


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a date (YYYY-MM-DD)") from None


class Command(BaseCommand):
    help = (
        "Sign a Container.lic with the vendor's Ed25519 key (LICENSE_SIGNING_KEY_FILES, by "
        "--kid) and record it in the registry of issued licenses, which the verification "
        "service reads. Every field is checked as strictly as the console checks it; "
        "the file is never overwritten."
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
        parser.add_argument("--kid", default="", help="signing key id (default: the only one)")
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
        lic = License(
            license_id=uuid.UUID(opts["license_id"]) if opts["license_id"] else uuid.uuid4(),
            license_type=opts["license_type"],
            company=opts["company"],
            project_name=opts["project_name"],
            app_name=opts["app_name"],
            app_version=opts["app_version"],
            project_content=opts["project_content"],
            contract_date=_date(opts["contract_date"]),
            issued_at=datetime.now(UTC).replace(microsecond=0),
            expires_at=_date(opts["expires"]),
            max_nodes=opts["max_nodes"],
            kid=kid,
        )
        # Round-trip through the strict parser so the vendor never ships a bad file.
        try:
            parse_payload(json.dumps(lic.to_payload()).encode(), kid)
        except LicenseError as exc:
            raise CommandError(f"invalid license field: {exc}") from exc
        text = sign_license(lic, load_signing_key(keys[kid]), kid)
        try:
            record_issued_license(lic, text, at=lic.issued_at)
        except IntegrityError:
            raise CommandError(f"license id {lic.license_id} was issued before") from None
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("x", encoding="ascii") as handle:
            handle.write(text)
        self.stdout.write(f"Wrote {out} (license {lic.license_id}, key {kid})")

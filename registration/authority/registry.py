"""The vendor's registry of issued licenses: every Container.lic it signs is recorded."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction

from registration.abstract import Actor
from registration.authority.models import AuditAction, AuditEvent, IssuedLicense
from registration.protocol.license import License


def record_issued_license(
    lic: License, text: str, *, at: datetime, actor: Actor = None
) -> IssuedLicense:
    """Add a signed license to the registry the verification service reads."""
    with transaction.atomic():
        row = IssuedLicense.objects.create(**IssuedLicense.values_from(lic, text))
        AuditEvent.record(
            AuditAction.LICENSE_ISSUED,
            at=at,
            actor=actor,
            license_id=lic.license_id,
            company=lic.company,
            project_name=lic.project_name,
        )
    return row

"""The vendor's registry of issued licenses: every Container.lic it signs is recorded."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction

from registration.abstract import Actor
from registration.authority.models import AuditAction, AuditEvent, IssuedLicense
from registration.protocol.license import License


def record_issued_license(
    lic: License, text: str, *, at: datetime, actor: Actor = None, **detail: Any
) -> IssuedLicense:
    """Add a signed license to the registry the verification service reads, with its
    audit entry (who, when, the license id, the signing key, what it renews)."""
    with transaction.atomic():
        # A renewal is linked to the license it renews (which must have been issued here).
        renews = IssuedLicense.objects.get(license_id=lic.renews) if lic.renews else None
        row = IssuedLicense.objects.create(**IssuedLicense.values_from(lic, text), renews=renews)
        AuditEvent.record(
            AuditAction.LICENSE_ISSUED,
            at=at,
            actor=actor,
            license_id=lic.license_id,
            company=lic.company,
            project_name=lic.project_name,
            kid=lic.kid,
            **({"renews": str(lic.renews)} if lic.renews else {}),
            **detail,
        )
    return row

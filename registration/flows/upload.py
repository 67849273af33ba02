"""Upload a Container.lic: check it (every cause at once); when it passes, install it and
issue its first QR challenge. A refused file changes nothing but the audit log.

On a Registered installation an upload never ends the registration by accident: the
installed license uploaded again changes nothing (UNCHANGED), and a renewal of the
installed license is installed and the installation STAYS Registered (RENEWED: no QR code,
no code), and another license is installed only when the admin has confirmed that the
registration ends until the new QR code is scanned (replace_registration=True;
NEEDS_CONFIRMATION otherwise).

A renewal, in plain words: its file names the installed license as the one it renews,
and it keeps that license's company, project, application name, project content and
license type, expires no earlier, allows no fewer nodes and names no older version (the
vendor's issuing.check_renewal refuses anything else). Its other checks are an upload's:
every cause, and never older than the installed license."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _

from registration import clock
from registration.abstract import Actor
from registration.facts import local_facts
from registration.flows.challenge import issue
from registration.installation import installation_for_update, save_installation
from registration.models import (
    AuditAction,
    AuditEvent,
    Installation,
    InstalledLicense,
    QrChallenge,
    RegistrationState,
)
from registration.protocol.causes import Cause, CauseCode, Validation, validate
from registration.protocol.challenge import Purpose
from registration.protocol.license import License
from registration.protocol.text import format_datetime
from registration.protocol.validity import is_expired
from registration.seal import effective_state, seal_for

# What a renewal keeps of the license it renews (as the vendor's issuing.RENEWAL_KEEPS).
RENEWAL_KEEPS = ("company", "project_name", "app_name", "project_content", "license_type")


class UploadOutcome(StrEnum):
    REFUSED = "refused"
    INSTALLED = "installed"
    # A Registered installation and its own license again: nothing to do.
    UNCHANGED = "unchanged"
    # A Registered installation and another license: ask before ending the registration.
    NEEDS_CONFIRMATION = "needs_confirmation"
    # A Registered installation and a renewal of its license: installed, still Registered.
    RENEWED = "renewed"


@dataclass(frozen=True)
class UploadResult:
    validation: Validation
    challenge: QrChallenge | None = None
    outcome: UploadOutcome = UploadOutcome.REFUSED
    # The installation's license at the time (what a confirmation names), if any.
    installed: InstalledLicense | None = None

    @property
    def accepted(self) -> bool:
        return self.challenge is not None


def superseded(uploaded: License, installed: InstalledLicense) -> Cause | None:
    """No rollback: a license issued before the installed one is never taken back, nor is
    another license issued in the same second (which of the two is newer cannot be told).
    The installed license itself may be uploaded again."""
    if uploaded.issued_at > installed.issued_at:
        return None
    same_second = uploaded.issued_at == installed.issued_at
    if same_second and uploaded.license_id == installed.license_id:
        return None
    details = [
        _("Uploaded license issued at %(at)s UTC") % {"at": format_datetime(uploaded.issued_at)},
        _("Installed license issued at %(at)s UTC") % {"at": format_datetime(installed.issued_at)},
    ]
    if same_second:
        details.append(_("Another license issued in the same second is installed."))
    return Cause(CauseCode.LICENSE_SUPERSEDED, tuple(details))


def upload_license(
    data: bytes,
    auth_method: str,
    *,
    actor: Actor = None,
    client_address: str | None = None,
    replace_registration: bool = False,
) -> UploadResult:
    """Validate an uploaded license; when it passes, store it and issue a QR challenge.

    On a Registered installation: its own license changes nothing (UNCHANGED), and another
    one is installed only with replace_registration (NEEDS_CONFIRMATION otherwise); both
    are checked first, so a refused file is refused whatever the state.
    """
    with transaction.atomic():
        row = installation_for_update()
        now = clock.now()
        validation = validate(
            data,
            auth_method,
            local_facts(now),
            settings.LICENSE_PUBLIC_KEYS,
            settings.LICENSE_MAX_BYTES,
        )
        lic = validation.license
        if lic is not None and row.license is not None:
            cause = superseded(lic, row.license)
            if cause is not None:
                validation = Validation(lic, (*validation.causes, cause))
        if not validation.accepted:
            AuditEvent.record(
                AuditAction.UPLOAD_REFUSED,
                at=now,
                actor=actor,
                installation_id=row.installation_id,
                license_id=lic.license_id if lic else None,
                client_address=client_address,
                causes=validation.codes,
            )
            return UploadResult(validation, installed=row.license)
        assert lic is not None
        if _registered(row, now):
            if lic.license_id == row.license.license_id:
                return UploadResult(validation, None, UploadOutcome.UNCHANGED, row.license)
            if is_renewal_of(lic, row.license):
                stored = _renew(row, lic, data, now, actor, client_address)
                return UploadResult(validation, None, UploadOutcome.RENEWED, stored)
            if not replace_registration:
                return UploadResult(validation, None, UploadOutcome.NEEDS_CONFIRMATION, row.license)
        challenge = _install(row, lic, data, now, actor, client_address)
    return UploadResult(validation, challenge, UploadOutcome.INSTALLED, row.license)


def _version(text: str) -> tuple[int, int]:
    major, minor = text.split(".")
    return int(major), int(minor)


def is_renewal_of(uploaded: License, installed: InstalledLicense) -> bool:
    """Tell whether uploaded renews the installed license (see the rules above)."""
    return (
        uploaded.renews == installed.license_id
        and all(getattr(uploaded, name) == getattr(installed, name) for name in RENEWAL_KEEPS)
        and uploaded.expires_at >= installed.expires_at
        and uploaded.max_nodes >= installed.max_nodes
        and _version(uploaded.app_version) >= _version(installed.app_version)
    )


def _renew(
    row: Installation,
    lic: License,
    data: bytes,
    now: datetime,
    actor: Actor,
    client_address: str | None,
) -> InstalledLicense:
    """Install a renewal of the registered license and stay Registered, sealed anew for it
    (the registration's moment is kept: the installation registered then, not now)."""
    renewed = row.license
    text = data.decode("ascii")
    stored = InstalledLicense.objects.create(
        **InstalledLicense.values_from(lic, text),
        uploaded_at=now,
        uploaded_by=actor if actor is not None and actor.is_authenticated else None,
    )
    save_installation(
        row,
        license=stored,
        registration_seal=seal_for(row.installation_id, lic.license_id, text, row.registered_at),
    )
    AuditEvent.record(
        AuditAction.UPLOAD_ACCEPTED,
        at=now,
        actor=actor,
        installation_id=row.installation_id,
        license_id=lic.license_id,
        client_address=client_address,
        company=lic.company,
        project_name=lic.project_name,
        renewal=True,
        renews=str(renewed.license_id),
        expires_at=lic.expires_at.isoformat(),
    )
    return stored


def _registered(row: Installation, now: datetime) -> bool:
    """Tell whether the row holds a live registration (one an upload would end)."""
    return (
        effective_state(row) == RegistrationState.REGISTERED
        and row.license is not None
        and not is_expired(row.license.expires_at, now)
    )


def _install(
    row: Installation,
    lic: License,
    data: bytes,
    now: datetime,
    actor: Actor,
    client_address: str | None,
) -> QrChallenge:
    stored = InstalledLicense.objects.create(
        **InstalledLicense.values_from(lic, data.decode("ascii")),
        uploaded_at=now,
        uploaded_by=actor if actor is not None and actor.is_authenticated else None,
    )
    # A new license needs a new registration, whatever the state was.
    save_installation(row, license=stored, state=RegistrationState.UNREGISTERED, registered_at=None)
    AuditEvent.record(
        AuditAction.UPLOAD_ACCEPTED,
        at=now,
        actor=actor,
        installation_id=row.installation_id,
        license_id=lic.license_id,
        client_address=client_address,
        company=lic.company,
        project_name=lic.project_name,
    )
    return issue(row, stored, Purpose.REGISTER, now, actor)

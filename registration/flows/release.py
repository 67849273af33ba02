"""Release this installation's license, so another server can register it (self-service).

Rules, in plain words:
- an admin with the Registration Management permission releases, after typing the
  installed license's project name (forms.ReleaseForm);
- the release ends the registration here at once, and the gate closes: the vendor is
  about to free the license for another server, so this one no longer counts on it;
- the release QR code, valid CHALLENGE_TTL_SECONDS like any QR code, carries this
  installation's chain value, so the vendor frees the license only for the live
  installation (authority/release.py), not for a copy or a holder of the file alone;
- this server registers again only by a new scan (Refresh), as a new binding if the
  license is still free.
"""

from __future__ import annotations

from django.db import transaction

from registration import clock
from registration.abstract import Actor
from registration.flows.challenge import issue
from registration.installation import installation_for_update, save_installation
from registration.models import AuditAction, AuditEvent, QrChallenge, RegistrationState
from registration.protocol.challenge import Purpose


def release_registration(*, actor: Actor = None) -> QrChallenge:
    """End the registration here and make the release QR code; LookupError if no license."""
    with transaction.atomic():
        row = installation_for_update()
        lic = row.license
        if lic is None:
            raise LookupError("no license is installed")
        now = clock.now()
        save_installation(row, state=RegistrationState.UNREGISTERED)
        challenge = issue(row, lic, Purpose.RELEASE, now, actor)
        AuditEvent.record(
            AuditAction.RELEASED,
            at=now,
            actor=actor,
            installation_id=row.installation_id,
            license_id=lic.license_id,
            tag=challenge.tag,
        )
    return challenge

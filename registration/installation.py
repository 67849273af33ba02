"""The installation row: the one way to read it, to take its row lock, and to save it.

Every process that changes registration state (upload, QR challenge, code, node start)
takes the row lock first with installation_for_update(), inside transaction.atomic(), so concurrent
requests, workers and nodes apply their changes one after the other. "Locked" elsewhere in
the product means code entry locked after wrong codes; this module says "row lock".
"""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.expressions import Combinable

from registration import clock
from registration.models import Installation, RegistrationState

log = logging.getLogger(__name__)


def get_installation() -> Installation:
    """Return this database's installation row, creating it once."""
    installation = Installation.objects.first()
    if installation is not None:
        return installation
    try:
        with transaction.atomic():
            return Installation.objects.create(created_at=clock.now())
    except IntegrityError:  # another process created it first
        return Installation.objects.get()


def installation_for_update() -> Installation:
    """Return the row under a row lock held to the end of the transaction."""
    get_installation()
    return Installation.objects.select_for_update().get()


def save_installation(installation: Installation, **changes: object) -> None:
    """Save changes to the row and bump its version (caches compare it).

    Call with the row lock held. Counters may be F() expressions; they are read back.
    """
    if changes.get("state", RegistrationState.REGISTERED) != RegistrationState.REGISTERED:
        # Leaving Registered voids the seal, so no earlier seal can make the row so again.
        changes["registration_seal"] = ""
    for name, value in changes.items():
        setattr(installation, name, value)
    installation.version = F("version") + 1
    installation.save(update_fields=[*changes, "version"])
    counters = [name for name, value in changes.items() if isinstance(value, Combinable)]
    installation.refresh_from_db(fields=["version", *counters])
    transaction.on_commit(_changed)


def _changed() -> None:
    # Imported late: status reads leases, which read settings; this module stays small.
    from registration import status

    try:
        status.invalidate()
    except Exception:  # a cache outage must not undo a committed change
        log.exception("Could not invalidate the registration status cache")

"""The registration seal: a Registered state only the console itself can write.

Rule, in plain words: the installation is Registered only if its row carries a seal made
with this console's SECRET_KEY when a code was accepted, over the installation id, the
license (its id and a SHA-256 of its file) and the moment of registration. Someone who
can write the console's database but does not hold SECRET_KEY cannot make a row
Registered, nor move a registration to another license; a row that claims Registered
without a valid seal is read as Unregistered (and logged). Every state change away from
Registered clears the seal (installation.save_installation), so an old seal is no use.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import uuid
from datetime import datetime

from django.conf import settings
from django.utils.crypto import salted_hmac

log = logging.getLogger(__name__)

SEAL_SALT = "licserver/registration-seal/v1"


def seal_for(
    installation_id: uuid.UUID, license_id: uuid.UUID, license_text: str, registered_at: datetime
) -> str:
    """Return the seal of one registration (hex HMAC-SHA256 under a key from SECRET_KEY)."""
    message = b"\n".join(
        (
            installation_id.bytes,
            license_id.bytes,
            hashlib.sha256(license_text.encode("utf-8")).digest(),
            registered_at.isoformat().encode("ascii"),
        )
    )
    return salted_hmac(
        SEAL_SALT, message, secret=settings.SECRET_KEY, algorithm="sha256"
    ).hexdigest()


def is_sealed(installation) -> bool:
    """Tell whether a Registered row carries this console's seal for its registration."""
    lic = installation.license
    if lic is None or installation.registered_at is None or not installation.registration_seal:
        return False
    expected = seal_for(
        installation.installation_id, lic.license_id, lic.text, installation.registered_at
    )
    return hmac.compare_digest(expected, installation.registration_seal)


def effective_state(installation) -> str:
    """Return the row's state, with an unsealed Registered read as Unregistered."""
    from registration.models import RegistrationState

    if installation.state != RegistrationState.REGISTERED or is_sealed(installation):
        return installation.state
    log.error(
        "Installation %s claims Registered without this console's seal: read as Unregistered "
        "(was the database edited, or SECRET_KEY changed?)",
        installation.installation_id,
    )
    return RegistrationState.UNREGISTERED

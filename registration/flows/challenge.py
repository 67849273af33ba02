"""QR challenges: issue one (after an upload, on Refresh, on Re-register), find the open one.

A new challenge supersedes the open one: at most one is open (a database constraint).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils.crypto import salted_hmac

from registration import clock
from registration.abstract import Actor
from registration.cluster import identity, leases
from registration.facts import local_facts
from registration.installation import installation_for_update
from registration.models import (
    AuditAction,
    AuditEvent,
    ChallengeState,
    Installation,
    InstalledLicense,
    QrChallenge,
    RegistrationState,
)
from registration.protocol.causes import Cause, check_license
from registration.protocol.challenge import Purpose, code_for, encode_token, new_challenge
from registration.protocol.license import b64decode_key, license_secret
from registration.protocol.verifier import ScryptCost, make_verifier

# A closed challenge keeps its record, not its verifier: no code can be checked against it.
CLOSED_VERIFIER = ""
# The domain of the secret that keys code verifiers (derived from SECRET_KEY).
VERIFIER_PEPPER_SALT = "licserver/code-verifier-pepper/v1"


def verifier_pepper() -> bytes:
    """Return the secret that keys code verifiers: from SECRET_KEY, with its own domain."""
    return salted_hmac(
        VERIFIER_PEPPER_SALT, b"", secret=settings.SECRET_KEY, algorithm="sha256"
    ).digest()


def verifier_cost() -> ScryptCost:
    """Return the scrypt cost new verifiers are made with (settings CODE_VERIFIER_SCRYPT_*)."""
    return ScryptCost(
        settings.CODE_VERIFIER_SCRYPT_N,
        settings.CODE_VERIFIER_SCRYPT_R,
        settings.CODE_VERIFIER_SCRYPT_P,
    )


class NoAuthorityKey(LookupError):
    """No verification service key is pinned for new challenges (a setting, not input)."""


def authority_kid() -> str:
    """Return the key id of the verification service new challenges are made for."""
    pinned = settings.AUTHORITY_PUBLIC_KEYS
    kid = settings.AUTHORITY_KID or (sorted(pinned)[-1] if pinned else "")
    if kid not in pinned:
        raise NoAuthorityKey("no verification service key is pinned (AUTHORITY_PUBLIC_KEYS)")
    return kid


def close(challenge: QrChallenge, state: ChallengeState, now: datetime) -> None:
    """Close one challenge (consumed): it keeps its record and loses its verifier."""
    challenge.state = state
    challenge.closed_at = now
    challenge.code_verifier = CLOSED_VERIFIER
    challenge.save(update_fields=["state", "closed_at", "code_verifier"])


def issue(
    row: Installation, lic: InstalledLicense, purpose: Purpose, now: datetime, actor: Actor
) -> QrChallenge:
    """Supersede any open challenge and create a new one. Call with the row lock held."""
    QrChallenge.objects.filter(installation=row, state=ChallengeState.OPEN).update(
        state=ChallengeState.SUPERSEDED, closed_at=now, code_verifier=CLOSED_VERIFIER
    )
    kid = authority_kid()
    node = identity.this_node()
    node_count = leases.live_node_count(now)
    proto, key = new_challenge(
        purpose=purpose,
        license_id=lic.license_id,
        installation_id=row.installation_id,
        node_name=node.name,
        node_count=node_count,
        kid=kid,
        authority_public=b64decode_key(settings.AUTHORITY_PUBLIC_KEYS[kid]),
        license_secret=license_secret(lic.text),
        now=now,
        ttl_seconds=settings.CHALLENGE_TTL_SECONDS,
        chain=bytes.fromhex(row.chain),
    )
    # K is used here once, for the token's MAC and the code, and then forgotten: what is
    # kept cannot compute a code, and checking a guess against it costs an scrypt.
    token = encode_token(proto, key)
    # A release QR code shows no code on the phone, so none can be typed here either.
    verifier = (
        CLOSED_VERIFIER
        if purpose == Purpose.RELEASE
        else make_verifier(code_for(proto, key), proto.digest(), verifier_pepper(), verifier_cost())
    )
    del key
    challenge = QrChallenge.objects.create(
        installation=row,
        license=lic,
        purpose=purpose,
        token=token,
        code_verifier=verifier,
        tag=proto.tag,
        node_name=node.name,
        node_count=node_count,
        kid=kid,
        issued_at=proto.issued_at,
        expires_at=proto.expires_at,
    )
    AuditEvent.record(
        AuditAction.CHALLENGE_ISSUED,
        at=now,
        actor=actor,
        installation_id=row.installation_id,
        license_id=lic.license_id,
        node_name=node.name,
        purpose=purpose.label,
        tag=proto.tag,
        node_count=node_count,
    )
    return challenge


@dataclass(frozen=True)
class ChallengeResult:
    challenge: QrChallenge | None
    causes: tuple[Cause, ...] = ()


def refresh_challenge(*, actor: Actor = None) -> ChallengeResult:
    """Issue a new QR for the installed license (Refresh, or Re-register after a restart).

    The license is checked again first (it may have expired, or nodes joined since).
    """
    with transaction.atomic():
        row = installation_for_update()
        lic = row.license
        if lic is None:
            raise LookupError("no license is installed")
        now = clock.now()
        causes = tuple(check_license(lic.as_license(), "container", local_facts(now)))
        if causes:
            return ChallengeResult(None, causes)
        purpose = (
            Purpose.REGISTER if row.state == RegistrationState.UNREGISTERED else Purpose.RE_REGISTER
        )
        return ChallengeResult(issue(row, lic, purpose, now, actor))


def open_challenge(now: datetime) -> QrChallenge | None:
    """Return the installation's open, unexpired challenge, if any."""
    return (
        QrChallenge.objects.filter(state=ChallengeState.OPEN, expires_at__gt=now)
        .select_related("license")
        .first()
    )

"""Check the 6-digit code an admin types, offline, against the open QR challenge.

Code entry rules, in plain words: 5 wrong codes (LOCKOUT_MAX_ATTEMPTS) lock code entry
for 15 minutes (LOCKOUT_MINUTES); each further lockout before a success lasts twice as
long, up to LOCKOUT_MAX_MINUTES. A correct code consumes its challenge exactly once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import F

from registration import clock
from registration.abstract import Actor
from registration.flows.challenge import close, verifier_pepper
from registration.installation import installation_for_update, save_installation
from registration.models import (
    AuditAction,
    AuditEvent,
    ChallengeState,
    Installation,
    QrChallenge,
    RegistrationState,
)
from registration.protocol.challenge import Purpose, decode_token, next_chain
from registration.protocol.verifier import check_verifier
from registration.seal import seal_for

log = logging.getLogger(__name__)


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    WRONG = "wrong"
    LOCKED = "locked"
    WRONG_AND_LOCKED = "wrong_and_locked"
    NO_CHALLENGE = "no_challenge"
    EXPIRED = "expired"


@dataclass(frozen=True)
class SubmitResult:
    outcome: Outcome
    attempts_left: int = 0
    locked_until: datetime | None = None


def lockout_minutes(lockout_count: int) -> int:
    """Return how long the lockout_count-th lockout lasts (0-based): 15, 30, 60, ... 24 h."""
    minutes = settings.LOCKOUT_MINUTES * 2 ** min(lockout_count, 32)
    return min(minutes, settings.LOCKOUT_MAX_MINUTES)


def submit_code(
    code: str, *, actor: Actor = None, client_address: str | None = None
) -> SubmitResult:
    """Check a well-formed 6-digit code against the open challenge, offline.

    The installation's row lock is held for the whole check (django-otp style): concurrent
    submissions queue behind it, so a lockout that starts after the 5th wrong code stops
    every later one, and a correct code consumes its challenge exactly once.
    """
    with transaction.atomic():
        row = installation_for_update()
        now = clock.now()
        if row.locked_until is not None:
            if now < row.locked_until:
                return SubmitResult(Outcome.LOCKED, locked_until=row.locked_until)
            # The lockout has run out: a fresh set of attempts, but lock_count stays.
            save_installation(row, locked_until=None, failed_attempts=0)
        # A release QR code takes no code: it frees the license (flows/release.py).
        challenge = (
            QrChallenge.objects.select_for_update()
            .filter(installation=row, state=ChallengeState.OPEN)
            .exclude(purpose=Purpose.RELEASE)
            .first()
        )
        if challenge is None:
            return SubmitResult(Outcome.NO_CHALLENGE)
        proto, _mac = decode_token(challenge.token)
        if proto.is_expired(now):
            return SubmitResult(Outcome.EXPIRED)
        # The one costly step (an scrypt); at most LOCKOUT_MAX_ATTEMPTS of them run per
        # lockout, since the row lock above serialises every submission.
        if check_verifier(challenge.code_verifier, code, proto.digest(), verifier_pepper()):
            # The row's chain is the one this challenge carries (masked): only accepting a
            # code moves it, and a new challenge supersedes every open one, so it has not
            # moved since this challenge was issued.
            successor = next_chain(proto, bytes.fromhex(row.chain), code)
            return _accept(row, challenge, successor, now, actor, client_address)
        return _refuse(row, challenge, now, actor, client_address)


def _accept(
    row: Installation,
    challenge: QrChallenge,
    chain: bytes,
    now: datetime,
    actor: Actor,
    client_address: str | None,
) -> SubmitResult:
    close(challenge, ChallengeState.CONSUMED, now)
    lic = challenge.license
    save_installation(
        row,
        state=RegistrationState.REGISTERED,
        registered_at=now,
        # Registered is true only with this seal (registration/seal.py): the row's license
        # must be the challenge's, as it is (a new upload supersedes open challenges).
        registration_seal=seal_for(row.installation_id, lic.license_id, lic.text, now),
        # The vendor, who showed this code, moves its record of the chain the same way.
        chain=chain.hex(),
        failed_attempts=0,
        lock_count=0,
        locked_until=None,
    )
    AuditEvent.record(
        AuditAction.CODE_ACCEPTED,
        at=now,
        actor=actor,
        installation_id=row.installation_id,
        license_id=challenge.license.license_id,
        node_name=challenge.node_name,
        client_address=client_address,
        purpose=Purpose(challenge.purpose).label,
        tag=challenge.tag,
    )
    return SubmitResult(Outcome.ACCEPTED)


def _refuse(
    row: Installation,
    challenge: QrChallenge,
    now: datetime,
    actor: Actor,
    client_address: str | None,
) -> SubmitResult:
    # The row lock is held, so this read is current; the write is still an F() increment
    # so the counter can never lose a failure, whatever runs between the read and the write.
    failed = row.failed_attempts + 1
    changes: dict[str, object] = {"failed_attempts": F("failed_attempts") + 1}
    locked_until = None
    if failed >= settings.LOCKOUT_MAX_ATTEMPTS:
        locked_until = now + timedelta(minutes=lockout_minutes(row.lock_count))
        changes.update(locked_until=locked_until, lock_count=row.lock_count + 1)
    save_installation(row, **changes)
    # The failure above must stand even if writing the audit entry fails, so the entry
    # goes in a savepoint of its own.
    try:
        with transaction.atomic():
            AuditEvent.record(
                AuditAction.LOCKED if locked_until else AuditAction.CODE_REFUSED,
                at=now,
                actor=actor,
                installation_id=row.installation_id,
                license_id=challenge.license.license_id,
                node_name=challenge.node_name,
                client_address=client_address,
                failed_attempts=failed,
                locked_until=locked_until.isoformat() if locked_until else None,
            )
    except DatabaseError:
        log.exception("Could not record a refused code in the audit log")
    return SubmitResult(
        Outcome.WRONG_AND_LOCKED if locked_until else Outcome.WRONG,
        attempts_left=max(settings.LOCKOUT_MAX_ATTEMPTS - failed, 0),
        locked_until=locked_until,
    )

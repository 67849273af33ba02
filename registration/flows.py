"""Registration processes, customer side. Each is one transaction and one audit entry.

Views call these; these call the pure modules (license, causes, challenge) and write
models. Every change to the installation row happens under select_for_update() so that
concurrent requests, workers and nodes see each other's writes in order.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F
from django.db.models.expressions import Combinable
from django.utils.translation import gettext as _

from registration import audit, clock, nodes
from registration.causes import (
    Cause,
    CauseCode,
    LocalFacts,
    NodeClock,
    Validation,
    check_license,
    validate,
)
from registration.challenge import (
    Purpose,
    code_for,
    codes_match,
    decode_token,
    encode_token,
    new_challenge,
)
from registration.license import b64decode_key, license_secret, minor_version
from registration.models import (
    AuditAction,
    Challenge,
    ChallengePurpose,
    ChallengeState,
    Installation,
    InstalledLicense,
    RegistrationState,
)

log = logging.getLogger(__name__)
User = AbstractBaseUser | AnonymousUser | None
# A closed challenge keeps its record, not its key: nothing may check a code against it.
CLOSED_KEY = b""


# --- Installation -------------------------------------------------------------------


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


def lock_installation() -> Installation:
    """Return the installation row locked for this transaction (every writer takes it)."""
    get_installation()
    return Installation.objects.select_for_update().get()


def save_installation(installation: Installation, **changes: object) -> None:
    """Save changes to the installation and bump its version (caches compare it)."""
    for name, value in changes.items():
        setattr(installation, name, value)
    installation.version = F("version") + 1
    installation.save(update_fields=[*changes, "version"])
    counters = [name for name, value in changes.items() if isinstance(value, Combinable)]
    installation.refresh_from_db(fields=["version", *counters])
    transaction.on_commit(_installation_changed)


def _installation_changed() -> None:
    # Imported late: status imports flows' models and is optional for pure tests.
    from registration import status

    try:
        status.invalidate()
    except Exception:  # a cache outage must not undo a committed change
        log.exception("Could not invalidate the registration status cache")


# --- Facts --------------------------------------------------------------------------


def local_facts(now: datetime) -> LocalFacts:
    """Collect this installation's facts for license checks, live nodes included."""
    return configured_facts(now, nodes.live_node_count(now), nodes.live_node_clocks(now))


def configured_facts(
    now: datetime, live_nodes: int, node_clocks: Sequence[NodeClock] = ()
) -> LocalFacts:
    """Return the facts the settings give, with the node facts supplied (no query)."""
    return LocalFacts(
        app_name=settings.APP_NAME,
        app_version=settings.APP_VERSION,
        project_content=settings.PROJECT_CONTENT,
        build_date=date.fromisoformat(settings.APP_BUILD_DATE),
        min_build_date=date.fromisoformat(settings.CONTAINER_AUTH_MIN_BUILD_DATE),
        live_nodes=live_nodes,
        now=now,
        node_clocks=tuple(node_clocks),
        max_clock_skew_seconds=settings.CLUSTER_MAX_CLOCK_SKEW_SECONDS,
    )


def version_information() -> dict[str, str]:
    """What an admin copies into a license request."""
    return {
        "app_name": settings.APP_NAME,
        "minor_version": minor_version(settings.APP_VERSION),
        "build_version": settings.APP_VERSION,
        "build_date": settings.APP_BUILD_DATE,
        "project_content": settings.PROJECT_CONTENT,
    }


# --- Upload -------------------------------------------------------------------------


@dataclass(frozen=True)
class UploadResult:
    validation: Validation
    challenge: Challenge | None = None

    @property
    def accepted(self) -> bool:
        return self.challenge is not None


def upload_license(
    data: bytes, auth_method: str, *, actor: User = None, client_address: str | None = None
) -> UploadResult:
    """Validate an uploaded license; when it passes, store it and issue a QR challenge.

    A refused file changes nothing but the audit log: the installed license stays.
    """
    with transaction.atomic():
        installation = lock_installation()
        now = clock.now()
        validation = validate(
            data,
            auth_method,
            local_facts(now),
            settings.LICENSE_PUBLIC_KEYS,
            settings.LICENSE_MAX_BYTES,
        )
        lic = validation.license
        current = installation.license
        if lic is not None and current is not None and lic.issued_at < current.issued_at:
            # No rollback: a license older than the installed one is never taken back.
            superseded = Cause(
                CauseCode.LICENSE_SUPERSEDED,
                (
                    _("Uploaded license issued at %(at)s UTC")
                    % {"at": f"{lic.issued_at:%Y/%m/%d %H:%M:%S}"},
                    _("Installed license issued at %(at)s UTC")
                    % {"at": f"{current.issued_at:%Y/%m/%d %H:%M:%S}"},
                ),
            )
            validation = Validation(lic, (*validation.causes, superseded))
        if not validation.accepted:
            audit.record(
                AuditAction.UPLOAD_REFUSED,
                at=now,
                actor=actor,
                installation_id=installation.installation_id,
                license_id=lic.license_id if lic else None,
                client_address=client_address,
                causes=validation.codes,
            )
            return UploadResult(validation)
        assert lic is not None
        row = InstalledLicense.objects.create(
            **InstalledLicense.values_from(lic, data.decode("ascii")),
            uploaded_at=now,
            uploaded_by=actor if actor is not None and actor.is_authenticated else None,
        )
        # A new license needs a new registration, whatever the state was.
        save_installation(
            installation, license=row, state=RegistrationState.UNREGISTERED, registered_at=None
        )
        audit.record(
            AuditAction.UPLOAD_ACCEPTED,
            at=now,
            actor=actor,
            installation_id=installation.installation_id,
            license_id=lic.license_id,
            client_address=client_address,
            company=lic.company,
            project_name=lic.project_name,
        )
        challenge = _issue_challenge(installation, row, ChallengePurpose.REGISTER, now, actor)
    return UploadResult(validation, challenge)


# --- Challenges ---------------------------------------------------------------------


def authority_kid() -> str:
    """Return the key id of the verification service new challenges are made for."""
    pinned = settings.AUTHORITY_PUBLIC_KEYS
    kid = settings.AUTHORITY_KID or (sorted(pinned)[-1] if pinned else "")
    if kid not in pinned:
        raise LookupError("no verification service key is pinned (AUTHORITY_PUBLIC_KEYS)")
    return kid


def _issue_challenge(
    installation: Installation,
    row: InstalledLicense,
    purpose: ChallengePurpose,
    now: datetime,
    actor: User,
) -> Challenge:
    """Supersede any open challenge and create a new one. Call with the row locked."""
    Challenge.objects.filter(installation=installation, state=ChallengeState.OPEN).update(
        state=ChallengeState.SUPERSEDED, closed_at=now, key=CLOSED_KEY
    )
    kid = authority_kid()
    node = nodes.this_node()
    node_count = nodes.live_node_count(now)
    proto, key = new_challenge(
        purpose=Purpose.REGISTER if purpose == ChallengePurpose.REGISTER else Purpose.RE_REGISTER,
        license_id=row.license_id,
        installation_id=installation.installation_id,
        node_name=node.name,
        node_count=node_count,
        kid=kid,
        authority_public=b64decode_key(settings.AUTHORITY_PUBLIC_KEYS[kid]),
        license_secret=license_secret(row.text),
        now=now,
        ttl_seconds=settings.CHALLENGE_TTL_SECONDS,
    )
    challenge = Challenge.objects.create(
        installation=installation,
        license=row,
        purpose=purpose,
        token=encode_token(proto, key),
        key=key,
        tag=proto.tag,
        node_name=node.name,
        node_count=node_count,
        kid=kid,
        issued_at=proto.issued_at,
        expires_at=proto.expires_at,
    )
    audit.record(
        AuditAction.CHALLENGE_ISSUED,
        at=now,
        actor=actor,
        installation_id=installation.installation_id,
        license_id=row.license_id,
        node_name=node.name,
        purpose=str(purpose),
        tag=proto.tag,
        node_count=node_count,
    )
    return challenge


@dataclass(frozen=True)
class ChallengeResult:
    challenge: Challenge | None
    causes: tuple[Cause, ...] = ()


def refresh_challenge(*, actor: User = None) -> ChallengeResult:
    """Issue a new QR for the installed license (Refresh, or Re-register after a restart).

    The license is checked again first (it may have expired, or nodes joined since).
    """
    with transaction.atomic():
        installation = lock_installation()
        row = installation.license
        if row is None:
            raise LookupError("no license is installed")
        now = clock.now()
        facts = local_facts(now)
        causes = tuple(check_license(row.as_license(), "container", facts))
        if causes:
            return ChallengeResult(None, causes)
        purpose = (
            ChallengePurpose.REGISTER
            if installation.state == RegistrationState.UNREGISTERED
            else ChallengePurpose.RE_REGISTER
        )
        return ChallengeResult(_issue_challenge(installation, row, purpose, now, actor))


def open_challenge(now: datetime) -> Challenge | None:
    """Return the installation's open, unexpired challenge, if any."""
    return (
        Challenge.objects.filter(state=ChallengeState.OPEN, expires_at__gt=now)
        .select_related("license")
        .first()
    )


# --- Codes --------------------------------------------------------------------------


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


def lock_minutes(lock_count: int) -> int:
    """Return how long the lock_count-th lock lasts (0-based): 15, 30, 60, ... at most 24 h."""
    minutes = settings.LOCKOUT_MINUTES * 2 ** min(lock_count, 32)
    return min(minutes, settings.LOCKOUT_MAX_MINUTES)


def submit_code(
    code: str, *, actor: User = None, client_address: str | None = None
) -> SubmitResult:
    """Check a well-formed 6-digit code against the open challenge, offline.

    The installation row is locked for the whole check (django-otp style): concurrent
    submissions queue behind it, so a lock that starts after the 5th wrong code stops
    every later one, and a correct code consumes its challenge exactly once.
    """
    with transaction.atomic():
        installation = lock_installation()
        now = clock.now()
        if installation.locked_until is not None:
            if now < installation.locked_until:
                return SubmitResult(Outcome.LOCKED, locked_until=installation.locked_until)
            # The lock has run out: a fresh set of attempts, but lock_count stays.
            save_installation(installation, locked_until=None, failed_attempts=0)
        challenge = (
            Challenge.objects.select_for_update()
            .filter(installation=installation, state=ChallengeState.OPEN)
            .first()
        )
        if challenge is None:
            return SubmitResult(Outcome.NO_CHALLENGE)
        if not challenge.issued_at <= now < challenge.expires_at:
            return SubmitResult(Outcome.EXPIRED)
        proto, _mac = decode_token(challenge.token)
        expected = code_for(proto, bytes(challenge.key))
        if codes_match(expected, code):
            return _accept(installation, challenge, now, actor, client_address)
        return _refuse(installation, challenge, now, actor, client_address)


def _accept(
    installation: Installation,
    challenge: Challenge,
    now: datetime,
    actor: User,
    client_address: str | None,
) -> SubmitResult:
    challenge.state = ChallengeState.CONSUMED
    challenge.closed_at = now
    challenge.key = CLOSED_KEY
    challenge.save(update_fields=["state", "closed_at", "key"])
    save_installation(
        installation,
        state=RegistrationState.REGISTERED,
        registered_at=now,
        failed_attempts=0,
        lock_count=0,
        locked_until=None,
    )
    audit.record(
        AuditAction.CODE_ACCEPTED,
        at=now,
        actor=actor,
        installation_id=installation.installation_id,
        license_id=challenge.license.license_id,
        node_name=challenge.node_name,
        client_address=client_address,
        purpose=challenge.purpose,
        tag=challenge.tag,
    )
    return SubmitResult(Outcome.ACCEPTED)


def _refuse(
    installation: Installation,
    challenge: Challenge,
    now: datetime,
    actor: User,
    client_address: str | None,
) -> SubmitResult:
    # The row is locked, so this read is current; the write is still an F() increment so
    # the counter can never lose a failure, whatever runs between the read and the write.
    failed = installation.failed_attempts + 1
    changes: dict[str, object] = {"failed_attempts": F("failed_attempts") + 1}
    locked_until = None
    if failed >= settings.LOCKOUT_MAX_ATTEMPTS:
        locked_until = now + timedelta(minutes=lock_minutes(installation.lock_count))
        changes.update(locked_until=locked_until, lock_count=installation.lock_count + 1)
    save_installation(installation, **changes)
    # The failure above must stand even if writing the audit entry fails, so the entry
    # goes in a savepoint of its own.
    try:
        with transaction.atomic():
            audit.record(
                AuditAction.LOCKED if locked_until else AuditAction.CODE_REFUSED,
                at=now,
                actor=actor,
                installation_id=installation.installation_id,
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

"""The phone scan: read the token, apply the license rules and the binding rules, record
the binding, and show the 6-digit code.

Binding rules, in plain words:
- one license, one project: a license bound to an installation that support staff have
  not unbound cannot be bound to another ("The maximum license number has been reached.");
- a challenge naming more nodes than the license's max_nodes is refused (License Exhausted);
- revoked and expired licenses are refused, and so is a license that was renewed (its
  binding moved to the renewal when the renewal was issued).

Before any of them, the token itself: its MAC must check under the license's secret, and
its times must keep to this service's own rules (CHALLENGE_TTL_SECONDS, which the console
also uses): a lifetime no longer than that, and issued no more than that far in this
service's future. A token that names a license the registry does not have is answered
exactly like one whose MAC is wrong, so made-up tokens cannot tell which license ids exist.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _

from registration.authority import chain
from registration.authority.chain import ChainVerdict
from registration.authority.models import (
    AuditAction,
    AuditEvent,
    Binding,
    BindingState,
    IssuedLicense,
)
from registration.authority.phone_read import LICENSE_FIELDS, active_binding
from registration.protocol.causes import (
    Cause,
    license_exhausted,
    license_expired,
)
from registration.protocol.challenge import (
    Challenge,
    ChallengeError,
    Purpose,
    authority_key,
    chain_value,
    code_for,
    decode_token,
    next_chain,
    verify_mac,
)
from registration.protocol.keys import load_authority_key
from registration.protocol.license import LicenseError, license_secret
from registration.protocol.text import format_minutes
from registration.protocol.validity import is_expired

log = logging.getLogger(__name__)


class ProblemCode(StrEnum):
    """Why the phone page shows no code: stable, language-independent (the audit keeps it)."""

    INVALID_TOKEN = "invalid_token"
    UNKNOWN_LICENSE = "unknown_license"
    CHALLENGE_EXPIRED = "challenge_expired"
    CHALLENGE_LIFETIME = "challenge_lifetime"
    REVOKED = "revoked"
    LICENSE_EXPIRED = "license_expired"
    LICENSE_EXHAUSTED = "license_exhausted"
    BOUND_ELSEWHERE = "bound_elsewhere"
    INSTALLATION_COPIED = "installation_copied"
    RENEWED = "renewed"
    # A release (authority/release.py).
    NOT_BOUND = "not_bound"
    RELEASE_UNPROVEN = "release_unproven"
    MOVES_USED_UP = "moves_used_up"
    RELEASE_NOT_LIVE = "release_not_live"
    # A chain value the installation never had (chain.ChainVerdict.UNKNOWN).
    NOT_THIS_INSTALLATION = "not_this_installation"
    # A token made before the installation moved on (chain.ChainVerdict.STALE).
    CHALLENGE_STALE = "challenge_stale"
    # A version-1 token for a binding a version-2 console has used (chain.ChainVerdict.DOWNGRADE).
    DOWNGRADE = "downgrade"
    # A binding a version-1 console made cannot be released by self-service.
    RELEASE_NEEDS_SUPPORT = "release_needs_support"


@dataclass(frozen=True)
class Problem:
    """Why the phone page shows no code: a title, detail lines and an HTTP status."""

    title: str
    details: tuple[str, ...] = ()
    status: int = 400
    code: ProblemCode = ProblemCode.INVALID_TOKEN

    @classmethod
    def from_cause(cls, cause: Cause, code: ProblemCode, status: int) -> Problem:
        """The console's cause, in the console's words (one wording for both sides)."""
        return cls(cause.title, cause.details, status, code)


@dataclass(frozen=True)
class PhoneResult:
    challenge: Challenge | None = None
    license: IssuedLicense | None = None
    binding: Binding | None = None
    code: str = ""
    problems: tuple[Problem, ...] = field(default_factory=tuple)
    # Said beside the code (a version-1 token: no copy check was possible).
    notes: tuple[str, ...] = ()
    # A release QR code freed the license (authority/release.py).
    released: bool = False

    @property
    def ok(self) -> bool:
        return bool(self.code) and not self.problems

    @property
    def status(self) -> int:
        return max((p.status for p in self.problems), default=200)


@dataclass(frozen=True)
class Scan:
    """A token whose MAC checked: its challenge, its key K, the license's rows, and the
    console's chain value (unmasked under K; empty in version 1)."""

    challenge: Challenge
    key: bytes
    issued: IssuedLicense
    active: Binding | None
    chain: bytes = b""


def _invalid(detail: str, code: ProblemCode = ProblemCode.INVALID_TOKEN) -> PhoneResult:
    return PhoneResult(problems=(Problem(_("This QR code is not valid."), (detail,), 400, code),))


def unverified(code: ProblemCode) -> PhoneResult:
    """A token whose MAC is wrong, or whose license is unknown so its MAC cannot be checked:
    one answer for both (same status, same words), so a made-up token does not tell
    whether its license id is in the registry. The server log tells them apart."""
    return _invalid(
        _(
            "The QR code has been altered, or its license is not in the vendor's registry. "
            "Scan it again from the server; if it is refused again, contact the vendor."
        ),
        code,
    )


# The MAC secret of a license the registry does not have (see read_token).
_NO_LICENSE_SECRET = bytes(32)


def verify_for_phone(
    token: str, *, now: datetime, client_address: str | None = None
) -> PhoneResult:
    """Check a scanned token, apply the binding rules, and return the 6-digit code."""
    scan = read_token(token)
    if isinstance(scan, PhoneResult):
        return scan
    timing = _timing_problem(scan.challenge, now)
    if timing is not None:
        return PhoneResult(scan.challenge, problems=(timing,))
    if scan.challenge.purpose == Purpose.RELEASE:
        if scan.challenge.version < 2:
            # Only consoles of version 2 make release codes: they carry the chain value.
            return _invalid(_("Scan the QR code again, or copy the whole link."))
        # Imported here: release.py builds on this module's results and problems.
        from registration.authority.release import release_for_phone

        return release_for_phone(scan, now, client_address)
    if _is_reload(scan, now):
        # The same code again, no write: the binding is this installation's, so no other can
        # hold the license; only the license row's own rules needed checking (a revoke
        # still applies).
        code = code_for(scan.challenge, scan.key)
        return PhoneResult(scan.challenge, scan.issued, scan.active, code, notes=_notes(scan))
    return record_binding(scan, now, client_address)


def _notes(scan: Scan) -> tuple[str, ...]:
    if scan.challenge.version < 2:
        return (
            _(
                "No copy check was possible: this server runs an older version of the "
                "product. Ask its administrator to upgrade."
            ),
        )
    return ()


def read_token(token: str) -> Scan | PhoneResult:
    """Decode the token and check its MAC under K; a PhoneResult says why not."""
    try:
        challenge, mac = decode_token(token)
    except ChallengeError as exc:
        log.info("Phone token refused: %s", exc)
        return _invalid(_("Scan the QR code again, or copy the whole link."))
    key_file = settings.AUTHORITY_PRIVATE_KEY_FILES.get(challenge.kid)
    if key_file is None:
        return _invalid(_("This QR code was not made for this verification service."))
    # The license's own secret keys the MAC, so the license comes first: one read fetches
    # it with its active binding, which is all a reload of this page needs.
    active = active_binding(challenge.license_id)
    issued = active.license if active is not None else _issued(challenge)
    # An unknown license goes through the same key derivation and MAC check, under a
    # secret no license has, so it costs what a known one costs: the time of the answer
    # does not tell which license ids exist either.
    secret = license_secret(issued.text) if issued is not None else _NO_LICENSE_SECRET
    try:
        key = authority_key(challenge, load_authority_key(key_file), secret)
    except (ChallengeError, LicenseError) as exc:
        # A server key no console makes (a low-order point): as good as a wrong MAC.
        log.warning("Phone token for license %s refused: %s", challenge.license_id, exc)
        return unverified(ProblemCode.INVALID_TOKEN)
    if not verify_mac(challenge, mac, key) or issued is None:
        if issued is None:
            log.warning("Phone token for license %s, not in the registry", challenge.license_id)
            return unverified(ProblemCode.UNKNOWN_LICENSE)
        # Altered on the way, or made by someone who does not hold the license file.
        log.warning("Phone token with a wrong MAC for license %s", challenge.license_id)
        return unverified(ProblemCode.INVALID_TOKEN)
    return Scan(challenge, key, issued, active, chain_value(challenge, key))


def _timing_problem(challenge: Challenge, now: datetime) -> Problem | None:
    """The token's times against this service's rules and clock (the console's clock made
    them). One setting, CHALLENGE_TTL_SECONDS, bounds both a QR's lifetime and how far the
    two clocks may disagree."""
    ttl = settings.CHALLENGE_TTL_SECONDS
    lifetime = timedelta(seconds=ttl)
    # The console makes every QR last exactly CHALLENGE_TTL_SECONDS; a longer one (or one
    # that ends before it starts) was made by hand, or by a console configured past what
    # this service allows.
    if not timedelta(0) < challenge.expires_at - challenge.issued_at <= lifetime:
        return Problem(
            _("This QR code is not valid."),
            (
                _(
                    "This QR code's lifetime is not one the verification service accepts "
                    "(at most %(seconds)s seconds)."
                )
                % {"seconds": ttl},
            ),
            400,
            ProblemCode.CHALLENGE_LIFETIME,
        )
    if now >= challenge.expires_at:
        return Problem(
            _("This QR code has expired."),
            (scan_again(challenge),),
            410,
            ProblemCode.CHALLENGE_EXPIRED,
        )
    # A QR from the future means the two clocks disagree by more than a QR's lifetime.
    if now < challenge.issued_at - lifetime:
        return Problem(
            _("This QR code is not valid."),
            (_("The server's clock is ahead of the verification service's clock."),),
        )
    return None


def scan_again(challenge: Challenge) -> str:
    """Say how to get a new QR code of the same kind."""
    if challenge.purpose == Purpose.RELEASE:
        return _(
            "Release the license again on the server's Registration page and scan the new QR code."
        )
    return _("Click Refresh on the server and scan the new QR code.")


def challenge_stale(challenge: Challenge) -> Problem:
    """A token made before the installation moved on: superseded, reloaded, reopened."""
    return Problem(
        _("This QR code is out of date."),
        (_("The server has registered again since it was made."), scan_again(challenge)),
        409,
        ProblemCode.CHALLENGE_STALE,
    )


def _is_reload(scan: Scan, now: datetime) -> bool:
    """A reload of the page for the challenge whose code was last shown."""
    return (
        scan.active is not None
        and scan.active.installation_id == scan.challenge.installation_id
        and scan.active.last_nonce == scan.challenge.nonce.hex()
        and scan.active.copied_at is None
        and scan.chain.hex() not in scan.active.chain_refused
        and not license_problems(scan.challenge, scan.issued, now)
    )


def record_binding(scan: Scan, now: datetime, client_address: str | None) -> PhoneResult:
    """Apply the binding rules under the license's row lock; bind, or say why not."""
    challenge = scan.challenge
    who = {
        "at": now,
        "installation_id": challenge.installation_id,
        "license_id": challenge.license_id,
        "node_name": challenge.node_name,
        "client_address": client_address,
    }
    with transaction.atomic():
        # Lock the license row: two scans for one license bind one after the other.
        issued = (
            IssuedLicense.objects.select_for_update()
            .filter(license_id=challenge.license_id)
            .first()
        )
        if issued is None:  # deleted since the token was read: as if never there
            return unverified(ProblemCode.UNKNOWN_LICENSE)
        active = issued.bindings.filter(state=BindingState.ACTIVE).first()
        verdict = chain.classify(active, challenge, scan.chain)
        problems = binding_problems(challenge, issued, active, verdict, now)
        if verdict == ChainVerdict.COPY:
            # The binding stays copied, with the copy's value, until support resolves it.
            chain.mark_copied(active, scan.chain, now)
            active.save(update_fields=["copied_at", "copy_chain", "copy_shown_at"])
            AuditEvent.record(AuditAction.COPY_DETECTED, **who, copy_chain=active.copy_chain)
        if problems:
            AuditEvent.record(
                AuditAction.BINDING_REFUSED, **who, problems=[str(p.code) for p in problems]
            )
            return PhoneResult(challenge, issued, problems=problems)
        code = code_for(challenge, scan.key)
        binding = _bind(issued, active, challenge, scan.chain, verdict, code, now)
        AuditEvent.record(
            AuditAction.CODE_SHOWN,
            **who,
            purpose=challenge.purpose.label,
            tag=challenge.tag,
            copy_check="not_possible" if verdict == ChainVerdict.NOT_CHECKED else str(verdict),
        )
    return PhoneResult(challenge, issued, binding, code, notes=_notes(scan))


def _bind(
    issued: IssuedLicense,
    binding: Binding | None,
    challenge: Challenge,
    value: bytes,
    verdict: ChainVerdict,
    code: str,
    now: datetime,
) -> Binding:
    """Create the license's active binding, or move it on to this challenge."""
    if binding is None:
        binding = Binding(
            license=issued, installation_id=challenge.installation_id, first_bound=now
        )
    binding.node_count = challenge.node_count
    binding.last_verified = now
    binding.last_nonce = challenge.nonce.hex()
    if verdict != ChainVerdict.NOT_CHECKED:
        chain.advance(binding, value, verdict, now)
        chain.remember_code(binding, next_chain(challenge, value, code), now)
    binding.save()
    return binding


def _issued(challenge: Challenge) -> IssuedLicense | None:
    found = IssuedLicense.objects.only(*LICENSE_FIELDS - {"id"}).filter(
        license_id=challenge.license_id
    )[:1]
    return next(iter(found), None)


def binding_problems(
    challenge: Challenge,
    issued: IssuedLicense,
    active: Binding | None,
    verdict: ChainVerdict,
    now: datetime,
) -> tuple[Problem, ...]:
    """Every binding rule the challenge breaks, given the license's active binding."""
    problems = list(license_problems(challenge, issued, now))
    if active is not None and active.installation_id != challenge.installation_id:
        problems.append(
            Problem(
                _("The maximum license number has been reached."),
                (
                    _("This license is registered to another server since %(date)s.")
                    % {"date": f"{format_minutes(active.first_bound)} UTC"},
                    _("Ask the vendor's support staff to unbind it before moving servers."),
                ),
                409,
                ProblemCode.BOUND_ELSEWHERE,
            )
        )
    if active is None and issued.renewals.filter(revoked_at__isnull=True).exists():
        # Its binding moved to the renewal (issuing.move_binding_to_renewal): one license,
        # one project, so the renewed license is not bound again while a renewal is in
        # force (revoking the renewal gives the binding back: support.revoke).
        problems.append(
            Problem(
                _("This license was renewed."),
                (_("Upload the renewal the vendor sent, then scan its QR code."),),
                409,
                ProblemCode.RENEWED,
            )
        )
    if verdict in (ChainVerdict.COPY, ChainVerdict.REFUSED):
        assert active is not None
        problems.append(installation_copied(chain.other_copy_registered_at(active)))
    if verdict == ChainVerdict.UNKNOWN:
        problems.append(not_this_installation())
    if verdict == ChainVerdict.STALE:
        problems.append(challenge_stale(challenge))
    if verdict == ChainVerdict.DOWNGRADE:
        problems.append(
            Problem(
                _("This QR code was made by an older version of the product."),
                (
                    _(
                        "This server registered with a newer version before. Upgrade every "
                        "node of the server, or scan the QR code of an upgraded node. If no "
                        "node runs an older version, ask the vendor's support staff."
                    ),
                ),
                409,
                ProblemCode.DOWNGRADE,
            )
        )
    return tuple(problems)


def not_this_installation() -> Problem:
    """A chain value the installation never had: the token was made from the license file
    and the installation id, not by the installation (chain.ChainVerdict.UNKNOWN)."""
    return Problem(
        _("This QR code does not come from the server the license is registered to."),
        (
            _(
                "Scan the QR code on that server's Registration page. If it does come from "
                "there, ask the vendor's support staff to check the license's binding."
            ),
        ),
        403,
        ProblemCode.NOT_THIS_INSTALLATION,
    )


def installation_copied(other_registered_at: datetime) -> Problem:
    """Another copy of this installation (a cloned database or VM) registered since."""
    return Problem(
        _("Installation Copied"),
        (
            _(
                "Another copy of this installation registered on %(date)s UTC. "
                "Ask support to choose the copy to keep."
            )
            % {"date": format_minutes(other_registered_at)},
        ),
        409,
        ProblemCode.INSTALLATION_COPIED,
    )


def license_problems(
    challenge: Challenge, issued: IssuedLicense, now: datetime
) -> tuple[Problem, ...]:
    """The rules that need only the license row: revoked, expired, too many nodes."""
    problems = []
    if issued.revoked_at is not None:
        problems.append(Problem(_("This license has been revoked."), (), 403, ProblemCode.REVOKED))
    if is_expired(issued.expires_at, now):
        cause = license_expired(issued.expires_at)
        problems.append(Problem.from_cause(cause, ProblemCode.LICENSE_EXPIRED, 403))
    if challenge.node_count > issued.max_nodes:
        cause = license_exhausted(challenge.node_count, issued.max_nodes)
        problems.append(Problem.from_cause(cause, ProblemCode.LICENSE_EXHAUSTED, 403))
    return tuple(problems)

"""The vendor's side: the issued-license registry, the binding rules, the phone page's
verification, and the support staff's unbind and revoke.

Binding rules, in plain words:
- one license, one project: a license bound to an installation that support staff have
  not unbound cannot be bound to another ("The maximum license number has been reached.");
- a challenge naming more nodes than the license's max_nodes is refused (License Exhausted);
- revoked and expired licenses are refused.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy

from registration import audit
from registration.challenge import (
    Challenge,
    ChallengeError,
    authority_key,
    code_for,
    decode_token,
    verify_mac,
)
from registration.keys import load_authority_key
from registration.license import License, LicenseError, license_secret
from registration.models import AuditAction, Binding, BindingState, IssuedLicense

log = logging.getLogger(__name__)
User = AbstractBaseUser | AnonymousUser | None


def record_issued_license(
    lic: License, text: str, *, at: datetime, actor: User = None
) -> IssuedLicense:
    """Add a signed license to the registry the verification service reads."""
    with transaction.atomic():
        row = IssuedLicense.objects.create(**IssuedLicense.values_from(lic, text))
        audit.record(
            AuditAction.LICENSE_ISSUED,
            at=at,
            actor=actor,
            license_id=lic.license_id,
            company=lic.company,
            project_name=lic.project_name,
        )
    return row


@dataclass(frozen=True)
class Problem:
    """Why the phone page shows no code: a title, detail lines and an HTTP status."""

    title: str
    details: tuple[str, ...] = ()
    status: int = 400
    code: str = "invalid_token"  # stable, language-independent: what the audit log keeps


@dataclass(frozen=True)
class PhoneResult:
    challenge: Challenge | None = None
    license: IssuedLicense | None = None
    binding: Binding | None = None
    code: str = ""
    problems: tuple[Problem, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return bool(self.code) and not self.problems

    @property
    def status(self) -> int:
        return max((p.status for p in self.problems), default=200)


def _invalid(detail: str) -> PhoneResult:
    return PhoneResult(problems=(Problem(_("This QR code is not valid."), (detail,), 400),))


def verify_for_phone(
    token: str, *, now: datetime, client_address: str | None = None
) -> PhoneResult:
    """Check a scanned token, apply the binding rules, and return the 6-digit code."""
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
    active = _active_binding(challenge)
    issued = active.license if active is not None else _issued(challenge)
    if issued is None:
        return PhoneResult(challenge, problems=(_UNKNOWN_LICENSE,))
    try:
        secret = license_secret(issued.text)
        key = authority_key(challenge, load_authority_key(key_file), secret)
    except (ChallengeError, LicenseError):
        return _invalid(_("Scan the QR code again, or copy the whole link."))
    if not verify_mac(challenge, mac, key):
        # Altered on the way, or made by someone who does not hold the license file.
        log.warning("Phone token with a wrong MAC for license %s", challenge.license_id)
        return _invalid(_("The QR code has been altered. Scan it again from the server."))
    if now >= challenge.expires_at:
        return PhoneResult(
            challenge,
            problems=(
                Problem(
                    _("This QR code has expired."),
                    (_("Click Refresh on the server and scan the new QR code."),),
                    410,
                    "challenge_expired",
                ),
            ),
        )
    # A QR from the future means the two clocks disagree by more than a QR's lifetime.
    if now < challenge.issued_at - timedelta(seconds=settings.CHALLENGE_TTL_SECONDS):
        return _invalid(_("The server's clock is ahead of the verification service's clock."))

    # A reload of the page for a challenge already shown: the same code, no write. The
    # binding is this installation's, so no other can hold the license; only the license
    # row's own rules need checking, and a revoke still applies.
    if (
        active is not None
        and active.installation_id == challenge.installation_id
        and active.last_nonce == challenge.nonce.hex()
        and not _license_problems(challenge, issued, now)
    ):
        return PhoneResult(challenge, issued, active, code_for(challenge, key))

    with transaction.atomic():
        # Lock the license row: two scans for one license bind one after the other.
        issued = (
            IssuedLicense.objects.select_for_update()
            .filter(license_id=challenge.license_id)
            .first()
        )
        problems = _binding_problems(challenge, issued, now)
        if problems:
            audit.record(
                AuditAction.BINDING_REFUSED,
                at=now,
                installation_id=challenge.installation_id,
                license_id=challenge.license_id,
                node_name=challenge.node_name,
                client_address=client_address,
                problems=[p.code for p in problems],
            )
            return PhoneResult(challenge, issued, problems=problems)
        assert issued is not None
        binding = issued.bindings.filter(state=BindingState.ACTIVE).first()
        if binding is None:
            binding = Binding.objects.create(
                license=issued,
                installation_id=challenge.installation_id,
                node_count=challenge.node_count,
                first_bound=now,
                last_verified=now,
                last_nonce=challenge.nonce.hex(),
            )
        else:
            binding.node_count = challenge.node_count
            binding.last_verified = now
            binding.last_nonce = challenge.nonce.hex()
            binding.save(update_fields=["node_count", "last_verified", "last_nonce"])
        audit.record(
            AuditAction.CODE_SHOWN,
            at=now,
            installation_id=challenge.installation_id,
            license_id=challenge.license_id,
            node_name=challenge.node_name,
            client_address=client_address,
            purpose=challenge.purpose.label,
            tag=challenge.tag,
        )
    return PhoneResult(challenge, issued, binding, code_for(challenge, key))


_UNKNOWN_LICENSE = Problem(
    _lazy("License content is incorrect"),
    (_lazy("This license is not in the vendor's registry."),),
    404,
    "unknown_license",
)
# What the phone page, the MAC and the license rules read of a license.
_LICENSE_FIELDS = (
    "license_id",
    "company",
    "project_name",
    "expires_at",
    "max_nodes",
    "revoked_at",
    "text",
)


def _active_binding(challenge: Challenge) -> Binding | None:
    """Return the license's active binding with the license (one indexed read)."""
    # At most one active binding per license (a constraint), so no ORDER BY is needed.
    found = (
        Binding.objects.select_related("license")
        .only(
            "installation_id",
            "state",
            "last_nonce",
            *(f"license__{name}" for name in _LICENSE_FIELDS),
        )
        .filter(license__license_id=challenge.license_id, state=BindingState.ACTIVE)[:1]
    )
    return next(iter(found), None)


def _issued(challenge: Challenge) -> IssuedLicense | None:
    found = IssuedLicense.objects.only(*_LICENSE_FIELDS).filter(license_id=challenge.license_id)[:1]
    return next(iter(found), None)


def _binding_problems(
    challenge: Challenge, issued: IssuedLicense | None, now: datetime
) -> tuple[Problem, ...]:
    """Every binding rule the challenge breaks (one query: who else holds the license)."""
    if issued is None:
        return (_UNKNOWN_LICENSE,)
    problems = list(_license_problems(challenge, issued, now))
    holder = (
        issued.bindings.filter(state=BindingState.ACTIVE)
        .exclude(installation_id=challenge.installation_id)
        .first()
    )
    if holder is not None:
        problems.append(
            Problem(
                _("The maximum license number has been reached."),
                (
                    _("This license is registered to another server since %(date)s.")
                    % {"date": holder.first_bound.strftime("%Y/%m/%d %H:%M UTC")},
                    _("Ask the vendor's support staff to unbind it before moving servers."),
                ),
                409,
                "bound_elsewhere",
            )
        )
    return tuple(problems)


def _license_problems(
    challenge: Challenge, issued: IssuedLicense, now: datetime
) -> tuple[Problem, ...]:
    """The rules that need only the license row: revoked, expired, too many nodes."""
    problems = []
    if issued.revoked_at is not None:
        problems.append(Problem(_("This license has been revoked."), (), 403, "revoked"))
    if now.date() > issued.expires_at:
        problems.append(
            Problem(
                _("License Expired"),
                (
                    _("Expiration date: %(date)s")
                    % {"date": issued.expires_at.strftime("%Y/%m/%d")},
                ),
                403,
                "license_expired",
            )
        )
    if challenge.node_count > issued.max_nodes:
        problems.append(
            Problem(
                _("License Exhausted"),
                (
                    _(
                        "Cluster nodes exceed the maximum number of nodes that can be "
                        "registered through the license."
                    ),
                    _("Nodes: %(n)s, maximum: %(max)s")
                    % {"n": challenge.node_count, "max": issued.max_nodes},
                ),
                403,
                "license_exhausted",
            )
        )
    return tuple(problems)


def unbind(binding_id: int, *, actor: User, reason: str, now: datetime) -> Binding:
    """Release a license from its installation so another server can register it."""
    with transaction.atomic():
        binding = Binding.objects.select_for_update().select_related("license").get(pk=binding_id)
        if binding.state != BindingState.ACTIVE:
            return binding
        binding.state = BindingState.UNBOUND
        binding.unbound_at = now
        binding.unbound_by = actor if actor is not None and actor.is_authenticated else None
        binding.unbound_reason = reason
        binding.save(update_fields=["state", "unbound_at", "unbound_by", "unbound_reason"])
        audit.record(
            AuditAction.UNBIND,
            at=now,
            actor=actor,
            installation_id=binding.installation_id,
            license_id=binding.license.license_id,
            reason=reason,
        )
    return binding


def revoke(license_pk: int, *, actor: User, reason: str, now: datetime) -> IssuedLicense:
    """Revoke an issued license: the verification service refuses it from now on."""
    with transaction.atomic():
        issued = IssuedLicense.objects.select_for_update().get(pk=license_pk)
        if issued.revoked_at is not None:
            return issued
        issued.revoked_at = now
        issued.revoked_reason = reason
        issued.save(update_fields=["revoked_at", "revoked_reason"])
        audit.record(
            AuditAction.REVOKE, at=now, actor=actor, license_id=issued.license_id, reason=reason
        )
    return issued

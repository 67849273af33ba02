"""A release from the phone: an installation frees its license for a move to another
server, without a support ticket (the console's side: flows/release.py).

Rules, in plain words:
- only the live installation releases: its release QR code must carry the chain value
  a code shown since the tip leads to (the tip itself only when no code has been shown
  since), so the one that typed the last code shown releases. A stale copy carries one
  the installation had before, and is caught as a copy (Installation Copied), as its
  registration would be; a holder of the license file alone knows no value at all (the
  tokens carry it masked under their keys), and is refused without marking anything;
- a license moves this way at most SELF_SERVICE_MOVES_PER_YEAR times in any 365 days,
  counted over the license's whole lineage (the licenses it renews and their renewals: a
  renewal does not start the count again); beyond that, and for a server that is gone,
  support staff unbind it (support.unbind);
- the release ends the binding (state Released); the license's next scan, from the new
  server or from this one, makes a new binding;
- the license's own rules (revoked, expired, node count) do not stop a release: freeing
  a license gives nobody more than they had.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from registration.authority import chain
from registration.authority.binding import (
    PhoneResult,
    Problem,
    ProblemCode,
    Scan,
    challenge_stale,
    installation_copied,
    unverified,
)
from registration.authority.chain import ChainVerdict
from registration.authority.models import (
    AuditAction,
    AuditEvent,
    Binding,
    BindingState,
    IssuedLicense,
)
from registration.protocol.text import format_minutes

# Self-service moves count in a sliding window of this length.
MOVES_WINDOW = timedelta(days=365)
RELEASED_REASON = "Released by the installation"


def release_for_phone(scan: Scan, now: datetime, client_address: str | None) -> PhoneResult:
    """Free the scanned license for another server, or say why not (row lock held)."""
    challenge = scan.challenge
    who = {
        "at": now,
        "installation_id": challenge.installation_id,
        "license_id": challenge.license_id,
        "node_name": challenge.node_name,
        "client_address": client_address,
    }
    with transaction.atomic():
        # The license row first, as a scan takes it: a release and a scan never interleave.
        issued = (
            IssuedLicense.objects.select_for_update()
            .filter(license_id=challenge.license_id)
            .first()
        )
        if issued is None:  # deleted since the token was read: as if never there
            return unverified(ProblemCode.UNKNOWN_LICENSE)
        # The binding row too, as every writer of a binding locks it (support.unbind
        # locks it with its license): a release never writes over an unbind.
        active = issued.bindings.select_for_update().filter(state=BindingState.ACTIVE).first()
        if active is None and _released_by(issued, challenge):
            # A reload of the page that released it: the same answer, nothing written.
            return PhoneResult(challenge, issued, released=True)
        verdict = chain.classify(active, challenge, scan.chain)
        problem = _release_problem(issued, active, scan, verdict, now)
        if problem is not None:
            # Only a value the installation had before marks the binding, as in a
            # registration: not one support already refused (the kept copy goes on).
            if verdict == ChainVerdict.COPY:
                chain.mark_copied(active, scan.chain, now)
                active.save(update_fields=["copied_at", "copy_chain", "copy_shown_at"])
                AuditEvent.record(AuditAction.COPY_DETECTED, **who, copy_chain=active.copy_chain)
            AuditEvent.record(
                AuditAction.BINDING_REFUSED, **who, purpose="release", problems=[str(problem.code)]
            )
            return PhoneResult(challenge, issued, problems=(problem,))
        active.state = BindingState.RELEASED
        active.unbound_at = now
        active.unbound_reason = RELEASED_REASON
        active.last_verified = now
        active.last_nonce = challenge.nonce.hex()
        active.save(
            update_fields=["state", "unbound_at", "unbound_reason", "last_verified", "last_nonce"]
        )
        AuditEvent.record(
            AuditAction.RELEASED,
            **who,
            binding=active.pk,
            moves_in_365_days=moves_in_window(issued, now),
        )
    return PhoneResult(challenge, issued, active, released=True)


def moves_in_window(issued: IssuedLicense, now: datetime) -> int:
    """Return how many times the license, or another of its lineage (renewed or renewing),
    was released in the 365 days up to now (a renewal carries the binding over, and the
    count with it)."""
    return Binding.objects.filter(
        license_id__in=_lineage(issued),
        state=BindingState.RELEASED,
        unbound_at__gt=now - MOVES_WINDOW,
    ).count()


def _lineage(issued: IssuedLicense) -> set[int]:
    """Return the primary keys of the license, the licenses it renews and the renewals of
    any of them (revoked ones too: a revoked renewal gives its binding back, and its
    moves with it)."""
    keys: set[int] = {issued.pk}
    frontier = {issued.pk}
    # Bounded: no contract is renewed this often; the bound only stops a corrupted one.
    while frontier and len(keys) < 1000:
        rows = IssuedLicense.objects.filter(Q(pk__in=frontier) | Q(renews_id__in=frontier))
        found = {key for pair in rows.values_list("pk", "renews_id") for key in pair if key}
        frontier = found - keys
        keys |= found
    return keys


def _released_by(issued: IssuedLicense, challenge) -> bool:
    return issued.bindings.filter(
        state=BindingState.RELEASED,
        installation_id=challenge.installation_id,
        last_nonce=challenge.nonce.hex(),
    ).exists()


def _release_problem(
    issued: IssuedLicense, active: Binding | None, scan: Scan, verdict: ChainVerdict, now: datetime
) -> Problem | None:
    """The one reason this installation may not release the license now, if any."""
    challenge = scan.challenge
    if active is None and issued.renewals.filter(revoked_at__isnull=True).exists():
        # The binding moved to the renewal when it was issued (issuing.py): this server
        # still has the renewed file installed.
        return Problem(
            _("This license was renewed."),
            (
                _(
                    "Upload the renewal the vendor sent on this server, then release the "
                    "license again."
                ),
            ),
            409,
            ProblemCode.RENEWED,
        )
    if active is None:
        return Problem(
            _("Nothing to release"),
            (
                _("This license is not registered to any server."),
                _("Register the new server with the same Container.lic."),
            ),
            409,
            ProblemCode.NOT_BOUND,
        )
    if active.installation_id != challenge.installation_id:
        return Problem(
            _("This license is registered to another server."),
            (
                _("It is registered to another server since %(date)s.")
                % {"date": f"{format_minutes(active.first_bound)} UTC"},
                _(
                    "Only that server can release it. If that server is gone, ask the "
                    "vendor's support staff to unbind it."
                ),
            ),
            409,
            ProblemCode.BOUND_ELSEWHERE,
        )
    if verdict in (ChainVerdict.REFUSED, ChainVerdict.COPY):
        return installation_copied(chain.other_copy_registered_at(active))
    if verdict == ChainVerdict.STALE:
        return challenge_stale(challenge)
    if verdict == ChainVerdict.UNKNOWN:
        # A value this installation never had: made from the license file and the
        # installation id (both seen by many), not by the installation. Not a copy, so the
        # binding is not marked: the live installation can still release it.
        return Problem(
            _("This QR code does not come from the server the license is registered to."),
            (
                _(
                    "Release the license on that server's Registration page and scan the "
                    "QR code it shows."
                ),
            ),
            403,
            ProblemCode.RELEASE_NOT_LIVE,
        )
    if active.chain_adopted_at is not None or not active.chain_tip:
        # A version-1 console bound it: no value proves which server holds it, not even
        # after a version-2 console adopted one (chain.advance).
        return Problem(
            _("This license cannot be released from here."),
            (
                _(
                    "It was registered by an older version of the product, which cannot "
                    "prove which server holds it."
                ),
                _("Ask the vendor's support staff to unbind it."),
            ),
            409,
            ProblemCode.RELEASE_NEEDS_SUPPORT,
        )
    if verdict == ChainVerdict.AT_TIP and active.chain_successors:
        # A code was shown since this value and not typed here: either the code was never
        # typed, or another copy typed it and has not scanned since. Only the
        # installation that typed the last code shown releases, so this one registers
        # once more first.
        return Problem(
            _("This server cannot release the license yet."),
            (
                _(
                    "Register this server once more (Refresh, scan, type the code), then "
                    "release the license."
                ),
            ),
            409,
            ProblemCode.RELEASE_UNPROVEN,
        )
    moves = moves_in_window(issued, now)
    if moves >= settings.SELF_SERVICE_MOVES_PER_YEAR:
        return Problem(
            _("No self-service move left"),
            (
                ngettext(
                    "This license has moved to another server %(moves)s time in the last "
                    "365 days, the most it may without support.",
                    "This license has moved to another server %(moves)s times in the last "
                    "365 days, the most it may without support.",
                    moves,
                )
                % {"moves": moves},
                _("Ask the vendor's support staff to unbind it."),
            ),
            409,
            ProblemCode.MOVES_USED_UP,
        )
    return None

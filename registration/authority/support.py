"""What the vendor's support staff do in Django admin: unbind a license from a server (so
another can register it), revoke a license, and choose which copy of a copied installation
goes on. Each with a reason, in the audit log."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction

from registration.abstract import Actor
from registration.authority import chain
from registration.authority.issuing import move_active_binding
from registration.authority.models import (
    AuditAction,
    AuditEvent,
    Binding,
    BindingState,
    IssuedLicense,
)


def unbind(binding_id: int, *, actor: Actor, reason: str, now: datetime) -> Binding:
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
        AuditEvent.record(
            AuditAction.UNBIND,
            at=now,
            actor=actor,
            installation_id=binding.installation_id,
            license_id=binding.license.license_id,
            reason=reason,
        )
    return binding


def revoke(license_pk: int, *, actor: Actor, reason: str, now: datetime) -> IssuedLicense:
    """Revoke an issued license: the verification service refuses it from now on."""
    with transaction.atomic():
        issued = IssuedLicense.objects.select_for_update().get(pk=license_pk)
        if issued.revoked_at is not None:
            return issued
        issued.revoked_at = now
        issued.revoked_reason = reason
        issued.save(update_fields=["revoked_at", "revoked_reason"])
        AuditEvent.record(
            AuditAction.REVOKE, at=now, actor=actor, license_id=issued.license_id, reason=reason
        )
        if issued.renews_id is not None:
            _give_binding_back(issued, actor=actor, now=now)
    return issued


def _give_binding_back(renewal: IssuedLicense, *, actor: Actor, now: datetime) -> None:
    """Move a revoked renewal's active binding back to the license it renewed.

    A renewal revoked (signed by mistake, say) leaves the customer where they were before
    it: their installation stays registered under the license it renewed, with its whole
    registration chain, and that license can be renewed again. Nothing moves when the
    renewed license is revoked too.
    """
    renewed = IssuedLicense.objects.select_for_update().get(pk=renewal.renews_id)
    if renewed.revoked_at is not None:
        return
    move_active_binding(
        renewal,
        renewed,
        AuditAction.BINDING_RETURNED,
        actor=actor,
        now=now,
        revoked_renewal=str(renewal.license_id),
    )


def resolve_copy(
    binding_id: int, *, keep_tip: bool, actor: Actor, reason: str, now: datetime
) -> Binding:
    """Choose which copy of a copied installation goes on; the other is refused from now on.

    keep_tip keeps the copy whose value is the binding's tip (the one that registered last
    before the other showed up); otherwise the copy that was caught goes on.
    """
    with transaction.atomic():
        # The license row first, as a scan takes it: a scan and a resolution never interleave.
        binding = Binding.objects.select_related("license").get(pk=binding_id)
        IssuedLicense.objects.select_for_update().get(pk=binding.license_id)
        binding = Binding.objects.select_for_update().select_related("license").get(pk=binding_id)
        if binding.copied_at is None:
            return binding
        kept, refused = (
            (binding.chain_tip, binding.copy_chain)
            if keep_tip
            else (binding.copy_chain, binding.chain_tip)
        )
        chain.keep_copy(binding, keep_tip)
        binding.save()
        AuditEvent.record(
            AuditAction.COPY_RESOLVED,
            at=now,
            actor=actor,
            installation_id=binding.installation_id,
            license_id=binding.license.license_id,
            reason=reason,
            kept_chain=kept,
            refused_chain=refused,
        )
    return binding

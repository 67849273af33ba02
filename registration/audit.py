"""Append entries to the audit log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser

from registration.models import AuditAction, AuditEvent


def record(
    action: AuditAction,
    *,
    at: datetime,
    actor: AbstractBaseUser | AnonymousUser | None = None,
    installation_id: uuid.UUID | None = None,
    license_id: uuid.UUID | None = None,
    node_name: str = "",
    client_address: str | None = None,
    **detail: Any,
) -> AuditEvent:
    """Write one audit entry; call inside the transaction of the change it describes."""
    user = actor if actor is not None and actor.is_authenticated else None
    return AuditEvent.objects.create(
        at=at,
        action=action,
        actor=user,
        actor_label=user.get_username() if user else "",
        installation_id=installation_id,
        license_id=license_id,
        node_name=node_name,
        client_address=client_address,
        detail=detail,
    )

"""Steps the node and restart tests share: register an installation, name a node."""

from __future__ import annotations

import uuid

from registration.cluster.identity import NodeIdentity
from registration.flows.code import Outcome, submit_code
from registration.flows.upload import upload_license
from registration.models import AuditAction, AuditEvent, Installation, NodeLease
from tests.phone_steps import phone_code


def register(text: str) -> None:
    """Upload a license and submit the code the phone shows: the installation is Registered."""
    result = upload_license(text.encode(), "container")
    assert result.accepted, result.validation.codes
    assert submit_code(phone_code(result.challenge)).outcome == Outcome.ACCEPTED


def node(name: str) -> NodeIdentity:
    """A new life of the node called name (a fresh boot id)."""
    return NodeIdentity(name, uuid.uuid4())


def state() -> str:
    return Installation.objects.get().state


def lease(identity: NodeIdentity) -> NodeLease:
    return NodeLease.objects.get(boot_id=identity.boot_id)


def audit_count(action: AuditAction) -> int:
    return AuditEvent.objects.filter(action=action).count()

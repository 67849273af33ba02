"""Issuing a Container.lic: the one process behind the issue_license command and the
admin's Issue license form (validate, sign, record), so both refuse the same things.

Rules, in plain words:
- every field is checked as strictly as the console checks it (the payload goes through
  the console's own parser before it is signed), and a date is YYYY-MM-DD only;
- an expiry date already past is refused: a license is valid through the end of its last
  day, UTC (the console's one expiry rule);
- the signing key is one of those loaded where the authority role runs
  (LICENSE_SIGNING_KEY_FILES, by key id); by default the last by name;
- a license id is never issued twice;
- a renewal (renews = the license id of an issued license) keeps the company, project,
  application name, project content and license type of the license it renews, keeps or
  moves forward its expiry, nodes and version, and is later in at least one of them; the
  renewed license must be neither revoked nor renewed already by a renewal in force (one
  line of renewals, held by a constraint even when two issuers sign at once);
- signing records the license and its audit entry together, and moves the renewed
  license's active binding to the renewal (see move_binding_to_renewal).

Each refusal is an IssueError naming the field it is about; its message is the command's
(the form says the same in the reader's language, by the error's code).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime

from django.conf import settings
from django.db import IntegrityError, transaction

from registration.abstract import Actor
from registration.authority.models import (
    AuditAction,
    AuditEvent,
    Binding,
    BindingState,
    IssuedLicense,
)
from registration.authority.registry import record_issued_license
from registration.protocol.keys import load_signing_key
from registration.protocol.license import (
    MAX_NODES_LIMIT,
    License,
    LicenseError,
    parse_payload,
    sign_license,
)
from registration.protocol.text import format_date, format_datetime
from registration.protocol.validity import is_expired

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# What a renewal keeps of the license it renews.
RENEWAL_KEEPS = ("company", "project_name", "app_name", "project_content", "license_type")


class IssueError(Exception):
    """A field the license cannot be issued with. field is the Order field it is about
    ("" when none); code is stable and language-independent; message is the command's."""

    def __init__(
        self, field: str, code: str, message: str, *, returncode: int = 1, **params: object
    ) -> None:
        super().__init__(message)
        self.field = field
        self.code = code
        self.message = message
        self.returncode = returncode
        self.params = params


@dataclass(frozen=True)
class Order:
    """What the issuer asks for, as typed (dates YYYY-MM-DD, ids as text)."""

    company: str
    project_name: str
    app_name: str
    app_version: str
    project_content: str
    contract_date: str
    expires: str
    license_type: str = "container"
    max_nodes: int = 1
    kid: str = ""
    license_id: str = ""
    renews: str = ""
    # The installation the request email came from: kept in the audit entry only.
    installation_id: str = ""


@dataclass(frozen=True)
class Issued:
    license: License
    text: str
    row: IssuedLicense


def signing_keys() -> dict[str, str]:
    """The signing key files loaded on this process, by key id (none on a console)."""
    return dict(getattr(settings, "LICENSE_SIGNING_KEY_FILES", {}))


def default_kid() -> str:
    keys = signing_keys()
    return sorted(keys)[-1] if keys else ""


def parse_date(field: str, value: str) -> date:
    # Only YYYY-MM-DD: fromisoformat alone would also take 20270131 or 2027-W05-1.
    try:
        if not _ISO_DATE.fullmatch(value):
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise IssueError(
            field, "not_date", f"{value!r} is not a date (YYYY-MM-DD)", value=value
        ) from None


def _parse_uuid(field: str, option: str, value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise IssueError(
            field, "not_uuid", f"{option} {value!r} is not a UUID", value=value
        ) from None


def _field_of(error: LicenseError) -> str:
    """Name the license field the console's parser refused (its messages start with it)."""
    first = str(error).split(" ", 1)[0]
    return first if first in License.field_names() else ""


def prepare(order: Order, *, now: datetime) -> License:
    """Check order and return the license it would sign (issued now), or raise IssueError."""
    kid = order.kid or default_kid()
    if kid not in signing_keys():
        raise IssueError(
            "kid", "unknown_kid", f"no signing key {kid!r} in LICENSE_SIGNING_KEY_FILES", kid=kid
        )
    if not 1 <= order.max_nodes <= MAX_NODES_LIMIT:
        raise IssueError(
            "max_nodes",
            "max_nodes_range",
            f"--max-nodes must be from 1 to {MAX_NODES_LIMIT}",
            limit=MAX_NODES_LIMIT,
        )
    license_id = (
        _parse_uuid("license_id", "--license-id", order.license_id)
        if order.license_id
        else uuid.uuid4()
    )
    now = now.astimezone(UTC).replace(microsecond=0)
    expires_at = parse_date("expires", order.expires)
    if is_expired(expires_at, now):
        raise IssueError(
            "expires",
            "past",
            f"--expires {expires_at.isoformat()} is already past: the license would have "
            f"been valid through {format_date(expires_at)} UTC, and it is now "
            f"{format_datetime(now)} UTC. Give the last day the license should be valid.",
            returncode=2,
            expires=format_date(expires_at),
            now=format_datetime(now),
        )
    renewed = _renewed_license(order.renews)
    lic = License(
        license_id=license_id,
        license_type=order.license_type,
        company=order.company,
        project_name=order.project_name,
        app_name=order.app_name,
        app_version=order.app_version,
        project_content=order.project_content,
        contract_date=parse_date("contract_date", order.contract_date),
        issued_at=now,
        expires_at=expires_at,
        max_nodes=order.max_nodes,
        renews=renewed.license_id if renewed is not None else None,
        kid=kid,
    )
    # Round-trip through the strict parser so the vendor never ships a bad file.
    try:
        parse_payload(json.dumps(lic.to_payload()).encode(), kid)
    except LicenseError as exc:
        raise IssueError(
            _field_of(exc), "invalid_field", f"invalid license field: {exc}", detail=str(exc)
        ) from exc
    if renewed is not None:
        check_renewal(renewed.as_license(), lic)
    if IssuedLicense.objects.filter(license_id=license_id).exists():
        raise _issued_before(license_id)
    return lic


def _issued_before(license_id: uuid.UUID) -> IssueError:
    return IssueError(
        "license_id",
        "issued_before",
        f"license id {license_id} was issued before",
        license_id=str(license_id),
    )


def _renewed_license(renews: str) -> IssuedLicense | None:
    """The issued license an order renews, if it may be renewed."""
    if not renews:
        return None
    renews_id = _parse_uuid("renews", "--renews", renews)
    renewed = IssuedLicense.objects.filter(license_id=renews_id).first()
    if renewed is None:
        raise IssueError(
            "renews",
            "renews_unknown",
            f"--renews {renews_id}: no such issued license",
            license_id=str(renews_id),
        )
    if renewed.revoked_at is not None:
        raise IssueError(
            "renews",
            "renews_revoked",
            f"--renews {renews_id}: that license is revoked; issue a new license instead",
            license_id=str(renews_id),
        )
    # A revoked renewal does not count: the license can be renewed again.
    later = renewed.renewals.filter(revoked_at__isnull=True).order_by("issued_at").first()
    if later is not None:
        raise IssueError(
            "renews",
            "renews_renewed",
            f"--renews {renews_id}: that license was already renewed by {later.license_id}; "
            f"renew {later.license_id} instead",
            license_id=str(renews_id),
            renewal=str(later.license_id),
        )
    return renewed


def _version(text: str) -> tuple[int, int]:
    major, minor = text.split(".")
    return int(major), int(minor)


def check_renewal(old: License, new: License) -> None:
    """Refuse a renewal that is not one: see the rules at the top of this module."""
    for name in RENEWAL_KEEPS:
        if getattr(new, name) != getattr(old, name):
            raise IssueError(
                name,
                "renewal_changes",
                f"a renewal keeps the {name} of the license it renews "
                f"({getattr(old, name)!r}, not {getattr(new, name)!r})",
                was=getattr(old, name),
            )
    old_major, old_minor = _version(old.app_version)
    new_major, new_minor = _version(new.app_version)
    if new_major != old_major or new_minor < old_minor:
        raise IssueError(
            "app_version",
            "renewal_version",
            f"a renewal keeps the major version {old_major} and may only raise the minor "
            f"version (the renewed license has {old.app_version})",
            was=old.app_version,
        )
    if new.expires_at < old.expires_at:
        raise IssueError(
            "expires",
            "renewal_earlier",
            f"a renewal cannot expire before the license it renews "
            f"(valid through {format_date(old.expires_at)})",
            was=format_date(old.expires_at),
        )
    if new.max_nodes < old.max_nodes:
        raise IssueError(
            "max_nodes",
            "renewal_fewer_nodes",
            f"a renewal cannot have fewer nodes than the license it renews ({old.max_nodes})",
            was=old.max_nodes,
        )
    if (
        new.expires_at == old.expires_at
        and new.max_nodes == old.max_nodes
        and new_minor == old_minor
    ):
        raise IssueError(
            "",
            "renewal_not_later",
            "a renewal must expire later, allow more nodes or name a newer minor version "
            "than the license it renews",
        )


def issue(
    order: Order,
    *,
    now: datetime,
    actor: Actor = None,
    write: Callable[[str], None] | None = None,
) -> Issued:
    """Check, sign and record the license order asks for.

    write, if given, is called with the file's text inside the recording transaction: a
    file that cannot be written (it raises OSError, which goes up) leaves no registry row.
    """
    lic = prepare(order, now=now)
    keys = signing_keys()
    try:
        signing_key = load_signing_key(keys[lic.kid])
    except (OSError, ValueError) as exc:
        raise IssueError(
            "kid",
            "key_unloadable",
            f"cannot load signing key {lic.kid!r} from {keys[lic.kid]}: {exc}",
            kid=lic.kid,
        ) from None
    text = sign_license(lic, signing_key, lic.kid)
    detail = {"installation_id_requested": order.installation_id} if order.installation_id else {}
    try:
        with transaction.atomic():
            if lic.renews is not None:
                # Two issuers renewing one license at once: the second waits here for the
                # first to commit, then sees its renewal and is refused (prepare's check
                # ran outside this transaction). The constraint issued_one_renewal_in_force
                # holds the rule where rows are not locked (SQLite).
                IssuedLicense.objects.select_for_update().get(license_id=lic.renews)
                _renewed_license(order.renews)
            row = record_issued_license(lic, text, at=lic.issued_at, actor=actor, **detail)
            if row.renews is not None:
                move_binding_to_renewal(row, actor=actor, now=lic.issued_at)
            if write is not None:
                write(text)
    except IntegrityError:
        # Only the two uniqueness rules are expected here; anything else goes up.
        if IssuedLicense.objects.filter(license_id=lic.license_id).exists():
            raise _issued_before(lic.license_id) from None
        if lic.renews is not None:
            _renewed_license(order.renews)
        raise
    return Issued(lic, text, row)


def move_binding_to_renewal(renewal: IssuedLicense, *, actor: Actor, now: datetime) -> None:
    """Carry the renewed license's active binding over to its renewal.

    The binding row itself moves (its installation, node count, first binding and the
    whole registration chain go with it), so the installation registered under the old
    license is registered under the renewal without a scan, and a copy of it is caught as
    before. The old license keeps no active binding, and the phone page refuses to bind a
    license that was renewed: one license, one project.
    """
    renewed = IssuedLicense.objects.select_for_update().get(pk=renewal.renews_id)
    move_active_binding(
        renewed,
        renewal,
        AuditAction.BINDING_RENEWED,
        actor=actor,
        now=now,
        renews=str(renewed.license_id),
    )


def move_active_binding(
    source: IssuedLicense,
    target: IssuedLicense,
    action: AuditAction,
    *,
    actor: Actor,
    now: datetime,
    **detail: str,
) -> None:
    """Move source's active binding, if it has one, to target and audit it as action.

    The caller holds both license rows locked; the binding row is locked here, so two
    moves of one binding cannot interleave.
    """
    binding = (
        Binding.objects.select_for_update()
        .filter(license=source, state=BindingState.ACTIVE)
        .first()
    )
    if binding is None:
        return
    binding.license = target
    binding.save(update_fields=["license"])
    AuditEvent.record(
        action,
        at=now,
        actor=actor,
        installation_id=binding.installation_id,
        license_id=target.license_id,
        binding=binding.pk,
        **detail,
    )


def with_license_id(order: Order, lic: License) -> Order:
    """The order with the license id a preview chose, so Sign signs what was previewed."""
    return replace(order, license_id=str(lic.license_id))

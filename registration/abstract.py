"""Abstract models both apps build on: the fields of a license, and an audit entry.

No table comes from here: the console (registration) and the verification service
(authority) each keep their own rows, so an install of one side has none of the other's.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Self

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.db import models
from django.utils.translation import gettext_lazy as _

from registration.protocol.license import License, LicenseError, payload_of

Actor = AbstractBaseUser | AnonymousUser | None


class LicenseContent(models.Model):
    """The fields of a Container.lic, kept by both sides (with the file, verbatim)."""

    text = models.TextField(verbose_name=_("license text"))
    kid = models.CharField(max_length=32, verbose_name=_("key ID"))
    license_type = models.CharField(max_length=32, verbose_name=_("license type"))
    project_name = models.CharField(max_length=200, verbose_name=_("project name"))
    app_name = models.CharField(max_length=200, verbose_name=_("application name"))
    app_version = models.CharField(max_length=16, verbose_name=_("application version"))
    project_content = models.CharField(max_length=200, verbose_name=_("project content"))
    contract_date = models.DateField(verbose_name=_("contract signing date"))
    issued_at = models.DateTimeField(verbose_name=_("issued at"))
    expires_at = models.DateField(verbose_name=_("expiry date"))
    max_nodes = models.PositiveIntegerField(default=1, verbose_name=_("maximum nodes"))

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.company} / {self.project_name} ({self.license_id})"

    @staticmethod
    def values_from(lic: License, text: str) -> dict[str, object]:
        """Return the model field values of a verified license and its file text."""
        values: dict[str, object] = lic.to_fields()
        values["text"] = text
        return values

    @property
    def renews_license_id(self) -> uuid.UUID | None:
        """The license this one renews, as its file names it (None for an original)."""
        try:
            return payload_of(self.text).renews
        except LicenseError:
            return None

    def as_license(self) -> License:
        """Return the stored fields as a License (for checking it again)."""
        return License(**{name: getattr(self, name) for name in License.field_names()})


class AuditRecord(models.Model):
    """An append-only record of a registration event; each side keeps its own log.

    Write entries with record(), inside the transaction of the change they describe.
    """

    at = models.DateTimeField(db_index=True, verbose_name=_("time"))
    action = models.CharField(max_length=32, verbose_name=_("action"))
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("actor"),
    )
    actor_label = models.CharField(max_length=150, blank=True, verbose_name=_("actor name"))
    installation_id = models.UUIDField(
        null=True, blank=True, db_index=True, verbose_name=_("installation ID")
    )
    license_id = models.UUIDField(null=True, blank=True, verbose_name=_("license ID"))
    node_name = models.CharField(max_length=64, blank=True, verbose_name=_("node name"))
    client_address = models.GenericIPAddressField(
        null=True, blank=True, verbose_name=_("client address")
    )
    detail = models.JSONField(default=dict, blank=True, verbose_name=_("detail"))

    class Meta:
        abstract = True
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.action}"

    @classmethod
    def record(
        cls,
        action: str,
        *,
        at: datetime,
        actor: Actor = None,
        installation_id: uuid.UUID | None = None,
        license_id: uuid.UUID | None = None,
        node_name: str = "",
        client_address: str | None = None,
        **detail: Any,
    ) -> Self:
        """Write one entry; call inside the transaction of the change it describes."""
        user = actor if actor is not None and actor.is_authenticated else None
        return cls.objects.create(
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

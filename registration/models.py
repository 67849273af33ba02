"""Registration data, customer side (installation, license, challenges, nodes) and vendor
side (issued licenses, bindings), plus the audit log both sides write."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

# --- Customer side --------------------------------------------------------------------


class RegistrationState(models.TextChoices):
    UNREGISTERED = "unregistered", _("Unregistered")
    REGISTERED = "registered", _("Registered")
    EXPIRED_RESTART = "expired_due_to_restart", _("Expired due to restart")


class Installation(models.Model):
    """This project's one installation row: identity, registration state, lockout.

    Created once per database; a new server with a new database gets a new
    installation_id. Every read-modify-write of this row goes through flows.py under
    select_for_update(), so nodes and workers never lose each other's updates.
    """

    singleton = models.BooleanField(default=True, editable=False)
    installation_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    created_at = models.DateTimeField()
    state = models.CharField(
        max_length=32, choices=RegistrationState.choices, default=RegistrationState.UNREGISTERED
    )
    license = models.ForeignKey(
        "InstalledLicense", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    registered_at = models.DateTimeField(null=True, blank=True)
    # Wrong codes since the last success or the end of the last lock.
    failed_attempts = models.PositiveIntegerField(default=0)
    # Locks since the last success: each further lock lasts twice as long.
    lock_count = models.PositiveIntegerField(default=0)
    locked_until = models.DateTimeField(null=True, blank=True)
    # Bumped on every change, so caches on every node can tell a stale copy.
    version = models.PositiveBigIntegerField(default=0)

    class Meta:
        permissions = [("manage_registration", "Can manage registration")]
        constraints = [
            models.UniqueConstraint(fields=["singleton"], name="installation_single_row"),
            models.CheckConstraint(condition=Q(singleton=True), name="installation_singleton_true"),
            models.CheckConstraint(
                condition=~Q(state="registered") | Q(license__isnull=False),
                name="installation_registered_has_license",
            ),
        ]

    def __str__(self) -> str:
        return str(self.installation_id)


class InstalledLicense(models.Model):
    """A license file accepted by this installation, kept verbatim with its fields."""

    license_id = models.UUIDField(db_index=True)
    text = models.TextField()
    kid = models.CharField(max_length=32)
    license_type = models.CharField(max_length=32)
    company = models.CharField(max_length=200)
    project_name = models.CharField(max_length=200)
    app_name = models.CharField(max_length=200)
    app_version = models.CharField(max_length=16)
    project_content = models.CharField(max_length=200)
    contract_date = models.DateField()
    issued_at = models.DateTimeField()
    expires_at = models.DateField()
    max_nodes = models.PositiveIntegerField()
    uploaded_at = models.DateTimeField()
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(max_nodes__gte=1), name="installed_max_nodes_gte_1")
        ]

    def __str__(self) -> str:
        return f"{self.company} / {self.project_name} ({self.license_id})"


class ChallengeState(models.TextChoices):
    OPEN = "open", _("Open")
    CONSUMED = "consumed", _("Consumed")
    SUPERSEDED = "superseded", _("Superseded")


class ChallengePurpose(models.TextChoices):
    REGISTER = "register", _("Register")
    RE_REGISTER = "re-register", _("Re-register")


class Challenge(models.Model):
    """One QR challenge. Only K is kept; the server's private key never is."""

    installation = models.ForeignKey(Installation, on_delete=models.CASCADE)
    license = models.ForeignKey(InstalledLicense, on_delete=models.PROTECT)
    purpose = models.CharField(max_length=16, choices=ChallengePurpose.choices)
    state = models.CharField(max_length=16, choices=ChallengeState.choices, default="open")
    token = models.CharField(max_length=400)
    key = models.BinaryField(max_length=32)
    tag = models.CharField(max_length=2)
    node_name = models.CharField(max_length=64)
    node_count = models.PositiveIntegerField()
    kid = models.CharField(max_length=32)
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # A new QR replaces the old one: at most one open challenge per installation.
            models.UniqueConstraint(
                fields=["installation"], condition=Q(state="open"), name="one_open_challenge"
            ),
            models.CheckConstraint(
                condition=Q(expires_at__gt=models.F("issued_at")),
                name="challenge_expires_after_issue",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.purpose} {self.tag} ({self.state})"


class NodeLease(models.Model):
    """One life of a node: from its start (a new boot id) to release or expiry."""

    node_name = models.CharField(max_length=64)
    boot_id = models.UUIDField(unique=True)
    started_at = models.DateTimeField()
    last_seen = models.DateTimeField()
    offset_seconds = models.FloatField(default=0.0)
    # A node that starts while the cluster is registered and full is not admitted.
    admitted = models.BooleanField(default=True)
    released_at = models.DateTimeField(null=True, blank=True)
    pid = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["released_at", "last_seen"], name="lease_live_idx")]

    def __str__(self) -> str:
        return f"{self.node_name} ({self.boot_id})"


# --- Vendor side --------------------------------------------------------------------


class IssuedLicense(models.Model):
    """The vendor's registry of every Container.lic it signed."""

    license_id = models.UUIDField(unique=True)
    license_type = models.CharField(max_length=32)
    company = models.CharField(max_length=200, db_index=True)
    project_name = models.CharField(max_length=200)
    app_name = models.CharField(max_length=200)
    app_version = models.CharField(max_length=16)
    project_content = models.CharField(max_length=200)
    contract_date = models.DateField()
    issued_at = models.DateTimeField()
    expires_at = models.DateField()
    max_nodes = models.PositiveIntegerField(default=1)
    kid = models.CharField(max_length=32)
    text = models.TextField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        permissions = [("revoke_issuedlicense", "Can revoke issued licenses")]
        constraints = [
            models.CheckConstraint(condition=Q(max_nodes__gte=1), name="issued_max_nodes_gte_1")
        ]

    def __str__(self) -> str:
        return f"{self.company} / {self.project_name} ({self.license_id})"


class BindingState(models.TextChoices):
    ACTIVE = "active", _("Active")
    UNBOUND = "unbound", _("Unbound")


class Binding(models.Model):
    """Which installation a license is registered to. One license, one project."""

    license = models.ForeignKey(IssuedLicense, on_delete=models.PROTECT, related_name="bindings")
    installation_id = models.UUIDField(db_index=True)
    node_count = models.PositiveIntegerField()
    state = models.CharField(
        max_length=16, choices=BindingState.choices, default=BindingState.ACTIVE
    )
    first_bound = models.DateTimeField()
    last_verified = models.DateTimeField()
    unbound_at = models.DateTimeField(null=True, blank=True)
    unbound_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    unbound_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        permissions = [("unbind_binding", "Can unbind a license from an installation")]
        constraints = [
            models.UniqueConstraint(
                fields=["license"],
                condition=Q(state="active"),
                name="one_active_binding_per_license",
            ),
            models.CheckConstraint(
                condition=Q(state="active") | Q(unbound_at__isnull=False),
                name="unbound_binding_has_time",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.license} -> {self.installation_id}"


# --- Both sides -----------------------------------------------------------------------


class AuditAction(models.TextChoices):
    UPLOAD_ACCEPTED = "upload_accepted", _("License upload accepted")
    UPLOAD_REFUSED = "upload_refused", _("License upload refused")
    CHALLENGE_ISSUED = "challenge_issued", _("Challenge issued")
    CODE_ACCEPTED = "code_accepted", _("Verification code accepted")
    CODE_REFUSED = "code_refused", _("Verification code refused")
    LOCKED = "locked", _("Console locked")
    EXPIRED_RESTART = "expired_restart", _("Registration expired due to restart")
    NODE_REFUSED = "node_refused", _("Node not admitted")
    CODE_SHOWN = "code_shown", _("Verification code shown")
    BINDING_REFUSED = "binding_refused", _("Binding refused")
    UNBIND = "unbind", _("License unbound")
    REVOKE = "revoke", _("License revoked")
    LICENSE_ISSUED = "license_issued", _("License issued")


class AuditEvent(models.Model):
    """An append-only record of a registration event."""

    at = models.DateTimeField(db_index=True)
    action = models.CharField(max_length=32, choices=AuditAction.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    actor_label = models.CharField(max_length=150, blank=True)
    installation_id = models.UUIDField(null=True, blank=True, db_index=True)
    license_id = models.UUIDField(null=True, blank=True)
    node_name = models.CharField(max_length=64, blank=True)
    client_address = models.GenericIPAddressField(null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.action}"

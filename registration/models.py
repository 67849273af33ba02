"""Registration data, customer side (installation, license, challenges, nodes) and vendor
side (issued licenses, bindings), plus the audit log both sides write."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from registration.license import License

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

    singleton = models.BooleanField(default=True, editable=False, verbose_name=_("singleton"))
    installation_id = models.UUIDField(
        default=uuid.uuid4, unique=True, editable=False, verbose_name=_("installation ID")
    )
    created_at = models.DateTimeField(verbose_name=_("created at"))
    state = models.CharField(
        max_length=32,
        choices=RegistrationState.choices,
        default=RegistrationState.UNREGISTERED,
        verbose_name=_("state"),
    )
    license = models.ForeignKey(
        "InstalledLicense",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("license"),
    )
    registered_at = models.DateTimeField(null=True, blank=True, verbose_name=_("registered at"))
    # Wrong codes since the last success or the end of the last lock.
    failed_attempts = models.PositiveIntegerField(default=0, verbose_name=_("failed attempts"))
    # Locks since the last success: each further lock lasts twice as long.
    lock_count = models.PositiveIntegerField(default=0, verbose_name=_("lock count"))
    locked_until = models.DateTimeField(null=True, blank=True, verbose_name=_("locked until"))
    # Bumped on every change, so caches on every node can tell a stale copy.
    version = models.PositiveBigIntegerField(default=0, verbose_name=_("version"))

    class Meta:
        verbose_name = _("installation")
        verbose_name_plural = _("installations")
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

    def as_license(self) -> License:
        """Return the stored fields as a License (for checking it again)."""
        return License(**{name: getattr(self, name) for name in License.field_names()})


class InstalledLicense(LicenseContent):
    """A license file accepted by this installation, kept verbatim with its fields."""

    license_id = models.UUIDField(db_index=True, verbose_name=_("license ID"))
    company = models.CharField(max_length=200, verbose_name=_("company"))
    uploaded_at = models.DateTimeField(verbose_name=_("uploaded at"))
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        verbose_name=_("uploaded by"),
    )

    class Meta:
        verbose_name = _("installed license")
        verbose_name_plural = _("installed licenses")
        constraints = [
            models.CheckConstraint(condition=Q(max_nodes__gte=1), name="installed_max_nodes_gte_1")
        ]


class ChallengeState(models.TextChoices):
    OPEN = "open", _("Open")
    CONSUMED = "consumed", _("Consumed")
    SUPERSEDED = "superseded", _("Superseded")


class ChallengePurpose(models.TextChoices):
    REGISTER = "register", _("Register")
    RE_REGISTER = "re-register", _("Re-register")


class Challenge(models.Model):
    """One QR challenge. Only K is kept; the server's private key never is."""

    installation = models.ForeignKey(
        Installation, on_delete=models.CASCADE, verbose_name=_("installation")
    )
    license = models.ForeignKey(
        InstalledLicense, on_delete=models.PROTECT, verbose_name=_("license")
    )
    purpose = models.CharField(
        max_length=16, choices=ChallengePurpose.choices, verbose_name=_("purpose")
    )
    state = models.CharField(
        max_length=16, choices=ChallengeState.choices, default="open", verbose_name=_("state")
    )
    token = models.CharField(max_length=400, verbose_name=_("token"))
    key = models.BinaryField(max_length=32, verbose_name=_("key"))
    tag = models.CharField(max_length=2, verbose_name=_("tag"))
    node_name = models.CharField(max_length=64, verbose_name=_("node name"))
    node_count = models.PositiveIntegerField(verbose_name=_("node count"))
    kid = models.CharField(max_length=32, verbose_name=_("key ID"))
    issued_at = models.DateTimeField(verbose_name=_("issued at"))
    expires_at = models.DateTimeField(verbose_name=_("expires at"))
    closed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("closed at"))

    class Meta:
        verbose_name = _("challenge")
        verbose_name_plural = _("challenges")
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

    node_name = models.CharField(max_length=64, verbose_name=_("node name"))
    boot_id = models.UUIDField(unique=True, verbose_name=_("boot ID"))
    started_at = models.DateTimeField(verbose_name=_("started at"))
    last_seen = models.DateTimeField(verbose_name=_("last seen"))
    offset_seconds = models.FloatField(default=0.0, verbose_name=_("clock offset (seconds)"))
    # A node that starts while the cluster is registered and full is not admitted.
    admitted = models.BooleanField(default=True, verbose_name=_("admitted"))
    released_at = models.DateTimeField(null=True, blank=True, verbose_name=_("released at"))
    pid = models.PositiveIntegerField(null=True, blank=True, verbose_name=_("process ID"))

    class Meta:
        verbose_name = _("node lease")
        verbose_name_plural = _("node leases")
        indexes = [models.Index(fields=["released_at", "last_seen"], name="lease_live_idx")]

    def __str__(self) -> str:
        return f"{self.node_name} ({self.boot_id})"


# --- Vendor side --------------------------------------------------------------------


class IssuedLicense(LicenseContent):
    """The vendor's registry of every Container.lic it signed."""

    license_id = models.UUIDField(unique=True, verbose_name=_("license ID"))
    company = models.CharField(max_length=200, db_index=True, verbose_name=_("company"))
    revoked_at = models.DateTimeField(null=True, blank=True, verbose_name=_("revoked at"))
    revoked_reason = models.CharField(
        max_length=500, blank=True, verbose_name=_("revocation reason")
    )

    class Meta:
        verbose_name = _("issued license")
        verbose_name_plural = _("issued licenses")
        permissions = [("revoke_issuedlicense", "Can revoke issued licenses")]
        constraints = [
            models.CheckConstraint(condition=Q(max_nodes__gte=1), name="issued_max_nodes_gte_1")
        ]


class BindingState(models.TextChoices):
    ACTIVE = "active", _("Active")
    UNBOUND = "unbound", _("Unbound")


class Binding(models.Model):
    """Which installation a license is registered to. One license, one project."""

    license = models.ForeignKey(
        IssuedLicense, on_delete=models.PROTECT, related_name="bindings", verbose_name=_("license")
    )
    installation_id = models.UUIDField(db_index=True, verbose_name=_("installation ID"))
    node_count = models.PositiveIntegerField(verbose_name=_("node count"))
    state = models.CharField(
        max_length=16,
        choices=BindingState.choices,
        default=BindingState.ACTIVE,
        verbose_name=_("state"),
    )
    first_bound = models.DateTimeField(verbose_name=_("first bound"))
    last_verified = models.DateTimeField(verbose_name=_("last verified"))
    # The nonce of the last challenge a code was shown for: a reload of the phone page
    # for that challenge shows the same code again without writing anything.
    last_nonce = models.CharField(max_length=32, blank=True, verbose_name=_("last challenge"))
    unbound_at = models.DateTimeField(null=True, blank=True, verbose_name=_("unbound at"))
    unbound_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        verbose_name=_("unbound by"),
    )
    unbound_reason = models.CharField(max_length=500, blank=True, verbose_name=_("unbind reason"))

    class Meta:
        verbose_name = _("binding")
        verbose_name_plural = _("bindings")
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

    at = models.DateTimeField(db_index=True, verbose_name=_("time"))
    action = models.CharField(max_length=32, choices=AuditAction.choices, verbose_name=_("action"))
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
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
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.action}"

"""The console's data: the installation, its licenses, QR challenges, node leases, and the
console's audit log. The vendor's data lives in registration.authority."""

from __future__ import annotations

import secrets
import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from registration.abstract import AuditRecord, LicenseContent
from registration.protocol.challenge import CHAIN_BYTES, Purpose


def new_chain_value() -> str:
    """Return a first chain value for a new installation (random, so copies made before
    the first registration still start apart from any other installation)."""
    return secrets.token_hex(CHAIN_BYTES)


# The permission of System Management > Registration Management (Meta.permissions below).
MANAGE_PERMISSION = "registration.manage_registration"

# --- Customer side --------------------------------------------------------------------


class RegistrationState(models.TextChoices):
    UNREGISTERED = "unregistered", _("Unregistered")
    REGISTERED = "registered", _("Registered")
    EXPIRED_DUE_TO_RESTART = "expired_due_to_restart", _("Expired due to restart")


class Installation(models.Model):
    """This project's one installation row: identity, registration state, lockout.

    Created once per database; a new server with a new database gets a new
    installation_id. Every read-modify-write of this row goes through installation.py
    (select_for_update()), so nodes and workers never lose each other's updates.
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
    # The registration chain (docs/protocol.md, "Copies of an installation"): carried by
    # every challenge, advanced by every accepted code, so the vendor can tell copies of
    # this database apart. Random at first; hex of CHAIN_BYTES bytes.
    chain = models.CharField(max_length=32, default=new_chain_value, verbose_name=_("chain"))
    # What makes Registered true: a seal only this console can make (registration/seal.py).
    registration_seal = models.CharField(
        max_length=64, blank=True, default="", verbose_name=_("registration seal")
    )

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


# The purpose travels in the token as the protocol's number; labels are for admin pages.
PURPOSE_CHOICES = [
    (int(Purpose.REGISTER), _("Register")),
    (int(Purpose.RE_REGISTER), _("Re-register")),
    (int(Purpose.RELEASE), _("Release")),
]


class QrChallenge(models.Model):
    """One QR challenge as the console keeps it (the token's content is
    protocol.challenge.Challenge). Neither the server's private key, nor K, nor the code
    is kept: only the code's verifier, while the challenge is open."""

    installation = models.ForeignKey(
        Installation, on_delete=models.CASCADE, verbose_name=_("installation")
    )
    license = models.ForeignKey(
        InstalledLicense, on_delete=models.PROTECT, verbose_name=_("license")
    )
    purpose = models.PositiveSmallIntegerField(choices=PURPOSE_CHOICES, verbose_name=_("purpose"))
    state = models.CharField(
        max_length=16, choices=ChallengeState.choices, default="open", verbose_name=_("state")
    )
    token = models.CharField(max_length=400, verbose_name=_("token"))
    # Neither K nor the code is kept: only an scrypt verifier of the code, keyed by a
    # secret from SECRET_KEY (protocol/verifier.py). Emptied when the challenge closes.
    code_verifier = models.CharField(max_length=128, blank=True, verbose_name=_("code verifier"))
    tag = models.CharField(max_length=2, verbose_name=_("tag"))
    node_name = models.CharField(max_length=64, verbose_name=_("node name"))
    node_count = models.PositiveIntegerField(verbose_name=_("node count"))
    kid = models.CharField(max_length=32, verbose_name=_("key ID"))
    issued_at = models.DateTimeField(verbose_name=_("issued at"))
    expires_at = models.DateTimeField(verbose_name=_("expires at"))
    closed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("closed at"))

    class Meta:
        verbose_name = _("QR challenge")
        verbose_name_plural = _("QR challenges")
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
        return f"{Purpose(self.purpose).label} {self.tag} ({self.state})"

    @property
    def is_release(self) -> bool:
        """A release QR code: no code to type, it frees the license (flows/release.py)."""
        return self.purpose == Purpose.RELEASE


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
    # The boot's master (the process that made the boot id): only its live children join
    # this lease. Its start time (clock ticks since the host booted) and the host's boot id
    # tell it apart from a later process under the same pid; both are empty without /proc.
    master_pid = models.PositiveIntegerField(
        null=True, blank=True, verbose_name=_("master process ID")
    )
    master_started = models.BigIntegerField(
        null=True, blank=True, verbose_name=_("master process start time")
    )
    host_boot_id = models.CharField(
        max_length=64, blank=True, default="", verbose_name=_("host boot ID")
    )
    # SHA-256 of the boot's secret, which only the master's own children can read.
    boot_secret_hash = models.CharField(
        max_length=32, blank=True, default="", verbose_name=_("boot secret hash")
    )

    class Meta:
        verbose_name = _("node lease")
        verbose_name_plural = _("node leases")
        indexes = [models.Index(fields=["released_at", "last_seen"], name="lease_live_idx")]

    def __str__(self) -> str:
        return f"{self.node_name} ({self.boot_id})"


class AuditAction(models.TextChoices):
    UPLOAD_ACCEPTED = "upload_accepted", _("License upload accepted")
    UPLOAD_REFUSED = "upload_refused", _("License upload refused")
    CHALLENGE_ISSUED = "challenge_issued", _("Challenge issued")
    CODE_ACCEPTED = "code_accepted", _("Verification code accepted")
    CODE_REFUSED = "code_refused", _("Verification code refused")
    LOCKED = "locked", _("Code entry locked")
    EXPIRED_DUE_TO_RESTART = "expired_due_to_restart", _("Registration expired due to restart")
    NODE_REFUSED = "node_refused", _("Node not admitted")
    RELEASED = "released", _("Registration released for a move")


class AuditEvent(AuditRecord):
    """The console's audit log: what happened to this installation's registration."""

    action = models.CharField(max_length=32, choices=AuditAction.choices, verbose_name=_("action"))

    class Meta(AuditRecord.Meta):
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")

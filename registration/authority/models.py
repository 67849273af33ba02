"""The vendor's data: every Container.lic it signed, which installation each is bound to,
and the verification service's audit log."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from registration.abstract import AuditRecord, LicenseContent

UNBIND_PERMISSION = "authority.unbind_binding"
REVOKE_PERMISSION = "authority.revoke_issuedlicense"
# The file is a secret (it salts every challenge's key): support staff see its fingerprint;
# only holders of this permission (not the Support staff group) may download it.
DOWNLOAD_PERMISSION = "authority.download_issuedlicense"
# Business staff (the License issuers group) sign new licenses and renewals in the admin.
ISSUE_PERMISSION = "authority.issue_license"


class IssuedLicense(LicenseContent):
    """The vendor's registry of every Container.lic it signed."""

    license_id = models.UUIDField(unique=True, verbose_name=_("license ID"))
    company = models.CharField(max_length=200, db_index=True, verbose_name=_("company"))
    revoked_at = models.DateTimeField(null=True, blank=True, verbose_name=_("revoked at"))
    revoked_reason = models.CharField(
        max_length=500, blank=True, verbose_name=_("revocation reason")
    )
    # The license this one renews (its payload names it too); empty for an original.
    renews = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="renewals",
        verbose_name=_("renews"),
    )

    class Meta:
        verbose_name = _("issued license")
        verbose_name_plural = _("issued licenses")
        permissions = [
            ("revoke_issuedlicense", "Can revoke issued licenses"),
            ("download_issuedlicense", "Can download issued license files"),
            ("issue_license", "Can issue licenses"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(max_nodes__gte=1), name="issued_max_nodes_gte_1"),
            # One line of renewals: a license has at most one renewal in force (a revoked
            # renewal does not count, so the license can be renewed again). The database
            # holds this even when two issuers sign renewals of one license at once.
            models.UniqueConstraint(
                fields=["renews"],
                condition=Q(renews__isnull=False, revoked_at__isnull=True),
                name="issued_one_renewal_in_force",
            ),
        ]


class BindingState(models.TextChoices):
    ACTIVE = "active", _("Active")
    UNBOUND = "unbound", _("Unbound")
    # Freed by the installation itself for a move (authority/release.py).
    RELEASED = "released", _("Released by the installation")


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
    # The registration chain (docs/protocol.md, "Copies of an installation", rules in
    # authority/chain.py): the last value the installation presented, when the code that
    # led to it was shown, and the values the codes shown since would lead to.
    chain_tip = models.CharField(max_length=32, blank=True, verbose_name=_("chain tip"))
    chain_tip_shown_at = models.DateTimeField(
        null=True, blank=True, verbose_name=_("chain tip registered at")
    )
    chain_successors = models.JSONField(default=list, blank=True, verbose_name=_("pending tips"))
    # Earlier tips and successors another scan overtook: [value, when its code was shown,
    # when it was overtaken].
    chain_past = models.JSONField(default=list, blank=True, verbose_name=_("past tips"))
    # Values support staff chose against when they resolved a copy: refused from then on.
    chain_refused = models.JSONField(default=list, blank=True, verbose_name=_("refused tips"))
    # When a version-2 console first presented a value for a binding a version-1 console
    # made: nothing proves which server that was, so the binding is not released by
    # self-service, and a value it never had is a conflict for support (chain.py).
    chain_adopted_at = models.DateTimeField(
        null=True, blank=True, verbose_name=_("chain adopted at")
    )
    copied_at = models.DateTimeField(null=True, blank=True, verbose_name=_("copy detected at"))
    copy_chain = models.CharField(max_length=32, blank=True, verbose_name=_("copy's tip"))
    copy_shown_at = models.DateTimeField(
        null=True, blank=True, verbose_name=_("copy registered at")
    )

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


class AuditAction(models.TextChoices):
    LICENSE_ISSUED = "license_issued", _("License issued")
    CODE_SHOWN = "code_shown", _("Verification code shown")
    BINDING_REFUSED = "binding_refused", _("Binding refused")
    UNBIND = "unbind", _("License unbound")
    REVOKE = "revoke", _("License revoked")
    DOWNLOADED = "license_downloaded", _("License file downloaded")
    COPY_DETECTED = "copy_detected", _("Copy of an installation detected")
    COPY_RESOLVED = "copy_resolved", _("Copy resolved")
    BINDING_RENEWED = "binding_renewed", _("Binding moved to a renewal")
    BINDING_RETURNED = "binding_returned", _("Binding returned from a revoked renewal")
    RELEASED = "released", _("Released by the installation")


class AuditEvent(AuditRecord):
    """The verification service's audit log: licenses issued, scans, support actions."""

    action = models.CharField(max_length=32, choices=AuditAction.choices, verbose_name=_("action"))

    class Meta(AuditRecord.Meta):
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")

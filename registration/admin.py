"""Django admin on the console: read-only views of its security state, for superusers only.

The rows hold lockout counters and live challenges: only superusers see them, nobody
edits them, and a challenge's token and code verifier, like a license file, are never
shown, filtered or searched (adminbase.StrictAdmin).
"""

from __future__ import annotations

from django.contrib import admin

from registration.adminbase import AuditLogAdmin, LicenseFileAdmin, SuperuserOnlyAdmin
from registration.models import AuditEvent, Installation, InstalledLicense, NodeLease, QrChallenge


@admin.register(AuditEvent)
class AuditEventAdmin(AuditLogAdmin):
    """The console's audit log."""


@admin.register(Installation)
class InstallationAdmin(SuperuserOnlyAdmin):
    # The seal only proves the row was written by this console; nobody needs to read it.
    exclude = ["registration_seal"]
    list_display = [
        "installation_id",
        "state",
        "registered_at",
        "failed_attempts",
        "locked_until",
        "created_at",
    ]


@admin.register(InstalledLicense)
class InstalledLicenseAdmin(LicenseFileAdmin, SuperuserOnlyAdmin):
    list_display = [
        "license_id",
        "company",
        "project_name",
        "issued_at",
        "expires_at",
        "max_nodes",
        "uploaded_at",
    ]
    search_fields = ["company", "license_id"]


@admin.register(QrChallenge)
class QrChallengeAdmin(SuperuserOnlyAdmin):
    # The token carries a live challenge and the verifier tests guesses of its code:
    # neither is ever shown, filtered or searched.
    secret_fields = ("token", "code_verifier")
    fields = [
        "installation",
        "license",
        "purpose",
        "state",
        "tag",
        "node_name",
        "node_count",
        "kid",
        "issued_at",
        "expires_at",
        "closed_at",
    ]
    list_display = ["issued_at", "purpose", "tag", "state", "node_name", "expires_at"]
    list_filter = ["state", "purpose"]


@admin.register(NodeLease)
class NodeLeaseAdmin(SuperuserOnlyAdmin):
    list_display = ["node_name", "boot_id", "started_at", "last_seen", "admitted", "released_at"]
    list_filter = ["admitted"]

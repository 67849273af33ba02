"""Admin building blocks both apps use (no models here, so either side can import it)."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest
from django.utils.translation import gettext_lazy

admin.site.site_header = gettext_lazy("licserver administration")
admin.site.site_title = gettext_lazy("licserver administration")


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows are listed and viewed, never added, changed or deleted through the admin."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class SuperuserOnlyAdmin(ReadOnlyAdmin):
    """Customer-side security state: visible to superusers only."""

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_superuser


class AuditLogAdmin(ReadOnlyAdmin):
    """An audit log (either side's): append-only, listed newest first."""

    list_display = [
        "at",
        "action",
        "actor_label",
        "installation_id",
        "license_id",
        "node_name",
        "client_address",
    ]
    list_filter = ["action"]
    search_fields = ["installation_id", "license_id"]
    date_hierarchy = "at"

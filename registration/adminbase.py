"""Admin building blocks both apps use (no models here, so either side can import it)."""

from __future__ import annotations

from datetime import UTC, datetime

from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.admin.filters import SimpleListFilter
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Field, Model, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from registration.protocol.license import fingerprint

admin.site.site_header = gettext_lazy("licserver administration")
admin.site.site_title = gettext_lazy("licserver administration")


# The query-string suffixes Django's own list filters use (BooleanFieldListFilter,
# ChoicesFieldListFilter, AllValuesFieldListFilter: exact/isnull; DateFieldListFilter:
# gte/lt/isnull; EmptyFieldListFilter: isempty). A relation's filter uses <pk>__exact.
FILTER_SUFFIXES = frozenset({"exact", "isnull", "gte", "lt", "isempty"})
# Django computes the end of the drilled-down period, so year 9999 would overflow.
DRILL_DOWN_RANGES = {"year": (1, 9998), "month": (1, 12), "day": (1, 31)}


def _integer_in_range(text: str, low: int, high: int) -> bool:
    return text.isascii() and text.isdigit() and low <= int(text) <= high


class StrictAdmin(admin.ModelAdmin):
    """A ModelAdmin that answers only what it declares.

    Rules, in plain words:
    - the query string may use only the lookups of the declared list filters and date
      drill-down (Django allows any lookup on any local field by default, which made
      ?key__regex=... an oracle for a secret); anything else is 400;
    - a drill-down's year, month and day are whole numbers in range, and a filter's value
      must be a valid value of its field, or 400 (a huge year was an OverflowError: 500);
    - secret_fields (and every BinaryField) may never be filtered, searched, ordered or
      shown: tests/test_admin_lookups.py walks every registered admin to prove it;
    - the ids an action is asked to work on must be valid ids, or 400.
    """

    secret_fields: tuple[str, ...] = ()

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        field_path, _sep, suffix = lookup.rpartition("__")
        if lookup in self._simple_filter_parameters(request):
            return True
        if (
            self.date_hierarchy
            and field_path == self.date_hierarchy
            and suffix in DRILL_DOWN_RANGES
        ):
            return _integer_in_range(value, *DRILL_DOWN_RANGES[suffix])
        field = self._filtered_fields(request).get(field_path)
        if field is None:
            # A relation's own filter: <relation>__<target field>__exact.
            relation_path, _sep, target = field_path.rpartition("__")
            relation = self._filtered_fields(request).get(relation_path)
            if relation is None or not relation.is_relation or suffix != "exact":
                return False
            if target != relation.target_field.name:
                return False
            field = relation.target_field
        if suffix not in FILTER_SUFFIXES:
            return False
        return self._valid_filter_value(field, suffix, value)

    def _simple_filter_parameters(self, request: HttpRequest | None) -> set[str]:
        return {
            item.parameter_name
            for item in self.get_list_filter(request)
            if isinstance(item, type) and issubclass(item, SimpleListFilter)
        }

    def _filtered_fields(self, request: HttpRequest | None) -> dict[str, Field]:
        """Map each field list filter's path to its field (the last one on the path)."""
        fields = {}
        for item in self.get_list_filter(request):
            if isinstance(item, type):
                continue
            path = item[0] if isinstance(item, list | tuple) else item
            model, field = self.model, None
            for part in path.split("__"):
                field = model._meta.get_field(part)
                model = field.related_model if field.is_relation else model
            fields[path] = field
        return fields

    @staticmethod
    def _valid_filter_value(field: Field, suffix: str, value: str) -> bool:
        if suffix in {"isnull", "isempty"}:
            return value in {"0", "1", "True", "False", "true", "false"}
        if "\x00" in value:
            return False
        try:
            parsed = field.to_python(value)
            if isinstance(parsed, datetime):
                # The database compares in UTC: a time at the edge of the calendar with an
                # offset (0001-01-01 00:00+01:00) cannot be converted and would be a 500.
                aware = parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed)
                aware.astimezone(UTC)
        except (ValidationError, ValueError, OverflowError):
            return False
        return True

    def response_action(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        """Refuse an action asked for ids that are not ids (Django answered 500)."""
        selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
        if not all(_valid_pk(self.model, value) for value in selected):
            return HttpResponseBadRequest(_("The selected items are not valid."))
        return super().response_action(request, queryset)


def _valid_pk(model: type[Model], value: str) -> bool:
    """Tell whether value is a primary key the database can look up."""
    pk = model._meta.pk
    try:
        python = pk.to_python(value)
    except (ValidationError, ValueError, OverflowError):
        return False
    internal = pk.get_internal_type()
    if isinstance(python, int) and internal in connection.ops.integer_field_ranges:
        low, high = connection.ops.integer_field_range(internal)
        return (low is None or python >= low) and (high is None or python <= high)
    return python is not None


class ReadOnlyAdmin(StrictAdmin):
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


class LicenseFileAdmin(StrictAdmin):
    """A license's fields, with a fingerprint of its file instead of the file.

    The file is a secret: its signature salts the key of every challenge made for it.
    """

    secret_fields = ("text",)
    exclude = ("text",)

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> list[str]:
        return [*super().get_readonly_fields(request, obj), "fingerprint"]

    @admin.display(description=gettext_lazy("file fingerprint (SHA-256)"))
    def fingerprint(self, obj: Model) -> str:
        return fingerprint(obj.text)

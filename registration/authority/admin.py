"""Django admin for the vendor's support staff: issued licenses, bindings, the audit log.

Rules, in plain words:
- nothing here is edited through forms: bindings are made by the verification service,
  and the audit log is append-only;
- the changes are Revoke and Unbind, each behind a confirmation page that asks for a
  reason (POST, CSRF) and needs its own permission (403 without it), and Issue license
  (and Renew, the same form filled from a license), which needs the issue permission: a
  two-step form (Preview, then Sign; both POST, CSRF) whose checks, signing and recording
  are issuing.issue, as for the issue_license command. Signing answers with the file as a
  download, never cached; the page shows only its fingerprint afterwards.
"""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseRedirect,
)
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.cache import add_never_cache_headers
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from registration import clock
from registration.adminbase import AuditLogAdmin, LicenseFileAdmin, ReadOnlyAdmin
from registration.authority import chain
from registration.authority.forms import (
    IssueLicenseForm,
    PasteForm,
    initial_for_renewal,
    initial_from_request,
)
from registration.authority.issuing import IssueError, issue, with_license_id
from registration.authority.models import (
    DOWNLOAD_PERMISSION,
    ISSUE_PERMISSION,
    REVOKE_PERMISSION,
    UNBIND_PERMISSION,
    AuditAction,
    AuditEvent,
    Binding,
    BindingState,
    IssuedLicense,
)
from registration.authority.support import resolve_copy, revoke, unbind
from registration.protocol.license import fingerprint
from registration.protocol.text import format_datetime, format_minutes

REASON_MAX_LENGTH = 500


class ReasonForm(forms.Form):
    """The reason support staff give for an unbind or a revoke (kept in the audit log)."""

    reason = forms.CharField(
        label=gettext_lazy("Reason"),
        max_length=REASON_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        error_messages={"required": gettext_lazy("Say why; the reason goes into the audit log.")},
    )


class ResolveCopyForm(ReasonForm):
    """Which copy of a copied installation goes on (the other is refused from then on)."""

    keep = forms.ChoiceField(
        label=gettext_lazy("Keep"),
        widget=forms.RadioSelect,
        error_messages={"required": gettext_lazy("Choose the copy to keep.")},
    )

    def __init__(self, *args, binding: Binding, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.order_fields(["keep", "reason"])
        self.fields["keep"].choices = [
            (
                "tip",
                _("The copy that registered last on %(date)s UTC (tip %(tip)s)")
                % {
                    "date": format_minutes(chain.other_copy_registered_at(binding)),
                    "tip": binding.chain_tip[:8],
                },
            ),
            (
                "copy",
                _("The copy caught on %(date)s UTC (tip %(tip)s)")
                % {"date": format_minutes(binding.copied_at), "tip": binding.copy_chain[:8]},
            ),
        ]


def _require_permission(request: HttpRequest, permission: str) -> None:
    if not request.user.has_perm(permission):
        raise PermissionDenied


def _confirm_page(
    admin_: admin.ModelAdmin, request: HttpRequest, obj: Model, form: ReasonForm, **extra
) -> TemplateResponse:
    """Render the confirmation page that asks for a reason before a change."""
    opts = admin_.model._meta
    context = {
        **admin_.admin_site.each_context(request),
        "opts": opts,
        "object": obj,
        "form": form,
        "cancel_url": reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk]),
        **extra,
    }
    status = 400 if form.is_bound and form.errors else 200
    return TemplateResponse(request, "admin/authority/confirm_reason.html", context, status=status)


def _changelist_url(model: type[Model]) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


class _HappenedFilter(admin.SimpleListFilter):
    """Yes/No on whether a moment field is set (revoked_at, copied_at)."""

    field_name = ""

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin):
        return [("yes", _("Yes")), ("no", _("No"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() in ("yes", "no"):
            return queryset.filter(**{f"{self.field_name}__isnull": self.value() == "no"})
        return queryset


class CopiedFilter(_HappenedFilter):
    title = gettext_lazy("copied")
    parameter_name = "copied"
    field_name = "copied_at"


class RevokedFilter(_HappenedFilter):
    title = gettext_lazy("revoked")
    parameter_name = "revoked"
    field_name = "revoked_at"


def binding_state(issued: IssuedLicense) -> str:
    """Say in one word where an issued license stands (bindings and renewals prefetched)."""
    if issued.revoked_at is not None:
        return _("revoked")
    bindings = list(issued.bindings.all())
    active = next((b for b in bindings if b.state == BindingState.ACTIVE), None)
    if active is not None:
        return _("copied") if active.copied_at is not None else _("bound")
    if any(r.revoked_at is None for r in issued.renewals.all()):
        return _("renewed")
    if any(b.state == BindingState.RELEASED for b in bindings):
        return _("released")
    if bindings:
        return _("unbound")
    return _("not bound")


ISSUE_TEMPLATE = "admin/authority/issuedlicense/issue.html"
ISSUE_STEPS = ("paste", "preview", "edit", "sign")


@admin.register(IssuedLicense)
class IssuedLicenseAdmin(LicenseFileAdmin, ReadOnlyAdmin):
    change_form_template = "admin/authority/issuedlicense/change_form.html"
    change_list_template = "admin/authority/issuedlicense/change_list.html"
    list_display = [
        "license_id",
        "company",
        "project_name",
        "license_type",
        "expires_at",
        "max_nodes",
        "state",
        "revoked",
    ]
    list_display_links = ["license_id"]
    list_filter = [RevokedFilter, "license_type", "expires_at"]
    search_fields = ["company", "project_name", "license_id", "bindings__installation_id"]
    ordering = ["company", "project_name", "-issued_at"]
    date_hierarchy = "issued_at"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).prefetch_related("bindings", "renewals")

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> list[str]:
        return [*super().get_readonly_fields(request, obj), "renewed_by"]

    @admin.display(boolean=True, description=gettext_lazy("revoked"), ordering="revoked_at")
    def revoked(self, obj: IssuedLicense) -> bool:
        return obj.revoked_at is not None

    @admin.display(description=gettext_lazy("state"))
    def state(self, obj: IssuedLicense) -> str:
        return binding_state(obj)

    @admin.display(description=gettext_lazy("renewed by"))
    def renewed_by(self, obj: IssuedLicense) -> str:
        return ", ".join(str(row.license_id) for row in obj.renewals.all()) or "-"

    @admin.display(description=gettext_lazy("renew"))
    def renew_link(self, obj: IssuedLicense) -> str:
        # Only the last of a line of renewals can be renewed (issuing._renewed_license).
        if obj.revoked_at is not None or any(r.revoked_at is None for r in obj.renewals.all()):
            return ""
        url = reverse("admin:authority_issuedlicense_issue") + f"?renews={obj.pk}"
        return format_html('<a class="button" href="{}">{}</a>', url, _("Renew…"))

    @admin.display(description=gettext_lazy("revoke"))
    def revoke_link(self, obj: IssuedLicense) -> str:
        if obj.revoked_at is not None:
            return ""
        url = reverse("admin:authority_issuedlicense_revoke", args=[obj.pk])
        return format_html('<a class="button" href="{}">{}</a>', url, _("Revoke…"))

    def get_list_display(self, request: HttpRequest) -> list[str]:
        # Only those who may renew or revoke see those buttons.
        columns = list(self.list_display)
        if request.user.has_perm(ISSUE_PERMISSION):
            columns.append("renew_link")
        if request.user.has_perm(REVOKE_PERMISSION):
            columns.append("revoke_link")
        return columns

    def get_urls(self) -> list[URLPattern]:
        issue_ = path(
            "issue/",
            self.admin_site.admin_view(self.issue_view),
            name="authority_issuedlicense_issue",
        )
        revoke = path(
            "<path:object_id>/revoke/",
            self.admin_site.admin_view(self.revoke_view),
            name="authority_issuedlicense_revoke",
        )
        download = path(
            "<path:object_id>/download/",
            self.admin_site.admin_view(self.download_view),
            name="authority_issuedlicense_download",
        )
        return [issue_, revoke, download, *super().get_urls()]

    @method_decorator(require_http_methods(["GET", "POST"]))
    def issue_view(self, request: HttpRequest) -> HttpResponse:
        """Issue license: paste the request email or type the fields, Preview, then Sign.

        GET shows the form (filled from a license with ?renews=<its row>); each step is a
        POST naming itself (step=paste, preview, edit or sign), and Sign checks everything
        again before it signs.
        """
        _require_permission(request, ISSUE_PERMISSION)
        now = clock.now()
        if request.method == "GET":
            initial = {}
            if request.GET.get("renews"):
                renewed = self.get_object(request, request.GET["renews"])
                if renewed is None:
                    raise Http404(_("There is no such issued license."))
                initial = initial_for_renewal(renewed.as_license())
            return self._issue_page(request, IssueLicenseForm(initial=initial, now=now))
        step = request.POST.get("step", "")
        if step not in ISSUE_STEPS:
            return HttpResponseBadRequest(_("Unknown step of the Issue license form."))
        if step == "paste":
            paste = PasteForm(request.POST)
            if not paste.is_valid():
                return self._issue_page(request, IssueLicenseForm(now=now), paste=paste, status=400)
            initial = initial_from_request(paste.cleaned_data["request_email"])
            messages.info(request, _("The form is filled from the email: check it, then Preview."))
            return self._issue_page(request, IssueLicenseForm(initial=initial, now=now))
        form = IssueLicenseForm(request.POST, now=now)
        if not form.is_valid():
            return self._issue_page(request, form, status=400)
        if step == "edit":
            return self._issue_page(request, form)
        order = with_license_id(form.order(), form.license)
        if step == "preview" or not form.check_previewed(
            request.POST.get("preview_token", ""), request.user.pk
        ):
            # Carry the license id the preview chose, so Sign signs what was previewed;
            # a Sign of anything else shows the preview of what it sent, to check first.
            data = request.POST.copy()
            data["license_id"] = order.license_id
            data["installation_id"] = order.installation_id
            form.data = data
            status = 200 if step == "preview" else 400
            return self._issue_page(request, form, preview=form.license, status=status)
        try:
            issued = issue(order, now=now, actor=request.user)
        except IssueError as exc:
            form.add_issue_error(exc)
            return self._issue_page(request, form, status=400)
        messages.success(
            request,
            _(
                "License %(id)s is signed with key %(kid)s and recorded; its file "
                "(fingerprint %(fingerprint)s) was sent as a download."
            )
            % {
                "id": issued.license.license_id,
                "kid": issued.license.kid,
                "fingerprint": fingerprint(issued.text),
            },
        )
        response = HttpResponse(issued.text, content_type="application/octet-stream")
        response["Content-Disposition"] = 'attachment; filename="Container.lic"'
        add_never_cache_headers(response)
        return response

    def _issue_page(
        self,
        request: HttpRequest,
        form: IssueLicenseForm,
        *,
        paste: PasteForm | None = None,
        preview=None,
        status: int = 200,
    ) -> TemplateResponse:
        opts = self.model._meta
        payload = ""
        if preview is not None:
            payload = json.dumps(preview.to_payload(), indent=2, ensure_ascii=False)
        context = {
            **self.admin_site.each_context(request),
            "opts": opts,
            "title": _("Renew license") if form["renews"].value() else _("Issue license"),
            "form": form,
            "paste": paste if paste is not None else PasteForm(),
            "preview": preview,
            "payload": payload,
            "issued_at": format_datetime(preview.issued_at) if preview is not None else "",
            "preview_token": form.preview_token(request.user.pk) if preview is not None else "",
            "changelist_url": _changelist_url(IssuedLicense),
        }
        response = TemplateResponse(request, ISSUE_TEMPLATE, context, status=status)
        add_never_cache_headers(response)
        return response

    @method_decorator(require_POST)
    def download_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Send the license file as an attachment, never cached, and say so in the audit."""
        _require_permission(request, DOWNLOAD_PERMISSION)
        issued = self.get_object(request, unquote(object_id))
        if issued is None:
            raise Http404(_("There is no such issued license."))
        AuditEvent.record(
            AuditAction.DOWNLOADED,
            at=clock.now(),
            actor=request.user,
            license_id=issued.license_id,
            fingerprint=fingerprint(issued.text),
        )
        response = HttpResponse(issued.text, content_type="application/octet-stream")
        response["Content-Disposition"] = 'attachment; filename="Container.lic"'
        add_never_cache_headers(response)
        return response

    @method_decorator(require_http_methods(["GET", "POST"]))
    def revoke_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Ask for a reason, then revoke: the verification service refuses it from now on."""
        _require_permission(request, REVOKE_PERMISSION)
        issued = self.get_object(request, unquote(object_id))
        if issued is None:
            raise Http404(_("There is no such issued license."))
        if issued.revoked_at is not None:
            messages.info(request, _("This license was already revoked."))
            return HttpResponseRedirect(_changelist_url(IssuedLicense))
        form = ReasonForm(request.POST if request.method == "POST" else None)
        if not form.is_valid():
            return _confirm_page(
                self,
                request,
                issued,
                form,
                action=_("Revoke"),
                question=_("Revoke the license %(id)s of %(company)s / %(project)s?")
                % {
                    "id": issued.license_id,
                    "company": issued.company,
                    "project": issued.project_name,
                },
                consequence=_(
                    "The verification service will refuse this license from now on: no server "
                    "can register with it again. This cannot be undone here."
                ),
            )
        revoke(issued.pk, actor=request.user, reason=form.cleaned_data["reason"], now=clock.now())
        messages.success(
            request,
            _("License %(id)s is revoked; the verification service refuses it from now on.")
            % {"id": issued.license_id},
        )
        return HttpResponseRedirect(_changelist_url(IssuedLicense))


@admin.register(Binding)
class BindingAdmin(ReadOnlyAdmin):
    change_form_template = "admin/authority/binding/change_form.html"
    list_display = [
        "license_uuid",
        "company",
        "project",
        "installation_id",
        "node_count",
        "first_bound",
        "last_verified",
        "state",
        "copied",
    ]
    list_display_links = ["license_uuid"]
    list_filter = ["state", CopiedFilter, "first_bound", "last_verified"]
    list_select_related = ["license"]
    search_fields = [
        "license__company",
        "license__project_name",
        "license__license_id",
        "installation_id",
    ]
    ordering = ["-last_verified"]
    date_hierarchy = "first_bound"

    @admin.display(description=gettext_lazy("license"), ordering="license__license_id")
    def license_uuid(self, obj: Binding) -> str:
        return str(obj.license.license_id)

    @admin.display(description=gettext_lazy("company"), ordering="license__company")
    def company(self, obj: Binding) -> str:
        return obj.license.company

    @admin.display(description=gettext_lazy("project"), ordering="license__project_name")
    def project(self, obj: Binding) -> str:
        return obj.license.project_name

    @admin.display(boolean=True, description=gettext_lazy("copied"), ordering="copied_at")
    def copied(self, obj: Binding) -> bool:
        return obj.copied_at is not None

    @admin.display(description=gettext_lazy("unbind"))
    def unbind_link(self, obj: Binding) -> str:
        if obj.state != BindingState.ACTIVE:
            return ""
        url = reverse("admin:authority_binding_unbind", args=[obj.pk])
        return format_html('<a class="button" href="{}">{}</a>', url, _("Unbind…"))

    def get_list_display(self, request: HttpRequest) -> list[str]:
        # Only those who may unbind see the Unbind buttons.
        if request.user.has_perm(UNBIND_PERMISSION):
            return [*self.list_display, "unbind_link"]
        return self.list_display

    def get_urls(self) -> list[URLPattern]:
        unbind = path(
            "<path:object_id>/unbind/",
            self.admin_site.admin_view(self.unbind_view),
            name="authority_binding_unbind",
        )
        resolve = path(
            "<path:object_id>/resolve-copy/",
            self.admin_site.admin_view(self.resolve_copy_view),
            name="authority_binding_resolve_copy",
        )
        return [unbind, resolve, *super().get_urls()]

    @method_decorator(require_http_methods(["GET", "POST"]))
    def resolve_copy_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Ask which copy goes on and why, then refuse the other from now on."""
        _require_permission(request, UNBIND_PERMISSION)
        binding = self.get_object(request, unquote(object_id))
        if binding is None:
            raise Http404(_("There is no such binding."))
        if binding.copied_at is None:
            messages.info(request, _("This binding is not marked as copied."))
            return HttpResponseRedirect(_changelist_url(Binding))
        data = request.POST if request.method == "POST" else None
        form = ResolveCopyForm(data, binding=binding)
        if not form.is_valid():
            return _confirm_page(
                self,
                request,
                binding,
                form,
                action=_("Choose the copy to keep"),
                question=_("Two copies of installation %(installation)s registered license %(id)s.")
                % {"id": binding.license.license_id, "installation": binding.installation_id},
                consequence=_(
                    "The copy you keep registers as before; the other is refused from now "
                    "on, and its administrator must ask for a license of its own."
                ),
            )
        resolve_copy(
            binding.pk,
            keep_tip=form.cleaned_data["keep"] == "tip",
            actor=request.user,
            reason=form.cleaned_data["reason"],
            now=clock.now(),
        )
        messages.success(request, _("The copy is resolved; the other copy is refused from now on."))
        return HttpResponseRedirect(_changelist_url(Binding))

    @method_decorator(require_http_methods(["GET", "POST"]))
    def unbind_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Ask for a reason, then unbind so another server can register the license."""
        _require_permission(request, UNBIND_PERMISSION)
        binding = self.get_object(request, unquote(object_id))
        if binding is None:
            raise Http404(_("There is no such binding."))
        if binding.state != BindingState.ACTIVE:
            messages.info(request, _("This binding was already unbound."))
            return HttpResponseRedirect(_changelist_url(Binding))
        form = ReasonForm(request.POST if request.method == "POST" else None)
        if not form.is_valid():
            return _confirm_page(
                self,
                request,
                binding,
                form,
                action=_("Unbind"),
                question=_("Unbind the license %(id)s from installation %(installation)s?")
                % {"id": binding.license.license_id, "installation": binding.installation_id},
                consequence=_("Another server can then register with the same Container.lic."),
            )
        unbind(binding.pk, actor=request.user, reason=form.cleaned_data["reason"], now=clock.now())
        messages.success(
            request,
            _("License %(id)s is unbound; another server can now register with it.")
            % {"id": binding.license.license_id},
        )
        return HttpResponseRedirect(_changelist_url(Binding))


@admin.register(AuditEvent)
class AuditEventAdmin(AuditLogAdmin):
    """The verification service's audit log."""

"""The admin's Issue license form and its paste box.

Rules, in plain words:
- the form checks nothing of its own about the license: it hands the values, as typed, to
  issuing.prepare, which the issue_license command uses too, and shows each IssueError
  on the field it names, in the reader's language (by the error's code);
- the paste box reads the console's license request email with
  license_request.parse_request_email (the same module writes it), and says what is
  wrong with a paste line by line;
- Sign signs only what was previewed: the preview hands out a token, an HMAC (with the
  server's SECRET_KEY) of every value the file and the audit entry will hold except the
  time of issue, and Sign refuses a form whose values no longer match it, or that has none.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from datetime import datetime

from django import forms
from django.conf import settings
from django.core import signing
from django.utils.translation import gettext_lazy as _

from registration.authority.issuing import IssueError, Order, default_kid, prepare, signing_keys
from registration.license_request import (
    EMAIL_MAX_CHARS,
    RequestedLicense,
    RequestEmailError,
    parse_request_email,
)
from registration.protocol.license import LICENSE_TYPES, License

# Tokens of one purpose only: a signed value from elsewhere in the project is no token.
PREVIEW_TOKEN_SALT = "licserver.authority.issue-preview"

# The form's words for each IssueError code (the command's are in issuing.py).
ISSUE_MESSAGES = {
    "unknown_kid": _("There is no signing key “%(kid)s” on this server."),
    "key_unloadable": _("The signing key “%(kid)s” cannot be loaded; ask the operators."),
    "max_nodes_range": _("The number of nodes must be from 1 to %(limit)s."),
    "not_uuid": _("“%(value)s” is not a license ID (a UUID)."),
    "not_date": _("Enter the date as YYYY-MM-DD."),
    "past": _(
        "This expiry date is already past: the license would have been valid through "
        "%(expires)s UTC, and it is now %(now)s UTC. Give the last day it should be valid."
    ),
    "invalid_field": _("This value cannot be in a license: %(detail)s."),
    "issued_before": _("The license ID %(license_id)s was issued before."),
    "renews_unknown": _("There is no issued license %(license_id)s to renew."),
    "renews_revoked": _("License %(license_id)s is revoked: issue a new license instead."),
    "renews_renewed": _(
        "License %(license_id)s was already renewed by %(renewal)s: renew that one instead."
    ),
    "renewal_changes": _("A renewal keeps this value of the license it renews (“%(was)s”)."),
    "renewal_version": _(
        "A renewal keeps the major version and may only raise the minor version "
        "(the renewed license has %(was)s)."
    ),
    "renewal_earlier": _(
        "A renewal cannot expire before the license it renews (valid through %(was)s)."
    ),
    "renewal_fewer_nodes": _(
        "A renewal cannot have fewer nodes than the license it renews (%(was)s)."
    ),
    "renewal_not_later": _(
        "A renewal must expire later, allow more nodes or name a newer minor version than "
        "the license it renews."
    ),
}

# The form's words for each problem of a pasted email.
EMAIL_MESSAGES = {
    "missing": _("The line “%(label)s: …” is missing."),
    "duplicate": _("The line “%(label)s: …” is there twice, with different values."),
    "empty": _("The line “%(label)s: …” is empty."),
    "too_long": _("The line “%(label)s: …” is too long for a license."),
    "control": _("The line “%(label)s: …” has control or invisible characters."),
    "not_date": _("The line “%(label)s: …” is not a date written YYYY/MM/DD."),
    "not_number": _("The line “%(label)s: …” is not a number of nodes from 1 to 10000."),
    "not_version": _("The line “%(label)s: …” is not a version such as 11.0 (build 11.0.20)."),
    "not_uuid": _("The line “%(label)s: …” is not an installation ID (a UUID)."),
    "other_method": _("The line “%(label)s: …” names another registration method."),
    "too_long_email": _("This is far longer than a license request email."),
}


def _date_input() -> forms.TextInput:
    return forms.TextInput(attrs={"type": "date", "placeholder": "YYYY-MM-DD"})


class IssueLicenseForm(forms.Form):
    """Every field of a license; the values go to issuing.prepare as typed."""

    company = forms.CharField(label=_("Company name"), strip=False)
    project_name = forms.CharField(label=_("Project name"), strip=False)
    app_name = forms.CharField(label=_("Application name"), strip=False)
    app_version = forms.CharField(
        label=_("Application version"), strip=False, help_text=_("major.minor, e.g. 11.0")
    )
    project_content = forms.CharField(label=_("Project content"), strip=False)
    license_type = forms.ChoiceField(
        label=_("License type"), choices=[(t, t) for t in LICENSE_TYPES], initial="container"
    )
    contract_date = forms.CharField(label=_("Contract signing date"), widget=_date_input())
    expires = forms.CharField(
        label=_("Expiry date"),
        widget=_date_input(),
        help_text=_("The last day the license is valid (through its end, UTC)."),
    )
    max_nodes = forms.IntegerField(
        label=_("Maximum number of registration (nodes)"),
        initial=1,
        error_messages={"invalid": _("Enter a whole number of nodes.")},
    )
    kid = forms.ChoiceField(label=_("Signing key"))
    license_id = forms.CharField(
        label=_("License ID"),
        required=False,
        help_text=_("Leave empty for a new one."),
    )
    renews = forms.CharField(
        label=_("Renews license"),
        required=False,
        widget=forms.TextInput(attrs={"readonly": True}),
        help_text=_("Set by Renew on the list of issued licenses."),
    )
    installation_id = forms.CharField(
        label=_("Installation ID (from the request)"),
        required=False,
        widget=forms.TextInput(attrs={"readonly": True}),
        help_text=_("Kept in the audit log; support staff find the binding by it."),
    )

    def __init__(self, *args, now: datetime, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.now = now
        self.license: License | None = None
        self.fields["kid"].choices = [(kid, kid) for kid in sorted(signing_keys())]
        self.fields["kid"].initial = default_kid()
        self.fields["app_name"].initial = settings.APP_NAME
        self.fields["project_content"].initial = settings.PROJECT_CONTENT

    def order(self) -> Order:
        data = self.cleaned_data
        return Order(
            company=data["company"],
            project_name=data["project_name"],
            app_name=data["app_name"],
            app_version=data["app_version"],
            project_content=data["project_content"],
            license_type=data["license_type"],
            contract_date=data["contract_date"].strip(),
            expires=data["expires"].strip(),
            max_nodes=data["max_nodes"],
            kid=data["kid"],
            license_id=data["license_id"].strip(),
            renews=data["renews"].strip(),
            installation_id=data["installation_id"].strip(),
        )

    def clean(self) -> dict:
        data = super().clean()
        if self.errors:
            return data
        try:
            self.license = prepare(self.order(), now=self.now)
        except IssueError as exc:
            self.add_issue_error(exc)
        return data

    def preview_token(self, user_pk: object) -> str:
        """Return the token that lets this user Sign exactly this form's license."""
        value = f"{self._previewed_digest()}:{user_pk}:{int(self.now.timestamp())}"
        return signing.Signer(salt=PREVIEW_TOKEN_SALT).sign(value)

    def check_previewed(self, token: str, user_pk: object) -> bool:
        """Refuse, on the form, a Sign whose values are not the ones this user previewed.

        The preview must be the same user's and at most ISSUE_PREVIEW_MAX_SECONDS old (by
        the form's clock), so a forgotten tab is not signed months later unread.
        """
        try:
            value = signing.Signer(salt=PREVIEW_TOKEN_SALT).unsign(token)
            digest, signed_by, made_at = value.split(":")
            age = int(self.now.timestamp()) - int(made_at)
        except (signing.BadSignature, ValueError):
            digest, signed_by, age = "", "", -1
        if (
            hmac.compare_digest(digest, self._previewed_digest())
            and signed_by == str(user_pk)
            and 0 <= age <= settings.ISSUE_PREVIEW_MAX_SECONDS
        ):
            return True
        self.add_error(
            None,
            forms.ValidationError(
                _("This is not the license you previewed: check the preview below, then sign."),
                code="not_previewed",
            ),
        )
        return False

    def clean_installation_id(self) -> str:
        # It goes into the audit entry, where support staff look bindings up by it.
        value = self.cleaned_data["installation_id"].strip()
        if value:
            try:
                value = str(uuid.UUID(value))
            except ValueError:
                raise forms.ValidationError(
                    _("“%(value)s” is not an installation ID (a UUID)."),
                    code="not_uuid",
                    params={"value": value[:64]},
                ) from None
        return value

    def _previewed_digest(self) -> str:
        # Everything the file and the audit entry hold, except the time of issue, which
        # is set when Sign signs (the preview says so).
        assert self.license is not None, "only a valid form has a license"
        payload = self.license.to_payload()
        del payload["issued_at"]
        values = {
            **payload,
            "kid": self.license.kid,
            "installation_id": self.cleaned_data["installation_id"].strip(),
        }
        canonical = json.dumps(values, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def add_issue_error(self, exc: IssueError) -> None:
        message = ISSUE_MESSAGES.get(exc.code, exc.message)
        field = exc.field if exc.field in self.fields else None
        self.add_error(field, forms.ValidationError(message, code=exc.code, params=exc.params))


class PasteForm(forms.Form):
    """The license request email, pasted as the console's helper wrote it."""

    request_email = forms.CharField(
        label=_("License request email"),
        max_length=EMAIL_MAX_CHARS,
        widget=forms.Textarea(attrs={"rows": 8, "cols": 80}),
        help_text=_("Paste the whole email; the form below is filled from it."),
        error_messages={"required": _("Paste the license request email first.")},
    )

    def clean_request_email(self) -> RequestedLicense:
        try:
            return parse_request_email(self.cleaned_data["request_email"])
        except RequestEmailError as exc:
            raise forms.ValidationError(
                [
                    forms.ValidationError(
                        EMAIL_MESSAGES[problem.code],
                        code=problem.code,
                        params={"label": problem.label},
                    )
                    for problem in exc.problems
                ]
            ) from None


def initial_from_request(requested: RequestedLicense) -> dict[str, object]:
    """The Issue license form's values for what a request email asks for."""
    return {
        "company": requested.company,
        "project_name": requested.project_name,
        "contract_date": requested.contract_date.isoformat(),
        "max_nodes": requested.max_nodes,
        "app_version": requested.app_version,
        "app_name": requested.app_name,
        "project_content": requested.project_content,
        "installation_id": str(requested.installation_id),
    }


def initial_for_renewal(lic: License) -> dict[str, object]:
    """The Issue license form's values for a renewal of lic: the same everything, the
    expiry to be given."""
    return {
        "company": lic.company,
        "project_name": lic.project_name,
        "app_name": lic.app_name,
        "app_version": lic.app_version,
        "project_content": lic.project_content,
        "license_type": lic.license_type,
        "contract_date": lic.contract_date.isoformat(),
        "max_nodes": lic.max_nodes,
        "renews": str(lic.license_id),
    }

"""Forms own input validation: a bad field is a ValidationError with a code, never a 500."""

from __future__ import annotations

import re

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from registration.protocol.causes import AUTH_METHOD_CONTAINER

AUTH_METHOD_CHOICES = [(AUTH_METHOD_CONTAINER, _("Local Container"))]
_CODE = re.compile(r"[0-9]{6}", re.ASCII)


class LicenseUploadForm(forms.Form):
    auth_method = forms.ChoiceField(label=_("AUTH Method"), choices=AUTH_METHOD_CHOICES)
    license = forms.FileField(label=_("Upload License"), allow_empty_file=True)

    def __init__(self, *args, too_large: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.too_large = too_large

    def clean_license(self) -> bytes:
        upload = self.cleaned_data["license"]
        data = upload.read(settings.LICENSE_MAX_BYTES + 1)
        if len(data) > settings.LICENSE_MAX_BYTES:
            raise forms.ValidationError(
                _("The file is larger than %(max)s KiB; a Container.lic is much smaller."),
                code="too_large",
                params={"max": settings.LICENSE_MAX_BYTES // 1024},
            )
        if not data.strip():
            raise forms.ValidationError(_("The file is empty."), code="empty")
        return data

    def clean(self) -> dict:
        if self.too_large:
            # The upload handler dropped the file as it arrived; say why.
            self.errors.pop("license", None)
            raise forms.ValidationError(
                _("The file is larger than %(max)s KiB; a Container.lic is much smaller."),
                code="too_large",
                params={"max": settings.LICENSE_MAX_BYTES // 1024},
            )
        return super().clean()


class CodeForm(forms.Form):
    code = forms.CharField(
        label=_("Verification code"),
        max_length=32,
        strip=False,
        widget=forms.TextInput(
            attrs={"inputmode": "numeric", "autocomplete": "one-time-code", "pattern": "[0-9 ]*"}
        ),
    )

    def clean_code(self) -> str:
        # Spaces are trimmed (codes are often read in groups); anything else that is not
        # one of the ASCII digits 0-9 is a format error, not an attempt.
        value = self.cleaned_data["code"].replace(" ", "")
        if not _CODE.fullmatch(value):
            raise forms.ValidationError(
                _("Enter the 6-digit verification code shown on your phone (digits 0-9 only)."),
                code="format",
            )
        return value


class ReplaceLicenseForm(forms.Form):
    """Confirm that another license ends the registration until its QR code is scanned.

    fingerprint names the upload the admin saw on the confirmation page; waiting is the
    one the session holds (None when none waits). They must be the same upload.
    """

    fingerprint = forms.CharField(max_length=64, widget=forms.HiddenInput)

    def __init__(self, *args, waiting: str | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.waiting = waiting

    def clean(self) -> dict:
        data = super().clean()
        if self.waiting is None:
            raise forms.ValidationError(
                _("No upload is waiting for confirmation. Upload the license again."),
                code="nothing_waiting",
            )
        if "fingerprint" in data and data["fingerprint"] != self.waiting:
            raise forms.ValidationError(
                _(
                    "Another upload is waiting for confirmation than the one this page "
                    "showed. Check it again before installing it."
                ),
                code="other_upload",
            )
        return data


class ReleaseForm(forms.Form):
    """Confirm a release by typing the installed license's project name (case and spaces
    as the license has them): a release ends the registration, so it is not one click."""

    project_name = forms.CharField(label=_("Project name"), max_length=200, strip=True)

    def __init__(self, *args, expected: str = "", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.expected = expected

    def clean_project_name(self) -> str:
        value = self.cleaned_data["project_name"]
        if value != self.expected:
            raise forms.ValidationError(
                _("Type the project name exactly as the license shows it: %(name)s"),
                code="project_mismatch",
                params={"name": self.expected},
            )
        return value

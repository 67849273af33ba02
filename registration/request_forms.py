"""The Request a license form: what the admin states about the contract."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from django import forms
from django.utils.translation import gettext_lazy as _

from registration.protocol.license import MAX_NODES_LIMIT, TEXT_FIELD_MAX
from registration.protocol.text import DATE_FORMAT, format_date, has_control_characters

# The contract may have been signed today in any time zone: the latest calendar date on
# Earth is the one at UTC+14, so only a date after that is in the future everywhere.
_EARLIEST_ZONE_AHEAD = timezone(timedelta(hours=14))


def latest_contract_date(now: datetime) -> date:
    """Return the last contract signing date that is not in the future somewhere."""
    return now.astimezone(_EARLIEST_ZONE_AHEAD).date()


def _plain_text(value: str) -> str:
    if has_control_characters(value):
        raise forms.ValidationError(
            _(
                "Remove the control characters (such as tabs or line breaks) and the "
                "invisible characters (such as zero-width spaces)."
            ),
            code="control",
        )
    return value


class _DateField(forms.DateField):
    def to_python(self, value: object) -> date | None:
        # Blanks alone mean "not given" (required), not a badly written date.
        if isinstance(value, str):
            value = value.strip()
        return super().to_python(value)


class LicenseRequestForm(forms.Form):
    """Validate a license request.

    multi_node: more than one live node, so the maximum number of registration is asked.
    On a single node it is 1 unless the admin ticks "This is a cluster".
    """

    company = forms.CharField(
        label=_("Company name"),
        max_length=TEXT_FIELD_MAX,
        error_messages={"required": _("Enter the company name as in the contract.")},
    )
    project_name = forms.CharField(
        label=_("Project name"),
        max_length=TEXT_FIELD_MAX,
        error_messages={"required": _("Enter the project name.")},
    )
    contract_date = _DateField(
        label=_("Contract signing date"),
        input_formats=["%Y-%m-%d", DATE_FORMAT],
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        error_messages={
            "required": _("Enter the contract signing date."),
            "invalid": _("Enter the contract signing date as YYYY-MM-DD."),
        },
    )
    cluster = forms.BooleanField(label=_("This is a cluster"), required=False)
    max_nodes = forms.IntegerField(
        label=_("Maximum number of registration (nodes)"),
        min_value=1,
        max_value=MAX_NODES_LIMIT,
        initial=1,
        required=False,
    )

    def __init__(self, *args, now: datetime, multi_node: bool, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.now = now
        self.multi_node = multi_node
        latest = latest_contract_date(now)
        self.fields["contract_date"].widget.attrs["max"] = latest.isoformat()
        if multi_node:
            # A cluster is running: the number is always asked, and no checkbox is needed.
            del self.fields["cluster"]
            self.fields["max_nodes"].required = True

    def clean_company(self) -> str:
        return _plain_text(self.cleaned_data["company"])

    def clean_project_name(self) -> str:
        return _plain_text(self.cleaned_data["project_name"])

    def clean_contract_date(self) -> date:
        value = self.cleaned_data["contract_date"]
        latest = latest_contract_date(self.now)
        if value > latest:
            raise forms.ValidationError(
                _("The contract signing date cannot be in the future (after %(latest)s)."),
                code="future",
                params={"latest": format_date(latest)},
            )
        return value

    def clean(self) -> dict:
        data = super().clean()
        if self.multi_node or data.get("cluster"):
            if data.get("max_nodes") is None and "max_nodes" not in self.errors:
                self.add_error(
                    "max_nodes",
                    forms.ValidationError(
                        _("Enter the number of cluster nodes to register."), code="required"
                    ),
                )
        elif data.get("max_nodes") not in (None, 1):
            # On a single node the number is hidden until the box is ticked; a number typed
            # without it is a mistake one way or the other, so ask rather than guess.
            self.add_error(
                "max_nodes",
                forms.ValidationError(
                    _("Tick “This is a cluster” to request more than one node."),
                    code="not_cluster",
                ),
            )
        else:
            data["max_nodes"] = 1
        return data

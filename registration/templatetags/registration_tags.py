"""Template tags for showing or hiding features by registration state.

{% load registration_tags %}
{% registration_state %}                      -> "registered", "unregistered", ...
{% current_registration as reg %}{% if reg.is_registered %}...{% endif %}
{% license_expiry_warning %}                  -> the console's expiry warning, or nothing
{{ day|admin_date }} and the other filters of licserver's `display` library
"""

from __future__ import annotations

from django import template
from django.conf import settings
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import ngettext

from licserver.templatetags import display
from registration.gate import GateState, RegistrationValue, current_registration
from registration.models import MANAGE_PERMISSION
from registration.protocol.text import format_date

register = template.Library()


def _value(context: template.Context) -> RegistrationValue:
    return current_registration(context.get("request"))


@register.simple_tag(takes_context=True)
def registration_state(context: template.Context) -> str:
    """Return the state code (see docs/integration.md)."""
    return str(_value(context).state)


@register.simple_tag(takes_context=True, name="current_registration")
def current_registration_tag(context: template.Context) -> RegistrationValue:
    """Return the whole RegistrationValue; use with `as name`."""
    return _value(context)


@register.simple_tag(takes_context=True)
def license_expiry_warning(context: template.Context) -> SafeString | str:
    """Warn admins from LICENSE_EXPIRY_WARNING_DAYS before the license's last day."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.has_perm(MANAGE_PERMISSION):
        return ""
    value = _value(context)
    if value.expires_at is None or value.days_left is None:
        return ""
    day = format_date(value.expires_at)
    if value.state == GateState.LICENSE_EXPIRED:
        return format_html(
            '<p class="error" role="alert" id="expiry-warning">{}</p>',
            value.message(),
        )
    if not 0 <= value.days_left <= settings.LICENSE_EXPIRY_WARNING_DAYS:
        return ""
    text = ngettext(
        "The license expires on %(date)s (%(n)s day left).",
        "The license expires on %(date)s (%(n)s days left).",
        value.days_left,
    ) % {"date": day, "n": value.days_left}
    return format_html('<p class="warning" role="status" id="expiry-warning">{}</p>', text)


# The date, time and countdown filters live in licserver's `display` library (the phone
# page of the verification service alone needs them too); registered here as well so that
# console templates load one library.
for _name in ("admin_date", "admin_datetime", "admin_time", "minutes_seconds"):
    register.filter(_name, display.register.filters[_name])

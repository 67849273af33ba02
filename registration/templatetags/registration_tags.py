"""Template tags for showing or hiding features by registration state.

{% load registration_tags %}
{% registration_state %}                      -> "registered", "unregistered", ...
{% current_registration as reg %}{% if reg.is_registered %}...{% endif %}
{% license_expiry_warning %}                  -> the console's expiry warning, or nothing
{{ day|admin_date }} {{ moment|admin_datetime }} -> 2024/02/01, 2024/02/01 22:27:45
{{ moment|admin_time }}                        -> 22:27:45, in the site's zone
{{ seconds|minutes_seconds }}                  -> 4:59 (a countdown)
"""

from __future__ import annotations

from datetime import date, datetime

from django import template
from django.conf import settings
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import ngettext

from registration.gate import GateState, RegistrationValue, current_registration
from registration.models import MANAGE_PERMISSION
from registration.protocol.text import format_date, format_datetime

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


@register.filter
def admin_date(value: date | str | None) -> str:
    """Write a date as every page does: 2024/02/01 (a setting's YYYY-MM-DD text too)."""
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value)
        except ValueError:
            return value
    return format_date(value) if value is not None else ""


@register.filter
def admin_datetime(value: datetime | None) -> str:
    """Write a time in the site's zone as every page does: 2024/02/01 22:27:45."""
    return format_datetime(timezone.localtime(value)) if value is not None else ""


@register.filter
def admin_time(value: datetime | None) -> str:
    """Write the time of day in the site's zone as every page does: 22:27:45."""
    return f"{timezone.localtime(value):%H:%M:%S}" if value is not None else ""


@register.filter
def minutes_seconds(value: int | None) -> str:
    """Write a countdown's seconds as minutes and seconds: 299 -> 4:59, 5 -> 0:05."""
    seconds = max(0, int(value or 0))
    return f"{seconds // 60}:{seconds % 60:02d}"

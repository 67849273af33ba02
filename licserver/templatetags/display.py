"""Dates, times and countdowns as every page writes them, on either side of the product.

{% load display %}
{{ day|admin_date }} {{ moment|admin_datetime }} -> 2024/02/01, 2024/02/01 22:27:45
{{ moment|admin_time }}                        -> 22:27:45, in the site's zone
{{ seconds|minutes_seconds }}                  -> 4:59 (a countdown)
{{ moment|unix_seconds }}                      -> 1706826465 (for scripts)
{% language_options %}                         -> the language switch's <option>s

This library needs no app but licserver: the verification service alone (which has no
console) loads it on the phone page, so it must not import the console's modules.
"""

from __future__ import annotations

from datetime import date, datetime, time
from functools import lru_cache

from django import template
from django.conf import settings
from django.utils import timezone, translation
from django.utils.html import format_html_join
from django.utils.safestring import SafeString

from registration.protocol.text import format_date, format_datetime

register = template.Library()


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


@register.filter
def unix_seconds(value: datetime | date | None) -> str:
    """Write a time as whole seconds since 1970, as |date:'U' does, at a tenth the cost (a
    day counts from its midnight; anything else is written as nothing)."""
    if isinstance(value, datetime):
        return str(int(value.timestamp()))
    if isinstance(value, date):
        return str(int(datetime.combine(value, time.min).timestamp()))
    return ""


@register.simple_tag
def language_options() -> SafeString:
    """Write the language switch's <option>s, the current language selected."""
    codes = tuple(code for code, _name in settings.LANGUAGES)
    return _language_options(translation.get_language(), codes)


# Every page has the switch, and its options depend only on the current language: worked
# out once per language (the loop of tags it replaces cost a tenth of the phone page).
@lru_cache(maxsize=16)
def _language_options(current: str, codes: tuple[str, ...]) -> SafeString:
    return format_html_join(
        "\n    ",
        '<option value="{}" lang="{}"{}>{}</option>',
        (
            (
                code,
                code,
                " selected" if code == current else "",
                translation.get_language_info(code)["name_local"],
            )
            for code in codes
        ),
    )

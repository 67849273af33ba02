"""Text rules both sides and the settings share: one place for each.

Pure: no Django, no settings, so licserver.settings may import it before apps load.
"""

from __future__ import annotations

import re
from datetime import date, datetime

# Control characters never belong in a license field, a node name or a key id: C0, DEL,
# C1, and the Unicode line and paragraph separators (PostgreSQL would not even store a NUL,
# and a separator splits a line in logs and emails).
CONTROL_CHARACTERS = "\x00-\x1f\x7f-\x9f\u2028\u2029"
CONTROL = re.compile(f"[{CONTROL_CHARACTERS}]")

# A node name is at most this many bytes of UTF-8 (the QR token carries it).
NODE_NAME_MAX_BYTES = 64

# A key id: what pins a key in settings, names a key file and travels in licenses and QR
# tokens. Apply with fullmatch.
KID_MAX_BYTES = 32
KID_PATTERN = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{KID_MAX_BYTES - 1}}}")

# Every date an admin or support engineer reads: 2024/02/01, as the product's
# documentation writes it ("Expiration date: 2019/02/22"). Forms also accept it as input;
# templates write it with the registration_tags filters admin_date and admin_datetime.
DATE_FORMAT = "%Y/%m/%d"


def has_control_characters(text: str) -> bool:
    """Tell whether text holds any character CONTROL refuses."""
    return CONTROL.search(text) is not None


def format_date(value: date) -> str:
    """Write a date as admins read it: 2024/02/01 (zero-padded even before year 1000,
    which strftime's %Y is not on every platform)."""
    return f"{value.year:04d}/{value.month:02d}/{value.day:02d}"


def format_datetime(value: datetime) -> str:
    """Write a time as admins read it, to the second (no zone: say it beside the value)."""
    return f"{format_date(value)} {value:%H:%M:%S}"


def format_minutes(value: datetime) -> str:
    """Write a time to the minute, as the phone page names when a license was bound."""
    return f"{format_date(value)} {value:%H:%M}"

"""Text rules both sides and the settings share: one place for each.

Pure: no Django, no settings, so licserver.settings may import it before apps load.
"""

from __future__ import annotations

import re
from datetime import date, datetime

# Control characters never belong in a license field, a node name or a key id: C0, DEL,
# C1, and the Unicode line and paragraph separators (PostgreSQL would not even store a NUL,
# and a separator splits a line in logs and emails).
_CONTROLS = "\x00-\x1f\x7f-\x9f\u2028\u2029"
# Nor do format characters (Unicode category Cf): invisible or reordering text, such as
# the soft hyphen, zero-width spaces and joiners (U+200B-U+200D), the bidirectional marks,
# embeddings, overrides and isolates (U+200E, U+202A-U+202E, U+2066-U+2069), the byte order
# mark (U+FEFF) and the tag characters. Two names that look the same must be the same
# text, and an override must not make a page or a log line read other than it is.
# Written out (Unicode 15.1) rather than read from unicodedata, which would cost every
# process about 0.1 s at start-up; tests/test_text.py checks that it covers every Cf
# character the running Python knows.
_FORMAT_CHARACTERS = (
    "\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e"
    "\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f"
)
# The one rule, as a regular-expression character class body: "[...]" matches one refused
# character, "[^...]" one allowed.
CONTROL_CHARACTERS = _CONTROLS + _FORMAT_CHARACTERS
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
    """Tell whether text holds any character CONTROL refuses: a control character or an
    invisible format character."""
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

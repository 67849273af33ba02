"""The vendor's phone in the tests: scan a challenge, read the code it shows, craft tokens.

phone_code() is the one way a test gets the code the phone shows: it runs the
verification service's own scan (verify_for_phone), which binds the license as a real
scan does. Tests that only reach the phone page over HTTP (a live server, another
process) read the same code off the page with shown_code().
"""

from __future__ import annotations

import base64
import re
import uuid
from datetime import datetime

from django.conf import settings

from registration import clock
from registration.authority.binding import verify_for_phone
from registration.authority.models import IssuedLicense
from registration.models import QrChallenge
from registration.protocol.challenge import Purpose, encode_token, new_challenge
from registration.protocol.license import license_secret

# The code element of the phone page; absent when the page shows a problem instead.
CODE_ELEMENT = re.compile(r'id="verification-code"[^>]*>([^<]*)<')


def phone_code(challenge: QrChallenge | str) -> str:
    """Scan challenge (a QrChallenge or its token) as the phone does; return its code."""
    token = challenge if isinstance(challenge, str) else challenge.token
    result = verify_for_phone(token, now=clock.now())
    assert result.ok, result.problems
    return result.code


def wrong_code(challenge: QrChallenge | str) -> str:
    """Return a well-formed code that is not the one the phone shows for challenge."""
    return f"{(int(phone_code(challenge)) + 1) % 1_000_000:06d}"


def shown_code(page: str) -> str | None:
    """Return the code on a phone page's HTML, or None when the page shows no code."""
    found = CODE_ELEMENT.search(page)
    return found.group(1) if found else None


def crafted_token(
    license_id: uuid.UUID,
    *,
    node_count: int = 1,
    installation_id=None,
    issued_at: datetime | None = None,
    ttl_seconds: int = 300,
) -> str:
    """A token exactly as a console holding the license would make it, for facts the test
    chooses (the license's secret comes from its file, as the console's does): issued at
    issued_at (default: now by the clock) and valid for ttl_seconds."""
    secret = license_secret(IssuedLicense.objects.get(license_id=license_id).text)
    return _token(license_id, secret, node_count, installation_id, issued_at, ttl_seconds)


def made_up_token(license_id: uuid.UUID) -> str:
    """A token someone without the license file makes: the license id is right (it is no
    secret), the license's secret guessed, so its MAC is wrong. Works for any license id,
    in the registry or not."""
    return _token(license_id, bytes(32), 1, None, None, 300)


def _token(license_id, secret, node_count, installation_id, issued_at, ttl_seconds) -> str:
    kid = settings.AUTHORITY_KID
    proto, key = new_challenge(
        purpose=Purpose.REGISTER,
        license_id=license_id,
        installation_id=installation_id or uuid.uuid4(),
        node_name="node-a",
        node_count=node_count,
        kid=kid,
        authority_public=base64.b64decode(settings.AUTHORITY_PUBLIC_KEYS[kid]),
        license_secret=secret,
        now=issued_at or clock.now(),
        ttl_seconds=ttl_seconds,
    )
    return encode_token(proto, key)

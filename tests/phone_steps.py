"""The vendor's phone in the tests: scan a challenge, read the code it shows, craft tokens.

phone_code() is the one way a test gets the code the phone shows: it runs the
verification service's own scan (verify_for_phone), which binds the license as a real
scan does. Tests that only reach the phone page over HTTP (a live server, another
process) read the same code off the page with shown_code().
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import uuid
from dataclasses import replace
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from django.conf import settings

from registration import clock
from registration.authority.binding import Scan, read_token, verify_for_phone
from registration.authority.models import IssuedLicense
from registration.models import Installation, QrChallenge
from registration.protocol.challenge import (
    CHAIN_BYTES,
    Purpose,
    derive_key,
    encode_token,
    new_challenge,
)
from registration.protocol.license import license_secret

# The code element of the phone page; absent when the page shows a problem instead.
CODE_ELEMENT = re.compile(r'id="verification-code"[^>]*>([^<]*)<')


def phone_code(challenge: QrChallenge | str) -> str:
    """Scan challenge (a QrChallenge or its token) as the phone does; return its code."""
    token = challenge if isinstance(challenge, str) else challenge.token
    result = verify_for_phone(token, now=clock.now())
    assert result.ok, result.problems
    return result.code


def vendor_chain_value(token: str) -> bytes:
    """Return the chain value a token carries, as the vendor reads it (unmasked under K)."""
    scan = read_token(token)
    assert isinstance(scan, Scan), scan
    return scan.chain


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
    purpose: Purpose = Purpose.REGISTER,
    chain: bytes | None = None,
) -> str:
    """A token exactly as a console holding the license would make it, for facts the test
    chooses (the license's secret comes from its file, as the console's does): issued at
    issued_at (default: now by the clock) and valid for ttl_seconds; chain defaults to
    the value the installation holds (_chain_of)."""
    secret = license_secret(IssuedLicense.objects.get(license_id=license_id).text)
    return _token(
        license_id, secret, node_count, installation_id, issued_at, ttl_seconds, purpose, chain
    )


def made_up_token(license_id: uuid.UUID) -> str:
    """A token someone without the license file makes: the license id is right (it is no
    secret), the license's secret guessed, so its MAC is wrong. Works for any license id,
    in the registry or not."""
    return _token(license_id, bytes(32), 1, None, None, 300)


def _token(
    license_id,
    secret,
    node_count,
    installation_id,
    issued_at,
    ttl_seconds,
    purpose=Purpose.REGISTER,
    chain=None,
) -> str:
    kid = settings.AUTHORITY_KID
    proto, key = new_challenge(
        purpose=purpose,
        license_id=license_id,
        installation_id=installation_id or uuid.uuid4(),
        node_name="node-a",
        node_count=node_count,
        kid=kid,
        authority_public=base64.b64decode(settings.AUTHORITY_PUBLIC_KEYS[kid]),
        license_secret=secret,
        now=issued_at or clock.now(),
        ttl_seconds=ttl_seconds,
        chain=_chain_of(installation_id) if chain is None else chain,
    )
    return encode_token(proto, key)


def _chain_of(installation_id: uuid.UUID | None) -> bytes:
    """The chain value a console with this installation id holds: this database's own
    when it is this installation, else one fixed per id (another console that has not
    registered since)."""
    row = Installation.objects.filter(installation_id=installation_id).first()
    if row is not None:
        return bytes.fromhex(row.chain)
    seed = installation_id.bytes if installation_id else secrets.token_bytes(16)
    return hashlib.sha256(seed).digest()[:CHAIN_BYTES]


def v1_token(license_id: uuid.UUID, *, installation_id: uuid.UUID) -> str:
    """A version-1 token, as a console not yet upgraded makes it (no chain, v1 code)."""
    kid = settings.AUTHORITY_KID
    authority_public = base64.b64decode(settings.AUTHORITY_PUBLIC_KEYS[kid])
    secret = license_secret(IssuedLicense.objects.get(license_id=license_id).text)
    server_private = X25519PrivateKey.generate()
    proto, _v2_key = new_challenge(
        purpose=Purpose.RE_REGISTER,
        license_id=license_id,
        installation_id=installation_id,
        node_name="node-old",
        node_count=1,
        kid=kid,
        authority_public=authority_public,
        license_secret=secret,
        now=clock.now(),
        ttl_seconds=300,
        server_private=server_private,
    )
    old = replace(proto, version=1, chain=b"")
    shared = server_private.exchange(X25519PublicKey.from_public_bytes(authority_public))
    key = derive_key(shared, old.server_public, authority_public, kid, secret, version=1)
    return encode_token(old, key)

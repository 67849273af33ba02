"""Start-up checks: settings that would only fail later, on an admin's first click."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from django.conf import settings
from django.core.checks import Error, Warning, register

from registration.protocol.challenge import (
    KID_MAX_BYTES,
    NODE_NAME_MAX_BYTES,
    Purpose,
    encode_token,
    new_challenge,
)
from registration.protocol.license import b64decode_key
from registration.qr import MAX_QR_VERSION, qr_png


@register()
def check_keys_and_qr(app_configs=None, **kwargs) -> list:
    """Warn when no keys are pinned; refuse an AUTHORITY_BASE_URL too long for the QR."""
    messages = []
    if not settings.LICENSE_PUBLIC_KEYS:
        messages.append(
            Warning(
                "No license public key is pinned: every upload will be refused.",
                hint="Set LICENSE_PUBLIC_KEYS (kid=base64), or run `manage.py setup_demo`.",
                id="registration.W001",
            )
        )
    if not settings.AUTHORITY_PUBLIC_KEYS:
        messages.append(
            Warning(
                "No verification service key is pinned: no QR code can be made.",
                hint="Set AUTHORITY_PUBLIC_KEYS (kid=base64), or run `manage.py setup_demo`.",
                id="registration.W002",
            )
        )
        return messages
    # The longest token this installation can make: a full-length node name and kid.
    kid = max(settings.AUTHORITY_PUBLIC_KEYS, key=len)
    challenge, key = new_challenge(
        purpose=Purpose.RE_REGISTER,
        license_id=uuid.uuid4(),
        installation_id=uuid.uuid4(),
        node_name="n" * NODE_NAME_MAX_BYTES,
        node_count=0xFFFF,
        kid=kid[:KID_MAX_BYTES],
        authority_public=b64decode_key(settings.AUTHORITY_PUBLIC_KEYS[kid]),
        license_secret=bytes(32),
        now=datetime(2100, 1, 1, tzinfo=UTC),
        ttl_seconds=settings.CHALLENGE_TTL_SECONDS,
    )
    url = f"{settings.AUTHORITY_BASE_URL}/m/{encode_token(challenge, key)}"
    try:
        qr_png(url)
    except ValueError:
        messages.append(
            Error(
                f"AUTHORITY_BASE_URL is too long: QR codes would exceed version "
                f"{MAX_QR_VERSION} and be hard to scan from a screen.",
                hint="Use a shorter verification service address (at most about 40 characters "
                "with a 64-byte node name and a 32-character key id).",
                id="registration.E001",
            )
        )
    return messages


@register()
def check_private_keys_stay_with_the_vendor(app_configs=None, **kwargs) -> list:
    """A customer's console needs public keys only; a private key there is a leak."""
    found = settings.STRAY_PRIVATE_KEY_IDS
    if not found:
        return []
    return [
        Warning(
            "The vendor's private keys are configured on a console-only server "
            f"(key ids: {', '.join(found)}).",
            hint="Remove them from this host (KEYS_DIR, AUTHORITY_PRIVATE_KEY_FILES, "
            "LICENSE_SIGNING_KEY_FILES): with them anyone here can make codes and licenses.",
            id="registration.W003",
        )
    ]

"""The authentication QR code as a small PNG, made once per challenge."""

from __future__ import annotations

import hashlib
import io

import qrcode
import qrcode.constants

from licserver.cache import CacheUnavailable, signed_get, signed_set

MAX_QR_VERSION = 10
QR_CACHE_SECONDS = 600


def qr_png(url: str) -> bytes:
    """Render url as a 1-bit PNG QR code (version 10 or lower, low error correction)."""
    code = qrcode.QRCode(
        version=None, error_correction=qrcode.constants.ERROR_CORRECT_L, box_size=5, border=4
    )
    code.add_data(url)
    code.make(fit=True)
    if code.version > MAX_QR_VERSION:
        raise ValueError(f"the QR code needs version {code.version}; the limit is {MAX_QR_VERSION}")
    image = code.make_image().get_image().convert("1")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def cached_qr_png(url: str) -> bytes:
    """Return the PNG for a challenge's URL, rendering it only the first time.

    Keyed by the URL itself (it holds the whole token), so a reused row id after a
    database reset can never serve another challenge's image.
    """
    # v2: the signed form of licserver.cache changed (old nodes keep to their own keys).
    key = "registration:qr:v2:" + hashlib.sha256(url.encode("ascii")).hexdigest()
    try:
        png = signed_get(key)
    except CacheUnavailable:  # the cache is down: render every time rather than fail
        return qr_png(url)
    # Only an image this product signed for this very URL is shown: an image planted in
    # the cache could send the admin's phone anywhere.
    if not isinstance(png, bytes):
        png = qr_png(url)
        signed_set(key, png, QR_CACHE_SECONDS)
    return png

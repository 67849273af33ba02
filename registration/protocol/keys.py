"""Vendor key files: generate, write (private files mode 0600), load."""

from __future__ import annotations

import os
import time
from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from registration.protocol.license import b64encode
from registration.protocol.text import KID_PATTERN

SIGNING_SUFFIX = ".ed25519"
AUTHORITY_SUFFIX = ".x25519"


def raw_public(key: Ed25519PrivateKey | X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _write_private(path: Path, key: Ed25519PrivateKey | X25519PrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # O_EXCL: never overwrite a key; the mode is set at creation, never world-readable.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)


def generate_key_pair_files(directory: Path, kid: str) -> dict[str, str]:
    """Create the Ed25519 signing pair and the X25519 verification-service pair for kid.

    Returns the public keys as base64 (the form the settings take). Refuses to overwrite.
    """
    if not KID_PATTERN.fullmatch(kid):
        raise ValueError(f"key id {kid!r} must match {KID_PATTERN.pattern}")
    # A new key folder is its owner's only (0700); the private files in it are 0600 anyway.
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    paths = [
        directory / f"{kid}{suffix}{ext}"
        for suffix in (SIGNING_SUFFIX, AUTHORITY_SUFFIX)
        for ext in (".pem", ".pub")
    ]
    existing = [str(path) for path in paths if path.exists()]
    if existing:
        raise FileExistsError(f"refusing to overwrite {', '.join(existing)}")
    signing = Ed25519PrivateKey.generate()
    authority = X25519PrivateKey.generate()
    result = {}
    for suffix, key in ((SIGNING_SUFFIX, signing), (AUTHORITY_SUFFIX, authority)):
        _write_private(directory / f"{kid}{suffix}.pem", key)
        public = b64encode(raw_public(key))
        (directory / f"{kid}{suffix}.pub").write_text(public + "\n", encoding="ascii")
        result[suffix.lstrip(".")] = public
    return result


@lru_cache(maxsize=32)
def _load(path: str, mtime_ns: int) -> Ed25519PrivateKey | X25519PrivateKey:
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey | X25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 or X25519 private key")
    return key


# A key file replaced in place is read again within this many seconds. Keys rotate by a
# new kid and a new file (docs/operations.md), so this only bounds how long a process
# keeps a file that someone overwrote.
KEY_RECHECK_SECONDS = 1.0
# path -> (key, monotonic time its file was last looked at)
_recent: dict[str, tuple[Ed25519PrivateKey | X25519PrivateKey, float]] = {}
_clock = time.monotonic  # tests put a frozen clock here


def load_private_key(path: str | Path) -> Ed25519PrivateKey | X25519PrivateKey:
    """Load a PEM private key file (cached; a changed file is read again within a second)."""
    # Every phone scan loads the vendor's key; a stat per scan was a tenth of the scan's
    # own work (bench row 2d), so the file is looked at once a second at most.
    name = os.fspath(path)
    now = _clock()
    recent = _recent.get(name)
    if recent is not None and now - recent[1] < KEY_RECHECK_SECONDS:
        return recent[0]
    key = _load(name, os.stat(name).st_mtime_ns)
    _recent[name] = (key, now)
    return key


def load_signing_key(path: str | Path) -> Ed25519PrivateKey:
    key = load_private_key(path)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 signing key")
    return key


def load_authority_key(path: str | Path) -> X25519PrivateKey:
    key = load_private_key(path)
    if not isinstance(key, X25519PrivateKey):
        raise ValueError(f"{path} is not an X25519 key")
    return key

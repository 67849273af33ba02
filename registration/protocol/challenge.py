"""The QR challenge: what the console shows, what the phone's verification service reads.

The console makes a fresh X25519 key pair per challenge, derives
K = HKDF-SHA256(X25519(server_private, authority_public), info), computes the token's
MAC and the code at once, and keeps neither the private key, nor K, nor the code (only
the code's verifier: protocol/verifier.py). The vendor's verification service derives
the same K from its private key and the server's public key carried in the token.
Version 2's code is RFC 6287 OCRA (suite OCRA-1:HOTP-SHA256-6:QH64, Q = SHA-256 of the
canonical bytes), so the console checks a code offline, any change to any challenge
field changes the code, and any OCRA implementation can compute it. Version 2 also
carries the console's registration chain value, masked under K (copies of an installation
are caught by it: authority/chain.py): the value itself is a secret of the installation
and the vendor, so a token seen in a browser history or a log does not give it away.
Consoles make version 2; the vendor still reads version 1.

Nothing here touches the database; see docs/protocol.md for the layout and threat model.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from functools import lru_cache

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from registration.protocol.otp import dynamic_truncate, hkdf_sha256, hmac_sha256
from registration.protocol.text import (
    KID_MAX_BYTES,
    KID_PATTERN,
    NODE_NAME_MAX_BYTES,
    has_control_characters,
)

# Consoles make version 2; the vendor still reads version 1 (consoles not yet upgraded).
PROTOCOL_VERSION = 2
SUPPORTED_VERSIONS = frozenset({1, 2})
KDF_INFO = {1: b"licserver/challenge/v1", 2: b"licserver/challenge/v2"}
MAC_CONTEXT = {1: b"licserver/challenge-mac/v1\n", 2: b"licserver/challenge-mac/v2\n"}
# Version 2's code is RFC 6287 OCRA with this suite; Q is SHA-256 of the canonical bytes.
OCRA_SUITE = "OCRA-1:HOTP-SHA256-6:QH64"
_OCRA_PREFIX = OCRA_SUITE.encode("ascii") + b"\x00"
_OCRA_Q_PADDING = bytes(128 - 32)
# The registration chain (docs/protocol.md, "Copies of an installation"): 64 bits, enough
# to tell the copies of one installation apart, and short enough to keep the QR at version
# 10 with a 64-byte node name.
CHAIN_BYTES = 8
CHAIN_CONTEXT = b"licserver/chain/v2\n"
# The token carries the chain value XOR the first 8 bytes of HMAC-SHA256(K, this): a
# fresh K per challenge makes it a one-time pad, and only K's holders can unmask it.
CHAIN_MASK_CONTEXT = b"licserver/chain-mask/v2\n"
MAC_BYTES = 8
NONCE_BYTES = 16
CODE_DIGITS = 6
# Tag letters avoid look-alikes (0/O, 1/I/L, 2/Z, 5/S, 8/B, 6/G).
TAG_ALPHABET = "ACDEFHJKMNPRTUVWXY3479"
# The fixed part: version 1 has no chain; version 2 carries it after the nonce.
_FIXED = {
    1: struct.Struct(">BB16s16s16sIIH"),
    2: struct.Struct(f">BB16s16s16s{CHAIN_BYTES}sIIH"),
}
# Longest token: fixed part, both length-prefixed strings, the public key and the MAC.
TOKEN_MAX_BYTES = (
    _FIXED[PROTOCOL_VERSION].size + 1 + NODE_NAME_MAX_BYTES + 1 + KID_MAX_BYTES + 32 + MAC_BYTES
)
_TOKEN_MIN_BYTES = min(f.size for f in _FIXED.values()) + 2 + 32 + MAC_BYTES


class Purpose(IntEnum):
    REGISTER = 1
    RE_REGISTER = 2
    # Free the license for another server (version 2 only: the chain value proves that the
    # release comes from the live installation; authority/release.py).
    RELEASE = 3

    @property
    def label(self) -> str:
        return {
            Purpose.REGISTER: "register",
            Purpose.RE_REGISTER: "re-register",
            Purpose.RELEASE: "release",
        }[self]


# Purpose by its byte in a token (a dict lookup; Purpose(value) costs more, row 2d).
_PURPOSES = {int(purpose): purpose for purpose in Purpose}


class ChallengeError(Exception):
    """A token is malformed, tampered with, or not for this service."""


@dataclass(frozen=True)
class Challenge:
    purpose: Purpose
    license_id: uuid.UUID
    installation_id: uuid.UUID
    node_name: str
    node_count: int
    nonce: bytes
    issued_at: datetime
    expires_at: datetime
    kid: str
    server_public: bytes
    version: int = PROTOCOL_VERSION
    # The chain field as the token carries it: the console's registration chain value
    # masked under K (chain_mask; version 2; empty in version 1). chain_value() unmasks it.
    chain: bytes = bytes(CHAIN_BYTES)

    def __post_init__(self) -> None:
        if len(self.chain) != (CHAIN_BYTES if self.version >= 2 else 0):
            raise ValueError("the chain value does not fit the protocol version")

    def canonical_bytes(self) -> bytes:
        """Return the exact bytes both sides hash; every field is in them.

        Computed once per instance: the MAC, the code and the tag all hash them.
        """
        cached = self.__dict__.get("_canonical")
        if cached is None:
            cached = self._build_canonical_bytes()
            object.__setattr__(self, "_canonical", cached)
        return cached

    def _build_canonical_bytes(self) -> bytes:
        node = self.node_name.encode("utf-8")
        kid = self.kid.encode("ascii")
        ids = (int(self.purpose), self.license_id.bytes, self.installation_id.bytes, self.nonce)
        chain = (self.chain,) if self.version >= 2 else ()
        times = (int(self.issued_at.timestamp()), int(self.expires_at.timestamp()))
        return b"".join(
            (
                _FIXED[self.version].pack(self.version, *ids, *chain, *times, self.node_count),
                bytes([len(node)]),
                node,
                bytes([len(kid)]),
                kid,
                self.server_public,
            )
        )

    def digest(self) -> bytes:
        """Return SHA-256 of the canonical bytes (what the code and the tag are made from).

        Computed once per instance: the code, the tag and the next chain value use it.
        """
        cached = self.__dict__.get("_digest")
        if cached is None:
            cached = hashlib.sha256(self.canonical_bytes()).digest()
            object.__setattr__(self, "_digest", cached)
        return cached

    @property
    def question(self) -> str:
        """Return OCRA's question Q: the digest as 64 lower-case hex digits."""
        return self.digest().hex()

    @property
    def tag(self) -> str:
        """Return a two-character tag both pages show, so codes are not mixed up."""
        digest = self.digest()
        return (
            TAG_ALPHABET[digest[0] % len(TAG_ALPHABET)]
            + TAG_ALPHABET[digest[1] % len(TAG_ALPHABET)]
        )

    def is_expired(self, now: datetime) -> bool:
        """A challenge is valid from issued_at up to, not including, expires_at."""
        return not self.issued_at <= now < self.expires_at


def _raw_public(key: X25519PublicKey) -> bytes:
    return key.public_bytes_raw()


@lru_cache(maxsize=8)
def _authority_point(authority_public: bytes) -> X25519PublicKey:
    # A pinned setting: loaded once, not on every challenge (bench row 2a).
    return X25519PublicKey.from_public_bytes(authority_public)


_new_object = object.__new__
# uuid.UUID's two slots, set through their descriptors (UUID's own __setattr__ refuses).
_set_int = uuid.UUID.int.__set__
_set_is_safe = uuid.UUID.is_safe.__set__
_UNKNOWN = uuid.SafeUUID.unknown


def _uuid(raw: bytes) -> uuid.UUID:
    """Return uuid.UUID(bytes=raw) for 16 bytes the caller has checked, without its
    argument parsing (two per token: a tenth of reading one, bench row 2d)."""
    value = _new_object(uuid.UUID)
    _set_int(value, int.from_bytes(raw, "big"))
    _set_is_safe(value, _UNKNOWN)
    return value


def _assemble(**values: object) -> Challenge:
    """Make a Challenge from fields the caller has checked, skipping the frozen
    dataclass's __init__, which sets each field through object.__setattr__ and was
    a sixth of a scan's Python time (bench row 2)."""
    challenge = object.__new__(Challenge)
    challenge.__dict__.update(values)
    return challenge


def derive_key(
    shared: bytes,
    server_public: bytes,
    authority_public: bytes,
    kid: str,
    license_secret: bytes,
    version: int = PROTOCOL_VERSION,
) -> bytes:
    """Derive K from the X25519 shared secret, bound to both public keys and the kid.

    license_secret (license.license_secret: a digest of the license's signature, known
    to whoever holds the Container.lic and to the vendor) is the HKDF salt. The
    authority's key is public, so without it anyone could make a token whose MAC checks;
    with it, only a holder of the license can.
    """
    info = KDF_INFO[version] + server_public + authority_public + kid.encode("ascii")
    return hkdf_sha256(shared, license_secret, info, 32)


def new_challenge(
    *,
    purpose: Purpose,
    license_id: uuid.UUID,
    installation_id: uuid.UUID,
    node_name: str,
    node_count: int,
    kid: str,
    authority_public: bytes,
    license_secret: bytes,
    now: datetime,
    ttl_seconds: int,
    chain: bytes = bytes(CHAIN_BYTES),
    server_private: X25519PrivateKey | None = None,
    nonce: bytes | None = None,
) -> tuple[Challenge, bytes]:
    """Return a fresh version-2 challenge and its key K; the server's private key is not
    kept. chain is the installation's chain value (the token carries it masked under K).
    server_private and nonce are fresh unless given (test vectors give them)."""
    if len(node_name.encode("utf-8")) > NODE_NAME_MAX_BYTES or has_control_characters(node_name):
        raise ValueError("node name is too long for a challenge, or has control characters")
    if not KID_PATTERN.fullmatch(kid):
        raise ValueError("key id is not a valid key id")
    if not 0 <= node_count <= 0xFFFF:
        raise ValueError("node count is out of range")
    if len(chain) != CHAIN_BYTES or (nonce is not None and len(nonce) != NONCE_BYTES):
        raise ValueError("the chain value or the nonce has the wrong length")
    issued_at = now.astimezone(UTC).replace(microsecond=0)
    server_private = server_private or X25519PrivateKey.generate()
    server_public = _raw_public(server_private.public_key())
    shared = server_private.exchange(_authority_point(authority_public))
    del server_private  # K is all the server keeps, and only until the code is made.
    key = derive_key(shared, server_public, authority_public, kid, license_secret)
    # The checks above are __post_init__'s and more (chain and nonce lengths).
    challenge = _assemble(
        version=PROTOCOL_VERSION,
        purpose=purpose,
        license_id=license_id,
        installation_id=installation_id,
        node_name=node_name,
        node_count=node_count,
        nonce=nonce if nonce is not None else secrets.token_bytes(NONCE_BYTES),
        issued_at=issued_at,
        expires_at=issued_at + timedelta(seconds=ttl_seconds),
        kid=kid,
        server_public=server_public,
        chain=_xor(chain, chain_mask(key)),
    )
    return challenge, key


@lru_cache(maxsize=8)
def _authority_public(authority_private: X25519PrivateKey) -> bytes:
    return _raw_public(authority_private.public_key())


def authority_key(
    challenge: Challenge, authority_private: X25519PrivateKey, license_secret: bytes
) -> bytes:
    """Derive K on the vendor side from its private key, the token's server key and the
    issued license's secret (from the vendor's own registry, never from the token)."""
    try:
        server_key = X25519PublicKey.from_public_bytes(challenge.server_public)
        shared = authority_private.exchange(server_key)
    except ValueError as exc:  # a low-order or malformed point
        raise ChallengeError("the server key in the token is not usable") from exc
    authority_public = _authority_public(authority_private)
    return derive_key(
        shared,
        challenge.server_public,
        authority_public,
        challenge.kid,
        license_secret,
        challenge.version,
    )


def _mac(challenge: Challenge, key: bytes) -> bytes:
    context = MAC_CONTEXT[challenge.version]
    return hmac_sha256(key, context + challenge.canonical_bytes())[:MAC_BYTES]


def code_for(challenge: Challenge, key: bytes) -> str:
    """Return the 6-digit code of a challenge under K.

    Version 2: RFC 6287 OCRA, suite OCRA-1:HOTP-SHA256-6:QH64, Q = SHA-256(canonical
    bytes) in hex, so any OCRA implementation computes or checks it. Version 1: RFC 4226
    dynamic truncation of HMAC-SHA256(K, SHA-256(canonical bytes)).
    """
    if challenge.version >= 2:
        # ocra(OCRA_SUITE, key, challenge.question), written out: for QH64 the DataInput
        # is the suite, 0x00 and Q's 32 bytes padded to 128 (RFC 6287 5.1). The golden
        # vectors and tests/test_challenge.py compare the two.
        message = _OCRA_PREFIX + challenge.digest() + _OCRA_Q_PADDING
        return dynamic_truncate(hmac_sha256(key, message), CODE_DIGITS)
    return dynamic_truncate(hmac_sha256(key, challenge.digest()), CODE_DIGITS)


def chain_mask(key: bytes) -> bytes:
    """Return the 8 bytes that mask a challenge's chain value under its key K."""
    return hmac_sha256(key, CHAIN_MASK_CONTEXT)[:CHAIN_BYTES]


def _xor(left: bytes, right: bytes) -> bytes:
    return (int.from_bytes(left, "big") ^ int.from_bytes(right, "big")).to_bytes(len(left), "big")


def chain_value(challenge: Challenge, key: bytes) -> bytes:
    """Return the console's chain value a challenge carries (empty in version 1).

    Call only after the token's MAC checked under key.
    """
    if challenge.version < 2:
        return b""
    return _xor(challenge.chain, chain_mask(key))


def next_chain(challenge: Challenge, chain: bytes, code: str) -> bytes:
    """Return the chain value after a registration with this challenge and its code.

    chain is the value the challenge carries (unmasked). The vendor, who showed the code,
    derives the same value; see docs/protocol.md.
    """
    material = CHAIN_CONTEXT + chain + challenge.digest() + code.encode("ascii")
    return hashlib.sha256(material).digest()[:CHAIN_BYTES]


def encode_token(challenge: Challenge, key: bytes) -> str:
    """Return the token for the QR: base32 of the challenge bytes and a MAC under K.

    Base32 upper case keeps the QR in its compact alphanumeric mode.
    """
    raw = challenge.canonical_bytes() + _mac(challenge, key)
    return base64.b32encode(raw).decode("ascii").rstrip("=")


# RFC 4648 base32 letters -> the digits int(..., 32) reads, so decoding runs in C; every
# other ASCII character -> "!", which int() refuses (as it would not refuse "0", "_", "+"
# or blanks, all of which it reads in base 32).
_B32_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_B32_TO_DIGITS = {
    **{code: "!" for code in range(128)},
    **str.maketrans(_B32_LETTERS, "0123456789ABCDEFGHIJKLMNOPQRSTUV"),
}
_B32_LENGTHS = {0, 2, 4, 5, 7}  # valid unpadded lengths, modulo 8


def _b32decode(text: str) -> bytes:
    """Decode unpadded RFC 4648 base32, refusing any stray character or leftover bit."""
    if len(text) % 8 not in _B32_LENGTHS or not text.isascii():
        raise ChallengeError("the token is not base32")
    try:
        value = int(text.translate(_B32_TO_DIGITS), 32)
    except ValueError:
        raise ChallengeError("the token is not base32") from None
    size = len(text) * 5 // 8
    spare_bits = len(text) * 5 - size * 8
    if value & ((1 << spare_bits) - 1):
        raise ChallengeError("the token is not in canonical base32")
    return (value >> spare_bits).to_bytes(size, "big")


def decode_token(token: str) -> tuple[Challenge, bytes]:
    """Parse a token's form (not its MAC, which needs K); raise ChallengeError if bad."""
    if not token or len(token) > (TOKEN_MAX_BYTES * 8 + 4) // 5 or not token.isascii():
        raise ChallengeError("the token's length or characters are wrong")
    raw = _b32decode(token.upper())
    if len(raw) < _TOKEN_MIN_BYTES:
        raise ChallengeError("the token is too short")
    version = raw[0]
    if version not in SUPPORTED_VERSIONS:
        raise ChallengeError(f"protocol version {version} is not supported")
    fixed = _FIXED[version]
    if len(raw) < fixed.size + 2 + 32 + MAC_BYTES:
        raise ChallengeError("the token is too short")
    values = fixed.unpack_from(raw)
    _version, purpose, license_id, installation_id, nonce = values[:5]
    chain = values[5] if version >= 2 else b""
    issued, expires, node_count = values[-3:]
    purpose_value = _PURPOSES.get(purpose)
    if purpose_value is None:
        raise ChallengeError("unknown purpose")
    pos = fixed.size
    node_len = raw[pos]
    node_bytes = raw[pos + 1 : pos + 1 + node_len]
    pos += 1 + node_len
    if node_len > NODE_NAME_MAX_BYTES or pos >= len(raw):
        raise ChallengeError("the node name is malformed")
    kid_len = raw[pos]
    kid_bytes = raw[pos + 1 : pos + 1 + kid_len]
    pos += 1 + kid_len
    if not 0 < kid_len <= KID_MAX_BYTES or len(raw) != pos + 32 + MAC_BYTES:
        raise ChallengeError("the token's length does not match its fields")
    try:
        node_name = node_bytes.decode("utf-8")
        kid = kid_bytes.decode("ascii")
    except UnicodeDecodeError:
        raise ChallengeError("the node name or key id is not text") from None
    if has_control_characters(node_name) or not KID_PATTERN.fullmatch(kid):
        raise ChallengeError("the node name has control characters, or the key id is not valid")
    # The fixed part's format matches the version, so the chain length does too.
    challenge = _assemble(
        version=version,
        purpose=purpose_value,
        license_id=_uuid(license_id),
        installation_id=_uuid(installation_id),
        node_name=node_name,
        node_count=node_count,
        nonce=nonce,
        issued_at=datetime.fromtimestamp(issued, UTC),
        expires_at=datetime.fromtimestamp(expires, UTC),
        kid=kid,
        server_public=raw[pos : pos + 32],
        chain=chain,
    )
    # The token's bytes are the canonical bytes, by construction: every field is
    # fixed-width or length-prefixed and read into one value that writes back to the same
    # bytes (integers, UUIDs, strict UTF-8 and ASCII), and base32 was checked to be
    # canonical. So they are kept instead of being built again (tests/test_challenge.py
    # builds them again for tokens at every field's edges and compares).
    object.__setattr__(challenge, "_canonical", raw[: pos + 32])
    return challenge, raw[pos + 32 :]


def verify_mac(challenge: Challenge, mac: bytes, key: bytes) -> bool:
    """Return whether the token's MAC matches, in constant time."""
    return hmac.compare_digest(_mac(challenge, key), mac)

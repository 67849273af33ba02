"""Container.lic, format version 1: armor, signed envelope, strict payload.

A license is ASCII armor around base64 of a JSON envelope::

    {"v": 1, "alg": "ed25519", "kid": "...", "payload": "<base64 JSON>", "sig": "<base64>"}

The signature is Ed25519 over ``SIGNING_CONTEXT + payload_bytes``. ``verify_license``
checks, in this order and stopping at the first failure: size, armor, envelope, algorithm,
key id (pinned keys only), signature, and only then parses the payload. Nothing here
touches the database; keys and limits come in as arguments.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime
from functools import lru_cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from registration.protocol.text import CONTROL_CHARACTERS, KID_PATTERN

ARMOR_BEGIN = "-----BEGIN CONTAINER LICENSE-----"
ARMOR_END = "-----END CONTAINER LICENSE-----"
SIGNING_CONTEXT = b"licserver/container-license/v1\n"
FORMAT_VERSION = 1
ALGORITHM = "ed25519"
ARMOR_LINE_WIDTH = 64

LICENSE_TYPES = ("container", "machine", "public-cloud", "private-cloud")
TEXT_FIELD_MAX = 200
MAX_NODES_LIMIT = 10_000

# Patterns are applied with fullmatch: "$" would let a trailing newline through.
_BASE64_LINE = re.compile(r"[A-Za-z0-9+/=]+")
_B64 = "[A-Za-z0-9+/=]"
_ARMOR = re.compile(
    rf"{ARMOR_BEGIN}[ \t]*\n"
    rf"((?:{_B64}{{{ARMOR_LINE_WIDTH}}}[ \t]*\n)*{_B64}{{1,{ARMOR_LINE_WIDTH}}}[ \t]*\n)"
    rf"{ARMOR_END}[ \t]*(?:\n[ \t]*)*"
)
_VERSION = re.compile(r"(0|[1-9][0-9]{0,3})\.(0|[1-9][0-9]{0,3})")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
# A text field: no control or format characters (text.CONTROL_CHARACTERS), and neither
# starting nor ending with a blank.
_TEXT = re.compile(rf"(?=\S)[^{CONTROL_CHARACTERS}]*(?<=\S)")
_ENVELOPE_KEYS = {"v", "alg", "kid", "payload", "sig"}
_REQUIRED = {
    "license_id",
    "license_type",
    "company",
    "project_name",
    "app_name",
    "app_version",
    "project_content",
    "contract_date",
    "issued_at",
    "expires_at",
}
# renews: the license_id of the license this one renews (a renewal names its predecessor;
# an original has no such field, and files without it parse as before).
_OPTIONAL = {"max_nodes", "renews"}


class LicenseError(Exception):
    """The file is not a valid license. The message is for the server log, not the user."""


@dataclass(frozen=True)
class License:
    """The verified content of a Container.lic."""

    license_id: uuid.UUID
    license_type: str
    company: str
    project_name: str
    app_name: str
    app_version: str
    project_content: str
    contract_date: date
    issued_at: datetime
    expires_at: date
    max_nodes: int = 1
    renews: uuid.UUID | None = None
    kid: str = field(default="", compare=False)

    @staticmethod
    def field_names() -> tuple[str, ...]:
        """The fields both sides store as columns. renews is not one of them: the vendor
        keeps it as a link to the renewed license's row, the console reads it from the file."""
        return tuple(item.name for item in fields(License) if item.name != "renews")

    def to_fields(self) -> dict[str, object]:
        """Return the fields as a dict of Python values (for storing)."""
        return {name: getattr(self, name) for name in self.field_names()}

    def to_payload(self) -> dict[str, object]:
        return {
            "license_id": str(self.license_id),
            "license_type": self.license_type,
            "company": self.company,
            "project_name": self.project_name,
            "app_name": self.app_name,
            "app_version": self.app_version,
            "project_content": self.project_content,
            "contract_date": self.contract_date.isoformat(),
            "issued_at": self.issued_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "expires_at": self.expires_at.isoformat(),
            "max_nodes": self.max_nodes,
            # Only a renewal has the field: an original's payload is as before.
            **({"renews": str(self.renews)} if self.renews is not None else {}),
        }


# --- Keys ---------------------------------------------------------------------------


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def strict_b64decode(text: str) -> bytes:
    """Decode canonical standard base64 with padding, refusing any stray character.

    Canonical means the text is exactly what b64encode gives for the decoded bytes, so
    "QQ==" passes and "QR==" (same bytes, other unused bits) does not: one license has
    one spelling.
    """
    try:
        raw = binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        raise LicenseError(f"bad base64: {exc}") from None
    # Strict mode already refused stray characters, bad padding and data after it; the
    # only freedom left is in the unused bits of the last group, so re-encode just that.
    tail = raw[len(raw) - (len(raw) % 3 or 3) :] if raw else b""
    if binascii.b2a_base64(tail, newline=False) != text[len(text) - 4 :].encode("ascii"):
        raise LicenseError("base64 is not in canonical form")
    return raw


def b64decode_key(raw_b64: str) -> bytes:
    """Decode a pinned 32-byte public key given in settings as base64."""
    raw = base64.b64decode(raw_b64, validate=True)
    if len(raw) != 32:
        raise ValueError("a pinned key must be 32 bytes")
    return raw


@lru_cache(maxsize=64)
def _public_key(raw_b64: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(b64decode_key(raw_b64))


def load_public_keys(pinned: Mapping[str, str]) -> dict[str, Ed25519PublicKey]:
    """Turn the LICENSE_PUBLIC_KEYS setting (kid -> base64 raw key) into key objects."""
    keys = {}
    for kid, raw_b64 in pinned.items():
        try:
            keys[kid] = _public_key(raw_b64)
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"pinned license key {kid!r} is not a base64 Ed25519 key") from exc
    return keys


# --- Signing (vendor side) ------------------------------------------------------------


def sign_license(lic: License, private_key: Ed25519PrivateKey, kid: str) -> str:
    """Return the armored Container.lic text for lic, signed with private_key under kid."""
    if not KID_PATTERN.fullmatch(kid):
        raise ValueError(f"key id {kid!r} must match {KID_PATTERN.pattern}")
    payload = json.dumps(lic.to_payload(), separators=(",", ":"), sort_keys=True).encode()
    envelope = {
        "v": FORMAT_VERSION,
        "alg": ALGORITHM,
        "kid": kid,
        "payload": b64encode(payload),
        "sig": b64encode(private_key.sign(SIGNING_CONTEXT + payload)),
    }
    body = b64encode(json.dumps(envelope, separators=(",", ":")).encode())
    lines = [body[i : i + ARMOR_LINE_WIDTH] for i in range(0, len(body), ARMOR_LINE_WIDTH)]
    return "\n".join([ARMOR_BEGIN, *lines, ARMOR_END]) + "\n"


# --- Verification -------------------------------------------------------------------


def _reject_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        duplicate = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise LicenseError(f"duplicate key {duplicate!r}")
    return result


def _not_json(name: str) -> None:
    raise LicenseError(f"{name} is not JSON")


# One decoder for every call: building one per call costs as much as a small parse.
_DECODER = json.JSONDecoder(object_pairs_hook=_reject_duplicates, parse_constant=_not_json)


def _strict_json(raw: bytes, what: str) -> dict[str, object]:
    try:
        value = _DECODER.decode(raw.decode("utf-8"))
    except LicenseError as exc:
        raise LicenseError(f"{what}: {exc}") from None
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise LicenseError(f"{what} is not JSON: {type(exc).__name__}") from None
    if not isinstance(value, dict):
        raise LicenseError(f"{what} is not a JSON object")
    return value


def dearmor(data: bytes) -> bytes:
    """Return the bytes inside the armor. CRLF and trailing blanks are tolerated."""
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise LicenseError("not ASCII text") from None
    # One pattern for the whole file: lines are exactly ARMOR_LINE_WIDTH base64 characters
    # except the last, as sign_license wraps them; nothing may stand outside the armor.
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    match = _ARMOR.fullmatch(text)
    if match is None:
        raise LicenseError(_armor_problem(text))
    return strict_b64decode("".join(match[1].split()))


def _armor_problem(text: str) -> str:
    """Say precisely why text is not armor (for the server log; the slow path)."""
    lines = [line.rstrip(" \t") for line in text.split("\n")]
    while lines and lines[-1] == "":
        lines.pop()
    if len(lines) < 3 or lines[0] != ARMOR_BEGIN or lines[-1] != ARMOR_END:
        return "armor lines missing or text outside the armor"
    body = lines[1:-1]
    if not all(_BASE64_LINE.fullmatch(line) for line in body):
        return "armor body has a character outside base64"
    return f"armor lines must be {ARMOR_LINE_WIDTH} characters, the last at most"


def verify_license(data: bytes, pinned_keys: Mapping[str, str], max_bytes: int) -> License:
    """Verify data as a Container.lic and return its License, or raise LicenseError."""
    if len(data) > max_bytes:
        raise LicenseError(f"file is {len(data)} bytes, more than {max_bytes}")
    envelope = _strict_json(dearmor(data), "envelope")
    if set(envelope) != _ENVELOPE_KEYS:
        raise LicenseError(f"envelope keys are {sorted(envelope)}")
    if type(envelope["v"]) is not int or envelope["v"] != FORMAT_VERSION:
        raise LicenseError(f"unsupported format version {envelope['v']!r}")
    # Exactly one algorithm is allowed; "none", "Ed25519" or anything else is refused.
    if envelope["alg"] != ALGORITHM:
        raise LicenseError(f"algorithm {envelope['alg']!r} is not allowed")
    kid = envelope["kid"]
    if not isinstance(kid, str) or kid not in pinned_keys:
        raise LicenseError(f"key id {kid!r} is not pinned")
    if not isinstance(envelope["payload"], str) or not isinstance(envelope["sig"], str):
        raise LicenseError("payload and sig must be base64 strings")
    payload = strict_b64decode(envelope["payload"])
    signature = strict_b64decode(envelope["sig"])
    if len(signature) != 64:
        raise LicenseError("signature length is wrong")
    public_key = load_public_keys({kid: pinned_keys[kid]})[kid]
    try:
        public_key.verify(signature, SIGNING_CONTEXT + payload)
    except InvalidSignature:
        raise LicenseError(f"signature does not verify under key {kid!r}") from None
    # Only now, with the signature checked, is the payload parsed.
    return parse_payload(payload, kid)


def _text(payload: Mapping[str, object], name: str) -> str:
    value = payload[name]
    if type(value) is str and len(value) <= TEXT_FIELD_MAX and _TEXT.fullmatch(value):
        return value
    # Refused: say why (the slow path).
    if not isinstance(value, str) or not value.strip() or len(value) > TEXT_FIELD_MAX:
        raise LicenseError(f"{name} must be a non-empty string of at most {TEXT_FIELD_MAX}")
    raise LicenseError(f"{name} has control or format characters, or surrounding blanks")


def _date(payload: Mapping[str, object], name: str) -> date:
    value = payload[name]
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise LicenseError(f"{name} must be YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise LicenseError(f"{name} is not a real date") from None


def parse_payload(payload: bytes, kid: str = "") -> License:
    """Parse verified payload bytes strictly into a License."""
    fields = _strict_json(payload, "payload")
    keys = set(fields)
    if not keys >= _REQUIRED or not keys <= _REQUIRED | _OPTIONAL:
        raise LicenseError(f"payload fields are {sorted(keys)}")
    license_id = fields["license_id"]
    if not isinstance(license_id, str) or not _UUID.fullmatch(license_id):
        raise LicenseError("license_id must be a lowercase UUID")
    parsed_id = uuid.UUID(license_id)
    license_type = fields["license_type"]
    if license_type not in LICENSE_TYPES:
        raise LicenseError(f"license_type {license_type!r} is unknown")
    app_version = fields["app_version"]
    if not isinstance(app_version, str) or not _VERSION.fullmatch(app_version):
        raise LicenseError("app_version must be major.minor")
    issued_at = fields["issued_at"]
    if not isinstance(issued_at, str) or not _TIMESTAMP.fullmatch(issued_at):
        raise LicenseError("issued_at must be YYYY-MM-DDTHH:MM:SSZ")
    try:
        # The pattern above fixed the form; fromisoformat checks the ranges (and reads
        # the Z as UTC), quickly.
        issued = datetime.fromisoformat(issued_at)
    except ValueError:
        raise LicenseError("issued_at is not a real time") from None
    max_nodes = fields.get("max_nodes", 1)
    if type(max_nodes) is not int or not 1 <= max_nodes <= MAX_NODES_LIMIT:
        raise LicenseError(f"max_nodes must be an integer from 1 to {MAX_NODES_LIMIT}")
    renews = fields.get("renews")
    if "renews" in fields:
        if not isinstance(renews, str) or not _UUID.fullmatch(renews):
            raise LicenseError("renews must be a lowercase UUID")
        if renews == license_id:
            raise LicenseError("renews must name another license")
    return License(
        license_id=parsed_id,
        license_type=license_type,
        company=_text(fields, "company"),
        project_name=_text(fields, "project_name"),
        app_name=_text(fields, "app_name"),
        app_version=app_version,
        project_content=_text(fields, "project_content"),
        contract_date=_date(fields, "contract_date"),
        issued_at=issued,
        expires_at=_date(fields, "expires_at"),
        max_nodes=max_nodes,
        renews=uuid.UUID(renews) if renews is not None else None,
        kid=kid,
    )


def payload_of(text: str) -> License:
    """Return the License inside a file already verified (its signature is not checked
    again): for reading a field no column keeps, such as renews."""
    envelope = _strict_json(dearmor(text.encode("ascii")), "envelope")
    payload = envelope.get("payload")
    if not isinstance(payload, str):
        raise LicenseError("the envelope has no payload")
    kid = envelope.get("kid")
    return parse_payload(strict_b64decode(payload), kid if isinstance(kid, str) else "")


@lru_cache(maxsize=1024)
def license_secret(text: str) -> bytes:
    """Return SHA-256 of a license file's signature: a secret the holder of the
    Container.lic shares with the vendor (the license id, shown everywhere, is not one).

    The QR challenge's key is salted with it, so nobody without the file can make a token
    the vendor's verification service accepts. Call only on a file already verified.
    Cached by the file's text (every scan needs it; reading the file again costs a
    quarter of the vendor's code, bench row 2d).
    """
    envelope = _strict_json(dearmor(text.encode("ascii")), "envelope")
    signature = envelope.get("sig")
    if not isinstance(signature, str):
        raise LicenseError("the envelope has no signature")
    return hashlib.sha256(strict_b64decode(signature)).digest()


def minor_version(version: str) -> str:
    """Return major.minor of a dotted version ("11.0.20" -> "11.0")."""
    return ".".join(version.split(".")[:2])


FINGERPRINT_HEX_DIGITS = 16


def fingerprint(text: str) -> str:
    """Return a short SHA-256 of a license file, to name it without showing it.

    The file is a secret (its signature salts every challenge's key), so pages show
    this instead: 64 bits, in groups of four hex digits ("3f2a 91c0 5e7d 0b44").
    """
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:FINGERPRINT_HEX_DIGITS]
    return " ".join(digest[i : i + 4] for i in range(0, len(digest), 4))

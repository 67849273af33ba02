"""Container.lic format v1: armor, envelope, algorithm, pinned keys, signature, payload."""

from __future__ import annotations

import base64
import json
import uuid

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings

from registration.protocol.keys import load_signing_key, raw_public
from registration.protocol.license import (
    ARMOR_BEGIN,
    ARMOR_END,
    SIGNING_CONTEXT,
    LicenseError,
    parse_payload,
    verify_license,
)
from registration.protocol.validity import is_expired, valid_until
from tests.conftest import KID, make_license


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def armor(body: bytes, width: int = 64) -> bytes:
    """Wrap raw envelope bytes in the armor, as sign_license does."""
    text = b64(body)
    lines = [text[i : i + width] for i in range(0, len(text), width)]
    return ("\n".join([ARMOR_BEGIN, *lines, ARMOR_END]) + "\n").encode("ascii")


def payload_bytes(**overrides: object) -> bytes:
    fields = make_license().to_payload()
    for name, value in overrides.items():
        if value is DROP:
            del fields[name]
        else:
            fields[name] = value
    return json.dumps(fields, separators=(",", ":"), sort_keys=True).encode()


DROP = object()


@pytest.fixture
def vendor_sign(key_dir):
    """vendor_sign(payload_bytes, kid=KID) -> base64 signature by the pinned vendor key."""

    def _sign(payload: bytes, kid: str = KID) -> str:
        key = load_signing_key(key_dir / f"{kid}.ed25519.pem")
        return b64(key.sign(SIGNING_CONTEXT + payload))

    return _sign


@pytest.fixture
def signed_file(vendor_sign):
    """signed_file(payload_bytes, **envelope_overrides) -> armored bytes, signed by KID."""

    def _file(signed: bytes, /, **envelope: object) -> bytes:
        fields: dict[str, object] = {
            "v": 1,
            "alg": "ed25519",
            "kid": KID,
            "payload": b64(signed),
            "sig": vendor_sign(signed, KID),
        }
        for name, value in envelope.items():
            if value is DROP:
                del fields[name]
            else:
                fields[name] = value
        return armor(json.dumps(fields, separators=(",", ":")).encode())

    return _file


def verify(data: bytes):
    return verify_license(data, settings.LICENSE_PUBLIC_KEYS, settings.LICENSE_MAX_BYTES)


# --- Round trip ---------------------------------------------------------------------


def test_round_trip_gives_back_the_signed_license(sign):
    lic = make_license(max_nodes=3)
    text = sign(lic)

    parsed = verify(text.encode("ascii"))

    assert parsed == lic
    assert parsed.kid == KID
    assert text.startswith(ARMOR_BEGIN + "\n") and text.endswith(ARMOR_END + "\n")


def test_max_nodes_defaults_to_one_when_absent(signed_file):
    assert verify(signed_file(payload_bytes(max_nodes=DROP))).max_nodes == 1


# --- Armor ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reshape",
    [
        pytest.param(lambda t: t.replace("\n", "\r\n"), id="crlf"),
        pytest.param(lambda t: t.replace("\n", " \t\n"), id="trailing-blanks-on-lines"),
        pytest.param(lambda t: t + "\n\n  \n", id="trailing-blank-lines"),
        pytest.param(lambda t: t.rstrip("\n"), id="no-final-newline"),
    ],
)
def test_armor_tolerates_line_endings_and_trailing_blanks(sign, reshape):
    lic = make_license()
    assert verify(reshape(sign(lic)).encode("ascii")) == lic


@pytest.mark.parametrize(
    "reshape, reason",
    [
        (lambda t: "Here is your license:\n" + t, "outside the armor"),
        (lambda t: "\n" + t, "outside the armor"),
        (lambda t: " " + t, "outside the armor"),
        (lambda t: t + "-- \nThe vendor\n", "outside the armor"),
        (lambda t: t.replace(ARMOR_END, ARMOR_END.lower()), "outside the armor"),
        (lambda t: ARMOR_BEGIN + "\n" + ARMOR_END + "\n", "outside the armor"),
        (lambda t: t.replace("\n", "\n*", 2).replace("\n*", "\n", 1), "outside base64"),
        (lambda t: t.replace("\n", "\nA B", 1), "outside base64"),
        (lambda t: t.replace("\n", "\n\n", 2).replace("\n\n", "\n", 1), "outside base64"),
        (lambda t: t.replace("\n", "\n-", 2).replace("\n-", "\n", 1), "outside base64"),
        (lambda t: t.replace("\n", "\r", 2).replace("\r", "\n", 1), "outside base64"),
    ],
    ids=[
        "text-before",
        "blank-line-before",
        "blank-before-begin",
        "text-after",
        "lowercase-end",
        "empty-body",
        "star-in-base64",
        "space-in-base64",
        "empty-line-in-body",
        "url-safe-alphabet",
        "lone-cr",
    ],
)
def test_armor_refuses_anything_else(sign, reshape, reason):
    with pytest.raises(LicenseError, match=reason):
        verify(reshape(sign(make_license())).encode("ascii"))


def test_armor_refuses_non_ascii_and_non_utf8(sign):
    text = sign(make_license())
    with pytest.raises(LicenseError, match="not ASCII"):
        verify(text.replace("\n", "\né", 2).encode("utf-8"))
    with pytest.raises(LicenseError, match="not ASCII"):
        verify(b"\xff\xfe" + text.encode("ascii"))
    with pytest.raises(LicenseError, match="not ASCII"):
        verify("\ufeff".encode() + text.encode("ascii"))


def test_armor_refuses_rewrapped_lines(sign):
    text = sign(make_license())
    body = "".join(text.splitlines()[1:-1])
    rewrapped = [body[i : i + 76] for i in range(0, len(body), 76)]
    data = "\n".join([ARMOR_BEGIN, *rewrapped, ARMOR_END]).encode("ascii")

    with pytest.raises(LicenseError, match="64 characters"):
        verify(data)


def test_base64_must_be_canonical(signed_file):
    # "QR==" decodes to the same byte as "QQ==": only the canonical spelling passes.
    lic_text = signed_file(payload_bytes()).decode("ascii")
    lines = lic_text.splitlines()
    last = lines[-2]
    assert last.endswith("=")
    # Set an unused low bit in the last significant character.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    stem = last.rstrip("=")
    bumped = alphabet[alphabet.index(stem[-1]) ^ 1]
    lines[-2] = stem[:-1] + bumped + last[len(stem) :]

    with pytest.raises(LicenseError, match="canonical"):
        verify("\n".join(lines).encode("ascii"))


def test_size_cap_is_checked_first(settings, sign):
    text = sign(make_license()).encode("ascii")
    settings.LICENSE_MAX_BYTES = len(text) - 1
    with pytest.raises(LicenseError, match="more than"):
        verify(text)
    settings.LICENSE_MAX_BYTES = len(text)
    assert verify(text) == make_license(license_id=verify(text).license_id)


def test_oversized_garbage_gets_the_size_reason(settings):
    with pytest.raises(LicenseError, match=f"more than {settings.LICENSE_MAX_BYTES}"):
        verify(b"\xff" * (settings.LICENSE_MAX_BYTES + 1))


# --- Envelope -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["v", "alg", "kid", "payload", "sig"])
def test_envelope_refuses_a_missing_key(signed_file, name):
    with pytest.raises(LicenseError, match="envelope keys"):
        verify(signed_file(payload_bytes(), **{name: DROP}))


def test_envelope_refuses_an_extra_key(signed_file):
    with pytest.raises(LicenseError, match="envelope keys"):
        verify(signed_file(payload_bytes(), note="hello"))


@pytest.mark.parametrize("version", [2, 0, True, "1", 1.0, None, [1]])
def test_envelope_refuses_any_version_but_the_integer_1(signed_file, version):
    with pytest.raises(LicenseError, match="format version"):
        verify(signed_file(payload_bytes(), v=version))


@pytest.mark.parametrize("body", [b"[]", b'"text"', b"1", b"null", b"{", b'{"v": NaN}'])
def test_envelope_must_be_a_json_object(body):
    with pytest.raises(LicenseError, match="envelope"):
        verify(armor(body))


@pytest.mark.parametrize("alg", ["none", "Ed25519", "ED25519", "rsa", "", " ed25519", None, 1])
def test_only_the_exact_algorithm_ed25519_is_allowed(signed_file, alg):
    with pytest.raises(LicenseError, match="algorithm"):
        verify(signed_file(payload_bytes(), alg=alg))


def test_a_missing_algorithm_is_refused(signed_file):
    with pytest.raises(LicenseError, match="envelope keys"):
        verify(signed_file(payload_bytes(), alg=DROP))


@pytest.mark.parametrize("kid", ["test-9", "", "TEST-1", None, 1, ["test-1"], {"k": 1}])
def test_a_kid_not_pinned_in_settings_is_refused(signed_file, kid):
    with pytest.raises(LicenseError, match="not pinned"):
        verify(signed_file(payload_bytes(), kid=kid))


@pytest.mark.parametrize("name, value", [("payload", 12), ("sig", None), ("sig", ["AA=="])])
def test_payload_and_sig_must_be_strings(signed_file, name, value):
    with pytest.raises(LicenseError, match="base64 strings"):
        verify(signed_file(payload_bytes(), **{name: value}))


def test_a_signature_of_the_wrong_length_is_refused(signed_file):
    with pytest.raises(LicenseError, match="signature length"):
        verify(signed_file(payload_bytes(), sig=b64(b"\0" * 63)))


def test_duplicate_keys_in_the_envelope_are_refused(signed_file):
    good = signed_file(payload_bytes()).decode("ascii")
    envelope = base64.b64decode("".join(good.splitlines()[1:-1]))
    doubled = envelope.replace(b'{"v":1,', b'{"v":1,"v":1,', 1)
    assert doubled != envelope

    with pytest.raises(LicenseError, match="duplicate key 'v'"):
        verify(armor(doubled))


# --- Keys: rotation and pinning -------------------------------------------------------


def test_key_rotation_accepts_every_pinned_kid(sign):
    old, new = make_license(), make_license()

    assert verify(sign(old, "test-0").encode()).kid == "test-0"
    assert verify(sign(new, "test-1").encode()).kid == "test-1"


def test_a_kid_removed_from_settings_is_refused(settings, sign):
    text = sign(make_license(), "test-0").encode()
    settings.LICENSE_PUBLIC_KEYS = {
        kid: key for kid, key in settings.LICENSE_PUBLIC_KEYS.items() if kid != "test-0"
    }

    with pytest.raises(LicenseError, match="key id 'test-0' is not pinned"):
        verify(text)
    assert verify(sign(make_license(), "test-1").encode()).kid == "test-1"


def test_a_signature_by_another_pinned_key_is_refused(vendor_sign, signed_file):
    payload = payload_bytes()
    # Signed by test-0 but claims test-1.
    data = signed_file(payload, sig=vendor_sign(payload, "test-0"))

    with pytest.raises(LicenseError, match="signature does not verify under key 'test-1'"):
        verify(data)


def test_a_public_key_carried_by_the_file_is_never_used(signed_file):
    attacker = Ed25519PrivateKey.generate()
    payload = payload_bytes(company="Mallory Inc")
    forged_sig = b64(attacker.sign(SIGNING_CONTEXT + payload))
    attacker_pub = b64(raw_public(attacker))

    # The key rides along in the envelope: an unknown envelope field.
    with pytest.raises(LicenseError, match="envelope keys"):
        verify(signed_file(payload, sig=forged_sig, public_key=attacker_pub))
    # The key replaces the kid: not a pinned key id.
    with pytest.raises(LicenseError, match="not pinned"):
        verify(signed_file(payload, sig=forged_sig, kid=attacker_pub))
    # Without the key, the forged signature fails under the pinned key.
    with pytest.raises(LicenseError, match="signature does not verify"):
        verify(signed_file(payload, sig=forged_sig))


def test_a_public_key_inside_the_signed_payload_is_refused(signed_file):
    attacker = Ed25519PrivateKey.generate()
    payload = payload_bytes(public_key=b64(raw_public(attacker)))

    with pytest.raises(LicenseError, match="payload fields"):
        verify(signed_file(payload))


def test_a_payload_signed_without_the_domain_context_is_refused(key_dir, signed_file):
    payload = payload_bytes()
    key = load_signing_key(key_dir / f"{KID}.ed25519.pem")
    bare_sig = b64(key.sign(payload))

    with pytest.raises(LicenseError, match="signature does not verify"):
        verify(signed_file(payload, sig=bare_sig))


# --- Verification order ---------------------------------------------------------------


def test_payload_is_not_parsed_before_the_signature_is_checked(signed_file):
    not_json = b'{"license_id": oops'
    with pytest.raises(LicenseError, match="^signature does not verify"):
        verify(signed_file(not_json, sig=b64(b"\1" * 64)))
    with pytest.raises(LicenseError, match="^payload is not JSON"):
        verify(signed_file(not_json))


def test_algorithm_is_checked_before_the_key_id(signed_file):
    with pytest.raises(LicenseError, match="^algorithm 'none'"):
        verify(signed_file(payload_bytes(), alg="none", kid="nobody"))


def test_key_id_is_checked_before_the_signature(signed_file):
    with pytest.raises(LicenseError, match="^key id 'nobody' is not pinned"):
        verify(signed_file(payload_bytes(), sig=b64(b"\1" * 64), kid="nobody"))


# --- Deep nesting -------------------------------------------------------------------


def test_deeply_nested_envelope_is_a_license_error_not_a_crash():
    data = armor(b"[" * 40_000)
    assert len(data) <= settings.LICENSE_MAX_BYTES

    with pytest.raises(LicenseError, match="envelope is not JSON: RecursionError"):
        verify(data)


def test_deeply_nested_signed_payload_is_a_license_error_not_a_crash(signed_file):
    with pytest.raises(LicenseError, match="payload is not JSON: RecursionError"):
        verify(signed_file(b"[" * 30_000))
    with pytest.raises(LicenseError, match="payload is not JSON: RecursionError"):
        parse_payload(b"[" * 100_000)
    with pytest.raises(LicenseError, match="payload is not JSON: RecursionError"):
        parse_payload(b'{"a":' * 100_000)


# --- Payload: strict types and formats ------------------------------------------------


def test_duplicate_keys_in_the_payload_are_refused(signed_file):
    payload = payload_bytes().replace(b'{"app_name"', b'{"company":"Other","app_name"', 1)
    assert payload.count(b'"company"') == 2

    with pytest.raises(LicenseError, match="duplicate key 'company'"):
        verify(signed_file(payload))


@pytest.mark.parametrize(
    "name, value, reason",
    [
        ("max_nodes", True, "max_nodes"),
        ("max_nodes", False, "max_nodes"),
        ("max_nodes", 0, "max_nodes"),
        ("max_nodes", -1, "max_nodes"),
        ("max_nodes", "1", "max_nodes"),
        ("max_nodes", 1.0, "max_nodes"),
        ("max_nodes", 10_001, "max_nodes"),
        ("max_nodes", None, "max_nodes"),
        ("license_id", "not-a-uuid", "license_id"),
        ("license_id", "0F1E2D3C-4B5A-4978-8695-A4B3C2D1E0F9", "license_id"),
        ("license_id", "{0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9}", "license_id"),
        ("license_id", "0f1e2d3c4b5a49788695a4b3c2d1e0f9", "license_id"),
        ("license_id", "urn:uuid:0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9", "license_id"),
        ("license_id", 12345, "license_id"),
        ("expires_at", "2027-02-30", "expires_at is not a real date"),
        ("expires_at", "2027/01/31", "expires_at must be"),
        ("expires_at", "20270131", "expires_at must be"),
        ("expires_at", "2027-01-31\n", "expires_at must be"),
        ("expires_at", "2027-01-31T00:00:00Z", "expires_at must be"),
        ("expires_at", 20270131, "expires_at must be"),
        ("contract_date", "2026-13-01", "contract_date is not a real date"),
        ("contract_date", "", "contract_date must be"),
        ("issued_at", "2026-01-15T09:30:00", "issued_at must be"),
        ("issued_at", "2026-01-15T09:30:00+00:00", "issued_at must be"),
        ("issued_at", "2026-01-15 09:30:00Z", "issued_at must be"),
        ("issued_at", "2026-01-15T25:30:00Z", "issued_at is not a real time"),
        ("issued_at", "2026-01-15T09:30:00Z\n", "issued_at must be"),
        ("app_version", "11", "app_version"),
        ("app_version", "11.0.20", "app_version"),
        ("app_version", "v11.0", "app_version"),
        ("app_version", "011.0", "app_version"),
        ("app_version", "11.0\n", "app_version"),
        ("app_version", 11.0, "app_version"),
        ("license_type", "Container", "license_type"),
        ("license_type", "enterprise", "license_type"),
        ("license_type", ["container"], "license_type"),
        ("company", "", "company"),
        ("company", " Acme", "company"),
        ("company", "Acme\nLtd", "company"),
        ("company", "Acme\u2028Ltd", "company"),
        ("company", "Acme\u200bLtd", "company has control or format characters"),
        ("company", "Acme \u202eDTL", "company has control or format characters"),
        ("project_name", "\ufeffReports", "project_name"),
        ("app_name", "Report\u200eServer", "app_name"),
        ("project_content", "reports\u2066", "project_content"),
        ("company", "A" * 201, "company"),
        ("company", 42, "company"),
        ("project_content", None, "project_content"),
    ],
)
def test_payload_types_and_formats_are_strict(signed_file, name, value, reason):
    with pytest.raises(LicenseError, match=reason):
        verify(signed_file(payload_bytes(**{name: value})))


@pytest.mark.parametrize(
    "name", ["license_id", "license_type", "company", "expires_at", "issued_at", "app_version"]
)
def test_payload_refuses_a_missing_field(signed_file, name):
    with pytest.raises(LicenseError, match="payload fields"):
        verify(signed_file(payload_bytes(**{name: DROP})))


def test_payload_refuses_an_unknown_field(signed_file):
    with pytest.raises(LicenseError, match="payload fields"):
        verify(signed_file(payload_bytes(features=["all"])))


@pytest.mark.parametrize("body", [b"[]", b"null", b'"x"', b"\xff\xfe", b'{"max_nodes": Infinity}'])
def test_payload_must_be_a_utf8_json_object(signed_file, body):
    with pytest.raises(LicenseError, match="payload"):
        verify(signed_file(body))


def test_a_license_valid_to_the_last_representable_day_does_not_crash(signed_file):
    lic = verify(signed_file(payload_bytes(expires_at="9999-12-31")))
    assert valid_until(lic.expires_at).year == 9999
    assert not is_expired(lic.expires_at, lic.issued_at)


def test_accepted_payload_keeps_exact_values(signed_file):
    license_id = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"
    lic = verify(signed_file(payload_bytes(license_id=license_id, company="Ünïcode Ltd")))
    assert lic.license_id == uuid.UUID(license_id)
    assert lic.company == "Ünïcode Ltd"

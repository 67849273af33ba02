"""The QR challenge protocol, both sides, without a database."""

from __future__ import annotations

import base64
import contextlib
import io
import re
import struct
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import zxingcpp
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from registration.protocol import challenge as ch
from registration.protocol.keys import load_authority_key
from registration.qr import MAX_QR_VERSION, qr_png
from tests.conftest import KID

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
# Stands for license.license_secret(text) of the license both sides hold.
SECRET = bytes(range(100, 132))


@pytest.fixture
def authority_private(key_dir):
    return load_authority_key(key_dir / f"{KID}.x25519.pem")


@pytest.fixture
def authority_public(key_dir) -> bytes:
    return base64.b64decode((key_dir / f"{KID}.x25519.pub").read_text())


def make(authority_public: bytes, **overrides) -> tuple[ch.Challenge, bytes]:
    fields = dict(
        purpose=ch.Purpose.REGISTER,
        license_id=uuid.UUID("11111111-2222-3333-4444-555555555555"),
        installation_id=uuid.UUID("66666666-7777-8888-9999-aaaaaaaaaaaa"),
        node_name="node-a",
        node_count=1,
        kid=KID,
        authority_public=authority_public,
        license_secret=SECRET,
        now=NOW,
        ttl_seconds=300,
    )
    fields.update(overrides)
    return ch.new_challenge(**fields)


def test_console_and_authority_derive_the_same_key_and_code(authority_public, authority_private):
    challenge, console_key = make(authority_public)

    vendor_key = ch.authority_key(challenge, authority_private, SECRET)

    assert vendor_key == console_key
    code = ch.code_for(challenge, console_key)
    assert re.fullmatch(r"[0-9]{6}", code)
    assert ch.code_for(challenge, vendor_key) == code


def test_authority_decodes_the_token_and_agrees_on_the_code(authority_public, authority_private):
    challenge, key = make(authority_public)
    token = ch.encode_token(challenge, key)

    decoded, mac = ch.decode_token(token)
    vendor_key = ch.authority_key(decoded, authority_private, SECRET)

    assert decoded == challenge
    assert ch.verify_mac(decoded, mac, vendor_key)
    assert ch.code_for(decoded, vendor_key) == ch.code_for(challenge, key)


def test_another_authority_key_gives_another_key(authority_public, key_dir):
    challenge, console_key = make(authority_public)
    other = load_authority_key(key_dir / "test-0.x25519.pem")

    assert ch.authority_key(challenge, other, SECRET) != console_key


def test_challenge_carries_five_minutes_from_issue_and_a_fresh_nonce(authority_public):
    first, _ = make(authority_public, now=NOW.replace(microsecond=654321))
    second, _ = make(authority_public)

    assert first.issued_at == NOW
    assert first.expires_at == NOW + timedelta(minutes=5)
    assert len(first.nonce) == 16
    assert first.nonce != second.nonce
    assert first.server_public != second.server_public


def test_expiry_edges(authority_public):
    challenge, _ = make(authority_public)

    assert not challenge.is_expired(NOW)
    assert not challenge.is_expired(NOW + timedelta(minutes=4, seconds=59))
    assert challenge.is_expired(NOW + timedelta(minutes=5))
    assert challenge.is_expired(NOW - timedelta(seconds=1))


def _unb32(token: str) -> bytes:
    return base64.b32decode(token + "=" * (-len(token) % 8))


def _b32(raw: bytes) -> str:
    return base64.b32encode(raw).decode().rstrip("=")


CHANGES = {
    "purpose": ch.Purpose.RE_REGISTER,
    "license_id": uuid.UUID("11111111-2222-3333-4444-555555555556"),
    "installation_id": uuid.UUID("66666666-7777-8888-9999-aaaaaaaaaaab"),
    "node_name": "node-b",
    "node_count": 2,
    "nonce": bytes(16),
    "issued_at": NOW + timedelta(seconds=1),
    "expires_at": NOW + timedelta(minutes=5, seconds=1),
    "kid": "test-0",
    "server_public": bytes(31) + b"\x09",
    "chain": b"\x01" * ch.CHAIN_BYTES,
}


@pytest.mark.parametrize("field", sorted(CHANGES))
def test_changing_any_single_field_changes_the_code_and_the_bytes(authority_public, field):
    challenge, key = make(authority_public)
    changed = replace(challenge, **{field: CHANGES[field]})

    assert getattr(changed, field) != getattr(challenge, field)
    assert changed.canonical_bytes() != challenge.canonical_bytes()
    assert ch.code_for(changed, key) != ch.code_for(challenge, key)


def test_every_field_is_covered_by_the_change_table():
    fields = {f for f in ch.Challenge.__dataclass_fields__ if f != "version"}
    assert fields == set(CHANGES)


def _fixed_challenge(**overrides) -> ch.Challenge:
    fields = dict(
        purpose=ch.Purpose.REGISTER,
        license_id=uuid.UUID(int=1),
        installation_id=uuid.UUID(int=2),
        node_name="n",
        node_count=1,
        nonce=bytes(range(16)),
        issued_at=NOW,
        expires_at=NOW + timedelta(minutes=5),
        kid="k",
        server_public=bytes(32),
        chain=bytes(ch.CHAIN_BYTES),
    )
    fields.update(overrides)
    return ch.Challenge(**fields)


def test_a_version_1_code_is_rfc4226_truncation_of_hmac_sha256_over_the_hash():
    """Pin version 1's code (the vendor still checks it) to a hand-built computation."""
    import hashlib
    import hmac

    challenge = _fixed_challenge(version=1, chain=b"")
    key = b"\x01" * 32
    digest = hmac.new(key, hashlib.sha256(challenge.canonical_bytes()).digest(), "sha256").digest()
    offset = digest[-1] & 0x0F
    expected = (int.from_bytes(digest[offset : offset + 4], "big") & 0x7FFFFFFF) % 1_000_000

    assert ch.code_for(challenge, key) == f"{expected:06d}"


def test_a_version_2_code_is_ocra_over_the_hex_digest():
    """Version 2's code is RFC 6287 OCRA-1:HOTP-SHA256-6:QH64 with Q = SHA-256 in hex."""
    import hashlib
    import hmac

    challenge = _fixed_challenge()
    key = b"\x01" * 32
    question = hashlib.sha256(challenge.canonical_bytes()).digest()
    message = b"OCRA-1:HOTP-SHA256-6:QH64\x00" + question + bytes(96)
    digest = hmac.digest(key, message, "sha256")
    offset = digest[-1] & 0x0F
    expected = (int.from_bytes(digest[offset : offset + 4], "big") & 0x7FFFFFFF) % 1_000_000

    assert ch.code_for(challenge, key) == f"{expected:06d}"
    assert ch.code_for(challenge, key) != ch.code_for(replace(challenge, version=1, chain=b""), key)


@settings(max_examples=200, deadline=None)
@given(key=st.binary(min_size=32, max_size=32), node=st.text("abcxyz-09", min_size=1, max_size=64))
def test_the_written_out_code_is_what_the_generic_ocra_function_gives(key, node):
    """code_for's fast path agrees with otp.ocra() on the product's suite."""
    from registration.protocol.otp import ocra

    challenge = replace(_fixed_challenge(), node_name=node)

    assert ch.code_for(challenge, key) == ocra(ch.OCRA_SUITE, key, challenge.question)


def test_decoded_ids_are_ordinary_uuids(authority_public):
    import pickle

    challenge, key = make(authority_public)
    decoded, _mac = ch.decode_token(ch.encode_token(challenge, key))

    for made, read in (
        (challenge.license_id, decoded.license_id),
        (challenge.installation_id, decoded.installation_id),
    ):
        assert type(read) is uuid.UUID
        assert (read, hash(read), str(read), read.bytes) == (
            made,
            hash(made),
            str(made),
            made.bytes,
        )
        assert read.is_safe is uuid.SafeUUID.unknown
        assert pickle.loads(pickle.dumps(read)) == made
        assert {made: 1}[read] == 1


def test_a_version_1_token_still_decodes(authority_public):
    challenge = _fixed_challenge(version=1, chain=b"")
    decoded, _mac = ch.decode_token(ch.encode_token(challenge, b"k" * 32))

    assert decoded == challenge
    assert decoded.canonical_bytes()[50:60] == struct.pack(
        ">IIH", int(NOW.timestamp()), int((NOW + timedelta(minutes=5)).timestamp()), 1
    )


def test_canonical_bytes_layout(authority_public):
    challenge, _ = make(authority_public)
    raw = challenge.canonical_bytes()

    assert raw[0] == ch.PROTOCOL_VERSION
    assert raw[1] == int(ch.Purpose.REGISTER)
    assert raw[2:18] == challenge.license_id.bytes
    assert raw[18:34] == challenge.installation_id.bytes
    assert raw[34:50] == challenge.nonce
    assert raw[50:58] == challenge.chain
    assert struct.unpack(">IIH", raw[58:68]) == (
        int(NOW.timestamp()),
        int((NOW + timedelta(minutes=5)).timestamp()),
        1,
    )
    assert raw[68] == len("node-a") and raw[69:75] == b"node-a"
    assert raw[75] == len(KID) and raw[76 : 76 + len(KID)] == KID.encode()
    assert raw[76 + len(KID) :] == challenge.server_public


def test_tag_is_two_unambiguous_characters_and_follows_the_challenge(authority_public):
    tags = {make(authority_public)[0].tag for _ in range(40)}

    assert all(len(t) == 2 and set(t) <= set(ch.TAG_ALPHABET) for t in tags)
    assert len(tags) > 1
    assert not set(ch.TAG_ALPHABET) & set("0O1IL2Z5S8B6G")


def test_token_round_trip_is_upper_case_base32_without_padding(authority_public):
    challenge, key = make(authority_public, node_name="nœud-é", node_count=7)
    token = ch.encode_token(challenge, key)

    assert re.fullmatch(r"[A-Z2-7]+", token)
    decoded, mac = ch.decode_token(token)
    assert decoded == challenge
    assert ch.verify_mac(decoded, mac, key)
    # Lower case (a phone keyboard, a mail client) reads the same.
    assert ch.decode_token(token.lower())[0] == challenge


def test_tampered_token_fails_the_mac(authority_public, authority_private):
    challenge, key = make(authority_public)
    raw = bytearray(_unb32(ch.encode_token(challenge, key)))
    raw[40] ^= 0x01  # a bit of the nonce
    tampered = base64.b32encode(bytes(raw)).decode().rstrip("=")

    decoded, mac = ch.decode_token(tampered)

    assert decoded != challenge
    assert not ch.verify_mac(decoded, mac, ch.authority_key(decoded, authority_private, SECRET))


def test_wrong_mac_bytes_fail(authority_public):
    challenge, key = make(authority_public)
    raw = bytearray(_unb32(ch.encode_token(challenge, key)))
    raw[-1] ^= 0x80
    decoded, mac = ch.decode_token(base64.b32encode(bytes(raw)).decode().rstrip("="))

    assert decoded == challenge
    assert not ch.verify_mac(decoded, mac, key)


def _valid_raw(authority_public: bytes) -> bytes:
    challenge, key = make(authority_public)
    return _unb32(ch.encode_token(challenge, key))


@pytest.mark.parametrize(
    "token",
    [
        "",
        "A",
        "0000000000000000",  # 0 is not base32
        "ABC!DEF",
        "ÄBCDEFGH",
        "ＡＢＣＤＥＦＧＨ",
        "AAAAAAAA" * 10,  # too short for the fixed part
        "A" * 2000,  # longer than any token
        "ABCDEFG=",
        "AB CD",
    ],
)
def test_malformed_tokens_raise_challenge_error(token):
    with pytest.raises(ch.ChallengeError):
        ch.decode_token(token)


@pytest.mark.parametrize("stray", ["0", "1", "8", "9", "_", " ", "\t", "+", "-", "=", "!", "\x00"])
@pytest.mark.parametrize("where", [0, 40, -1])
def test_a_character_outside_base32_anywhere_is_refused(authority_public, stray, where):
    # Among them, characters int(..., 32) itself would read: digits 0-9, "_", "+", blanks.
    token = _b32(_valid_raw(authority_public))
    where %= len(token)
    with pytest.raises(ch.ChallengeError, match="base32"):
        ch.decode_token(token[:where] + stray + token[where + 1 :])


@pytest.mark.parametrize("digit", ["\u0663", "\uff13", "\U0001d7d7", "\u00a0"])
def test_base32_decoding_itself_refuses_digits_int_would_read(digit):
    # Arabic-Indic, fullwidth and mathematical digits, and a no-break space: int() reads
    # or skips them; the decoder must not (the token's own ASCII check comes earlier).
    with pytest.raises(ch.ChallengeError, match="base32"):
        ch._b32decode("AAAA" + digit + "AAA")


def test_truncated_and_extended_tokens_raise_challenge_error(authority_public):
    raw = _valid_raw(authority_public)
    for cut in (1, 5, 8, 9, 32, 40, len(raw) - 60):
        with pytest.raises(ch.ChallengeError):
            ch.decode_token(_b32(raw[:-cut]))
    with pytest.raises(ch.ChallengeError):
        ch.decode_token(_b32(raw + b"\x00"))


@pytest.mark.parametrize(
    ("index", "value", "why"),
    [
        (0, 3, "version"),
        (0, 0, "version"),
        (0, 1, "version 1 reading version 2's bytes"),
        (1, 0, "purpose"),
        (1, 4, "purpose"),
        (68, 65, "node name longer than 64 bytes"),
        (68, 200, "node name runs past the end"),
        (68, 7, "node name length off by one"),
        (75, 0, "empty kid"),
        (75, 33, "kid longer than 32 bytes"),
    ],
)
def test_wrong_version_purpose_and_lengths_raise_challenge_error(
    authority_public, index, value, why
):
    raw = bytearray(_valid_raw(authority_public))
    raw[index] = value

    with pytest.raises(ch.ChallengeError):
        ch.decode_token(_b32(bytes(raw)))


def test_non_text_node_name_and_kid_raise_challenge_error(authority_public):
    raw = bytearray(_valid_raw(authority_public))
    raw[69] = 0xFF  # not UTF-8
    with pytest.raises(ch.ChallengeError):
        ch.decode_token(_b32(bytes(raw)))
    raw = bytearray(_valid_raw(authority_public))
    raw[76] = 0xC3  # not ASCII
    with pytest.raises(ch.ChallengeError):
        ch.decode_token(_b32(bytes(raw)))


def test_low_order_server_key_is_refused_by_the_authority(authority_public, authority_private):
    challenge, _ = make(authority_public)
    with pytest.raises(ch.ChallengeError):
        ch.authority_key(replace(challenge, server_public=bytes(32)), authority_private, SECRET)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_fuzz_text_never_raises_anything_but_challenge_error(token):
    with contextlib.suppress(ch.ChallengeError):
        ch.decode_token(token)


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=0, max_size=220))
def test_fuzz_base32_bytes_never_raise_anything_but_challenge_error(raw):
    with contextlib.suppress(ch.ChallengeError):
        ch.decode_token(_b32(raw))


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_fuzz_mutated_valid_tokens_never_raise_anything_but_challenge_error(data):
    public = bytes(range(32))  # any 32 bytes: only the layout matters here
    challenge = ch.Challenge(
        purpose=ch.Purpose.REGISTER,
        license_id=uuid.UUID(int=1),
        installation_id=uuid.UUID(int=2),
        node_name="node-a",
        node_count=1,
        nonce=bytes(16),
        issued_at=NOW,
        expires_at=NOW + timedelta(minutes=5),
        kid=KID,
        server_public=public,
    )
    raw = bytearray(_unb32(ch.encode_token(challenge, b"k" * 32)))
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    with contextlib.suppress(ch.ChallengeError):
        ch.decode_token(_b32(bytes(raw)))


# --- The QR code ----------------------------------------------------------------------


def test_qr_for_a_realistic_url_is_small_and_decodes_to_the_url(authority_public):
    kid = "vendor-2026-06-primary-key-id-01"
    assert len(kid) == 32
    challenge, key = make(authority_public, node_name="n" * 64, kid=kid, node_count=9999)
    url = f"https://verify.vendor.example.com/m/{ch.encode_token(challenge, key)}"

    png = qr_png(url)

    assert len(png) <= 2560, f"PNG is {len(png)} bytes"
    image = Image.open(io.BytesIO(png))
    modules = image.width // 5 - 8  # box size 5, border 4
    version = (modules - 17) // 4
    assert version <= MAX_QR_VERSION
    results = zxingcpp.read_barcodes(image)
    assert [r.text for r in results] == [url]
    assert results[0].format == zxingcpp.BarcodeFormat.QRCode


def test_qr_refuses_a_url_that_needs_more_than_version_10():
    with pytest.raises(ValueError, match="version"):
        qr_png("https://verify.vendor.example.com/m/" + "x" * 400)


@pytest.mark.parametrize("kid", ["k", "test-1", "x" * 32])
def test_key_derivation_is_hkdf_sha256_salted_with_the_license_secret(kid):
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    from registration.protocol.challenge import KDF_INFO, derive_key

    shared, server_public, authority_public = bytes(range(32)), b"S" * 32, b"A" * 32
    info = KDF_INFO[2] + server_public + authority_public + kid.encode("ascii")
    expected = HKDF(algorithm=hashes.SHA256(), length=32, salt=SECRET, info=info).derive(shared)
    assert derive_key(shared, server_public, authority_public, kid, SECRET) == expected


def test_without_the_license_secret_no_one_can_make_a_token_the_authority_accepts(
    authority_public, authority_private
):
    # Anyone can run the console's side with the authority's public key; only the
    # license's secret makes the MAC check at the vendor.
    forged, forged_key = make(authority_public, license_secret=bytes(32))
    decoded, mac = ch.decode_token(ch.encode_token(forged, forged_key))

    assert not ch.verify_mac(decoded, mac, ch.authority_key(decoded, authority_private, SECRET))


@pytest.mark.parametrize(
    "node_name", ["a\x00b", "tab\there", "del\x7f", "c1\x85", "rlo\u202eab", "zw\u200bsp"]
)
def test_a_node_name_with_control_characters_is_refused(authority_public, node_name):
    challenge, key = make(authority_public)
    forged = replace(challenge, node_name=node_name)
    token = ch.encode_token(forged, key)

    with pytest.raises(ch.ChallengeError, match="control"):
        ch.decode_token(token)
    with pytest.raises(ValueError, match="control"):
        make(authority_public, node_name=node_name)


@pytest.mark.parametrize(
    ("node_name", "kid", "node_count", "chain"),
    [
        ("n", "k", 0, bytes(8)),
        ("é" * 31 + "n", "a" * 32, 0xFFFF, b"\xff" * 8),
        ("node-a", "bench-1", 1, bytes(range(8))),
    ],
)
def test_a_decoded_token_keeps_bytes_that_building_them_again_gives(
    authority_public, node_name, kid, node_count, chain
):
    """decode_token keeps the token's bytes as the canonical bytes: they must be the ones
    the fields build (every field at its edges)."""
    name = node_name.encode()[: ch.NODE_NAME_MAX_BYTES].decode("utf-8", "ignore")
    challenge, key = ch.new_challenge(
        purpose=ch.Purpose.RE_REGISTER,
        license_id=uuid.uuid4(),
        installation_id=uuid.uuid4(),
        node_name=name,
        node_count=node_count,
        kid=kid,
        authority_public=authority_public,
        license_secret=b"s" * 32,
        now=datetime(2038, 1, 1, tzinfo=UTC),
        ttl_seconds=300,
        chain=chain,
    )
    decoded, _mac = ch.decode_token(ch.encode_token(challenge, key))
    assert decoded == challenge
    assert decoded.canonical_bytes() == decoded._build_canonical_bytes()
    assert (
        decoded.canonical_bytes()[: ch._FIXED[2].size]
        == challenge.canonical_bytes()[: ch._FIXED[2].size]
    )

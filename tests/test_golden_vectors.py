"""The protocol's published test vectors: docs/protocol.md's appendix, checked line by line,
and a Container.lic signed with RFC 8032's TEST 1 key, its signature written out.

Every expected value here is a literal (or a line of the document), never recomputed by
the code under test; the domain strings are spelled out, not imported.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from registration.protocol import challenge as ch
from registration.protocol import license as lic_format
from registration.protocol.otp import ocra

DOC = Path(__file__).resolve().parent.parent / "docs" / "protocol.md"
# RFC 7748 §6.1: the shared secret of Alice and Bob.
RFC7748_K = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"
# RFC 8032 §7.1 TEST 1.
ED25519_TEST_1_SECRET = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"


def _appendix() -> dict[str, str]:
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## Appendix: Test vectors") :]
    block = re.search(r"```\n(.*?)```", section, re.S).group(1)
    return dict(line.split(" = ", 1) for line in block.strip().splitlines())


@pytest.fixture(scope="module")
def vectors() -> dict[str, str]:
    return _appendix()


@pytest.fixture(scope="module")
def made(vectors):
    """The console's side run on the appendix's inputs."""
    vendor = X25519PrivateKey.from_private_bytes(bytes.fromhex(vectors["vendor_private"]))
    console = X25519PrivateKey.from_private_bytes(bytes.fromhex(vectors["console_private"]))
    salt = hashlib.sha256(bytes.fromhex(vectors["license_signature"])).digest()
    challenge, key = ch.new_challenge(
        purpose=ch.Purpose(int(vectors["purpose"])),
        license_id=uuid.UUID(vectors["license_id"]),
        installation_id=uuid.UUID(vectors["installation_id"]),
        node_name=vectors["node_name"],
        node_count=int(vectors["node_count"]),
        kid=vectors["kid"],
        authority_public=vendor.public_key().public_bytes_raw(),
        license_secret=salt,
        now=datetime.fromtimestamp(int(vectors["issued_at"]), UTC),
        ttl_seconds=int(vectors["expires_at"]) - int(vectors["issued_at"]),
        chain=bytes.fromhex(vectors["chain"]),
        server_private=console,
        nonce=bytes.fromhex(vectors["nonce"]),
    )
    return challenge, key, vendor, console, salt


def test_the_domain_strings_are_these():
    assert ch.KDF_INFO == {1: b"licserver/challenge/v1", 2: b"licserver/challenge/v2"}
    assert ch.MAC_CONTEXT == {
        1: b"licserver/challenge-mac/v1\n",
        2: b"licserver/challenge-mac/v2\n",
    }
    assert ch.CHAIN_CONTEXT == b"licserver/chain/v2\n"
    assert ch.CHAIN_MASK_CONTEXT == b"licserver/chain-mask/v2\n"
    assert ch.OCRA_SUITE == "OCRA-1:HOTP-SHA256-6:QH64"
    assert lic_format.SIGNING_CONTEXT == b"licserver/container-license/v1\n"


def test_the_shared_secret_is_rfc_7748s(vectors, made):
    _challenge, _key, vendor, console, _salt = made
    assert vectors["shared_secret"] == RFC7748_K
    shared = console.exchange(
        X25519PublicKey.from_public_bytes(vendor.public_key().public_bytes_raw())
    )
    assert shared.hex() == vectors["shared_secret"]


def test_the_console_side_gives_every_value_of_the_appendix(vectors, made):
    challenge, key, _vendor, _console, salt = made
    code = ch.code_for(challenge, key)

    assert challenge.canonical_bytes().hex() == vectors["canonical_bytes"]
    assert salt.hex() == vectors["hkdf_salt"]
    assert key.hex() == vectors["k"]
    assert ch.chain_mask(key).hex() == vectors["chain_mask"]
    assert challenge.chain.hex() == vectors["chain_in_token"]
    assert ch.encode_token(challenge, key) == vectors["token"]
    assert challenge.question == vectors["q"]
    assert code == vectors["code"]
    assert challenge.tag == vectors["tag"]
    chain = bytes.fromhex(vectors["chain"])
    assert ch.next_chain(challenge, chain, code).hex() == vectors["chain_after"]


def test_the_vendor_side_reads_the_token_to_the_same_values(vectors):
    vendor = X25519PrivateKey.from_private_bytes(bytes.fromhex(vectors["vendor_private"]))
    salt = bytes.fromhex(vectors["hkdf_salt"])

    challenge, mac = ch.decode_token(vectors["token"])
    key = ch.authority_key(challenge, vendor, salt)

    assert mac.hex() == vectors["mac"]
    assert key.hex() == vectors["k"]
    assert ch.verify_mac(challenge, mac, key)
    assert ch.code_for(challenge, key) == vectors["code"]
    assert challenge.chain.hex() == vectors["chain_in_token"]
    assert ch.chain_value(challenge, key).hex() == vectors["chain"]


def test_the_code_is_plain_ocra_and_the_mac_plain_hmac(vectors):
    """What another stack computes, from the appendix's values alone."""
    import hmac

    key = bytes.fromhex(vectors["k"])
    raw = bytes.fromhex(vectors["canonical_bytes"])
    assert hashlib.sha256(raw).hexdigest() == vectors["q"]
    assert ocra("OCRA-1:HOTP-SHA256-6:QH64", key, vectors["q"]) == vectors["code"]
    mac = hmac.digest(key, b"licserver/challenge-mac/v2\n" + raw, "sha256")[:8]
    assert mac.hex() == vectors["mac"]
    token = base64.b32encode(raw + mac).decode().rstrip("=")
    assert token == vectors["token"]
    # The chain value travels XOR the first 8 bytes of HMAC-SHA256(K, the mask string),
    # at bytes 50 to 58 of the canonical bytes.
    mask = hmac.digest(key, b"licserver/chain-mask/v2\n", "sha256")[:8]
    assert mask.hex() == vectors["chain_mask"]
    assert raw[50:58].hex() == vectors["chain_in_token"]
    masked = int.from_bytes(bytes.fromhex(vectors["chain"]), "big") ^ int.from_bytes(mask, "big")
    assert masked.to_bytes(8, "big") == raw[50:58]
    chain = hashlib.sha256(
        b"licserver/chain/v2\n"
        + bytes.fromhex(vectors["chain"])
        + bytes.fromhex(vectors["q"])
        + vectors["code"].encode()
    ).digest()[:8]
    assert chain.hex() == vectors["chain_after"]


def test_a_container_lic_signed_with_rfc_8032_test_1s_key():
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(ED25519_TEST_1_SECRET))
    lic = lic_format.License(
        license_id=uuid.UUID("11111111-2222-3333-4444-555555555555"),
        license_type="container",
        company="Acme Ltd",
        project_name="Reports",
        app_name="ReportServer",
        app_version="11.0",
        project_content="reports",
        contract_date=date(2026, 1, 15),
        issued_at=datetime(2026, 1, 15, 9, 30, tzinfo=UTC),
        expires_at=date(2027, 1, 31),
        max_nodes=2,
        kid="rfc8032-test-1",
    )

    text = lic_format.sign_license(lic, key, "rfc8032-test-1")

    envelope = json.loads(lic_format.dearmor(text.encode()))
    assert (envelope["v"], envelope["alg"], envelope["kid"]) == (1, "ed25519", "rfc8032-test-1")
    assert base64.b64decode(envelope["sig"]).hex() == (
        "dcebfddfbce6d1c6385b4456befa2d25a4327bff191a266cae8b10c8fe4f8041"
        "f68edba90adc791e1f2e170301869c835959cb42d28bb1561d9c025fc9a8670d"
    )
    # The signature is over the domain string and the payload, nothing else.
    payload = base64.b64decode(envelope["payload"])
    key.public_key().verify(
        base64.b64decode(envelope["sig"]), b"licserver/container-license/v1\n" + payload
    )
    pinned = {"rfc8032-test-1": "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="}
    assert lic_format.verify_license(text.encode(), pinned, 64 * 1024) == lic

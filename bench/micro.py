"""Rows 1 and 2: the license check and the 6-digit code, against raw public-key operations."""

from __future__ import annotations

import json
import statistics
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from django.conf import settings

from bench.common import Row, compare, le, ms, us
from registration.facts import configured_facts
from registration.flows.challenge import verifier_cost
from registration.protocol.causes import AUTH_METHOD_CONTAINER, LocalFacts, validate
from registration.protocol.challenge import (
    Purpose,
    authority_key,
    code_for,
    decode_token,
    encode_token,
    new_challenge,
    verify_mac,
)
from registration.protocol.keys import load_authority_key, load_signing_key
from registration.protocol.license import (
    SIGNING_CONTEXT,
    License,
    b64decode_key,
    dearmor,
    license_secret,
    sign_license,
    strict_b64decode,
)
from registration.protocol.verifier import check_verifier, make_verifier

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def sample_license(kid: str) -> License:
    return License(
        license_id=uuid.uuid4(),
        license_type="container",
        company="Acme Ltd",
        project_name="Reports",
        app_name=settings.APP_NAME,
        app_version=".".join(settings.APP_VERSION.split(".")[:2]),
        project_content=settings.PROJECT_CONTENT,
        contract_date=date(2026, 1, 15),
        issued_at=datetime(2026, 1, 15, 9, 30, tzinfo=UTC),
        expires_at=date(2027, 1, 31),
        max_nodes=4,
        kid=kid,
    )


def facts() -> LocalFacts:
    return configured_facts(NOW, live_nodes=1)


def license_check(kid: str, quick: bool) -> Row:
    """File bytes -> validated license, against one raw Ed25519 verify of the same bytes."""
    key_file = Path(settings.LICENSE_SIGNING_KEY_FILES[kid])
    data = sign_license(sample_license(kid), load_signing_key(key_file), kid).encode("ascii")
    pinned = settings.LICENSE_PUBLIC_KEYS
    local = facts()
    assert validate(data, AUTH_METHOD_CONTAINER, local, pinned, settings.LICENSE_MAX_BYTES).accepted

    # The baseline gets the signature and signed bytes already cut out, and a loaded key.
    envelope = json.loads(dearmor(data))
    signature = strict_b64decode(envelope["sig"])
    message = SIGNING_CONTEXT + strict_b64decode(envelope["payload"])
    public_key = Ed25519PublicKey.from_public_bytes(b64decode_key(pinned[kid]))

    def target() -> object:
        return validate(data, AUTH_METHOD_CONTAINER, local, pinned, settings.LICENSE_MAX_BYTES)

    def baseline() -> None:
        public_key.verify(signature, message)

    t, b, ratio = compare(target, baseline, loops=300 if quick else 1000)
    return Row(
        "1",
        "license check: file bytes -> validated license",
        f"{ratio:.2f}x",
        "<= 1.3x",
        le(ratio, 1.3),
        [f"validate {us(t)} vs Ed25519 verify {us(b)} ({len(data)}-byte file)"],
    )


def six_digit_code(kid: str, quick: bool) -> list[Row]:
    """Each side's code, against the raw X25519 work that side cannot avoid."""
    authority_public = b64decode_key(settings.AUTHORITY_PUBLIC_KEYS[kid])
    authority_private = load_authority_key(settings.AUTHORITY_PRIVATE_KEY_FILES[kid])
    signing_key = load_signing_key(Path(settings.LICENSE_SIGNING_KEY_FILES[kid]))
    secret = license_secret(sign_license(sample_license(kid), signing_key, kid))
    fields = dict(
        purpose=Purpose.REGISTER,
        license_id=uuid.uuid4(),
        installation_id=uuid.uuid4(),
        node_name="node-a",
        node_count=1,
        kid=kid,
        authority_public=authority_public,
        license_secret=secret,
        now=NOW,
        ttl_seconds=300,
    )
    challenge, key = new_challenge(**fields)
    token = encode_token(challenge, key)
    peer = X25519PublicKey.from_public_bytes(authority_public)
    loops = 300 if quick else 1000

    # Console: a fresh key pair per challenge (the private half is dropped), one exchange.
    def console() -> str:
        made, k = new_challenge(**fields)
        return code_for(made, k)

    def console_raw() -> bytes:
        return X25519PrivateKey.generate().exchange(peer)

    # Vendor side: one exchange of its long-term key with the server key in the token.
    server_public = X25519PublicKey.from_public_bytes(challenge.server_public)
    parsed, mac = decode_token(token)

    def authority() -> str:
        return code_for(parsed, authority_key(parsed, authority_private, secret))

    def authority_scan() -> str:
        scanned, tag = decode_token(token)
        k = authority_key(scanned, authority_private, secret)
        assert verify_mac(scanned, tag, k)
        return code_for(scanned, k)

    def authority_raw() -> bytes:
        return authority_private.exchange(server_public)

    assert console() and authority() == authority_scan() == code_for(challenge, key)
    rows = []
    for number, side, target, baseline, raw in (
        ("2a", "console", console, console_raw, "key pair + exchange"),
        ("2b", "vendor", authority, authority_raw, "exchange"),
    ):
        t, b, ratio = compare(target, baseline, loops=loops)
        rows.append(
            Row(
                number,
                f"6-digit code, {side} side",
                f"{ratio:.2f}x",
                "<= 1.5x",
                le(ratio, 1.5),
                [f"{side} {us(t)} vs raw X25519 {raw} {us(b)}"],
            )
        )
    # The whole scan adds reading the token and checking its MAC to the vendor's code;
    # printed for the record (its cost is part of the phone page, row 5).
    t, b, ratio = compare(authority_scan, authority_raw, loops=loops)
    rows[-1].detail.append(
        f"whole scan (decode token + MAC + code) {us(t)}: {ratio:.2f}x the raw exchange"
    )
    rows.append(code_verifier_cost(challenge, key, quick))
    return rows


def code_verifier_cost(challenge, key: bytes, quick: bool) -> Row:
    """2c: one check of the code verifier, and what trying every code would cost."""
    code = code_for(challenge, key)
    cost = verifier_cost()
    stored = make_verifier(code, challenge.digest(), b"p" * 32, cost)
    repeats = 5 if quick else 15
    samples = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        assert check_verifier(stored, code, challenge.digest(), b"p" * 32)
        samples.append(time.perf_counter_ns() - start)
    check_ns = statistics.median(samples)
    core_hours = check_ns * 10**6 / 1e9 / 3600
    cores_in_lifetime = check_ns * 10**6 / 1e9 / settings.CHALLENGE_TTL_SECONDS
    return Row(
        "2c",
        "code verifier check (scrypt), console side",
        ms(check_ns),
        "informational",
        None,
        [
            f"scrypt N={cost.n} r={cost.r} p={cost.p}, {cost.memory_bytes // 2**20} MiB; "
            f"min {ms(min(samples))}, max {ms(max(samples))} over {repeats}",
            f"all 10^6 codes: {core_hours:.1f} core-hours, i.e. {cores_in_lifetime:.0f} cores "
            f"busy for the whole {settings.CHALLENGE_TTL_SECONDS} s lifetime of a challenge",
        ],
    )

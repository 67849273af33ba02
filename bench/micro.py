"""Rows 1 and 2: the license check and the 6-digit code, against raw public-key operations."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from django.conf import settings

from bench.common import Row, at_most, compare, ms, ratio_row, us
from registration.authority import chain
from registration.authority.models import Binding
from registration.facts import configured_facts
from registration.flows.challenge import verifier_cost
from registration.protocol.causes import AUTH_METHOD_CONTAINER, LocalFacts, validate
from registration.protocol.challenge import (
    Purpose,
    authority_key,
    chain_value,
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

    goal = at_most(1.2)
    ratios = compare(target, baseline, loops=100 if quick else 300, goal=goal)
    return ratio_row(
        "1",
        "license check: file bytes -> validated license",
        ratios,
        goal,
        [
            f"validate {us(ratios.target)} vs Ed25519 verify {us(ratios.baseline)} "
            f"({len(data)}-byte file)"
        ],
    )


def six_digit_code(kid: str, quick: bool) -> list[Row]:
    """Each side's code, against the raw X25519 work that side cannot avoid."""
    authority_public = b64decode_key(settings.AUTHORITY_PUBLIC_KEYS[kid])
    key_file = settings.AUTHORITY_PRIVATE_KEY_FILES[kid]
    authority_private = load_authority_key(key_file)
    signing_key = load_signing_key(Path(settings.LICENSE_SIGNING_KEY_FILES[kid]))
    license_text = sign_license(sample_license(kid), signing_key, kid)
    secret = license_secret(license_text)
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
        chain=bytes(range(8)),
    )
    challenge, key = new_challenge(**fields)
    assert challenge.version == 2
    token = encode_token(challenge, key)
    peer = X25519PublicKey.from_public_bytes(authority_public)
    loops = 100 if quick else 300

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

    def authority_raw() -> bytes:
        return authority_private.exchange(server_public)

    # The whole scan as the phone page runs it, minus the database: read the token, load
    # the key (cached) and the license's secret (cached by its text), derive K, check the
    # MAC, unmask the chain value and check it against the binding's (at its tip), and
    # make the code.
    binding = Binding(installation_id=challenge.installation_id, chain_tip=fields["chain"].hex())

    def whole_scan() -> str:
        scanned, tag = decode_token(token)
        k = authority_key(scanned, load_authority_key(key_file), license_secret(license_text))
        assert verify_mac(scanned, tag, k)
        value = chain_value(scanned, k)
        assert chain.classify(binding, scanned, value) == chain.ChainVerdict.AT_TIP
        return code_for(scanned, k)

    # Its raw X25519 work: the token's 32 bytes made a point, and one exchange.
    raw_server_public = challenge.server_public

    def whole_scan_raw() -> bytes:
        return authority_private.exchange(X25519PublicKey.from_public_bytes(raw_server_public))

    assert console() and authority() == whole_scan() == code_for(challenge, key)
    rows = []
    goal = at_most(1.3)
    for number, side, target, baseline, raw in (
        ("2a", "console", console, console_raw, "key pair + exchange"),
        ("2b", "vendor", authority, authority_raw, "exchange"),
    ):
        ratios = compare(target, baseline, loops=loops, goal=goal)
        rows.append(
            ratio_row(
                number,
                f"6-digit code (v2, OCRA), {side} side",
                ratios,
                goal,
                [f"{side} {us(ratios.target)} vs raw X25519 {raw} {us(ratios.baseline)}"],
            )
        )
    scan_goal = at_most(1.5)
    ratios = compare(whole_scan, whole_scan_raw, loops=loops, goal=scan_goal)
    rows.append(
        ratio_row(
            "2d",
            "whole scan with the chain check, vendor side",
            ratios,
            scan_goal,
            [
                f"scan {us(ratios.target)} vs raw X25519 point from bytes + exchange "
                f"{us(ratios.baseline)}",
                "decode token, key, license secret, K, MAC, chain value, code; the database "
                "read is row 2e",
            ],
        )
    )
    rows.append(code_verifier_cost(challenge, key, quick))
    return rows


def code_verifier_cost(challenge, key: bytes, quick: bool) -> Row:
    """2c: one check of the code verifier against raw scrypt, and the cost of all codes."""
    code = code_for(challenge, key)
    cost = verifier_cost()
    pepper = b"p" * 32
    stored = make_verifier(code, challenge.digest(), pepper, cost)

    def target() -> None:
        assert check_verifier(stored, code, challenge.digest(), pepper)

    def baseline() -> bytes:
        return hashlib.scrypt(
            code.encode(),
            salt=challenge.digest(),
            n=cost.n,
            r=cost.r,
            p=cost.p,
            maxmem=cost.memory_bytes * 2,
            dklen=32,
        )

    goal = at_most(1.1)
    ratios = compare(target, baseline, loops=1, goal=goal, min_rounds=7 if quick else 11)
    check_ns = ratios.target
    core_hours = check_ns * 10**6 / 1e9 / 3600
    # Trying every code must cost more than a day of one core (about 8 at 30 ms a check).
    core_hour_goal = 4.0
    ttl = settings.CHALLENGE_TTL_SECONDS
    return ratio_row(
        "2c",
        "code verifier check vs raw scrypt, console side",
        ratios,
        goal,
        [
            f"check {ms(check_ns)} vs hashlib.scrypt {ms(ratios.baseline)}; N={cost.n} "
            f"r={cost.r} p={cost.p}, {cost.memory_bytes // 2**20} MiB",
            f"{check_ns * 10**6 / 1e9 / ttl:.0f} cores busy for the whole {ttl} s lifetime "
            "of a challenge to try every code",
        ],
        also=[
            (
                f"all 10^6 codes: {core_hours:.1f} core-hours (goal >= {core_hour_goal:g})",
                core_hours >= core_hour_goal,
            )
        ],
    )

"""Nothing the console stores computes a code: only an scrypt verifier, keyed by SECRET_KEY."""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac

import pytest
from django.apps import apps
from django.conf import settings
from django.utils.crypto import salted_hmac

from registration.authority.models import IssuedLicense
from registration.flows.challenge import refresh_challenge, verifier_pepper
from registration.flows.code import Outcome, submit_code
from registration.flows.upload import upload_license
from registration.models import ChallengeState, QrChallenge
from registration.protocol.challenge import authority_key, code_for, decode_token
from registration.protocol.keys import load_authority_key
from registration.protocol.license import license_secret
from registration.protocol.verifier import ScryptCost, check_verifier, make_verifier
from tests.phone_steps import phone_code

pytestmark = pytest.mark.django_db

CHEAP = ScryptCost(n=2**10, r=8, p=1)


def _vendor_key(challenge: QrChallenge) -> bytes:
    """K as only the vendor can derive it now: its private key and its registry."""
    proto, _mac = decode_token(challenge.token)
    private = load_authority_key(settings.AUTHORITY_PRIVATE_KEY_FILES[proto.kid])
    text = IssuedLicense.objects.get(license_id=proto.license_id).text
    return authority_key(proto, private, license_secret(text))


def _every_stored_value() -> list[object]:
    """Every value of every column of every row in the console's database."""
    values: list[object] = []
    for model in apps.get_models():
        names = [f.attname for f in model._meta.concrete_fields]
        for row in model.objects.values_list(*names):
            values.extend(row)
    return values


def _as_key_candidates(value: object) -> list[bytes]:
    """What a reader might try as K: the value's bytes, and its hex or base64 decoding."""
    if isinstance(value, memoryview | bytes):
        raw = bytes(value)
    elif isinstance(value, str):
        raw = value.encode()
    else:
        return []
    candidates = [raw]
    decoders = (lambda t: bytes.fromhex(t.decode()), base64.b64decode, base64.b32decode)
    for piece in raw.replace(b"$", b" ").split():
        for decode in decoders:
            with contextlib.suppress(ValueError, binascii.Error):
                candidates.append(decode(piece))
    return candidates


@pytest.fixture
def open_qr(frozen_clock, issue) -> QrChallenge:
    lic, text = issue()
    assert upload_license(text.encode(), "container").validation.accepted
    return QrChallenge.objects.get(state=ChallengeState.OPEN)


def test_no_stored_value_is_k_or_the_code_or_works_as_k(open_qr):
    k = _vendor_key(open_qr)
    proto, _mac = decode_token(open_qr.token)
    code = code_for(proto, k)
    assert code == phone_code(open_qr)  # the K derived above is the one that matters

    values = _every_stored_value()
    texts = [v for v in values if isinstance(v, str)]
    assert code not in texts
    for spelling in (k.hex(), base64.b64encode(k).decode(), base64.b32encode(k).decode()):
        assert not any(spelling in text for text in texts)
    for value in values:
        for candidate in _as_key_candidates(value):
            assert candidate != k
            assert code_for(proto, candidate) != code or len(candidate) != 32


def test_a_database_copy_without_the_settings_cannot_test_a_code(open_qr, settings):
    k = _vendor_key(open_qr)
    proto, _mac = decode_token(open_qr.token)
    code = code_for(proto, k)
    stored = open_qr.code_verifier
    assert check_verifier(stored, code, proto.digest(), verifier_pepper())

    # Without SECRET_KEY the reader must guess the pepper: another secret finds nothing,
    # and neither does scrypt keyed by what the database itself holds.
    settings.SECRET_KEY = "not-the-console-secret-key-" + "x" * 30
    assert not check_verifier(stored, code, proto.digest(), verifier_pepper())
    for guess in (b"", proto.digest(), open_qr.token.encode()):
        assert not check_verifier(stored, code, proto.digest(), guess)


def test_the_pepper_is_its_own_domain_of_secret_key(settings):
    settings.SECRET_KEY = "k" * 50
    pepper = verifier_pepper()
    # Django's own salted_hmac with another salt (sessions, signing) gives another value.
    assert pepper != salted_hmac("django.core.signing", b"", algorithm="sha256").digest()
    expected_key = hashlib.sha256(b"licserver/code-verifier-pepper/v1" + b"k" * 50).digest()
    assert pepper == hmac.digest(expected_key, b"", "sha256")


def test_a_verifier_is_bound_to_its_challenge_and_its_code():
    pepper = b"p" * 32
    digest_a, digest_b = hashlib.sha256(b"a").digest(), hashlib.sha256(b"b").digest()
    stored = make_verifier("123456", digest_a, pepper, CHEAP)

    assert stored.startswith("scrypt$1024$8$1$")
    assert check_verifier(stored, "123456", digest_a, pepper)
    assert not check_verifier(stored, "123457", digest_a, pepper)
    assert not check_verifier(stored, "123456", digest_b, pepper)
    assert not check_verifier(stored, "123456", digest_a, b"q" * 32)


def test_the_verifier_is_scrypt_of_the_code_salted_by_the_challenge():
    pepper, digest = b"p" * 32, hashlib.sha256(b"challenge").digest()
    salt = hmac.digest(pepper, b"licserver/code-verifier/v1\n" + digest, "sha256")
    expected = hashlib.scrypt(b"042133", salt=salt, n=1024, r=8, p=1, dklen=32)

    assert make_verifier("042133", digest, pepper, CHEAP) == f"scrypt$1024$8$1${expected.hex()}"


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "scrypt$1024$8$1$" + "0" * 63,
        "scrypt$1000$8$1$" + "0" * 64,  # n not a power of two
        "scrypt$1024$0$1$" + "0" * 64,
        "bcrypt$1024$8$1$" + "0" * 64,
        "scrypt$99999999$8$1$" + "0" * 64,
        "scrypt$4194304$8$1$" + "0" * 64,  # would ask for 4 GiB: refused before scrypt
    ],
)
def test_a_malformed_verifier_never_matches(stored):
    assert not check_verifier(stored, "123456", b"d" * 32, b"p" * 32)


def test_a_non_ascii_code_never_matches():
    stored = make_verifier("123456", b"d" * 32, b"p" * 32, CHEAP)
    assert not check_verifier(stored, "١٢٣٤٥٦", b"d" * 32, b"p" * 32)


@pytest.mark.parametrize(
    "n, r, p", [(1000, 8, 1), (1, 8, 1), (1024, 0, 1), (1024, 8, 17), (2**20, 64, 1)]
)
def test_a_bad_scrypt_cost_is_refused(n, r, p):
    with pytest.raises(ValueError):
        ScryptCost(n, r, p)


def test_the_cost_settings_are_used_and_kept_with_the_challenge(open_qr, settings):
    assert open_qr.code_verifier.startswith(
        f"scrypt${settings.CODE_VERIFIER_SCRYPT_N}${settings.CODE_VERIFIER_SCRYPT_R}$"
        f"{settings.CODE_VERIFIER_SCRYPT_P}$"
    )
    code = phone_code(open_qr)
    # A change of the cost settings does not break a challenge made before it.
    settings.CODE_VERIFIER_SCRYPT_N = 2**11
    assert submit_code(code).outcome == Outcome.ACCEPTED


def test_a_refreshed_challenge_gets_a_new_verifier_and_the_old_one_is_emptied(open_qr):
    new = refresh_challenge().challenge
    open_qr.refresh_from_db()

    assert open_qr.code_verifier == "" and open_qr.state == ChallengeState.SUPERSEDED
    assert new.code_verifier.startswith("scrypt$")
    assert submit_code(phone_code(new)).outcome == Outcome.ACCEPTED


@pytest.mark.parametrize(
    "env, says",
    [
        ({"CODE_VERIFIER_SCRYPT_N": "1048576"}, "256 MiB"),  # 1 GiB per check
        ({"CODE_VERIFIER_SCRYPT_N": "20000"}, "power of two"),
        ({"CODE_VERIFIER_SCRYPT_R": "64", "CODE_VERIFIER_SCRYPT_N": "65536"}, "256 MiB"),
    ],
)
def test_a_scrypt_cost_no_check_could_run_stops_start_up(env, says):
    import os
    import subprocess
    import sys
    from pathlib import Path

    done = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=Path(__file__).resolve().parent.parent,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "ImproperlyConfigured" in done.stderr and says in done.stderr

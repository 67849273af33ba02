"""Private key files are cached; one replaced in place is read again within a second."""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from registration.protocol import keys


class Ticks:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ticks(monkeypatch) -> Ticks:
    clock = Ticks()
    monkeypatch.setattr(keys, "_clock", clock)
    monkeypatch.setattr(keys, "_recent", {})
    return clock


def _public(key: X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes_raw()


def _overwrite(path, key: X25519PrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    before = os.stat(path).st_mtime_ns
    path.write_bytes(pem)
    # A different modification time, whatever the file system's resolution.
    os.utime(path, ns=(before + 10**9, before + 10**9))


def test_a_key_file_is_read_once_and_then_served_from_memory(tmp_path, ticks):
    public = keys.generate_key_pair_files(tmp_path, "k1")
    path = tmp_path / "k1.x25519.pem"

    first = keys.load_authority_key(path)
    path.unlink()  # gone from disk: a cached key does not need the file
    ticks.now += keys.KEY_RECHECK_SECONDS - 0.001

    assert keys.load_authority_key(path) is first
    assert keys.b64encode(_public(first)) == public["x25519"]


def test_a_key_file_replaced_in_place_is_read_again_after_the_recheck_interval(tmp_path, ticks):
    keys.generate_key_pair_files(tmp_path, "k1")
    path = tmp_path / "k1.x25519.pem"
    old = keys.load_authority_key(path)
    new = X25519PrivateKey.generate()
    _overwrite(path, new)

    ticks.now += keys.KEY_RECHECK_SECONDS - 0.001
    assert _public(keys.load_authority_key(path)) == _public(old)
    ticks.now += 0.001  # exactly the interval: the file is looked at again
    assert _public(keys.load_authority_key(path)) == _public(new)


def test_an_unchanged_file_is_not_parsed_again_after_the_interval(tmp_path, ticks):
    keys.generate_key_pair_files(tmp_path, "k1")
    path = tmp_path / "k1.x25519.pem"
    first = keys.load_authority_key(path)
    ticks.now += 10 * keys.KEY_RECHECK_SECONDS

    assert keys.load_authority_key(path) is first


def test_a_signing_key_is_not_taken_for_an_authority_key(tmp_path, ticks):
    keys.generate_key_pair_files(tmp_path, "k1")

    with pytest.raises(ValueError, match="not an X25519 key"):
        keys.load_authority_key(tmp_path / "k1.ed25519.pem")

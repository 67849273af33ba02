"""The cache cannot lie: nothing read from it is unpickled, and what the product acts on
is signed, bound to its key, fresh and never older than what a node has seen."""

from __future__ import annotations

import hashlib
import hmac
import json
import pickle
import shutil
import socket
import subprocess
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import redis
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache

from licserver.cache import (
    SIGNING_SALT,
    JSONSerializer,
    signed_get,
    signed_get_decoded,
    signed_set,
)
from licserver.env import cache_from_url
from registration import clock, qr, status
from registration.gate import GateState, current_registration
from tests.conftest import needs_redis
from tests.node_steps import register

pytestmark = pytest.mark.django_db


class _WritesAFile:
    """A pickle that, once loaded, creates a file: what an attacker would plant."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def _forged_registered(**changes) -> dict:
    snap = status.snapshot()
    values = snap.to_json()
    values.update(state="registered", license_id="00000000-0000-0000-0000-000000000001")
    values.update(changes)
    return values


# --- What the status cache accepts ----------------------------------------------------


def test_an_unsigned_status_is_ignored_and_the_database_read(frozen_clock):
    cache.set(status.CACHE_KEY, _forged_registered(), 3600)

    assert current_registration().state == GateState.UNREGISTERED


def _signed_as(secret: str, key: str, value: dict) -> str:
    """A value in signed_set's form, "<HMAC-SHA256 hex>:<JSON>", under the given secret."""
    body = json.dumps(value, separators=(",", ":"))
    mac_key = hmac.digest(secret.encode(), SIGNING_SALT.encode(), "sha256")
    return hmac.new(mac_key, f"{key}\n{body}".encode(), "sha256").hexdigest() + ":" + body


def test_the_signed_form_is_the_documented_one(frozen_clock, settings):
    value = _forged_registered()
    genuine = _signed_as(settings.SECRET_KEY, status.CACHE_KEY, value)
    cache.set(status.CACHE_KEY, genuine, 3600)

    assert signed_get(status.CACHE_KEY) == value
    assert current_registration().state == GateState.REGISTERED


def test_a_status_signed_with_another_secret_is_ignored(frozen_clock, settings):
    forged = _signed_as(
        "an attacker's guess at the secret key", status.CACHE_KEY, _forged_registered()
    )
    cache.set(status.CACHE_KEY, forged, 3600)

    assert current_registration().state == GateState.UNREGISTERED


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "x" * 64 + ":{}",
        "é" * 64 + ":{}",
        "0" * 64 + ":\ud800",
        "0" * 65,
        b"bytes",
        7,
        {"k": "v"},
    ],
)
def test_values_not_in_the_signed_form_are_misses(frozen_clock, raw):
    cache.set(status.CACHE_KEY, raw, 3600)

    assert signed_get(status.CACHE_KEY) is None
    assert current_registration().state == GateState.UNREGISTERED


def test_a_value_signed_before_the_secret_key_changed_is_a_miss(frozen_clock, settings):
    signed_set(status.CACHE_KEY, _forged_registered(), 3600)
    settings.SECRET_KEY = "a-new-secret-key-" + "x" * 40

    assert signed_get(status.CACHE_KEY) is None


def test_a_genuine_value_moved_to_the_status_key_is_ignored(frozen_clock):
    signed_set("registration:qr:elsewhere", _forged_registered(), 3600)
    cache.set(status.CACHE_KEY, cache.get("registration:qr:elsewhere"), 3600)

    assert current_registration().state == GateState.UNREGISTERED


def test_a_stale_genuine_status_is_read_again(frozen_clock, settings, issue):
    taken = frozen_clock.now() - timedelta(
        seconds=settings.STATUS_CACHE_SECONDS + settings.CLUSTER_MAX_CLOCK_SKEW_SECONDS + 1
    )
    signed_set(status.CACHE_KEY, _forged_registered(taken_at=taken.isoformat()), 3600)
    assert current_registration().state == GateState.UNREGISTERED

    # One second younger is still fresh: the edge is STATUS_CACHE_SECONDS plus the skew.
    taken += timedelta(seconds=1)
    signed_set(status.CACHE_KEY, _forged_registered(taken_at=taken.isoformat()), 3600)
    assert current_registration().state == GateState.REGISTERED


def test_an_older_version_is_never_used_after_a_newer_one(frozen_clock, issue):
    old = status.snapshot()  # unregistered, as a replay would bring it back
    _lic, text = issue()
    register(text)
    assert status.cached_snapshot().state == "registered"

    signed_set(status.CACHE_KEY, old.to_json(), 3600)

    assert current_registration().state == GateState.REGISTERED


class _NodeClockApart:
    """The database's clock, and this node's own clock some offset away from it."""

    def __init__(self, database: datetime, offset: timedelta) -> None:
        self.database, self.offset = database, offset

    def now(self) -> datetime:
        return self.database

    def wall_now(self) -> datetime:
        return self.database + self.offset


def test_a_node_clock_set_back_does_not_extend_an_expired_license(frozen_clock, issue):
    _lic, text = issue(expires_at=date(2026, 6, 30))
    register(text)
    after_expiry = datetime(2026, 7, 1, 0, 0, 1, tzinfo=UTC)
    # The database says July; this node's clock was turned back a month.
    with clock.use(_NodeClockApart(after_expiry, -timedelta(days=31))):
        assert current_registration().state == GateState.LICENSE_EXPIRED
    # And a node clock ahead by less than the allowed skew changes nothing before expiry.
    with clock.use(_NodeClockApart(after_expiry - timedelta(days=1), timedelta(seconds=2))):
        assert current_registration().state == GateState.REGISTERED


def test_a_planted_qr_image_is_not_shown(frozen_clock):
    url = "http://testserver/m/ABCDEFGH"
    key = "registration:qr:v2:" + hashlib.sha256(url.encode()).hexdigest()
    planted = qr.qr_png("https://attacker.example/m/ABCDEFGH")
    cache.set(key, planted, 3600)

    assert qr.cached_qr_png(url) == qr.qr_png(url) != planted
    assert signed_get(key) == qr.qr_png(url)


def test_the_status_read_reuses_what_the_same_text_decoded_to_and_nothing_else(
    frozen_clock, settings
):
    decoded: list[object] = []

    def decode(value):
        decoded.append(value)
        return status.StatusSnapshot.from_json(value)

    signed_set(status.CACHE_KEY, _forged_registered(), 3600)
    first = signed_get_decoded(status.CACHE_KEY, decode)
    assert signed_get_decoded(status.CACHE_KEY, decode) is first and len(decoded) == 1

    # New text (another node wrote): decoded again.
    signed_set(status.CACHE_KEY, _forged_registered(company="Other GmbH"), 3600)
    assert signed_get_decoded(status.CACHE_KEY, decode).company == "Other GmbH"
    assert len(decoded) == 2

    # A forgery after a genuine value is refused, not answered from what was kept.
    genuine = cache.get(status.CACHE_KEY)
    cache.set(status.CACHE_KEY, "0" * 64 + genuine[64:], 3600)
    assert signed_get_decoded(status.CACHE_KEY, decode) is None

    # The same genuine text again, under a new secret key: checked again, and refused.
    cache.set(status.CACHE_KEY, genuine, 3600)
    settings.SECRET_KEY = "a-new-secret-key-" + "x" * 40
    assert signed_get_decoded(status.CACHE_KEY, decode) is None

    cache.delete(status.CACHE_KEY)
    assert signed_get_decoded(status.CACHE_KEY, decode) is None


def test_each_decoder_gets_its_own_decoded_value(frozen_clock):
    signed_set(status.CACHE_KEY, _forged_registered(), 3600)
    snapshot = signed_get_decoded(status.CACHE_KEY, status.StatusSnapshot.from_json)

    assert signed_get_decoded(status.CACHE_KEY, lambda value: ("other", value["state"])) == (
        "other",
        "registered",
    )
    assert signed_get_decoded(status.CACHE_KEY, status.StatusSnapshot.from_json) is snapshot


def test_a_change_also_clears_the_key_the_release_before_reads(frozen_clock):
    # During a rolling upgrade the older nodes read registration:status:v3.
    cache.set(status.PREVIOUS_CACHE_KEY, "an older node's status", 3600)
    signed_set(status.CACHE_KEY, _forged_registered(), 3600)

    status.invalidate()

    assert status.PREVIOUS_CACHE_KEY == "registration:status:v3"
    assert cache.get(status.PREVIOUS_CACHE_KEY) is None and cache.get(status.CACHE_KEY) is None


# --- The serializer never unpickles ---------------------------------------------------


def test_the_serializer_keeps_integers_json_and_bytes():
    serializer = JSONSerializer()
    for value in (7, "text", {"a": [1, None, True]}, b"\x89PNG\x00"):
        assert serializer.loads(serializer.dumps(value)) == value
    assert serializer.dumps(7) == 7  # INCR works on the plain number


@pytest.mark.parametrize(
    "planted",
    [b"[" * 200_000, b'"' + b"x" * 300_000 + b'"', b'{"$bytes": "not base64!"}'],
    ids=["nested to exhaust the parser", "too big", "bad bytes"],
)
def test_the_serializer_reads_a_hostile_value_as_absent(planted):
    assert JSONSerializer().loads(planted) is None


def test_the_serializer_reads_a_pickle_as_absent(tmp_path):
    marker = tmp_path / "pwned"
    assert JSONSerializer().loads(pickle.dumps(_WritesAFile(marker))) is None
    assert not marker.exists()


@needs_redis
@pytest.mark.redis
def test_a_pickle_planted_in_redis_runs_nothing(frozen_clock, tmp_path):
    marker = tmp_path / "pwned"
    client = caches.create_connection("default")
    assert isinstance(client, RedisCache)
    raw = client._cache.get_client(write=True)
    raw.set(client.make_key(status.CACHE_KEY), pickle.dumps(_WritesAFile(marker)))

    assert current_registration().state == GateState.UNREGISTERED
    assert not marker.exists()
    client.close()


# --- CACHE_URL with a password --------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def redis_with_password(tmp_path):
    """Our own redis-server on a free loopback port that requires a password."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("needs redis-server on PATH (apt-get install redis-server)")
    port, password = _free_port(), "s3cret-for-tests"
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--requirepass", password]
        + ["--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port, process)
        yield port, password
    finally:
        process.terminate()
        process.wait(timeout=10)


def _wait_for_port(port: int, process: subprocess.Popen) -> None:
    """Wait until the server accepts connections (polling a socket, not sleeping a guess)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("redis-server exited at start")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            continue
    raise RuntimeError("redis-server did not start")


def test_cache_url_with_a_password_works_and_without_it_fails(redis_with_password):
    port, password = redis_with_password
    good = cache_from_url(f"redis://:{password}@127.0.0.1:{port}/0")
    bad = cache_from_url(f"redis://127.0.0.1:{port}/0")
    assert good["OPTIONS"]["serializer"] == "licserver.cache.JSONSerializer"

    store = RedisCache(good["LOCATION"], {"OPTIONS": good["OPTIONS"]})
    signed_set("probe", {"ok": 1}, 60, store)
    assert signed_get("probe", store) == {"ok": 1}
    assert store.add("counter", 0) and store.incr("counter") == 1  # django-ratelimit's way
    store.close()

    anonymous = RedisCache(bad["LOCATION"], {"OPTIONS": bad["OPTIONS"]})
    with pytest.raises(redis.exceptions.AuthenticationError):
        anonymous.get("probe")
    anonymous.close()


def test_rediss_urls_are_accepted():
    config = cache_from_url("rediss://:pw@cache.internal:6380/2")
    assert config["LOCATION"].startswith("rediss://")

"""Settings from environment variables: typed readers that fail loudly on bad values."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from licserver.env import (
    cache_from_url,
    database_from_url,
    envbool,
    envdate,
    envint,
    envkeys,
    envlist,
    envmatch,
    envraw,
    envstr,
    keys_from_dir,
)

NAME = "LICSERVER_TEST_VALUE"
KEY = base64.b64encode(bytes(range(32))).decode()


@pytest.fixture
def env(monkeypatch):
    """env(value) sets NAME (or clears it with None); NAME_FILE starts unset."""
    monkeypatch.delenv(NAME, raising=False)
    monkeypatch.delenv(f"{NAME}_FILE", raising=False)

    def _set(value: str | None, name: str = NAME) -> None:
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)

    return _set


# --- envbool --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [("1", True), ("true", True), ("YES", True), (" on ", True), ("0", False), ("Off", False)],
)
def test_envbool_reads_the_usual_words(env, value, expected):
    env(value)
    assert envbool(NAME, not expected) is expected


@pytest.mark.parametrize("value", [None, ""])
def test_envbool_unset_or_empty_gives_the_default(env, value):
    env(value)
    assert envbool(NAME, True) is True
    assert envbool(NAME, False) is False


@pytest.mark.parametrize("value", ["2", "yes please", "t", "enabled"])
def test_envbool_refuses_anything_else(env, value):
    env(value)
    with pytest.raises(ImproperlyConfigured, match=NAME):
        envbool(NAME, False)


# --- envint ---------------------------------------------------------------------------


@pytest.mark.parametrize("value, expected", [("42", 42), (" 7 ", 7), ("-3", -3), ("+5", 5)])
def test_envint_reads_integers(env, value, expected):
    env(value)
    assert envint(NAME, 0) == expected


def test_envint_unset_gives_the_default(env):
    env(None)
    assert envint(NAME, 9, minimum=10) == 9


@pytest.mark.parametrize("value", ["4.5", "ten", "1_000", "0x10", "٣", "1e3"])
def test_envint_refuses_non_integers(env, value):
    env(value)
    with pytest.raises(ImproperlyConfigured, match=f"{NAME} must be an integer"):
        envint(NAME, 0)


def test_envint_enforces_the_bounds_inclusively(env):
    env("10")
    assert envint(NAME, 0, minimum=10, maximum=10) == 10
    with pytest.raises(ImproperlyConfigured, match="at least 11"):
        envint(NAME, 0, minimum=11)
    with pytest.raises(ImproperlyConfigured, match="at most 9"):
        envint(NAME, 0, maximum=9)


# --- envlist, envstr ------------------------------------------------------------------


def test_envlist_splits_trims_and_drops_empty_items(env):
    env(" a, b ,,c ")
    assert envlist(NAME, ["x"]) == ["a", "b", "c"]
    env("  ")
    assert envlist(NAME, ["x"]) == ["x"]


def test_envstr_empty_gives_the_default(env):
    env("")
    assert envstr(NAME, "dflt") == "dflt"
    env("value")
    assert envstr(NAME, "dflt") == "value"


# --- envkeys --------------------------------------------------------------------------


def test_envkeys_reads_kid_value_pairs(env):
    env(f"old={KEY}, new-2026={KEY}")
    assert envkeys(NAME, key_bytes=32) == {"old": KEY, "new-2026": KEY}
    env("")
    assert envkeys(NAME) == {}


def test_envkeys_keeps_equals_signs_in_values(env):
    env("k1=/keys/a=b.pem")
    assert envkeys(NAME) == {"k1": "/keys/a=b.pem"}


@pytest.mark.parametrize(
    "value, reason",
    [
        ("justakey", "expected kid=value"),
        ("=abc", "expected kid=value"),
        ("k1=", "expected kid=value"),
        (f"k1={KEY},k1={KEY}", "appears twice"),
        (f"bad kid={KEY}", "key id 'bad kid'"),
        (f"../x={KEY}", "key id '../x'"),
    ],
)
def test_envkeys_refuses_malformed_items(env, value, reason):
    env(value)
    with pytest.raises(ImproperlyConfigured, match=reason):
        envkeys(NAME)


@pytest.mark.parametrize(
    "key, reason",
    [
        ("not*base64", "not base64"),
        (base64.b64encode(bytes(31)).decode(), "must be 32 bytes"),
        (base64.b64encode(bytes(33)).decode(), "must be 32 bytes"),
    ],
)
def test_envkeys_checks_public_keys_at_start_up(env, key, reason):
    env(f"k1={key}")
    with pytest.raises(ImproperlyConfigured, match=reason):
        envkeys(NAME, key_bytes=32)


# --- *_FILE ---------------------------------------------------------------------------


def test_file_variant_reads_the_value_from_a_file(env, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("  true\n")
    env(str(secret), f"{NAME}_FILE")
    assert envraw(NAME) == "true"
    assert envbool(NAME, False) is True


def test_file_variant_that_cannot_be_read_is_an_error(env, tmp_path):
    env(str(tmp_path / "missing"), f"{NAME}_FILE")
    with pytest.raises(ImproperlyConfigured, match=f"{NAME}_FILE: cannot read"):
        envraw(NAME)


def test_setting_both_the_value_and_the_file_is_an_error(env, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("1")
    env("1")
    env(str(secret), f"{NAME}_FILE")
    with pytest.raises(ImproperlyConfigured, match=f"Set {NAME} or {NAME}_FILE, not both"):
        envint(NAME, 0)


# --- database_from_url ----------------------------------------------------------------


@pytest.mark.parametrize("url", [None, ""])
def test_no_database_url_means_sqlite_under_var(url):
    config = database_from_url(url, Path("/srv/var/db.sqlite3"))
    assert config["ENGINE"] == "django.db.backends.sqlite3"
    assert config["NAME"] == "/srv/var/db.sqlite3"


def test_postgres_url_is_split_into_parts():
    config = database_from_url(
        "postgres://app:p%40ss@db.example:6543/lic%20db?sslmode=require", Path("x")
    )
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["USER"], config["PASSWORD"]) == ("app", "p@ss")
    assert (config["HOST"], config["PORT"], config["NAME"]) == ("db.example", "6543", "lic db")
    assert config["OPTIONS"]["sslmode"] == "require"


def test_sqlite_url_names_the_file():
    config = database_from_url("sqlite:///tmp/other.sqlite3", Path("x"))
    assert config["ENGINE"] == "django.db.backends.sqlite3"
    assert config["NAME"] == "/tmp/other.sqlite3"


@pytest.mark.parametrize(
    "url, reason",
    [
        ("mysql://u@h/db", "unsupported scheme 'mysql'"),
        ("postgres://u@h", "database name is missing"),
        ("postgres://u@h:notaport/db", "port"),
        ("postgres://u@h:70000/db", "port"),
        ("db.example:5432", "unsupported scheme"),
    ],
)
def test_bad_database_urls_are_refused(url, reason):
    with pytest.raises(ImproperlyConfigured, match=reason):
        database_from_url(url, Path("x"))


# --- cache_from_url -------------------------------------------------------------------


def test_no_cache_url_means_local_memory():
    assert cache_from_url("")["BACKEND"].endswith("LocMemCache")


def test_redis_url_is_used_as_is():
    config = cache_from_url("redis://127.0.0.1:6379/2")
    assert config["BACKEND"] == "django.core.cache.backends.redis.RedisCache"
    assert config["LOCATION"] == "redis://127.0.0.1:6379/2"


@pytest.mark.parametrize(
    "url, reason",
    [
        ("memcached://h:11211", "unsupported scheme 'memcached'"),
        ("redis://h:port/0", "port"),
        ("redis://h:6379/cache", "must be a number"),
    ],
)
def test_bad_cache_urls_are_refused(url, reason):
    with pytest.raises(ImproperlyConfigured, match=reason):
        cache_from_url(url)


# --- keys_from_dir --------------------------------------------------------------------


def test_keys_from_dir_maps_kid_to_content_or_path(tmp_path):
    (tmp_path / "a.ed25519.pub").write_text(KEY + "\n")
    (tmp_path / "b.x25519.pub").write_text("other\n")
    assert keys_from_dir(tmp_path, ".ed25519.pub") == {"a": KEY}
    assert keys_from_dir(tmp_path, ".ed25519.pub", content=False) == {
        "a": str(tmp_path / "a.ed25519.pub")
    }
    assert keys_from_dir(tmp_path / "missing", ".ed25519.pub") == {}


@pytest.mark.parametrize("content", ["not base64!", base64.b64encode(b"short").decode(), ""])
def test_keys_from_dir_refuses_a_corrupt_key_file(tmp_path, content):
    (tmp_path / "a.ed25519.pub").write_text(content + "\n", encoding="ascii")
    with pytest.raises(ImproperlyConfigured, match="a.ed25519.pub"):
        keys_from_dir(tmp_path, ".ed25519.pub", key_bytes=32)


def test_keys_from_dir_checks_the_key_id_from_the_file_name(tmp_path):
    (tmp_path / "bad kid.ed25519.pub").write_text(KEY, encoding="ascii")
    with pytest.raises(ImproperlyConfigured, match="key id"):
        keys_from_dir(tmp_path, ".ed25519.pub", key_bytes=32)


@pytest.mark.parametrize("value", ["2024-02-01", " 2021-10-30 "])
def test_envdate_reads_a_date(env, value):
    env(value)
    assert envdate(NAME, "2000-01-01") == value.strip()


@pytest.mark.parametrize("value", ["2024-13-01", "2024-02-30", "20240201", "2024/02/01", "soon"])
def test_envdate_refuses_anything_else(env, value):
    env(value)
    with pytest.raises(ImproperlyConfigured, match=NAME):
        envdate(NAME, "2000-01-01")


def test_envmatch_needs_the_whole_value_to_match(env):
    env("11.0.20")
    assert envmatch(NAME, "1.0", r"[0-9]+\.[0-9]+(\.[0-9]+)?", "a version") == "11.0.20"
    env("11.0.20-beta")
    with pytest.raises(ImproperlyConfigured, match="a version"):
        envmatch(NAME, "1.0", r"[0-9]+\.[0-9]+(\.[0-9]+)?", "a version")

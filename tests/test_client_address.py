"""Rate limits key on the address that can be believed, not on headers a client writes.

Without a trusted proxy the key is REMOTE_ADDR, whatever X-Forwarded-For or X-Real-IP
says. Behind a trusted proxy it is the rightmost X-Forwarded-For hop that is not a
trusted proxy: the hop the proxy itself appended, which the client cannot choose.
"""

from __future__ import annotations

import pytest
from django.test import Client, RequestFactory
from django.urls import reverse

from registration import net
from registration.net import client_address

pytestmark = pytest.mark.django_db

CLIENT = "198.51.100.7"
PROXY = "10.0.0.1"
PROXY_2 = "10.0.0.2"
# An hour-long window, so the window cannot roll over in the middle of a test.
LIMIT = 3


@pytest.fixture(autouse=True)
def phone_rate(settings):
    settings.RATE_PHONE = f"{LIMIT}/h"
    settings.TRUSTED_PROXIES = set()


def address(remote: str = CLIENT, **headers: str) -> str:
    request = RequestFactory().get("/", REMOTE_ADDR=remote, **headers)
    return client_address(request)


def phone(client: Client, remote: str, **headers: str) -> int:
    """GET the phone page (a garbage token: the rate limit runs before the view)."""
    url = reverse("phone:verify", args=["not-a-token"])
    return client.get(url, REMOTE_ADDR=remote, **headers).status_code


def forged(n: int) -> dict[str, str]:
    """A different set of forged address headers for each request."""
    return {
        "HTTP_X_FORWARDED_FOR": f"203.0.113.{n}, 192.0.2.{n}",
        "HTTP_X_REAL_IP": f"192.0.2.{100 + n}",
        "HTTP_FORWARDED": f"for=203.0.113.{n}",
    }


# --- client_address --------------------------------------------------------------------


def test_without_a_trusted_proxy_the_headers_are_ignored():
    assert address() == CLIENT
    assert address(HTTP_X_FORWARDED_FOR="203.0.113.9") == CLIENT
    assert address(HTTP_X_REAL_IP="203.0.113.9") == CLIENT
    assert address(HTTP_X_FORWARDED_FOR=f"{PROXY}, 203.0.113.9") == CLIENT


def test_a_client_claiming_a_trusted_address_in_a_header_gains_nothing(settings):
    settings.TRUSTED_PROXIES = {PROXY}

    assert address(HTTP_X_FORWARDED_FOR=PROXY) == CLIENT
    assert address(HTTP_X_REAL_IP=PROXY) == CLIENT


def test_behind_a_trusted_proxy_the_hop_it_appended_is_the_client(settings):
    settings.TRUSTED_PROXIES = {PROXY}

    assert address(PROXY, HTTP_X_FORWARDED_FOR=CLIENT) == CLIENT
    # The client wrote the leftmost entries itself; the proxy appended the last one.
    assert address(PROXY, HTTP_X_FORWARDED_FOR=f"1.1.1.1, 8.8.8.8, {CLIENT}") == CLIENT
    assert address(PROXY, HTTP_X_FORWARDED_FOR=f" 1.1.1.1 ,{CLIENT} ") == CLIENT


def test_a_chain_of_trusted_proxies_is_walked_from_the_right(settings):
    settings.TRUSTED_PROXIES = {PROXY, PROXY_2}

    chain = f"1.1.1.1, {CLIENT}, {PROXY_2}"
    assert address(PROXY, HTTP_X_FORWARDED_FOR=chain) == CLIENT
    # A forged trusted address on the left is skipped too: the first untrusted hop wins.
    assert address(PROXY, HTTP_X_FORWARDED_FOR=f"{PROXY_2}, {CLIENT}") == CLIENT


def test_behind_a_trusted_proxy_without_a_usable_header_the_proxy_is_the_client(settings):
    settings.TRUSTED_PROXIES = {PROXY}

    assert address(PROXY) == PROXY
    assert address(PROXY, HTTP_X_FORWARDED_FOR="") == PROXY
    assert address(PROXY, HTTP_X_FORWARDED_FOR=" , ,") == PROXY
    assert address(PROXY, HTTP_X_FORWARDED_FOR=PROXY) == PROXY
    # X-Real-IP is never read, even from a trusted proxy.
    assert address(PROXY, HTTP_X_REAL_IP=CLIENT) == PROXY


# --- Through a real rate-limited view --------------------------------------------------


def test_forged_headers_from_one_client_land_in_one_bucket(client: Client):
    statuses = [phone(client, CLIENT, **forged(n)) for n in range(LIMIT + 3)]

    assert all(status not in (429, 500) for status in statuses[:LIMIT]), statuses
    assert statuses[LIMIT:] == [429, 429, 429]


def test_another_address_has_its_own_bucket(client: Client):
    for _ in range(LIMIT + 1):
        phone(client, CLIENT)
    assert phone(client, CLIENT) == 429

    assert phone(client, "198.51.100.8") != 429


def test_a_forged_trusted_proxy_address_does_not_open_a_new_bucket(client: Client, settings):
    settings.TRUSTED_PROXIES = {PROXY}
    for _ in range(LIMIT):
        assert phone(client, CLIENT) != 429

    # Only REMOTE_ADDR says who is a proxy; a header naming the proxy changes nothing.
    assert phone(client, CLIENT, HTTP_X_FORWARDED_FOR=f"{PROXY}, 203.0.113.1") == 429
    assert phone(client, CLIENT, HTTP_X_REAL_IP=PROXY) == 429


def test_behind_a_trusted_proxy_a_spoofed_leftmost_entry_does_not_help(client: Client, settings):
    settings.TRUSTED_PROXIES = {PROXY}

    def via_proxy(spoofed: str, real: str = CLIENT) -> int:
        return phone(client, PROXY, HTTP_X_FORWARDED_FOR=f"{spoofed}, {real}")

    statuses = [via_proxy(f"203.0.113.{n}") for n in range(LIMIT + 2)]

    assert all(status != 429 for status in statuses[:LIMIT]), statuses
    assert statuses[LIMIT:] == [429, 429]
    # Another real client behind the same proxy is not punished for the first one.
    assert via_proxy("203.0.113.1", real="198.51.100.9") != 429


# --- Parsing ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("203.0.113.7", "203.0.113.7"),
        ("203.0.113.7:51234", "203.0.113.7"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("2001:db8::1", "2001:db8::1"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("", None),
        ("unknown", None),
        ("203.0.113.300", None),
    ],
)
def test_addresses_are_parsed_strictly(text, expected):
    parsed = net.parse_address(text)
    assert (str(parsed) if parsed else None) == expected


def test_a_missing_remote_address_is_none_for_the_audit_and_one_bucket_for_limits(rf):
    request = rf.get("/", REMOTE_ADDR="")
    assert net.client_address(request) is None
    assert net.ratelimit_key("phone", request) == "unknown"


def test_an_ipv6_client_is_limited_by_its_64(rf):
    one = rf.get("/", REMOTE_ADDR="2001:db8:1:2::1")
    other_host_same_64 = rf.get("/", REMOTE_ADDR="2001:db8:1:2:ffff::9")
    assert net.ratelimit_key("phone", one) == net.ratelimit_key("phone", other_host_same_64)
    assert net.client_address(one) == "2001:db8:1:2::1"


def test_trusted_proxies_may_be_networks(rf, settings):
    settings.TRUSTED_PROXIES = {"10.0.0.0/8"}
    request = rf.get("/", REMOTE_ADDR="10.1.2.3", HTTP_X_FORWARDED_FOR="198.51.100.4, 10.9.9.9")
    assert net.client_address(request) == "198.51.100.4"

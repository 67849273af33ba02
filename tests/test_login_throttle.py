"""Password guessing: login forms count their POSTs per client address and per account."""

from __future__ import annotations

import re

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/"])
def test_the_fourth_guess_in_the_window_is_refused_even_with_the_right_password(
    path, settings, manager
):
    settings.RATE_LOGIN = "3/h"
    client = Client(REMOTE_ADDR="198.51.100.7")
    for _ in range(3):
        guess = client.post(path, {"username": "manager", "password": "wrong"})
        assert guess.status_code == 200  # the form again, with its error

    right = client.post(path, {"username": "manager", "password": "pw-manager-1"})

    assert right.status_code == 429
    assert "_auth_user_id" not in client.session
    # Another address keeps its own budget.
    other = Client(REMOTE_ADDR="198.51.100.8")
    assert other.post("/accounts/login/", {"username": "manager", "password": "pw-manager-1"})[
        "Location"
    ]


def test_looking_at_the_form_costs_nothing(settings):
    settings.RATE_LOGIN = "1/h"
    client = Client(REMOTE_ADDR="198.51.100.9")
    for _ in range(5):
        assert client.get("/accounts/login/").status_code == 200


# --- Per account: the username a login form names, from any address ------------------


ERROR_PAGE = re.compile(r'<section class="panel error-page">.*?</section>', re.S)


def error_page(response) -> str:
    """The message of an error page (the rest differs by its CSRF token)."""
    return ERROR_PAGE.search(response.content.decode()).group()


def login(path: str, address: str, username: str, password: str = "wrong"):
    return Client(REMOTE_ADDR=address).post(path, {"username": username, "password": password})


@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/"])
def test_rotating_addresses_against_one_account_is_refused_after_its_budget(
    path, settings, manager
):
    settings.RATE_LOGIN = "100/h"
    settings.RATE_LOGIN_ACCOUNT = "3/h"
    for n in range(3):
        assert login(path, f"203.0.113.{n}", "manager").status_code == 200

    # A fourth address, the right password: still refused, the account's budget is spent.
    client = Client(REMOTE_ADDR="203.0.113.50")
    right = client.post(path, {"username": "manager", "password": "pw-manager-1"})

    assert right.status_code == 429
    assert "_auth_user_id" not in client.session
    # The page says it is the account, not the address, and for how long.
    assert "Too many failed sign-ins for this account" in error_page(right)
    assert "from your address" not in error_page(right)


def test_good_sign_ins_never_spend_the_accounts_budget(settings, manager):
    settings.RATE_LOGIN = "100/h"
    settings.RATE_LOGIN_ACCOUNT = "2/h"
    for n in range(5):
        good = login("/accounts/login/", f"203.0.113.{n}", "manager", "pw-manager-1")
        assert good.status_code == 302
    # Two failures spend it; the third attempt, even right, is refused.
    for n in range(2):
        assert login("/accounts/login/", f"203.0.113.{10 + n}", "manager").status_code == 200
    assert login("/accounts/login/", "203.0.113.20", "manager", "pw-manager-1").status_code == 429


def test_the_account_is_the_username_case_folded_and_stripped(settings, manager):
    settings.RATE_LOGIN = "100/h"
    settings.RATE_LOGIN_ACCOUNT = "3/h"
    spellings = ["Manager", " manager ", "MANAGER"]
    for n, spelling in enumerate(spellings):
        assert login("/accounts/login/", f"203.0.113.{n}", spelling).status_code == 200

    assert login("/accounts/login/", "203.0.113.9", "manager", "pw-manager-1").status_code == 429


def test_another_account_keeps_its_own_budget(settings, manager, staff):
    settings.RATE_LOGIN = "100/h"
    settings.RATE_LOGIN_ACCOUNT = "2/h"
    for n in range(3):
        login("/accounts/login/", f"203.0.113.{n}", "manager")

    other = login("/accounts/login/", "203.0.113.7", "staff", "pw-staff-1")

    assert other.status_code == 302


def test_a_post_the_address_limit_refuses_does_not_spend_the_accounts_budget(settings, manager):
    settings.RATE_LOGIN = "1/h"
    settings.RATE_LOGIN_ACCOUNT = "2/h"
    assert login("/accounts/login/", "198.51.100.30", "manager").status_code == 200
    for _ in range(5):
        assert login("/accounts/login/", "198.51.100.30", "manager").status_code == 429

    # The account has spent one of its two: the real owner, elsewhere, gets in.
    assert login("/accounts/login/", "198.51.100.31", "manager", "pw-manager-1").status_code == 302


def test_the_account_limit_is_on_by_default():
    from django.conf import settings as live

    assert live.RATE_LOGIN_ACCOUNT == "20/h"

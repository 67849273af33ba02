"""Password guessing: login forms count their POSTs per client address."""

from __future__ import annotations

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

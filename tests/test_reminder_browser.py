"""In a real browser: after a restart the reminder covers the page; Authenticate leads to
Registration Management, where Re-register shows a new QR code."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from registration.cluster import lifecycle
from tests.browser import chromium, keep_screenshot, needs_chromium
from tests.node_steps import node, register, state

pytestmark = [
    pytest.mark.browser,
    needs_chromium,
    # The live server thread must see the test's rows, so they are committed.
    pytest.mark.django_db(transaction=True),
]

PASSWORD = "pw-manager-1"  # the manager persona's password (tests/conftest.py)
REMINDER = (
    "Your project registration has expired due to project restart. "
    "Enter registration management and authenticate again."
)


def test_reminder_leads_to_re_register(live_server, settings, frozen_clock, manager, issue):
    settings.AUTHORITY_BASE_URL = live_server.url
    lifecycle.start_node(node("node-a"))
    register(issue()[1])
    frozen_clock.advance(seconds=settings.NODE_LEASE_SECONDS)  # the node was killed
    lifecycle.start_node(node("node-a"))
    assert state() == "expired_due_to_restart"
    base = live_server.url

    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(10_000)
        page.goto(f"{base}/accounts/login/")
        page.get_by_label("Username").fill(manager.username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.goto(f"{base}/system/version/")

        modal = page.get_by_role("alertdialog")
        expect(modal).to_be_visible()
        expect(modal).to_contain_text(REMINDER)
        keep_screenshot(page, "reminder-01-modal")
        modal.get_by_role("link", name="Authenticate").click()

        expect(page).to_have_url(f"{base}/system/registration/")
        expect(page.get_by_role("alertdialog")).to_have_count(0)
        expect(page.locator("#registration-state")).to_have_text("Expired due to restart")
        page.get_by_role("button", name="Re-register").click()
        qr = page.locator("#qr-image")
        expect(qr).to_be_visible()
        expect(qr).to_have_js_property("complete", True)
        expect(qr).not_to_have_js_property("naturalWidth", 0)
        keep_screenshot(page, "reminder-02-re-register-qr")

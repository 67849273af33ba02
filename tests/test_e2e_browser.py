"""End to end in a real browser: an admin registers with a laptop and a phone.

A live server runs both sides (console and verification service). Chromium logs in,
uploads Container.lic and shows the QR code; the QR is read from a screenshot, as a
phone camera would read it; a second, phone-sized browser context opens the decoded
link and reads the 6-digit code; the first types it in and sees Registered.
Full-page screenshots of every step are kept in test-artifacts/.
"""

from __future__ import annotations

import re
from datetime import date

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser import chromium, decode_qr, keep_screenshot, needs_chromium

pytestmark = [
    pytest.mark.browser,
    needs_chromium,
    # The live server thread must see the test's rows, so they are committed.
    pytest.mark.django_db(transaction=True),
]

PASSWORD = "pw-manager-1"  # the manager persona's password (tests/conftest.py)
# The admin's laptop, and the admin's phone: small screen, touch, cookies of its own.
DESKTOP = {"viewport": {"width": 1280, "height": 900}}
PHONE = {
    "viewport": {"width": 360, "height": 740},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}


def new_page(browser: Browser, context_options: dict) -> Page:
    context = browser.new_context(**context_options)
    context.set_default_timeout(10_000)
    return context.new_page()


@pytest.fixture
def live(live_server, settings, frozen_clock):
    """The live server, with QR codes pointing at its own verification service."""
    # Both sides read the same frozen clock, so the 5-minute QR never runs out mid-test.
    settings.AUTHORITY_BASE_URL = live_server.url
    return live_server


@pytest.fixture
def license_file(tmp_path):
    """license_file(text) -> path of a Container.lic holding text."""

    def _write(text: str):
        path = tmp_path / "Container.lic"
        path.write_text(text, encoding="ascii")
        return path

    return _write


def log_in(page: Page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("navigation").get_by_role("link", name="Registration", exact=True).click()
    expect(page).to_have_url(f"{base_url}/system/registration/")


def upload(page: Page, path) -> None:
    """Open Register Now, pick Local Container and upload the file."""
    page.get_by_role("link", name="Register Now").click()
    page.get_by_label("AUTH Method").select_option(label="Local Container")
    page.get_by_label("License file (Container.lic)").set_input_files(path)
    page.get_by_role("button", name="Upload License").click()


def test_admin_registers_with_laptop_and_phone(live, manager, issue, license_file):
    lic, text = issue()
    path = license_file(text)
    base = live.url

    with chromium() as browser:
        page = new_page(browser, DESKTOP)
        log_in(page, base, manager.username)
        expect(page.locator("#registration-state")).to_have_text("Unregistered")
        keep_screenshot(page, "register-01-unregistered")

        upload(page, path)
        qr = page.locator("#qr-image")
        expect(qr).to_be_visible()
        # The screenshot must show the PNG itself, not a half-loaded placeholder. (Polled
        # through properties: the page's CSP forbids evaluating strings as script.)
        expect(qr).to_have_js_property("complete", True)
        expect(qr).not_to_have_js_property("naturalWidth", 0)
        expect(page.locator("#license-facts")).to_contain_text(str(lic.license_id))
        keep_screenshot(page, "register-02-qr-shown")

        # Read the QR as a phone camera would: from pixels, not from the page's text.
        url = decode_qr(qr.screenshot())
        assert re.fullmatch(rf"{re.escape(base)}/m/[A-Za-z0-9_\-.~]+", url), url
        expect(page.locator("#challenge-link")).to_have_text(url)
        console_tag = page.locator("#challenge-tag").inner_text().strip()
        assert console_tag

        mobile = new_page(browser, PHONE)
        mobile.goto(url)
        code = mobile.locator("#verification-code").inner_text().strip()
        assert re.fullmatch(r"[0-9]{6}", code), code
        # The phone repeats the console's tag, so nobody types a code from another node's QR.
        expect(mobile.locator("#challenge-tag")).to_have_text(console_tag)
        expect(mobile.locator("main")).to_contain_text(lic.company)
        expect(mobile.locator("main")).to_contain_text(lic.project_name)
        keep_screenshot(mobile, "register-03-phone-code")

        page.get_by_label("Verification code").fill(code)
        page.get_by_role("button", name="Submit").click()
        expect(page.locator("#registration-state")).to_have_text("Registered")
        expect(page.get_by_role("status")).to_have_text("Registration successful.")
        # The challenge is consumed: no QR is left to scan.
        expect(page.locator("#qr-image")).to_have_count(0)
        keep_screenshot(page, "register-04-registered")


def test_refused_upload_lists_every_cause_with_details(live, manager, issue, license_file):
    # This installation is 11.0; frozen_clock stands at 2026-06-01.
    _lic, text = issue(app_version="10.5", expires_at=date(2026, 3, 31))
    path = license_file(text)

    with chromium() as browser:
        page = new_page(browser, DESKTOP)
        log_in(page, live.url, manager.username)
        upload(page, path)

        panel = page.locator("#registration-failed")
        expect(panel.get_by_role("heading")).to_have_text("Registration failed")
        expect(panel.locator("li.cause")).to_have_text(["License Expired", "Version Mismatch"])
        details = page.locator("#failure-details").locator("dt, dd")
        expect(details.first).to_be_hidden()
        keep_screenshot(page, "refused-01-causes")

        panel.get_by_text("Details", exact=True).click()
        expect(details).to_have_text(
            [
                "License Expired",
                "Expiration date: 2026/03/31",
                "Version Mismatch",
                "Certified application version : 10.5",
                "Local application version : 11.0",
            ]
        )
        expect(details.first).to_be_visible()
        # Nothing was stored: still unregistered, no license, no QR code.
        expect(page.locator("#registration-state")).to_have_text("Unregistered")
        expect(page.locator("#license-facts")).to_have_count(0)
        expect(page.locator("#qr-image")).to_have_count(0)
        keep_screenshot(page, "refused-02-details-open")

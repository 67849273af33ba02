"""End to end in a real browser: moving servers, self-service (Release license).

Chromium registers a server the real way (upload, the QR read from a screenshot, the code
read on a phone-sized page), then opens "Move to another server", types the project name
and clicks Release license: the registration ends here at once and a release QR code
appears. That QR is read from pixels too, and the phone opens it: Released, or the
vendor's reason why not (the yearly limit, a stale copy, a token made from the license
file alone, an expired QR). The rules themselves are tested without a browser in
tests/test_release.py; this file shows they hold through the real pages.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from registration import clock
from registration.authority.models import AuditAction as VendorAction
from registration.authority.models import AuditEvent as VendorEvent
from registration.authority.models import Binding, BindingState
from registration.installation import get_installation
from registration.protocol.challenge import CHAIN_BYTES, Purpose
from tests.browser import chromium, decode_qr, keep_screenshot, needs_chromium
from tests.conftest import START
from tests.copy_steps import ConsoleCopy
from tests.phone_steps import crafted_token
from tests.test_e2e_browser import (  # noqa: F401 (live is a fixture)
    DESKTOP,
    PHONE,
    live,
    log_in,
    new_page,
    upload,
)
from tests.test_release import RELEASED, REPORTS, new_server

pytestmark = [
    pytest.mark.browser,
    needs_chromium,
    # The live server thread must see the test's rows, so they are committed.
    pytest.mark.django_db(transaction=True),
]

PAGE = "/system/registration/"
PROJECT = "Reports"  # the project name of every license issue() makes (tests/conftest.py)
CONFIRM_LABEL = f"Type the project name ({PROJECT}) to confirm"
NOT_FROM_LIVE = "This QR code does not come from the server the license is registered to."


@pytest.fixture
def live_release(live, monkeypatch):  # noqa: F811
    """The live server, and the ORM usable between page visits (the test reads bindings,
    simulates a new server and runs a stale copy mid-test): Playwright's sync API runs an
    event loop in this thread, which Django refuses by default; rows change only while no
    page loads."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    return live


def write_license(directory: Path, text: str) -> Path:
    """Write text as directory/Container.lic, the name the vendor sends it under."""
    path = directory / "Container.lic"
    path.write_text(text, encoding="ascii")
    return path


def new_console(browser: Browser) -> Page:
    """The admin's laptop, its JavaScript clock held at the server's frozen clock: the
    countdown counts by the browser's clock, so it shows 5:00 as the server wrote it, and
    runs out only when the test moves both clocks (page.clock.set_fixed_time)."""
    page = new_page(browser, DESKTOP)
    page.clock.set_fixed_time(START)
    return page


def read_qr(page: Page, base: str) -> str:
    """Read the QR code shown on the console from pixels, as a phone camera does."""
    qr = page.locator("#qr-image")
    expect(qr).to_be_visible()
    # The screenshot must show the PNG itself, not a half-loaded placeholder.
    expect(qr).to_have_js_property("complete", True)
    expect(qr).not_to_have_js_property("naturalWidth", 0)
    url = decode_qr(qr.screenshot())
    assert re.fullmatch(rf"{re.escape(base)}/m/[A-Za-z0-9_\-.~]+", url), url
    expect(page.locator("#challenge-link")).to_have_text(url)
    return url


def scan_and_type_code(page: Page, mobile: Page, base: str, shot: str) -> None:
    """Scan the registration QR shown, read the phone's code, type it: Registered."""
    url = read_qr(page, base)
    mobile.goto(url)
    code = mobile.locator("#verification-code").inner_text().strip()
    assert re.fullmatch(r"[0-9]{6}", code), code
    keep_screenshot(mobile, f"{shot}-phone-code")
    page.get_by_label("Verification code").fill(code)
    page.get_by_role("button", name="Submit").click()
    expect(page.locator("#registration-state")).to_have_text("Registered")
    expect(page.get_by_role("status")).to_have_text("Registration successful.")
    keep_screenshot(page, f"{shot}-registered")


def register_in_browser(page: Page, mobile: Page, base: str, path: Path, shot: str) -> None:
    """Upload Container.lic, scan its QR code on the phone, type the code: Registered."""
    upload(page, path)
    scan_and_type_code(page, mobile, base, shot)


def release_in_browser(page: Page, base: str, shot: str) -> str:
    """Open Move to another server, type the project name, click Release license; return
    the release QR code's URL, read from pixels."""
    details = page.locator("details#release")
    heading = details.locator("summary").get_by_role("heading", name="Move to another server")
    expect(heading).to_be_visible()
    confirm = page.get_by_label(CONFIRM_LABEL)
    expect(confirm).to_be_hidden()  # a disclosure: closed until the admin opens it
    heading.click()
    expect(details).to_have_js_property("open", True)
    confirm.fill(PROJECT)
    page.get_by_role("button", name="Release license").click()

    section = page.locator("#release-challenge")
    expect(section.get_by_role("heading")).to_have_text("Scan to release the license")
    expect(section).to_contain_text("The registration on this server has ended.")
    # The registration ends here at once, before anyone scans.
    expect(page.locator("#registration-state")).to_have_text("Unregistered")
    expect(page.locator("#countdown")).to_have_text("5:00")
    expect(section.get_by_role("button", name="Register this server again")).to_be_visible()
    # Nothing to type for a release, and no second Release license on offer.
    expect(page.get_by_label("Verification code")).to_have_count(0)
    expect(page.locator("#submit-code")).to_have_count(0)
    expect(page.locator("details#release")).to_have_count(0)
    url = read_qr(page, base)
    keep_screenshot(page, f"{shot}-release-qr")
    return url


def expect_released(mobile: Page, url: str, shot: str) -> None:
    response = mobile.goto(url)
    assert response is not None and response.status == 200, response and response.status
    expect(mobile.get_by_role("heading", level=1)).to_have_text("Released")
    expect(mobile.locator("#released")).to_have_text(RELEASED)
    expect(mobile.locator("#verification-code")).to_have_count(0)
    keep_screenshot(mobile, f"{shot}-phone-released")


def expect_refused(mobile: Page, url: str, status: int, title: str, shot: str) -> Page:
    """Open url on the phone: the release is refused with status and one titled reason."""
    response = mobile.goto(url)
    assert response is not None and response.status == status, response and response.status
    expect(mobile.get_by_role("heading", level=1)).to_have_text("Not released")
    expect(mobile.get_by_role("alert").get_by_role("heading")).to_have_text([title])
    expect(mobile.locator("#released")).to_have_count(0)
    expect(mobile.locator("#verification-code")).to_have_count(0)
    keep_screenshot(mobile, f"{shot}-phone-refused")
    return mobile


def reports_status(page: Page, base: str) -> int:
    """The HTTP status of the gated reports page for the logged-in admin (no redirect)."""
    response = page.goto(f"{base}{REPORTS}")
    assert response is not None
    assert page.url == f"{base}{REPORTS}", page.url
    return response.status


def back_to_registration(page: Page, base: str) -> None:
    page.goto(f"{base}{PAGE}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Registration")


def move_a_to_b(page: Page, mobile: Page, base: str, path: Path, shot: str):
    """Register server A, release it from the phone, register server B with the same file.

    Returns (A's installation id, B's installation id)."""
    register_in_browser(page, mobile, base, path, f"{shot}-a")
    server_a = get_installation().installation_id
    assert reports_status(page, base) == 200
    back_to_registration(page, base)

    url = release_in_browser(page, base, f"{shot}-a")
    # The gate closes at once on A, whatever the phone does next.
    assert reports_status(page, base) == 403
    expect_released(mobile, url, f"{shot}-a")
    back_to_registration(page, base)
    expect(page.locator("#registration-state")).to_have_text("Unregistered")
    keep_screenshot(page, f"{shot}-a-unregistered")
    assert reports_status(page, base) == 403

    # Server B: a new server with a new database, simulated in this one test database by
    # deleting this installation's rows (Installation and QrChallenge, as
    # tests/test_release.py's new_server() does); the vendor's tables stay, as they would.
    new_server()
    back_to_registration(page, base)
    expect(page.locator("#registration-state")).to_have_text("Unregistered")
    expect(page.locator("#license-facts")).to_have_count(0)
    register_in_browser(page, mobile, base, path, f"{shot}-b")
    server_b = get_installation().installation_id
    assert server_b != server_a
    assert reports_status(page, base) == 200
    back_to_registration(page, base)
    return server_a, server_b


def test_move_server_a_to_server_b_without_support(live_release, manager, issue, tmp_path):
    _lic, text = issue()
    path = write_license(tmp_path, text)
    base = live_release.url

    with chromium() as browser:
        page = new_console(browser)
        mobile = new_page(browser, PHONE)
        log_in(page, base, manager.username)
        server_a, server_b = move_a_to_b(page, mobile, base, path, "release-move")

    released, active = Binding.objects.order_by("pk")
    assert (released.installation_id, released.state) == (server_a, BindingState.RELEASED)
    assert released.unbound_by is None and released.unbound_at == clock.now()
    assert (active.installation_id, active.state) == (server_b, BindingState.ACTIVE)
    # No support ticket: nobody at the vendor unbound it.
    assert not VendorEvent.objects.filter(action=VendorAction.UNBIND).exists()
    assert VendorEvent.objects.filter(action=VendorAction.RELEASED).count() == 1


def test_no_self_service_move_left_beyond_the_yearly_limit(
    live_release, manager, issue, tmp_path, settings
):
    # One move a year keeps the test short (one move, then the refused one); the default,
    # 2 in any 365 days, and the window's edges are covered in tests/test_release.py.
    settings.SELF_SERVICE_MOVES_PER_YEAR = 1
    _lic, text = issue()
    path = write_license(tmp_path, text)
    base = live_release.url

    with chromium() as browser:
        page = new_console(browser)
        mobile = new_page(browser, PHONE)
        log_in(page, base, manager.username)
        _server_a, server_b = move_a_to_b(page, mobile, base, path, "release-limit")

        url = release_in_browser(page, base, "release-limit-b")
        expect_refused(mobile, url, 409, "No self-service move left", "release-limit-b")
        problem = mobile.get_by_role("alert")
        expect(problem).to_contain_text(
            "This license has moved to another server 1 time in the last 365 days"
        )
        expect(problem).to_contain_text("Ask the vendor's support staff to unbind it.")
        # The license stays bound to B, so B registers again with a new scan.
        assert Binding.objects.get(state=BindingState.ACTIVE).installation_id == server_b
        back_to_registration(page, base)
        page.get_by_role("button", name="Register this server again").click()
        expect(page.locator("#challenge")).to_be_visible()
        scan_and_type_code(page, mobile, base, "release-limit-b-again")

    assert Binding.objects.count() == 2
    active = Binding.objects.get(state=BindingState.ACTIVE)
    assert active.installation_id == server_b
    event = VendorEvent.objects.filter(action=VendorAction.BINDING_REFUSED).last()
    assert event.detail == {"purpose": "release", "problems": ["moves_used_up"]}
    assert VendorEvent.objects.filter(action=VendorAction.RELEASED).count() == 1


def test_a_release_made_from_the_license_file_alone_is_refused(
    live_release, manager, issue, tmp_path
):
    lic, text = issue()
    path = write_license(tmp_path, text)
    base = live_release.url

    with chromium() as browser:
        page = new_console(browser)
        mobile = new_page(browser, PHONE)
        log_in(page, base, manager.username)
        register_in_browser(page, mobile, base, path, "release-file-only")

        binding = Binding.objects.get()
        # Someone with the file, and even the installation id (it travels in every QR
        # code), but not the chain value only the live installation holds.
        forged = crafted_token(
            lic.license_id,
            installation_id=binding.installation_id,
            purpose=Purpose.RELEASE,
            chain=secrets.token_bytes(CHAIN_BYTES),
        )
        expect_refused(mobile, f"{base}/m/{forged}", 403, NOT_FROM_LIVE, "release-file-only")
        binding.refresh_from_db()
        assert binding.state == BindingState.ACTIVE
        assert binding.copied_at is None  # not a copy: nothing is marked

        # The server itself is untouched and can still release the license.
        assert reports_status(page, base) == 200
        back_to_registration(page, base)
        expect(page.locator("#registration-state")).to_have_text("Registered")
        url = release_in_browser(page, base, "release-file-only")
        expect_released(mobile, url, "release-file-only")

    binding.refresh_from_db()
    assert binding.state == BindingState.RELEASED
    assert not VendorEvent.objects.filter(action=VendorAction.COPY_DETECTED).exists()


def test_a_release_from_a_stale_copy_is_refused_as_a_copy(
    live_release, manager, issue, tmp_path, frozen_clock
):
    _lic, text = issue()
    path = write_license(tmp_path, text)
    base = live_release.url

    with chromium() as browser:
        page = new_console(browser)
        mobile = new_page(browser, PHONE)
        log_in(page, base, manager.username)
        register_in_browser(page, mobile, base, path, "release-copy")

        # A copy of the database as it is now (a snapshot, a cloned volume); the original
        # registers again and scans once more (after a restart, say): the copy's chain
        # value is one the vendor has seen superseded.
        original = ConsoleCopy.of_current("original")
        copy = ConsoleCopy.of_current("copy")
        assert original.scan_and_register().ok
        original.scan()
        frozen_clock.advance(minutes=10)  # the copy starts later (CHAIN_STALE_GRACE_SECONDS)

        with copy.running():
            back_to_registration(page, base)
            expect(page.locator("#registration-state")).to_have_text("Registered")
            url = release_in_browser(page, base, "release-copy")
            expect_refused(mobile, url, 409, "Installation Copied", "release-copy")
            expect(mobile.get_by_role("alert")).to_contain_text(
                "Another copy of this installation registered on 2026/06/01 12:00 UTC."
            )

    binding = Binding.objects.get()
    assert binding.state == BindingState.ACTIVE
    assert binding.copied_at == clock.now()
    assert VendorEvent.objects.filter(action=VendorAction.COPY_DETECTED).count() == 1
    assert not VendorEvent.objects.filter(action=VendorAction.RELEASED).exists()


def test_an_expired_release_qr_is_refused(live_release, manager, issue, tmp_path, frozen_clock):
    _lic, text = issue()
    path = write_license(tmp_path, text)
    base = live_release.url

    with chromium() as browser:
        page = new_console(browser)
        mobile = new_page(browser, PHONE)
        log_in(page, base, manager.username)
        register_in_browser(page, mobile, base, path, "release-expired")
        url = release_in_browser(page, base, "release-expired")

        # Five minutes on, by the server's clock and the console's alike.
        frozen_clock.advance(minutes=5)
        page.clock.set_fixed_time(clock.now())
        expect(page.locator("#release-expired")).to_be_visible()
        keep_screenshot(page, "release-expired-console-expired")
        expect_refused(mobile, url, 410, "This QR code has expired.", "release-expired")
        assert Binding.objects.get().state == BindingState.ACTIVE

        # A separate release, scanned at 4:59, still works.
        back_to_registration(page, base)
        url = release_in_browser(page, base, "release-expired-again")
        frozen_clock.advance(minutes=4, seconds=59)
        page.clock.set_fixed_time(clock.now())
        expect(page.locator("#countdown")).to_have_text("0:01")
        expect_released(mobile, url, "release-expired-again")

    assert Binding.objects.get().state == BindingState.RELEASED

"""End to end in a real browser: a Registered server takes its renewal with no downtime.

Chromium registers the server the real way (upload, QR read from a screenshot, the code
read on a phone-sized page); the vendor then issues a renewal of that license, and
Chromium uploads it. No QR code, still Registered, the renewal's expiry and lineage shown.
Meanwhile another client of the same admin asks for the gated reports page again and
again: before the upload, while the upload's transaction is held open, and after it;
every answer must be the reports page (200).
"""

from __future__ import annotations

import http.client
import re
import threading
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.db import connection
from playwright.sync_api import Page, expect

from registration import clock, status
from registration.flows import upload as uploads
from registration.gate import GateState, evaluate
from registration.installation import get_installation
from registration.models import AuditAction, AuditEvent, RegistrationState
from registration.protocol.license import payload_of
from registration.seal import effective_state
from tests.browser import chromium, decode_qr, keep_screenshot, needs_chromium
from tests.test_e2e_browser import (  # noqa: F401 (live is a fixture)
    DESKTOP,
    PHONE,
    live,
    log_in,
    new_page,
    upload,
)
from tests.test_renewal import REPORTS, renew

pytestmark = [
    pytest.mark.browser,
    needs_chromium,
    # The live server thread must see the test's rows, so they are committed.
    pytest.mark.django_db(transaction=True),
]

FIRST = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)  # the first license's issue, before START
# Answers asked for in each phase: enough that a gate closing for a moment is seen.
PER_PHASE = 8
WAIT_SECONDS = 15


class GatedPagePoller(threading.Thread):
    """Ask for the gated page over and over, as the admin's other tab would, and keep
    every answer as (phase when asked, HTTP status, whether it was the reports page)."""

    def __init__(self, url: str, cookie: str, *, from_database: bool) -> None:
        super().__init__(name="gated-page-poller", daemon=True)
        # Forget the cached status before each question, so every answer is the gate's
        # reading of the database as the other connections see it (PostgreSQL: the
        # committed rows, while the upload holds its transaction open).
        self.from_database = from_database
        parts = urlsplit(url)
        self.address = (parts.hostname, parts.port)
        self.path = parts.path
        self.cookie = cookie
        self.phase = "before"
        self.answers: list[tuple[str, int, bool]] = []
        self.error: BaseException | None = None
        self._stop_asking = threading.Event()
        self._answered = threading.Condition()

    def run(self) -> None:
        try:
            while not self._stop_asking.is_set():
                phase = self.phase
                if self.from_database:
                    status.invalidate()
                answer = self._ask()
                with self._answered:
                    self.answers.append((phase, *answer))
                    self._answered.notify_all()
        except BaseException as exc:  # reported by wait_for and stop, in the test's thread
            with self._answered:
                self.error = exc
                self._answered.notify_all()

    def _ask(self) -> tuple[int, bool]:
        # A fresh connection each time, and no redirect followed: a 302 to the login page
        # or the 403 "not registered" page must show as what it is.
        connection = http.client.HTTPConnection(*self.address, timeout=WAIT_SECONDS)
        try:
            connection.request("GET", self.path, headers={"Cookie": self.cookie})
            response = connection.getresponse()
            body = response.read().decode("utf-8", "replace")
        finally:
            connection.close()
        return response.status, 'id="reports"' in body

    def count(self, phase: str) -> int:
        with self._answered:
            return sum(1 for asked_in, *_ in self.answers if asked_in == phase)

    def wait_for(self, phase: str, count: int) -> bool:
        """Block until count answers asked in phase came back; False on timeout or error."""
        with self._answered:
            self._answered.wait_for(
                lambda: self.error is not None or self.count(phase) >= count, WAIT_SECONDS
            )
            return self.error is None and self.count(phase) >= count

    def stop(self) -> None:
        self._stop_asking.set()
        self.join(WAIT_SECONDS)
        assert not self.is_alive(), "the poller did not stop"
        if self.error is not None:
            raise self.error


@pytest.fixture
def live_between_visits(live, settings, monkeypatch):  # noqa: F811
    """The live server, and the ORM usable between page visits (the vendor issues the
    renewal mid-test): Playwright's sync API runs an event loop in this thread, which
    Django refuses by default; rows change only while no page loads."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    # The test database is shared-cache in-memory SQLite: a table being written is locked
    # against every other connection at once (no busy wait), so a status cache miss while
    # the upload holds its transaction would answer 503 here, and only here. Keep the
    # snapshot cached for the whole test; the upload's commit still forgets it.
    settings.STATUS_CACHE_SECONDS = 600
    return live


def write_license(directory: Path, text: str) -> Path:
    """Write text as directory/Container.lic, the name the vendor sends it under."""
    directory.mkdir()
    path = directory / "Container.lic"
    path.write_text(text, encoding="ascii")
    return path


def register_in_browser(page: Page, mobile: Page, base: str, path: Path) -> None:
    """Upload the license, read the QR from pixels, type the phone's code: Registered."""
    upload(page, path)
    qr = page.locator("#qr-image")
    expect(qr).to_be_visible()
    expect(qr).to_have_js_property("complete", True)
    expect(qr).not_to_have_js_property("naturalWidth", 0)
    url = decode_qr(qr.screenshot())
    assert re.fullmatch(rf"{re.escape(base)}/m/[A-Za-z0-9_\-.~]+", url), url
    mobile.goto(url)
    code = mobile.locator("#verification-code").inner_text().strip()
    assert re.fullmatch(r"[0-9]{6}", code), code
    keep_screenshot(mobile, "renewal-02-phone-code")
    page.get_by_label("Verification code").fill(code)
    page.get_by_role("button", name="Submit").click()
    expect(page.locator("#registration-state")).to_have_text("Registered")


def test_a_registered_server_is_renewed_in_the_browser_and_the_gate_stays_open(
    live_between_visits, manager, issue, tmp_path, settings, monkeypatch
):
    base = live_between_visits.url
    old, text = issue(issued_at=FIRST, expires_at=date(2027, 1, 31))
    path = write_license(tmp_path / "first", text)

    with chromium() as browser:
        page = new_page(browser, DESKTOP)
        log_in(page, base, manager.username)
        register_in_browser(page, new_page(browser, PHONE), base, path)
        expect(page.locator("#renewed-from")).to_have_count(0)
        keep_screenshot(page, "renewal-03-registered")

        # The vendor's side, once the scan has bound the license: renewing moves the binding.
        renewal = renew(old)
        new = payload_of(renewal)
        assert new.renews == old.license_id and new.expires_at == date(2028, 1, 31)
        renewal_path = write_license(tmp_path / "renewal", renewal)
        entries_before = AuditEvent.objects.count()

        # The admin's other tab: the same login (the browser's session cookie), no cookie
        # for messages, so it cannot take the "License renewed" message from the page.
        session = next(
            c for c in page.context.cookies() if c["name"] == settings.SESSION_COOKIE_NAME
        )
        # On SQLite the answers come from the cached status (see live_between_visits); on
        # PostgreSQL (CI's second run) each one reads the database while the upload holds
        # its transaction open.
        poller = GatedPagePoller(
            f"{base}{REPORTS}",
            f"{session['name']}={session['value']}",
            from_database=connection.vendor == "postgresql",
        )
        held_open: list[bool] = []
        gate_inside: list[GateState] = []
        real_save = uploads.save_installation

        def save_and_hold(row, **changes):
            # The renewal is written but not committed: hold the upload's transaction open
            # until the other tab has had its answers.
            real_save(row, **changes)
            poller.phase = "during"
            held_open.append(poller.wait_for("during", PER_PHASE))
            poller.phase = "committing"
            # On SQLite those answers come from the cached status. What
            # the gate makes of the row as the upload has it now is asked here, on the
            # upload's own connection: SQLite's shared-cache test database locks the
            # table against every other connection until the commit.
            gate_inside.append(evaluate(status.snapshot(), clock.now()).state)

        monkeypatch.setattr(uploads, "save_installation", save_and_hold)

        poller.start()
        try:
            assert poller.wait_for("before", PER_PHASE), "no answers before the upload"
            upload(page, renewal_path)
            expect(page.locator("#registration-state")).to_have_text("Registered")
            expect(page.get_by_role("status")).to_have_text(
                f"License renewed: valid through {new.expires_at:%Y/%m/%d}"
            )
            poller.phase = "after"
            assert poller.wait_for("after", PER_PHASE), "no answers after the upload"
        finally:
            poller.stop()

        # A renewal needs no new registration: no QR code to scan, no code to type.
        expect(page.locator("#qr-image")).to_have_count(0)
        expect(page.locator("#submit-code")).to_have_count(0)
        expect(page.locator("#renewed-from")).to_have_text(f"Renewed from {old.license_id}")
        expect(page.locator("#license-facts")).to_contain_text(str(new.license_id))
        expect(page.locator("#license-facts")).to_contain_text("2028/01/31")
        keep_screenshot(page, "renewal-04-renewed")

    assert held_open == [True], "the upload was not held open while the other tab asked"
    assert gate_inside == [GateState.REGISTERED]
    counts = {phase: poller.count(phase) for phase in ("before", "during", "after")}
    assert all(n >= PER_PHASE for n in counts.values()), counts
    refused = [answer for answer in poller.answers if answer[1:] != (200, True)]
    assert not refused, f"the gated page was not open throughout: {refused[:5]}"

    row = get_installation()
    assert effective_state(row) == RegistrationState.REGISTERED
    assert row.license.license_id == new.license_id
    new_entries = AuditEvent.objects.order_by("id")[entries_before:]
    assert [(e.action, e.detail["renewal"], e.detail["renews"]) for e in new_entries] == [
        (AuditAction.UPLOAD_ACCEPTED, True, str(old.license_id))
    ]

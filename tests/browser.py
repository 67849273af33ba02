"""Drive Debian's chromium through Playwright, and read QR codes the way a phone does.

No browser is downloaded: tests use the system chromium (CHROMIUM, or /usr/bin/chromium)
and skip with a clear reason when it is not installed.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import zxingcpp
from django.db import connections
from PIL import Image
from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
# Headless in a container, and quiet: no sandbox (no user namespaces here), no GPU, and
# none of chromium's own network traffic, so the only requests are the test's.
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS_DIR = Path(__file__).resolve().parent.parent / "test-artifacts"

needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"needs chromium at {CHROMIUM} (apt-get install chromium, or set CHROMIUM=path)",
)


@contextmanager
def chromium() -> Iterator[Browser]:
    """Run the system chromium, headless, for the with block.

    Playwright's sync API keeps an event loop running in this thread, and Django refuses
    ORM calls while one runs: make every database row before entering the block.
    """
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS
        )
        try:
            yield browser
        finally:
            try:
                browser.close()
            finally:
                if os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE"):
                    # ORM calls made in the block anyway opened connections that belong
                    # to the event loop's context: closed while it still runs, or
                    # PostgreSQL refuses to drop the test database at the end of the run
                    # ("being accessed by other users").
                    connections.close_all()


def decode_qr(png: bytes) -> str:
    """Return the text of the one QR code in a PNG screenshot; fail if there is not exactly one."""
    image = Image.open(io.BytesIO(png)).convert("L")
    found = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    assert len(found) == 1, f"expected one QR code in the screenshot, found {len(found)}"
    assert found[0].valid, "the QR code in the screenshot could not be read"
    return found[0].text


def keep_screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot as test-artifacts/<name>.png and return its path."""
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    path = ARTIFACTS_DIR / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}.png"
    page.screenshot(path=str(path), full_page=True)
    return path

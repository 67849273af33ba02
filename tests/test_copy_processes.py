"""Real copies of a registered console, caught by the registration chain (docs/protocol.md,
"Copies of an installation"): how soon, proved with copied databases and real processes.

One vendor (the verification service alone, `LICSERVER_ROLES=authority`, with its own
SQLite database) serves every test. Each test registers an original console (`LICSERVER_ROLES=
console`, the production command), stops it and copies its database: the SQLite file
(with its data folder, as a cloned volume or a restored backup), or a PostgreSQL database
with `CREATE DATABASE copy TEMPLATE original`. Each copy runs as its own gunicorn with the
original's settings (the same SECRET_KEY, as a cloned machine has). A restart is a stop and
a start of that gunicorn: the registration expires and the admin re-registers, so every
restart is one scan. The admin's steps are the pages' own: log in, upload Container.lic,
read the QR image (zxingcpp), open its link as a phone does, type the code it shows.
"""

from __future__ import annotations

import base64
import contextlib
import html
import io
import json
import os
import re
import secrets
import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import psycopg
import pytest
import zxingcpp
from PIL import Image

from tests.phone_steps import shown_code
from tests.processes import (
    Browser,
    Server,
    issue_license,
    migrate_with_admin,
    scratch_database,
    server_env,
    start_gunicorn,
    with_database,
)

pytestmark = pytest.mark.processes

needs_postgres = pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")),
    reason="needs PostgreSQL: set DATABASE_URL=postgres://... (a copy made with"
    " CREATE DATABASE ... TEMPLATE needs a server to make it on)",
)
COPIED = "Installation Copied"
EXPIRED = "Expired due to restart"
OTHER_COPY = re.compile(
    r"Another copy of this installation registered on \d{4}/\d\d/\d\d \d\d:\d\d UTC\."
    r" Ask support to choose the copy to keep\."
)


# --- The vendor -----------------------------------------------------------------------


@dataclass
class Vendor:
    """The one verification service every copy's QR codes link to."""

    env: dict[str, str]
    server: Server
    db: Path
    admin: Browser

    @property
    def base(self) -> str:
        return self.server.base

    def issue(self, out: Path) -> bytes:
        return issue_license(self.env, out, max_nodes=1)

    def binding(self, console: Console) -> dict:
        """The binding of console's installation (one per test), read from outside."""
        with contextlib.closing(sqlite3.connect(self.db)) as conn:
            conn.row_factory = sqlite3.Row
            query = "SELECT * FROM authority_binding WHERE installation_id = ?"
            rows = conn.execute(query, (console.installation_id(),)).fetchall()
        assert len(rows) == 1, rows
        return dict(rows[0])

    def audit(self, action: str) -> int:
        with contextlib.closing(sqlite3.connect(self.db)) as conn:
            query = "SELECT count(*) FROM authority_auditevent WHERE action = ?"
            return conn.execute(query, (action,)).fetchone()[0]


@pytest.fixture(scope="module")
def vendor(key_dir, tmp_path_factory) -> Iterator[Vendor]:
    var = tmp_path_factory.mktemp("vendor-var")
    db = var / "vendor.sqlite3"
    # The verification service alone, as the vendor runs it: no console app, no console
    # tables (its phone page must render without them).
    # No grace for tokens made just after a copy was overtaken: these copies scan seconds
    # apart in real time (tests/test_copies.py covers the grace at its edges).
    env = server_env(
        f"sqlite://{db}",
        key_dir,
        var,
        LICSERVER_ROLES="authority",
        WEB_CONCURRENCY="1",
        CHAIN_STALE_GRACE_SECONDS="0",
    )
    migrate_with_admin(env)
    server = start_gunicorn(env, var.parent / f"{var.name}.log")
    try:
        admin = Browser(server.base)
        admin.login()
        yield Vendor(env, server, db, admin)
    finally:
        server.kill()


# --- Where a console's database lives, and how it is copied ----------------------------


class SqliteFiles:
    """A console's database in its data folder; a copy is a copy of the folder's files."""

    label = "sqlite"

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp

    def new(self, name: str) -> tuple[str, Path]:
        var = self.tmp / f"var-{name}"
        return f"sqlite://{var / 'db.sqlite3'}", var

    def copy(self, url: str, var: Path, name: str) -> tuple[str, Path]:
        """Copy the data folder, database file included (a cloned volume, a backup)."""
        target = self.tmp / f"var-{name}"
        shutil.copytree(var, target, symlinks=True)
        return f"sqlite://{target / 'db.sqlite3'}", target

    def query(self, url: str, sql: str) -> list[tuple]:
        with contextlib.closing(sqlite3.connect(urlparse(url).path)) as conn:
            return conn.execute(sql).fetchall()

    def close(self) -> None:
        pass


class PostgresTemplates:
    """A console's own PostgreSQL database; a copy is `CREATE DATABASE copy TEMPLATE it`."""

    label = "postgres"

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.stack = contextlib.ExitStack()

    def new(self, name: str) -> tuple[str, Path]:
        return self.stack.enter_context(scratch_database(f"copy_{name}")), self.tmp / f"var-{name}"

    def copy(self, url: str, var: Path, name: str) -> tuple[str, Path]:
        original = urlparse(url).path.lstrip("/")
        copy = f"{original}_{name}_{secrets.token_hex(2)}"
        admin_url = with_database(url, "postgres")
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{copy}" TEMPLATE "{original}"')
        self.stack.callback(_drop_database, admin_url, copy)
        return with_database(url, copy), self.tmp / f"var-{name}"

    def query(self, url: str, sql: str) -> list[tuple]:
        with psycopg.connect(url, autocommit=True) as conn:
            return conn.execute(sql).fetchall()

    def close(self) -> None:
        self.stack.close()


def _drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite-file-copy"),
        pytest.param("postgres", id="postgres-template-copy", marks=needs_postgres),
    ]
)
def storage(request, tmp_path) -> Iterator[SqliteFiles | PostgresTemplates]:
    store = (SqliteFiles if request.param == "sqlite" else PostgresTemplates)(tmp_path)
    try:
        yield store
    finally:
        store.close()


# --- A console copy, driven like its admin --------------------------------------------


@dataclass
class Scan:
    """What the phone showed for one QR code, and the console page after the code."""

    status: int
    phone: str
    console: str = ""

    @property
    def ok(self) -> bool:
        return self.status == 200 and shown_code(self.phone) is not None

    @property
    def copied(self) -> bool:
        text = html.unescape(self.phone)
        return (
            self.status == 409
            and COPIED in text
            and OTHER_COPY.search(text) is not None
            and shown_code(self.phone) is None
        )


@dataclass
class Console:
    """One copy of the installation: its own database, its own gunicorn, its admin."""

    name: str
    env: dict[str, str]
    var: Path
    store: SqliteFiles | PostgresTemplates
    vendor: Vendor
    logs: Path
    server: Server | None = None
    browser: Browser | None = None
    starts: int = field(default=0)

    @property
    def url(self) -> str:
        return self.env["DATABASE_URL"]

    def start(self) -> None:
        log = self.logs / f"console-{self.name}-{self.starts}.log"
        self.starts += 1
        self.server = start_gunicorn(self.env, log, authority_base=self.vendor.base)
        self.browser = Browser(self.server.base)
        self.browser.login()

    def stop(self) -> None:
        assert self.server is not None
        self.server.stop()
        self.server = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def copy(self, name: str) -> Console:
        """A copy of this (stopped) console's database, with the same settings."""
        assert self.server is None, "copy a stopped console (a consistent file or template)"
        url, var = self.store.copy(self.url, self.var, name)
        env = dict(self.env, DATABASE_URL=url, LICSERVER_VAR_DIR=str(var))
        return Console(name, env, var, self.store, self.vendor, self.logs)

    def page(self) -> str:
        assert self.browser is not None
        status, page = self.browser.request("/system/registration/")
        assert status == 200, page[:1500]
        return page

    def state(self) -> str:
        found = re.search(r'id="registration-state">\s*(.*?)\s*</p>', self.page(), re.S)
        assert found
        return html.unescape(found.group(1)).strip()

    def chain(self) -> str:
        return self.store.query(self.url, "SELECT chain FROM registration_installation")[0][0]

    def installation_id(self) -> str:
        query = "SELECT installation_id FROM registration_installation"
        return uuid.UUID(str(self.store.query(self.url, query)[0][0])).hex

    def upload(self, license_text: bytes) -> str:
        assert self.browser is not None
        status, page = self.browser.upload(license_text)
        assert status == 200, page[:1500]
        return page

    def re_register_page(self) -> str:
        """After a restart: the reminder's Re-register button; the page with its QR code."""
        assert self.browser is not None
        page = self.page()
        assert 'id="restart-alert"' in page and 'id="re-register"' in page, page[:1500]
        status, page = self.browser.post("/system/registration/challenge", {})
        assert status == 200, page[:1500]
        return page

    def scan(self, page: str) -> Scan:
        """Read the QR image on page, open its link on a phone, type the code if shown."""
        assert self.browser is not None
        link = qr_text(page)
        shown = re.search(r'<code id="challenge-link">([^<]+)</code>', page)
        assert shown and html.unescape(shown.group(1)) == link
        assert link.startswith(f"{self.vendor.base}/m/"), link
        status, phone = Browser(self.vendor.base).request(link)  # a phone: no cookies
        scan = Scan(status, phone)
        if scan.ok:
            status, scan.console = self.browser.post(
                "/system/registration/code", {"code": shown_code(phone) or ""}
            )
            assert status == 200 and "Registration successful." in scan.console, scan.console[:1500]
        return scan

    def register_after_restart(self) -> Scan:
        return self.scan(self.re_register_page())

    def close(self) -> None:
        if self.server is not None:
            self.server.kill()


def qr_text(page: str) -> str:
    """Decode the page's QR image (a data: URI) with zxingcpp, as a phone camera would."""
    found = re.search(r'<img id="qr-image" src="data:image/png;base64,([^"]+)"', page)
    assert found, page[:1500]
    image = Image.open(io.BytesIO(base64.b64decode(found.group(1)))).convert("L")
    codes = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    assert len(codes) == 1 and codes[0].valid
    return codes[0].text


@dataclass
class Registered:
    """A console registered once and stopped: the original every copy is made from."""

    original: Console
    license_text: bytes
    consoles: list[Console]

    def copy(self, name: str) -> Console:
        console = self.original.copy(name)
        self.consoles.append(console)
        return console


@pytest.fixture
def registered(vendor, storage, tmp_path, key_dir) -> Iterator[Registered]:
    url, var = storage.new("a")
    env = server_env(url, key_dir, var, LICSERVER_ROLES="console", WEB_CONCURRENCY="1")
    migrate_with_admin(env)
    license_text = vendor.issue(tmp_path / "Container.lic")
    original = Console("A", env, var, storage, vendor, tmp_path)
    done = Registered(original, license_text, [original])
    try:
        original.start()
        scan = original.scan(original.upload(license_text))
        assert scan.ok and original.state() == "Registered"
        original.stop()
        yield done
    finally:
        for console in done.consoles:
            console.close()


# --- The interleavings -----------------------------------------------------------------


def test_a_b_a_b_the_copy_is_caught_at_its_first_scan_after_the_other_registered_again(
    registered, vendor
):
    a, b = registered.original, registered.copy("B")
    a.start()
    b.start()
    assert a.state() == b.state() == EXPIRED

    assert a.register_after_restart().ok
    # B has not been overtaken: its value is the tip still, as after a Refresh.
    assert b.register_after_restart().ok
    assert a.state() == b.state() == "Registered"
    a.restart()
    assert a.register_after_restart().ok  # A comes back first: its successor wins
    b.restart()

    caught = b.register_after_restart()

    assert caught.copied, caught.phone[:1500]
    assert b.state() == EXPIRED
    binding = vendor.binding(registered.original)
    assert binding["copied_at"] is not None and binding["copy_chain"] == b.chain()
    assert binding["chain_tip"] == a.chain() or any(
        entry[0] == a.chain() for entry in _json(binding["chain_successors"])
    )
    # Marked copied: A's next scan is refused as well, until support chooses.
    a.restart()
    assert a.register_after_restart().copied


def test_a_a_b_an_older_copy_is_caught_at_its_first_scan(registered, vendor):
    a, b = registered.original, registered.copy("B")
    a.start()
    assert a.register_after_restart().ok
    a.restart()
    assert a.register_after_restart().ok
    b.start()

    caught = b.register_after_restart()

    assert caught.copied, caught.phone[:1500]
    assert b.state() == EXPIRED
    assert a.state() == "Registered"  # offline: A runs on until its next restart
    binding = vendor.binding(registered.original)
    assert binding["copied_at"] is not None and binding["copy_chain"] == b.chain()


def test_b_only_a_copy_that_runs_alone_goes_on(registered, vendor):
    b = registered.copy("B")  # the original is gone: only the copy runs
    b.start()
    for restart in range(3):
        if restart:
            b.restart()
        assert b.register_after_restart().ok
        assert b.state() == "Registered"
    binding = vendor.binding(registered.original)
    assert binding["copied_at"] is None and binding["copy_chain"] == ""


def test_a_lone_restore_of_an_old_backup_is_caught_and_support_keeps_it(registered, vendor):
    live = registered.original
    backup = registered.copy("backup")
    live.start()
    assert live.register_after_restart().ok
    live.restart()
    assert live.register_after_restart().ok
    live.stop()  # the live server is gone; the backup is restored in its place
    backup.start()

    page = backup.re_register_page()
    caught = backup.scan(page)

    assert caught.copied, caught.phone[:1500]
    binding = vendor.binding(registered.original)
    assert binding["copy_chain"] == backup.chain()
    refused_chain = binding["chain_tip"]

    # Support staff choose the restored copy in the vendor's Django admin.
    url = f"/admin/authority/binding/{binding['id']}/resolve-copy/"
    status, form = vendor.admin.request(url)
    assert status == 200 and binding["copy_chain"][:8] in form, form[:1500]
    status, after = vendor.admin.post(url, {"keep": "copy", "reason": "Restored from backup"})
    assert status == 200 and "The copy is resolved" in html.unescape(after), after[:1500]
    assert vendor.audit("copy_resolved") >= 1

    # The admin scans the same QR code again: the restored copy goes on.
    kept = backup.scan(page)
    assert kept.ok, kept.phone[:1500]
    assert backup.state() == "Registered"
    binding = vendor.binding(registered.original)
    assert binding["copied_at"] is None and refused_chain in _json(binding["chain_refused"])

    # The other copy, if it comes back, is refused from now on.
    live.start()
    assert live.register_after_restart().copied


def _json(value: object) -> list:
    return json.loads(value) if isinstance(value, str) else list(value or [])

"""Files and folders that hold secrets: owner-only from the moment they exist.

var/ keeps the generated secret key, the SQLite database (sessions, password hashes, the
audit log), the demo keys and the demo Container.lic. Each is created with its final
mode, so no umask (022 makes 0755 folders and 0644 files) and no moment between creating
and chmod-ing ever lets another local user read it. Existing files and folders are left
as they are: an operator may have chosen their modes.

Pure: no Django, so licserver.settings may use it before apps load.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

SQLITE_ENGINE = "django.db.backends.sqlite3"


def private_dir(path: Path) -> Path:
    """Make the folder path with mode 0700 unless it exists (missing parents above it get
    the usual mode: they are not ours); return path."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def create_private_file(path: Path) -> int:
    """Create path for writing with mode 0600 and return its descriptor. A file that
    exists is never opened (FileExistsError): nothing is overwritten."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)


def private_sqlite_file(database: dict) -> None:
    """Create an SQLite database's file empty, mode 0600, in a 0700 folder when it does not
    exist yet, before the first connection would create it under the umask. SQLite gives
    its -journal and -wal files the database file's mode, so they are private too.
    Any other engine, an in-memory database and an existing file are left alone."""
    if database.get("ENGINE") != SQLITE_ENGINE:
        return
    name = str(database.get("NAME") or "")
    if not name or name == ":memory:" or name.startswith("file:"):
        return
    path = Path(name)
    if path.exists():
        return
    private_dir(path.parent)
    # Another process starting at the same moment may make it first: then it is made.
    with contextlib.suppress(FileExistsError):
        os.close(create_private_file(path))

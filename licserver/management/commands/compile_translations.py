"""Compile every locale/*/LC_MESSAGES/django.po into its django.mo.

The set-up runs this before serving or testing, so compiled catalogs are never committed
and no system gettext is needed: babel reads the .po and writes the .mo.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import PoFileError, read_po
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

# One line of a .po entry: a keyword and a quoted string, or a continuation string.
_LINE = re.compile(
    r'(?:(msgctxt|msgid_plural|msgid|msgstr\[\d+\]|msgstr)\s+)?("(?:[^"\\]|\\.)*")\s*'
)
# Which keyword may come right after which; None is the start of the file.
_MAY_FOLLOW = {
    "msgctxt": {None, "msgstr", "msgstr[]"},
    "msgid": {None, "msgstr", "msgstr[]", "msgctxt"},
    "msgid_plural": {"msgid"},
    "msgstr": {"msgid"},
    "msgstr[]": {"msgid_plural", "msgstr[]"},
}


def check_syntax(po_path: Path, text: str) -> None:
    """Refuse what babel's lenient reader would silently drop or cut short.

    babel reads an unterminated string as a shorter one, skips a msgstr with no msgid and
    keeps only one of two entries with the same msgid; GNU msgfmt refuses all three.
    """
    last: str | None = None
    key: list[str] = []
    seen: set[str] = set()

    def close_entry(number: int) -> None:
        if key:
            joined = "\n".join(key)
            if joined in seen:
                raise CommandError(f"{po_path}:{number}: duplicate entry {key[-1]}")
            seen.add(joined)
            key.clear()

    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        match = _LINE.fullmatch(line)
        if match is None:
            raise CommandError(f"{po_path}:{number}: malformed line: {line[:60]!r}")
        keyword, quoted = match.groups()
        if keyword is None:
            if last is None:
                raise CommandError(f"{po_path}:{number}: a string outside any entry")
            if last in ("msgctxt", "msgid"):
                key.append(quoted)
            continue
        kind = "msgstr[]" if keyword.startswith("msgstr[") else keyword
        if last not in _MAY_FOLLOW[kind]:
            raise CommandError(f"{po_path}:{number}: {keyword} is out of place")
        if kind in ("msgctxt", "msgid") and last != "msgctxt":
            close_entry(number)
        if kind in ("msgctxt", "msgid"):
            key.append(f"{kind} {quoted}")
        last = kind
    if last not in (None, "msgstr", "msgstr[]"):
        raise CommandError(f"{po_path}: the last entry has no msgstr")
    close_entry(len(text.splitlines()))


def read_catalog(po_path: Path) -> Catalog:
    """Read po_path; raise CommandError when it is malformed or a translation is unsafe."""
    try:
        check_syntax(po_path, po_path.read_text(encoding="utf-8"))
        with po_path.open("rb") as handle:
            catalog = read_po(
                handle, locale=po_path.parent.parent.name, ignore_obsolete=True, abort_invalid=True
            )
    except (PoFileError, ValueError, UnicodeDecodeError) as exc:
        raise CommandError(f"{po_path}: malformed catalog: {exc}") from exc
    # A translation whose placeholders differ from the original would fail at run time
    # (KeyError in the middle of a page), so refuse it here.
    problems = [
        f"{po_path}:{message.lineno}: {error}"
        for message, errors in catalog.check()
        for error in errors
    ]
    if problems:
        raise CommandError("\n".join(problems))
    return catalog


def write_atomically(catalog: Catalog, mo_path: Path) -> None:
    """Write catalog to mo_path in one rename, so a running server never reads half a file."""
    fd, tmp_name = tempfile.mkstemp(dir=mo_path.parent, prefix=".django.", suffix=".mo")
    try:
        with os.fdopen(fd, "wb") as handle:
            # Fuzzy entries are guesses nobody has checked: they stay untranslated.
            write_mo(handle, catalog, use_fuzzy=False)
        # mkstemp makes the file private; servers running as another user must read it.
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, mo_path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


class Command(BaseCommand):
    # Nothing here depends on the settings being complete: no system checks, so the
    # set-up's first step does not warn about keys a later step makes (`make run`).
    requires_system_checks: list[str] = []
    help = (
        "Compile every django.po under the LOCALE_PATHS into django.mo (skipping fuzzy "
        "entries). Fails on a malformed catalog or a translation with wrong placeholders."
    )

    def handle(self, *args, **options) -> None:
        po_paths = sorted(
            po
            for base in settings.LOCALE_PATHS
            for po in Path(base).glob("*/LC_MESSAGES/django.po")
        )
        if not po_paths:
            raise CommandError("No locale/*/LC_MESSAGES/django.po found in LOCALE_PATHS.")
        catalogs = [(po, read_catalog(po)) for po in po_paths]
        # Every catalog is read before any is written: one bad file changes nothing.
        for po, catalog in catalogs:
            write_atomically(catalog, po.with_suffix(".mo"))
            if options["verbosity"] >= 1:
                self.stdout.write(f"Compiled {po.with_suffix('.mo')}")

"""Print every hot path's cost as a ratio against a baseline measured in the same run.

    make bench                      # SQLite: rows 1-4, 2e and 8; PostgreSQL rows skipped
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/licserver_bench make bench
    .venv/bin/python bench/run.py --quick   # fewer loops, 100,000 rows for row 6

The bench makes its own vendor keys and its own database (Django's test database,
"test_" + the DATABASE_URL name, dropped at the end), so it never touches real data.
See docs/performance.md for what each row measures and the figures of three runs.
Exit status 1 when any row is over its goal or its verdict is not stable (UNSURE).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
KID = "bench-1"
# Rate limits would stop the load rows after a few requests from one address.
UNLIMITED = "1000000/s"


def configure(key_dir: Path) -> None:
    """Point settings at fresh keys and lift the rate limits, before Django loads."""
    from registration.protocol.keys import generate_key_pair_files

    generate_key_pair_files(key_dir, KID)
    for name in (
        "LICENSE_PUBLIC_KEYS",
        "AUTHORITY_PUBLIC_KEYS",
        "AUTHORITY_PRIVATE_KEY_FILES",
        "LICENSE_SIGNING_KEY_FILES",
    ):
        os.environ.pop(name, None)
    os.environ.update(
        DJANGO_SETTINGS_MODULE="licserver.settings",
        KEYS_DIR=str(key_dir),
        AUTHORITY_KID=KID,
        RATE_PHONE=UNLIMITED,
        RATE_CODE=UNLIMITED,
        RATE_UPLOAD=UNLIMITED,
        RATE_CHALLENGE=UNLIMITED,
        DEBUG="false",
    )


def is_postgres() -> bool:
    return os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer loops; 100,000 rows in row 6")
    parser.add_argument(
        "--rows", default="1,2,3,4,5,6,7,8,9", help="which rows to run, e.g. 1,2 (2 is 2a-2e)"
    )
    args = parser.parse_args()
    rows_wanted = {r.strip() for r in args.rows.split(",")}

    with tempfile.TemporaryDirectory(prefix="licserver-bench-") as tmp:
        configure(Path(tmp) / "keys")
        import django

        django.setup()
        from django.conf import settings
        from django.db import connection
        from django.test.utils import setup_test_environment, teardown_test_environment

        from bench import micro
        from bench.common import HEADER, Row, print_row

        started = time.monotonic()
        print(f"licserver bench: database {connection.vendor}, cache {cache_name(settings)}")
        print(HEADER)
        print("-" * len(HEADER))
        results: list[Row] = []

        def show(rows: Row | list[Row]) -> None:
            for row in rows if isinstance(rows, list) else [rows]:
                print_row(row)
                results.append(row)
                sys.stdout.flush()

        if "1" in rows_wanted:
            show(micro.license_check(KID, args.quick))
        if "2" in rows_wanted:
            show(micro.six_digit_code(KID, args.quick))

        needs_db = rows_wanted & {"2", "3", "4", "5", "6", "7", "8", "9"}
        if needs_db:
            setup_test_environment()
            old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
            try:
                run_db_rows(rows_wanted, args.quick, Path(tmp), show)
            finally:
                connection.creation.destroy_test_db(old_name, verbosity=0)
                teardown_test_environment()

        failed = [row for row in results if row.failed]
        print(
            f"{len(results)} figures, {sum(r.ok is False for r in results)} over goal, "
            f"{sum(r.unsure and r.ok is not None for r in results)} not stable, "
            f"{sum(r.ok is None for r in results)} skipped, {time.monotonic() - started:.0f} s"
        )
    if failed:
        print("FAILED: " + ", ".join(f"{row.number} {row.verdict}" for row in failed))
        return 1
    return 0


def cache_name(settings) -> str:
    return settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1]


def run_db_rows(rows_wanted: set[str], quick: bool, tmp: Path, show) -> None:
    from bench import pages
    from bench.common import Row

    if "2" in rows_wanted:
        from bench.load import chain_check_queries

        show(chain_check_queries(KID))
    if "3" in rows_wanted:
        show(pages.qr_page(KID, quick))
    if "4" in rows_wanted:
        show(pages.restart_reminder(quick))
    server_rows = rows_wanted & {"5", "6", "7", "9"}
    if server_rows and not is_postgres():
        reason = "skipped: needs DATABASE_URL=postgres://... (see docs/performance.md)"
        for number, path in (
            ("5", "phone page, 20 and 200 concurrent clients, gunicorn"),
            ("6", "phone page with 1,000,000 licenses vs 1,000"),
            ("7", "200 concurrent wrong codes"),
            ("9", "single phone-page request vs a one-read request"),
        ):
            if number in server_rows:
                show(Row(number, path, "-", "-", None, [reason]))
    elif server_rows:
        from bench import load

        if "5" in rows_wanted:
            show(load.phone_throughput(KID, quick, tmp))
        if "9" in rows_wanted:
            show(load.single_request(KID, quick))
        if "6" in rows_wanted:
            show(load.phone_at_scale(KID, quick))
        if "7" in rows_wanted:
            show(load.wrong_codes(KID, quick, tmp))
    # Last: it registers the console, which the rows above must not find registered.
    if "8" in rows_wanted:
        show(pages.gated_page(KID, quick))


if __name__ == "__main__":
    sys.exit(main())

"""Vendor tooling: keygen, issue_license and inspect_license."""

from __future__ import annotations

import os
import stat
import threading
import uuid
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from licserver.env import envkeys
from registration.authority.models import IssuedLicense
from registration.cluster import lifecycle
from registration.cluster.identity import NodeIdentity
from registration.protocol.license import verify_license
from tests.conftest import START

KEY_FILES = ("k1.ed25519.pem", "k1.ed25519.pub", "k1.x25519.pem", "k1.x25519.pub")


def run(name: str, *args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(name, *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def run_exit(name: str, *args: str) -> tuple[int, str, str]:
    """Run a command that ends with sys.exit; return (status, stdout, stderr)."""
    out, err = StringIO(), StringIO()
    try:
        call_command(name, *args, stdout=out, stderr=err)
    except SystemExit as exc:
        return int(exc.code), out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


# --- keygen ---------------------------------------------------------------------------


def test_keygen_creates_both_pairs_with_private_files_0600(tmp_path):
    out, _ = run("keygen", "--kid", "k1", "--out", str(tmp_path / "keys"))

    directory = tmp_path / "keys"
    assert sorted(p.name for p in directory.iterdir()) == sorted(KEY_FILES)
    expected_types = {"k1.ed25519.pem": Ed25519PrivateKey, "k1.x25519.pem": X25519PrivateKey}
    for name, key_type in expected_types.items():
        assert stat.S_IMODE((directory / name).stat().st_mode) == 0o600
        # Unencrypted PKCS#8 PEM, the form every tool reads.
        key = serialization.load_pem_private_key((directory / name).read_bytes(), password=None)
        assert isinstance(key, key_type)
    ed_pub = (directory / "k1.ed25519.pub").read_text().strip()
    x_pub = (directory / "k1.x25519.pub").read_text().strip()
    assert out.splitlines() == [
        f"LICENSE_PUBLIC_KEYS=k1={ed_pub}",
        f"AUTHORITY_PUBLIC_KEYS=k1={x_pub}",
        f"AUTHORITY_PRIVATE_KEY_FILES=k1={directory / 'k1.x25519.pem'}",
        f"LICENSE_SIGNING_KEY_FILES=k1={directory / 'k1.ed25519.pem'}",
    ]


def test_keygen_output_is_in_the_form_the_settings_read(tmp_path, monkeypatch):
    out, _ = run("keygen", "--kid", "k1", "--out", str(tmp_path))
    for line in out.splitlines():
        name, _, value = line.partition("=")
        monkeypatch.setenv(name, value)
        assert list(envkeys(name)) == ["k1"]


def test_keygen_refuses_to_overwrite(tmp_path):
    run("keygen", "--kid", "k1", "--out", str(tmp_path))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    with pytest.raises(CommandError, match="refusing to overwrite"):
        run("keygen", "--kid", "k1", "--out", str(tmp_path))
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_keygen_refuses_when_any_one_file_exists(tmp_path):
    (tmp_path / "k1.x25519.pub").write_text("mine\n")

    with pytest.raises(CommandError, match="k1.x25519.pub"):
        run("keygen", "--kid", "k1", "--out", str(tmp_path))
    assert [p.name for p in tmp_path.iterdir()] == ["k1.x25519.pub"]


@pytest.mark.parametrize("kid", ["../evil", "a b", "-lead", "", "k" * 33, "k1\n", "ké"])
def test_keygen_refuses_a_bad_kid(tmp_path, kid):
    with pytest.raises(CommandError, match="key id"):
        run("keygen", f"--kid={kid}", "--out", str(tmp_path / "keys"))
    assert not (tmp_path / "keys").exists() or not any((tmp_path / "keys").iterdir())


# --- issue_license --------------------------------------------------------------------

ISSUE_ARGS = (
    "--company",
    "Acme Ltd",
    "--project-name",
    "Reports",
    "--app-name",
    "ReportServer",
    "--app-version",
    "11.0",
    "--project-content",
    "reports",
    "--contract-date",
    "2026-01-15",
    "--expires",
    "2027-01-31",
    "--max-nodes",
    "3",
)


def issue_args(out: Path, **changes: str) -> list[str]:
    args = list(ISSUE_ARGS)
    for flag, value in changes.items():
        option = "--" + flag.replace("_", "-")
        args[args.index(option) + 1] = value
    return [*args, "--out", str(out)]


@pytest.mark.django_db
def test_issue_license_writes_a_verifying_file_and_records_it(tmp_path, frozen_clock):
    target = tmp_path / "out" / "Container.lic"
    out, _ = run("issue_license", *issue_args(target))

    data = target.read_bytes()
    lic = verify_license(data, settings.LICENSE_PUBLIC_KEYS, settings.LICENSE_MAX_BYTES)
    assert lic.company == "Acme Ltd"
    assert lic.max_nodes == 3
    assert lic.issued_at == START
    assert lic.kid == "test-1"  # the last signing key by name
    row = IssuedLicense.objects.get()
    assert row.license_id == lic.license_id
    assert row.text == data.decode("ascii")
    assert row.max_nodes == 3
    assert row.kid == "test-1"
    assert f"Wrote {target} (license {lic.license_id}, key test-1)" in out


@pytest.mark.django_db
def test_issue_license_signs_with_the_chosen_kid(tmp_path, frozen_clock):
    target = tmp_path / "Container.lic"
    run("issue_license", *issue_args(target), "--kid", "test-0")
    lic = verify_license(
        target.read_bytes(), settings.LICENSE_PUBLIC_KEYS, settings.LICENSE_MAX_BYTES
    )
    assert lic.kid == "test-0"


@pytest.mark.django_db
def test_issue_license_refuses_to_overwrite(tmp_path, frozen_clock):
    target = tmp_path / "Container.lic"
    target.write_text("keep me")

    with pytest.raises(CommandError, match="refusing to overwrite"):
        run("issue_license", *issue_args(target))
    assert target.read_text() == "keep me"
    assert not IssuedLicense.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "changes, reason",
    [
        ({"expires": "2027-02-30"}, "not a date"),
        ({"expires": "20270131"}, "not a date"),
        ({"contract_date": "15/01/2026"}, "not a date"),
        ({"max_nodes": "0"}, "--max-nodes"),
        ({"max_nodes": "10001"}, "--max-nodes"),
        ({"max_nodes": "many"}, "max_nodes|max-nodes"),
        ({"app_version": "11.0.20"}, "app_version"),
        ({"company": " "}, "company"),
    ],
)
def test_issue_license_refuses_bad_fields(tmp_path, frozen_clock, changes, reason):
    target = tmp_path / "Container.lic"
    with pytest.raises(CommandError, match=reason):
        run("issue_license", *issue_args(target, **changes))
    assert not target.exists()
    assert not IssuedLicense.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("expires", ["2026-05-31", "2020-01-01"])
def test_issue_license_refuses_an_expiry_date_already_past_with_exit_2(
    tmp_path, frozen_clock, expires
):
    # The clock says 2026-06-01 12:00 UTC (START): 2026-05-31 ended at midnight.
    target = tmp_path / "Container.lic"

    with pytest.raises(CommandError, match=f"--expires {expires} is already past") as refused:
        run("issue_license", *issue_args(target, expires=expires))

    assert refused.value.returncode == 2
    assert "it is now 2026/06/01 12:00:00 UTC" in str(refused.value)
    assert not target.exists()
    assert not IssuedLicense.objects.exists()


@pytest.mark.django_db
def test_issue_license_takes_today_as_the_last_valid_day(tmp_path, frozen_clock):
    target = tmp_path / "Container.lic"

    run("issue_license", *issue_args(target, expires="2026-06-01"))

    lic = verify_license(
        target.read_bytes(), settings.LICENSE_PUBLIC_KEYS, settings.LICENSE_MAX_BYTES
    )
    assert lic.expires_at.isoformat() == "2026-06-01"


@pytest.mark.django_db
def test_issue_license_refuses_an_unknown_kid_and_a_bad_license_id(tmp_path, frozen_clock):
    target = tmp_path / "Container.lic"
    with pytest.raises(CommandError, match="no signing key 'nope'"):
        run("issue_license", *issue_args(target), "--kid", "nope")
    with pytest.raises(CommandError, match="not a UUID"):
        run("issue_license", *issue_args(target), "--license-id", "123")
    assert not target.exists()
    assert not IssuedLicense.objects.exists()


@pytest.mark.django_db
def test_issue_license_refuses_a_license_id_issued_before(tmp_path, frozen_clock):
    license_id = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"
    run("issue_license", *issue_args(tmp_path / "a.lic"), "--license-id", license_id)

    with pytest.raises(CommandError, match="issued before"):
        run("issue_license", *issue_args(tmp_path / "b.lic"), "--license-id", license_id)
    assert not (tmp_path / "b.lic").exists()
    assert IssuedLicense.objects.count() == 1


# --- inspect_license ------------------------------------------------------------------


@pytest.mark.django_db
def test_inspect_license_exit_0_when_it_would_be_accepted(tmp_path, frozen_clock):
    target = tmp_path / "Container.lic"
    run("issue_license", *issue_args(target))

    status, out, _ = run_exit("inspect_license", str(target))

    assert status == 0
    assert "company: Acme Ltd" in out
    assert "expires_at: 2027-01-31" in out
    assert "kid: test-1" in out
    assert "CAUSE" not in out
    assert out.rstrip().endswith("Would be accepted.")


@pytest.mark.django_db
def test_inspect_license_exit_1_lists_every_cause(tmp_path, frozen_clock):
    target = tmp_path / "Container.lic"
    frozen_clock.set(START - timedelta(days=30))  # issued while it was still valid
    run(
        "issue_license",
        *issue_args(target, expires="2026-05-31", app_version="9.0", project_content="bi"),
    )
    frozen_clock.set(START)

    status, out, _ = run_exit("inspect_license", str(target))

    assert status == 1
    assert "company: Acme Ltd" in out
    assert "CAUSE license_expired: License Expired\n    Expiration date: 2026/05/31\n" in out
    assert (
        "CAUSE version_mismatch: Version Mismatch\n"
        "    Certified application version : 9.0\n"
        "    Local application version : 11.0\n"
    ) in out
    assert "CAUSE project_content_mismatch: Project Content Mismatch" in out
    assert "Would be accepted." not in out


@pytest.mark.django_db
def test_inspect_license_exit_1_for_a_file_that_is_no_license(tmp_path, frozen_clock):
    target = tmp_path / "Container.lic"
    target.write_bytes(b"\xff\xfe not a license")

    status, out, _ = run_exit("inspect_license", str(target))

    assert status == 1
    assert out == "CAUSE license_content_incorrect: License content is incorrect\n"


@pytest.mark.django_db
def test_inspect_license_exit_1_for_a_too_large_file(tmp_path, frozen_clock):
    target = tmp_path / "big.lic"
    target.write_bytes(b"A" * (settings.LICENSE_MAX_BYTES * 4))

    status, out, _ = run_exit("inspect_license", str(target))

    assert status == 1
    assert "license_content_incorrect" in out


@pytest.mark.django_db
def test_inspect_license_exit_2_when_unreadable(tmp_path, frozen_clock):
    status, out, err = run_exit("inspect_license", str(tmp_path / "missing.lic"))
    assert (status, out) == (2, "")
    assert "Cannot read" in err and "No such file" in err

    status, out, err = run_exit("inspect_license", str(tmp_path))
    assert (status, out) == (2, "")
    assert "Cannot read" in err


@pytest.mark.django_db
def test_inspect_license_counts_the_clusters_live_nodes_not_its_own_host(
    tmp_path, frozen_clock, settings
):
    # A full two-node cluster, and the command run on a third host (an operator's shell).
    target = tmp_path / "Container.lic"
    run("issue_license", *issue_args(target, max_nodes="2"))
    for name in ("report-a", "report-b"):
        lifecycle.start_node(NodeIdentity(name, uuid.uuid4()))
    settings.NODE_NAME = "ops-shell"

    status, out, _ = run_exit("inspect_license", str(target))

    assert status == 0, out
    assert "CAUSE" not in out
    assert out.rstrip().endswith("Would be accepted.")


@pytest.mark.django_db
def test_inspect_license_still_finds_a_cluster_larger_than_the_license(
    tmp_path, frozen_clock, settings
):
    target = tmp_path / "Container.lic"
    run("issue_license", *issue_args(target, max_nodes="1"))
    for name in ("report-a", "report-b"):
        lifecycle.start_node(NodeIdentity(name, uuid.uuid4()))
    settings.NODE_NAME = "ops-shell"

    status, out, _ = run_exit("inspect_license", str(target))

    assert status == 1
    assert "CAUSE license_exhausted: License Exhausted" in out


@pytest.mark.django_db
def test_inspect_license_refuses_a_fifo_at_once_with_exit_2(tmp_path, frozen_clock):
    fifo = tmp_path / "Container.lic"
    os.mkfifo(fifo)
    outcome: list[tuple[int, str, str]] = []
    worker = threading.Thread(
        target=lambda: outcome.append(run_exit("inspect_license", str(fifo))), daemon=True
    )

    worker.start()
    worker.join(timeout=10)
    if worker.is_alive():
        # Unblock the hung open() so the thread ends, then fail.
        with open(fifo, "wb"):
            pass
        worker.join(timeout=10)
        pytest.fail("inspect_license hung on a FIFO")

    status, out, err = outcome[0]
    assert (status, out) == (2, "")
    assert "Cannot read" in err and "not a regular file (a FIFO)" in err


@pytest.mark.django_db
def test_inspect_license_refuses_a_device_with_exit_2(frozen_clock):
    status, out, err = run_exit("inspect_license", "/dev/zero")

    assert (status, out) == (2, "")
    assert "not a regular file (a character device)" in err

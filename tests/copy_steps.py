"""Copies of one installation in one test database: what a cloned console holds.

A copy of a console's database differs from the original, once they run apart, only in
what the console writes for itself: its registration state and chain value, its seal,
its challenges. ConsoleCopy keeps those fields of the installation row for one copy and
puts them in place while that copy "runs" (the vendor's tables, which a real copy does
not share, stay as they are). The same interleavings with really copied databases and
real console processes are in tests/test_copy_processes.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from registration import clock
from registration.authority.binding import PhoneResult, verify_for_phone
from registration.flows.challenge import refresh_challenge
from registration.flows.code import Outcome, submit_code
from registration.models import ChallengeState, Installation, QrChallenge

# What a console writes for itself on its installation row.
OWN_FIELDS = ("state", "registered_at", "registration_seal", "chain", "version")


@dataclass
class ConsoleCopy:
    """One copy of the installation: its own row fields, saved while another copy runs."""

    name: str
    fields: dict[str, object] = field(default_factory=dict)

    @classmethod
    def of_current(cls, name: str) -> ConsoleCopy:
        """A copy of the database as it is now (a snapshot, a cloned volume)."""
        row = Installation.objects.get()
        return cls(name, {f: getattr(row, f) for f in OWN_FIELDS})

    @contextmanager
    def running(self) -> Iterator[None]:
        """Put this copy's fields in place; keep what it wrote when it stops."""
        Installation.objects.update(**self.fields)
        QrChallenge.objects.filter(state=ChallengeState.OPEN).update(
            state=ChallengeState.SUPERSEDED, closed_at=clock.now(), code_verifier=""
        )
        try:
            yield
        finally:
            row = Installation.objects.get()
            self.fields = {f: getattr(row, f) for f in OWN_FIELDS}

    @property
    def chain(self) -> str:
        return str(self.fields["chain"])

    def scan(self) -> tuple[QrChallenge, PhoneResult]:
        """Make a QR code (Refresh or Re-register) and scan it with the phone."""
        with self.running():
            challenge = refresh_challenge().challenge
            assert challenge is not None
            return challenge, verify_for_phone(challenge.token, now=clock.now())

    def scan_and_register(self) -> PhoneResult:
        """Scan a new QR code and, if the phone shows a code, type it in."""
        with self.running():
            challenge = refresh_challenge().challenge
            assert challenge is not None
            result = verify_for_phone(challenge.token, now=clock.now())
            if result.ok:
                assert submit_code(result.code).outcome == Outcome.ACCEPTED
            return result

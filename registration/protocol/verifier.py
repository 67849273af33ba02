"""The code verifier: what the console keeps of a challenge's code, instead of K or the code.

    salt     = HMAC-SHA256(pepper, "licserver/code-verifier/v1\n" || SHA-256(canonical bytes))
    verifier = scrypt(code, salt, N, r, p, 32 bytes)
    stored   = "scrypt$N$r$p$" || hex(verifier)

The pepper is a secret derived from the console's SECRET_KEY (flows.challenge), so a copy
of the database alone cannot test a single code; the salt binds the verifier to one
challenge, so one verifier says nothing about another; scrypt makes each guess cost
memory and time, so even a reader of the database *and* the settings must try up to
10^6 codes within the challenge's 5 minutes (docs/protocol.md gives the cost).

Pure: no Django, no settings.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

VERIFIER_CONTEXT = b"licserver/code-verifier/v1\n"
VERIFIER_BYTES = 32
MAX_MEMORY_BYTES = 256 * 2**20
_STORED = re.compile(r"scrypt\$(\d{1,8})\$(\d{1,3})\$(\d{1,3})\$([0-9a-f]{64})")


@dataclass(frozen=True)
class ScryptCost:
    """scrypt's cost: n (a power of two), r and p; memory is 128 * n * r bytes."""

    n: int
    r: int
    p: int

    def __post_init__(self) -> None:
        if self.n < 2 or self.n & (self.n - 1) or not 1 <= self.r <= 64 or not 1 <= self.p <= 16:
            raise ValueError("scrypt cost: n must be a power of two >= 2, r 1..64, p 1..16")
        # A stored value names its own cost: never let one ask for more memory than this.
        if self.memory_bytes > MAX_MEMORY_BYTES:
            raise ValueError("scrypt cost: more than 256 MiB of memory per check")

    @property
    def memory_bytes(self) -> int:
        return 128 * self.n * self.r * self.p


def _salt(pepper: bytes, challenge_digest: bytes) -> bytes:
    return hmac.digest(pepper, VERIFIER_CONTEXT + challenge_digest, "sha256")


def _scrypt(code: str, salt: bytes, cost: ScryptCost) -> bytes:
    return hashlib.scrypt(
        code.encode("ascii"),
        salt=salt,
        n=cost.n,
        r=cost.r,
        p=cost.p,
        maxmem=cost.memory_bytes + 2**20,
        dklen=VERIFIER_BYTES,
    )


def make_verifier(code: str, challenge_digest: bytes, pepper: bytes, cost: ScryptCost) -> str:
    """Return the stored form of a code's verifier for one challenge."""
    verifier = _scrypt(code, _salt(pepper, challenge_digest), cost)
    return f"scrypt${cost.n}${cost.r}${cost.p}${verifier.hex()}"


def check_verifier(stored: str, code: str, challenge_digest: bytes, pepper: bytes) -> bool:
    """Tell whether code matches the stored verifier (constant-time comparison).

    The cost is read from the stored value, so a challenge made before a change of the
    cost settings is still checked as it was made. A malformed value never matches.
    """
    match = _STORED.fullmatch(stored)
    if match is None or not code.isascii():
        return False
    try:
        cost = ScryptCost(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return False
    given = _scrypt(code, _salt(pepper, challenge_digest), cost)
    return hmac.compare_digest(given, bytes.fromhex(match[4]))

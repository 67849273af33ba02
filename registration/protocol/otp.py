"""One-time-password building blocks: RFC 4226 truncation, RFC 5869 HKDF, RFC 6287 OCRA.

Pure functions of their arguments: no Django, no settings, no clock. tests/test_rfc_vectors.py
checks each one against the RFCs' published test vectors.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from functools import lru_cache

_SHA256_BYTES = 32
# RFC 5869 2.2: an absent salt is HashLen zero bytes.
_ZERO_SALT = bytes(_SHA256_BYTES)
_HASH_BYTES = {"SHA1": 20, "SHA256": 32, "SHA512": 64}
# RFC 6287 5.1: Q is always 128 bytes; the counter and the timestamp 8 bytes each.
_QUESTION_BYTES = 128
_STEP_SECONDS = {"S": 1, "M": 60, "H": 3600}
# RFC 6287 6.3, table 3: [1-59]S, [1-59]M, [0-48]H; 0H (a zero step) is refused.
_MAX_STEPS = {"S": 59, "M": 59, "H": 48}
# [0-9], not \d: \d also matches non-ASCII digits.
_SUITE = re.compile(
    r"OCRA-1:HOTP-(?P<hash>SHA1|SHA256|SHA512)-(?P<digits>0|[4-9]|10):"
    r"(?P<counter>C-)?Q(?P<format>[ANH])(?P<length>[0-9]{2})"
    r"(?:-P(?P<password>SHA1|SHA256|SHA512))?"
    r"(?:-S(?P<session>[0-9]{3}))?"
    r"(?:-T(?P<step>[1-9][0-9]?)(?P<unit>[SMH]))?"
)
_QUESTION = {"N": re.compile(r"[0-9]+"), "H": re.compile(r"[0-9A-Fa-f]+")}


def dynamic_truncate(digest: bytes, digits: int) -> str:
    """Return the RFC 4226 5.3 dynamic truncation of an HMAC digest as `digits` digits."""
    if not 1 <= digits <= 10:
        raise ValueError("digits must be 1 to 10: the truncated number has 31 bits")
    if len(digest) < 20:
        raise ValueError("the digest must have at least 20 bytes (SHA-1's length)")
    offset = digest[-1] & 0x0F
    number = int.from_bytes(digest[offset : offset + 4], "big") & 0x7FFFFFFF
    return str(number % 10**digits).zfill(digits)


# RFC 2104's pads, as translation tables: key.translate(_IPAD) is key XOR 0x36.., in C.
_SHA256_BLOCK = 64
_IPAD = bytes(byte ^ 0x36 for byte in range(256))
_OPAD = bytes(byte ^ 0x5C for byte in range(256))
_sha256 = hashlib.sha256


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    """Return RFC 2104 HMAC-SHA256 of message under key (same bytes as hmac.digest).

    Written out because every code and every scan takes several: hmac.digest looks the
    digest up by name in OpenSSL on each call, which costs more than the two hashes
    (bench row 2). Checked against RFC 4231's vectors and hmac.digest in the tests.
    """
    if len(key) > _SHA256_BLOCK:
        key = _sha256(key).digest()
    key = key.ljust(_SHA256_BLOCK, b"\x00")
    inner = _sha256(key.translate(_IPAD) + message).digest()
    return _sha256(key.translate(_OPAD) + inner).digest()


def hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """Return `length` bytes of RFC 5869 HKDF-SHA256 (extract, then expand)."""
    if not 1 <= length <= 255 * _SHA256_BYTES:
        raise ValueError(f"length must be 1 to {255 * _SHA256_BYTES} bytes")
    prk = hmac_sha256(salt or _ZERO_SALT, ikm)
    block = hmac_sha256(prk, info + b"\x01")
    if length <= _SHA256_BYTES:
        return block[:length]
    blocks = [block]
    for counter in range(2, -(-length // _SHA256_BYTES) + 1):
        block = hmac_sha256(prk, block + info + bytes((counter,)))
        blocks.append(block)
    return b"".join(blocks)[:length]


@dataclass(frozen=True)
class _Suite:
    hash: str
    digits: int
    counter: bool
    question_format: str
    password_bytes: int | None
    session_bytes: int | None
    step_seconds: int | None

    @property
    def plain(self) -> bool:
        """Whether the suite's DataInput is its name and the question, nothing else."""
        return (
            not self.counter
            and self.password_bytes is self.session_bytes is None
            and (self.step_seconds is None)
        )


@lru_cache(maxsize=64)
def _suite_prefix(suite: str) -> bytes:
    return suite.encode("ascii") + b"\x00"


@lru_cache(maxsize=64)
def _parse_suite(suite: str) -> _Suite:
    match = _SUITE.fullmatch(suite)
    if match is None:
        raise ValueError(f"malformed or unsupported OCRA suite: {suite!r}")
    if match["digits"] == "0":
        raise ValueError("OCRA suites without truncation (digits 0) are not supported")
    if not 4 <= int(match["length"]) <= 64:
        raise ValueError("the question length of an OCRA suite must be 04 to 64")
    session = match["session"]
    if session is not None and not 1 <= int(session) <= 512:
        raise ValueError("the session length of an OCRA suite must be 001 to 512")
    step_seconds = None
    if match["step"] is not None:
        steps, unit = int(match["step"]), match["unit"]
        if steps > _MAX_STEPS[unit]:
            raise ValueError(f"an OCRA time step allows at most {_MAX_STEPS[unit]}{unit}")
        step_seconds = steps * _STEP_SECONDS[unit]
    return _Suite(
        hash=match["hash"],
        digits=int(match["digits"]),
        counter=match["counter"] is not None,
        question_format=match["format"],
        password_bytes=_HASH_BYTES[match["password"]] if match["password"] else None,
        session_bytes=int(session) if session is not None else None,
        step_seconds=step_seconds,
    )


def _question_bytes(question_format: str, question: str) -> bytes:
    # Only the 128-byte field bounds the question, not the suite's length: mutual
    # challenge-response concatenates both parties' challenges (RFC 6287 C.2 uses
    # 16 characters under QA08).
    if question_format == "A":
        if not (question.isascii() and question.isalnum()):
            raise ValueError("an A question must be ASCII letters and digits")
        if len(question) > _QUESTION_BYTES:
            raise ValueError("the question does not fit OCRA's 128-byte Q")
        return question.encode("ascii").ljust(_QUESTION_BYTES, b"\x00")
    if _QUESTION[question_format].fullmatch(question) is None:
        kind = "decimal" if question_format == "N" else "hexadecimal"
        raise ValueError(f"an {question_format} question must be {kind} digits")
    # The reference implementation (RFC 6287 appendices A and B) writes an N question as
    # a hexadecimal number and pads either kind with "0" hex digits on the right, so an
    # odd number of digits shifts by a nibble; do the same to agree with it.
    hex_digits = format(int(question), "X") if question_format == "N" else question
    if len(hex_digits) > 2 * _QUESTION_BYTES:
        raise ValueError("the question does not fit OCRA's 128-byte Q")
    return bytes.fromhex(hex_digits.ljust(2 * _QUESTION_BYTES, "0"))


def ocra_message(
    suite: str,
    question: str,
    *,
    counter: int | None = None,
    password_hash: bytes | None = None,
    session: bytes | None = None,
    timestamp: int | None = None,
) -> bytes:
    """Return the RFC 6287 5.1 DataInput: suite, 0x00, C, Q, P, S and T as the suite says.

    timestamp is Unix time in seconds; the suite's time step turns it into T.
    """
    parsed = _parse_suite(suite)
    parts = [suite.encode("ascii"), b"\x00"]
    if parsed.counter != (counter is not None):
        raise ValueError(f"{suite} {'needs' if parsed.counter else 'takes no'} counter")
    if counter is not None:
        if not 0 <= counter < 1 << 64:
            raise ValueError("the counter must fit in 8 unsigned bytes")
        parts.append(counter.to_bytes(8, "big"))
    parts.append(_question_bytes(parsed.question_format, question))
    if (parsed.password_bytes is not None) != (password_hash is not None):
        raise ValueError(f"{suite} {'needs' if parsed.password_bytes else 'takes no'} password")
    if password_hash is not None:
        if len(password_hash) != parsed.password_bytes:
            raise ValueError(f"the password hash must have {parsed.password_bytes} bytes")
        parts.append(password_hash)
    if (parsed.session_bytes is not None) != (session is not None):
        raise ValueError(f"{suite} {'needs' if parsed.session_bytes else 'takes no'} session")
    if session is not None:
        if len(session) > parsed.session_bytes:
            raise ValueError(
                f"the session information must have at most {parsed.session_bytes} bytes"
            )
        # The reference implementation pads short session information on the left.
        parts.append(session.rjust(parsed.session_bytes, b"\x00"))
    if (parsed.step_seconds is not None) != (timestamp is not None):
        raise ValueError(f"{suite} {'needs' if parsed.step_seconds else 'takes no'} timestamp")
    if timestamp is not None:
        if timestamp < 0:
            raise ValueError("the timestamp must not be before 1970")
        parts.append((timestamp // parsed.step_seconds).to_bytes(8, "big"))
    return b"".join(parts)


def ocra(
    suite: str,
    key: bytes,
    question: str,
    *,
    counter: int | None = None,
    password_hash: bytes | None = None,
    session: bytes | None = None,
    timestamp: int | None = None,
) -> str:
    """Return the RFC 6287 OCRA response of `key` to `question` under `suite`.

    Raise ValueError for a malformed or unsupported suite, or an input the suite does not
    name (or a named one missing). timestamp is Unix time in seconds.
    """
    parsed = _parse_suite(suite)
    if parsed.plain and counter is password_hash is session is timestamp is None:
        # Suites with a question only (this product's): DataInput is suite, 0x00, Q.
        message = _suite_prefix(suite) + _question_bytes(parsed.question_format, question)
    else:
        message = ocra_message(
            suite,
            question,
            counter=counter,
            password_hash=password_hash,
            session=session,
            timestamp=timestamp,
        )
    if parsed.hash == "SHA256":
        return dynamic_truncate(hmac_sha256(key, message), parsed.digits)
    return dynamic_truncate(hmac.digest(key, message, parsed.hash.lower()), parsed.digits)

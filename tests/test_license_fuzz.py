"""Mutated licenses: nothing but the original is ever accepted, and nothing raises.

The property, precisely: for any mutant of a valid license, ``validate()`` returns (never
raises), and either

* it accepts the mutant, the License it yields equals the original, and the mutant is the
  original text up to what the armor tolerates (CRLF line ends, trailing blanks on a line,
  trailing blank lines); or
* it refuses the mutant with exactly one cause, ``license_content_incorrect``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.conf import settings
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from registration.protocol.causes import Cause, CauseCode, validate
from tests.conftest import local_facts, make_license

INCORRECT = (Cause(CauseCode.LICENSE_CONTENT_INCORRECT),)


def normalized(data: bytes) -> str | None:
    """Return data as the armor reads it (CRLF, trailing blanks dropped), or None."""
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        return None
    lines = [line.rstrip(" \t") for line in text.replace("\r\n", "\n").split("\n")]
    while lines and lines[-1] == "":
        lines.pop()
    return "\n".join(lines)


@dataclass(frozen=True)
class Original:
    lic: object
    data: bytes


@pytest.fixture
def original(sign) -> Original:
    lic = make_license()
    return Original(lic, sign(lic).encode("ascii"))


def check_mutant(original: Original, mutant: bytes) -> None:
    result = validate(
        mutant,
        "container",
        local_facts(),
        settings.LICENSE_PUBLIC_KEYS,
        settings.LICENSE_MAX_BYTES,
    )
    if result.license is not None:
        assert result.accepted, result.codes
        assert result.license == original.lic
        assert result.license.kid == original.lic.kid
        assert normalized(mutant) == normalized(original.data)
    else:
        assert result.causes == INCORRECT


def apply(data: bytes, mutation: tuple) -> bytes:
    kind, where, what = mutation
    if not data:
        return what if kind == "insert" else data
    index = where % (len(data) + (1 if kind == "insert" else 0))
    if kind == "flip":
        return data[:index] + bytes([data[index] ^ what]) + data[index + 1 :]
    if kind == "truncate":
        return data[:index]
    return data[:index] + what + data[index:]


# Insert both arbitrary bytes and the ones the armor treats specially.
interesting = st.sampled_from(
    [b" ", b"\t", b"\r", b"\n", b"\r\n", b"=", b"A", b"+", b"/", b"-", b"\x00", b"\xff", b"{"]
)
mutations = st.one_of(
    st.tuples(st.just("flip"), st.integers(min_value=0), st.integers(min_value=1, max_value=255)),
    st.tuples(st.just("truncate"), st.integers(min_value=0), st.none()),
    st.tuples(
        st.just("insert"),
        st.integers(min_value=0),
        st.one_of(interesting, st.binary(min_size=1, max_size=8)),
    ),
)


@hsettings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.lists(mutations, min_size=1, max_size=3))
def test_mutants_are_never_accepted_and_never_raise(original, chain):
    mutant = original.data
    for mutation in chain:
        mutant = apply(mutant, mutation)
    check_mutant(original, mutant)


def test_the_unmutated_license_is_accepted(original):
    result = validate(
        original.data,
        "container",
        local_facts(),
        settings.LICENSE_PUBLIC_KEYS,
        settings.LICENSE_MAX_BYTES,
    )
    assert result.accepted
    assert result.license == original.lic


def test_every_single_bit_flip_is_refused(original):
    # Exhaustive over positions for one bit per byte: no bit of a license is spare.
    for index in range(len(original.data)):
        for bit in (0x01, 0x20, 0x80):
            check_mutant(original, apply(original.data, ("flip", index, bit)))


def test_every_truncation_is_refused_except_trailing_newline(original):
    for length in range(len(original.data)):
        mutant = original.data[:length]
        check_mutant(original, mutant)
    # Dropping only the final newline leaves the same license.
    assert normalized(original.data[:-1]) == normalized(original.data)

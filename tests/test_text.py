"""The one text rule (registration/protocol/text.py): no control characters and no
invisible format characters, wherever a license field or a node name is read."""

from __future__ import annotations

import os
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from registration.protocol.text import CONTROL, has_control_characters

ROOT = Path(__file__).resolve().parent.parent
# Invisible or reordering: zero-width space, left-to-right mark, right-to-left override,
# left-to-right isolate, byte order mark, soft hyphen, word joiner, a tag character.
FORMAT_CHARACTERS = ["\u200b", "\u200e", "\u202e", "\u2066", "\ufeff", "\u00ad", "\u2060"]
FORMAT_CHARACTERS.append("\U000e0041")


@pytest.mark.parametrize("char", FORMAT_CHARACTERS, ids=lambda c: f"U+{ord(c):04X}")
def test_format_characters_are_refused_like_control_characters(char):
    assert unicodedata.category(char) == "Cf"
    assert has_control_characters(f"Acme{char}Ltd")
    assert has_control_characters(char)


def test_every_format_character_the_running_python_knows_is_refused():
    # The rule is written out; this keeps it whole when a newer Unicode adds one.
    missing = [
        f"U+{code:04X}"
        for code in range(sys.maxunicode + 1)
        if unicodedata.category(chr(code)) == "Cf" and not CONTROL.fullmatch(chr(code))
    ]
    assert missing == [], f"add to text._FORMAT_CHARACTERS (Unicode {unicodedata.unidata_version})"


def test_control_characters_are_still_refused():
    for char in ("\x00", "\t", "\n", "\x7f", "\x85", "\u2028", "\u2029"):
        assert has_control_characters(f"a{char}b"), repr(char)


@pytest.mark.parametrize(
    "text", ["Acme Ltd", "Müller & Söhne GmbH", "株式会社アクメ", "شركة أكمي", "Ωmega-2 (reports)"]
)
def test_visible_text_in_any_script_passes(text):
    assert not has_control_characters(text)


def test_only_format_and_control_characters_are_refused():
    refused = {
        unicodedata.category(chr(code))
        for code in range(sys.maxunicode + 1)
        if CONTROL.fullmatch(chr(code))
    }
    # Cn: code points that Unicode 15.1 made format characters, unassigned in older ones.
    assert refused <= {"Cc", "Cf", "Zl", "Zp", "Cn"}


@pytest.mark.parametrize("char", ["\u202e", "\u200b", "\ufeff"], ids=lambda c: f"U+{ord(c):04X}")
def test_a_node_name_with_a_format_character_stops_start_up(char, tmp_path):
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "CACHE"))},
        "LICSERVER_VAR_DIR": str(tmp_path),
        "SECRET_KEY": "x" * 50,
        "NODE_NAME": f"node{char}a",
    }
    done = subprocess.run(
        [sys.executable, "-c", "import licserver.settings"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode != 0
    assert "NODE_NAME must be a name without control or invisible format characters" in (
        done.stderr
    )

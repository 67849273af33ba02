"""The registration chain on the vendor's side: how copies of an installation are caught.

Rules, in plain words (docs/protocol.md, "Copies of an installation"):
- every version-2 challenge carries the console's chain value, masked under its key K;
  an accepted code moves the console on to next_chain(challenge, value, code), which the
  vendor, who showed the code, can compute too;
- per binding the vendor keeps the tip (the last value the installation presented) and
  the successors the codes it showed since would lead to;
- a challenge carrying the tip is normal (a Refresh, a scan whose code was never typed,
  two nodes of one cluster); one carrying a successor is normal and moves the tip there;
- a value the installation had before (an older tip, or a successor another scan has
  since overtaken) comes from a copy: the binding is marked copied and every scan of it
  is refused until support staff choose the copy to keep (support.resolve_copy);
- a past value in a token made before the vendor saw the installation move past it, or
  within CHAIN_STALE_GRACE_SECONDS after (a superseded QR code, a reloaded page, a link
  opened again; the grace covers the two clocks' disagreement) is stale: refused,
  nothing marked;
- any other value is refused and marks nothing: tokens carry the value masked under
  their key, so only the installation (and its copies) knows one, and a token made from
  the license file alone can neither pass nor lock the live installation out. Except on
  a binding a version-1 console made, whose tip was adopted from the first version-2
  scan: nothing proved who that was, so another value is a conflict for support;
- version-1 tokens carry no chain: no copy check is possible, and the page says so; once
  a version-2 console has presented a value for the binding they are refused (a downgrade).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from django.conf import settings

from registration.authority.models import Binding
from registration.protocol.challenge import Challenge


class ChainVerdict(StrEnum):
    NOT_CHECKED = "not_checked"  # a version-1 token
    DOWNGRADE = "downgrade"  # a version-1 token for a binding a version-2 console has used
    FIRST = "first"  # the binding has no tip yet
    AT_TIP = "at_tip"
    ADVANCED = "advanced"  # a successor: the installation registered with a shown code
    COPY = "copy"  # a value the installation had before: what a copy of it carries
    # A value the installation never had (or had more than CHAIN_HISTORY_MAX tips ago).
    # The value travels masked under the challenge's key, so nobody who only saw tokens
    # knows one: this is a token made from the license file alone. Refused, and the
    # binding is not marked, so it cannot be used to lock the live installation out.
    UNKNOWN = "unknown"
    # A past value in a token made before the vendor saw the installation move past it:
    # a superseded QR code (another node's, an old tab), a reloaded page, a link opened
    # again. Not a copy (a copy's tokens carrying it are made after); refused, nothing
    # marked.
    STALE = "stale"
    REFUSED = "refused"  # support chose another copy, or the binding is marked copied


def classify(binding: Binding | None, challenge: Challenge, value: bytes) -> ChainVerdict:
    """Say what a challenge's chain value (unmasked: challenge.chain_value) means for its
    installation's binding."""
    own = binding is not None and binding.installation_id == challenge.installation_id
    if own and binding.copied_at is not None:
        return ChainVerdict.REFUSED  # whatever the version: a marked binding waits for support
    if challenge.version < 2:
        # Once a version-2 console presented a value, a version-1 token for the same
        # installation is a downgrade or a token made from the file: nothing to check it by.
        # Not on an adopted binding: whose value it adopted is not known (support decides).
        if own and binding.chain_tip and binding.chain_adopted_at is None:
            return ChainVerdict.DOWNGRADE
        return ChainVerdict.NOT_CHECKED
    if not own:
        return ChainVerdict.FIRST
    text = value.hex()
    if text in binding.chain_refused:
        return ChainVerdict.REFUSED
    if not binding.chain_tip:
        return ChainVerdict.FIRST
    if text == binding.chain_tip:
        return ChainVerdict.AT_TIP
    if any(entry[0] == text for entry in binding.chain_successors):
        return ChainVerdict.ADVANCED
    # The newest entry for the value: one support kept may have an older one.
    past = next((entry for entry in reversed(binding.chain_past) if entry[0] == text), None)
    if past is not None:
        # [value, shown at, overtaken at] (migration 0010 gave older entries the third).
        overtaken = datetime.fromisoformat(past[2]) if len(past) > 2 and past[2] else None
        grace = timedelta(seconds=settings.CHAIN_STALE_GRACE_SECONDS)
        if overtaken is not None and challenge.issued_at < overtaken.replace(microsecond=0) + grace:
            return ChainVerdict.STALE
        return ChainVerdict.COPY
    if binding.chain_adopted_at is not None:
        # The tip was adopted from whoever scanned first after a version-1 console bound
        # the license (see Binding.chain_adopted_at): two parties now claim to be the
        # installation, and support staff choose, as between copies.
        return ChainVerdict.COPY
    return ChainVerdict.UNKNOWN


def advance(binding: Binding, value: bytes, verdict: ChainVerdict, now: datetime) -> None:
    """Move the tip to the challenge's value when it is a successor (or the first one)."""
    text = value.hex()
    if verdict == ChainVerdict.FIRST:
        if binding.pk is not None and not binding.chain_tip:
            binding.chain_adopted_at = now  # bound by a version-1 console
        binding.chain_tip, binding.chain_tip_shown_at = text, None
        binding.chain_successors = []
    elif verdict == ChainVerdict.ADVANCED:
        shown = next(entry[1] for entry in binding.chain_successors if entry[0] == text)
        # Each past value remembers when it was overtaken: tokens made before then are
        # stale, not copies (classify).
        overtaken = [
            [entry[0], entry[1], now.isoformat()]
            for entry in binding.chain_successors
            if entry[0] != text
        ]
        past = [[binding.chain_tip, _iso(binding.chain_tip_shown_at), now.isoformat()], *overtaken]
        binding.chain_past = _capped([*binding.chain_past, *past])
        binding.chain_tip, binding.chain_tip_shown_at = text, datetime.fromisoformat(shown)
        binding.chain_successors = []


def remember_code(binding: Binding, successor: bytes, now: datetime) -> None:
    """Record where the code just shown would lead (kept until the tip moves on)."""
    text = successor.hex()
    if any(entry[0] == text for entry in binding.chain_successors):
        return  # a reload of the same challenge
    binding.chain_successors = _capped([*binding.chain_successors, [text, now.isoformat()]])


def mark_copied(binding: Binding, value: bytes, now: datetime) -> None:
    """Mark the binding as copied, remembering the copy's value and when it registered."""
    text = value.hex()
    binding.copied_at = now
    binding.copy_chain = text
    shown = next((entry[1] for entry in binding.chain_past if entry[0] == text), None)
    binding.copy_shown_at = datetime.fromisoformat(shown) if shown else None


def other_copy_registered_at(binding: Binding) -> datetime:
    """When the copy at the tip last registered (when its value was adopted, or its first
    binding, if it never has)."""
    return binding.chain_tip_shown_at or binding.chain_adopted_at or binding.first_bound


def keep_copy(binding: Binding, keep_tip: bool) -> None:
    """Resolve a copied binding: the chosen copy goes on, the other's values are refused."""
    if keep_tip:
        refused = [binding.copy_chain]
    else:
        refused = [binding.chain_tip, *(entry[0] for entry in binding.chain_successors)]
        binding.chain_tip, binding.chain_tip_shown_at = binding.copy_chain, binding.copy_shown_at
        binding.chain_successors = []
        # The kept copy's value is the tip again, no longer a past one.
        binding.chain_past = [
            entry for entry in binding.chain_past if entry[0] != binding.chain_tip
        ]
    binding.chain_refused = [*binding.chain_refused, *refused][-settings.CHAIN_HISTORY_MAX :]
    binding.copied_at, binding.copy_chain, binding.copy_shown_at = None, "", None
    # Support has vouched for the copy kept: no longer a value adopted from anyone.
    binding.chain_adopted_at = None


def _capped(entries: list) -> list:
    # Oldest first; the limit keeps a binding row small (CHAIN_HISTORY_MAX entries).
    return entries[-settings.CHAIN_HISTORY_MAX :]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None

"""The registration chain on the vendor's side: how copies of an installation are caught.

Rules, in plain words (docs/protocol.md, "Copies of an installation"):
- every version-2 challenge carries the console's chain value; an accepted code moves the
  console on to next_chain(challenge, code), which the vendor, who showed the code, can
  compute too;
- per binding the vendor keeps the tip (the last value the installation presented) and
  the successors the codes it showed since would lead to;
- a challenge carrying the tip is normal (a Refresh, a scan whose code was never typed,
  two nodes of one cluster); one carrying a successor is normal and moves the tip there;
- anything else comes from a copy (an older value, or a successor another scan has
  since overtaken): the binding is marked copied and every scan of it is refused until
  support staff choose the copy to keep (support.resolve_copy);
- version-1 tokens carry no chain: no copy check is possible, and the page says so.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from django.conf import settings

from registration.authority.models import Binding
from registration.protocol.challenge import Challenge


class ChainVerdict(StrEnum):
    NOT_CHECKED = "not_checked"  # a version-1 token
    FIRST = "first"  # the binding has no tip yet
    AT_TIP = "at_tip"
    ADVANCED = "advanced"  # a successor: the installation registered with a shown code
    COPY = "copy"
    REFUSED = "refused"  # support chose another copy, or the binding is marked copied


def classify(binding: Binding | None, challenge: Challenge) -> ChainVerdict:
    """Say what a challenge's chain value means for its installation's binding."""
    if challenge.version < 2:
        return ChainVerdict.NOT_CHECKED
    if binding is None or binding.installation_id != challenge.installation_id:
        return ChainVerdict.FIRST
    value = challenge.chain.hex()
    if binding.copied_at is not None or value in binding.chain_refused:
        return ChainVerdict.REFUSED
    if not binding.chain_tip:
        return ChainVerdict.FIRST
    if value == binding.chain_tip:
        return ChainVerdict.AT_TIP
    if any(entry[0] == value for entry in binding.chain_successors):
        return ChainVerdict.ADVANCED
    return ChainVerdict.COPY


def advance(binding: Binding, challenge: Challenge, verdict: ChainVerdict, now: datetime) -> None:
    """Move the tip to the challenge's value when it is a successor (or the first one)."""
    value = challenge.chain.hex()
    if verdict == ChainVerdict.FIRST:
        binding.chain_tip, binding.chain_tip_shown_at = value, None
        binding.chain_successors = []
    elif verdict == ChainVerdict.ADVANCED:
        shown = next(entry[1] for entry in binding.chain_successors if entry[0] == value)
        overtaken = [entry for entry in binding.chain_successors if entry[0] != value]
        past = [[binding.chain_tip, _iso(binding.chain_tip_shown_at)], *overtaken]
        binding.chain_past = _capped([*binding.chain_past, *past])
        binding.chain_tip, binding.chain_tip_shown_at = value, datetime.fromisoformat(shown)
        binding.chain_successors = []


def remember_code(binding: Binding, successor: bytes, now: datetime) -> None:
    """Record where the code just shown would lead (kept until the tip moves on)."""
    value = successor.hex()
    if any(entry[0] == value for entry in binding.chain_successors):
        return  # a reload of the same challenge
    binding.chain_successors = _capped([*binding.chain_successors, [value, now.isoformat()]])


def mark_copied(binding: Binding, challenge: Challenge, now: datetime) -> None:
    """Mark the binding as copied, remembering the copy's value and when it registered."""
    value = challenge.chain.hex()
    binding.copied_at = now
    binding.copy_chain = value
    shown = next((entry[1] for entry in binding.chain_past if entry[0] == value), None)
    binding.copy_shown_at = datetime.fromisoformat(shown) if shown else None


def was_presented(binding: Binding, challenge: Challenge) -> bool:
    """Whether the challenge's value is one the installation had before (a past tip, or a
    successor another scan overtook): what a copy of it carries."""
    value = challenge.chain.hex()
    return any(entry[0] == value for entry in binding.chain_past)


def other_copy_registered_at(binding: Binding) -> datetime:
    """When the copy at the tip last registered (its first binding if it never has)."""
    return binding.chain_tip_shown_at or binding.first_bound


def keep_copy(binding: Binding, keep_tip: bool) -> None:
    """Resolve a copied binding: the chosen copy goes on, the other's values are refused."""
    if keep_tip:
        refused = [binding.copy_chain]
    else:
        refused = [binding.chain_tip, *(entry[0] for entry in binding.chain_successors)]
        binding.chain_tip, binding.chain_tip_shown_at = binding.copy_chain, binding.copy_shown_at
        binding.chain_successors = []
    binding.chain_refused = [*binding.chain_refused, *refused][-settings.CHAIN_HISTORY_MAX :]
    binding.copied_at, binding.copy_chain, binding.copy_shown_at = None, "", None


def _capped(entries: list) -> list:
    # Oldest first; the limit keeps a binding row small (CHAIN_HISTORY_MAX entries).
    return entries[-settings.CHAIN_HISTORY_MAX :]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None

"""Timing, statistics, goals and the report table the bench prints."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

# Rounds of a comparison: at least MIN_ROUNDS, then more (in steps of ROUND_STEP, up to
# MAX_ROUNDS) while the middle half of the per-round ratios still straddles the goal.
MIN_ROUNDS = 11
ROUND_STEP = 6
MAX_ROUNDS = 41


@dataclass(frozen=True)
class Goal:
    """A limit a figure must stay within: at most (<=) or at least (>=) limit."""

    limit: float
    at_most: bool = True
    unit: str = "x"

    def met(self, value: float) -> bool:
        return value <= self.limit if self.at_most else value >= self.limit

    def __str__(self) -> str:
        return f"{'<=' if self.at_most else '>='} {self.limit:g}{self.unit}"


def at_most(limit: float, unit: str = "x") -> Goal:
    return Goal(limit, True, unit)


def at_least(limit: float, unit: str = "x") -> Goal:
    return Goal(limit, False, unit)


@dataclass
class Ratios:
    """Per-round ratios of a target against its baseline, and the times behind them."""

    values: list[float] = field(default_factory=list)
    targets: list[float] = field(default_factory=list)
    baselines: list[float] = field(default_factory=list)

    def add(self, target: float, baseline: float, ratio: float | None = None) -> None:
        self.targets.append(target)
        self.baselines.append(baseline)
        self.values.append(target / baseline if ratio is None else ratio)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def target(self) -> float:
        return statistics.median(self.targets)

    @property
    def baseline(self) -> float:
        return statistics.median(self.baselines)

    def quartiles(self) -> tuple[float, float]:
        if len(self.values) < 4:
            return min(self.values), max(self.values)
        q1, _, q3 = statistics.quantiles(self.values, n=4, method="inclusive")
        return q1, q3

    def settled(self, goal: Goal) -> bool:
        """Whether the middle half of the rounds agrees on the verdict."""
        q1, q3 = self.quartiles()
        return goal.met(q1) == goal.met(q3)

    def spread(self) -> str:
        return f"{min(self.values):.2f}/{self.median:.2f}/{max(self.values):.2f}"


def rounds(
    one_round: Callable[[int], tuple[float, float] | tuple[float, float, float]],
    goal: Goal,
    *,
    min_rounds: int = MIN_ROUNDS,
    step: int = ROUND_STEP,
    max_rounds: int = MAX_ROUNDS,
) -> Ratios:
    """Run one_round(i) until the verdict is settled; it returns (target, baseline[, ratio]).

    At least min_rounds; then step more at a time, up to max_rounds, while the middle half
    of the per-round ratios still lies on both sides of the goal.
    """
    ratios = Ratios()
    while True:
        for _ in range(min_rounds if not ratios.values else step):
            ratios.add(*one_round(len(ratios.values)))
        if ratios.settled(goal) or len(ratios.values) >= max_rounds:
            return ratios


def compare(
    target: Callable[[], object],
    baseline: Callable[[], object],
    *,
    loops: int,
    goal: Goal,
    paired: bool = False,
    **limits: int,
) -> Ratios:
    """Time target and baseline in rounds; return the per-round ratios.

    paired (for pages, milliseconds a call): each round calls them in turn, call by
    call (paired_ns). Otherwise (functions of microseconds, where a call of the other in
    between would only empty the CPU's caches): loops calls of one, then loops of the
    other, in turn target first and baseline first (block_ns). Either way drift touches
    both alike; the figure is the median of the per-round ratios.
    """
    target(), baseline()  # warm caches and lazy imports

    def one_round(i: int) -> tuple[float, float]:
        if paired:
            return paired_ns(target, baseline, loops)
        if i % 2:
            spent_baseline, spent_target = block_ns(baseline, loops), block_ns(target, loops)
        else:
            spent_target, spent_baseline = block_ns(target, loops), block_ns(baseline, loops)
        return spent_target, spent_baseline

    return rounds(one_round, goal, **limits)


@contextmanager
def _no_garbage_collection() -> Iterator[None]:
    """Collect, then keep the collector off, as timeit does: a collection that one side's
    garbage brings about is not charged to whichever call it lands in."""
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def block_ns(fn: Callable[[], object], loops: int) -> float:
    """Return the mean time of one call of fn over loops calls in a row, in nanoseconds."""
    with _no_garbage_collection():
        start = time.perf_counter_ns()
        for _ in range(loops):
            fn()
        return (time.perf_counter_ns() - start) / loops


def paired_ns(
    target: Callable[[], object], baseline: Callable[[], object], loops: int
) -> tuple[float, float]:
    """Call target and baseline in turn, loops times each; return each one's mean ns.

    Call by call, the order swapping every time, so that whatever changes while a round
    runs (another process, the CPU's clock, a database's background work) falls on both
    alike.
    """
    tick = time.perf_counter_ns
    spent = [0, 0]  # target's, baseline's
    in_order = ((0, target), (1, baseline))
    swapped = in_order[::-1]
    # The garbage collector stays on: a page's garbage is part of what it costs.
    for i in range(loops):
        (first, call_first), (second, call_second) = swapped if i & 1 else in_order
        start = tick()
        call_first()
        middle = tick()
        call_second()
        end = tick()
        spent[first] += middle - start
        spent[second] += end - middle
    return spent[0] / loops, spent[1] / loops


def percentile(values: list[float], pct: float) -> float:
    """Return the pct-th percentile (nearest rank) of values."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def us(ns: float) -> str:
    return f"{ns / 1000:.1f} µs"


def ms(ns: float) -> str:
    return f"{ns / 1e6:.2f} ms"


@dataclass
class Row:
    """One line of the report: a figure, its goal, and whether it meets it.

    ok is None for a skipped row; unsure marks a figure whose rounds straddle the goal
    even after MAX_ROUNDS, which counts as a failure: a verdict that could flip is none.
    """

    number: str
    path: str
    figure: str
    goal: str
    ok: bool | None
    detail: list[str] = field(default_factory=list)
    spread: str = ""
    unsure: bool = False

    @property
    def verdict(self) -> str:
        if self.ok is None:
            return "SKIP"
        if self.unsure:
            return "UNSURE"
        return "PASS" if self.ok else "OVER"

    @property
    def failed(self) -> bool:
        return self.ok is False or (self.ok is not None and self.unsure)


def ratio_row(
    number: str,
    path: str,
    ratios: Ratios,
    goal: Goal,
    detail: list[str],
    *,
    also: list[tuple[str, bool]] = (),
) -> Row:
    """A row for a ratio figure: PASS only if the median and every other check meet."""
    settled = ratios.settled(goal)
    q1, q3 = ratios.quartiles()
    lines = list(detail)
    lines.append(
        f"{len(ratios.values)} rounds; quartiles {q1:.2f}-{q3:.2f}"
        + ("" if settled else f": they straddle the goal {goal}, so the verdict is not stable")
    )
    ok = goal.met(ratios.median) and all(passed for _, passed in also)
    for text, passed in also:
        lines.append(f"{text} ({'PASS' if passed else 'OVER'})")
    return Row(
        number,
        path,
        f"{ratios.median:.2f}x",
        str(goal),
        ok,
        lines,
        spread=ratios.spread(),
        unsure=not settled,
    )


HEADER = f"{'#':<3} {'path':<52} {'figure':<12} {'min/median/max':<16} {'goal':<15} verdict"


def print_row(row: Row) -> None:
    print(
        f"{row.number:<3} {row.path:<52} {row.figure:<12} {row.spread:<16} "
        f"{row.goal:<15} {row.verdict}"
    )
    for line in row.detail:
        print(f"      {line}")

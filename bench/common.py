"""Timing, statistics and the report table the bench prints."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field


def per_call_ns(fn: Callable[[], object], loops: int) -> float:
    """Return the mean time of one call of fn over loops calls, in nanoseconds."""
    start = time.perf_counter_ns()
    for _ in range(loops):
        fn()
    return (time.perf_counter_ns() - start) / loops


def compare(
    target: Callable[[], object],
    baseline: Callable[[], object],
    *,
    loops: int,
    repeats: int = 7,
) -> tuple[float, float, float]:
    """Time target and baseline in alternation; return (target_ns, baseline_ns, ratio).

    Each repeat times both back to back, so drift (CPU frequency, a neighbour's load)
    touches both alike; the figures are medians over the repeats, the ratio the median
    of the per-repeat ratios.
    """
    target(), baseline()  # warm caches and lazy imports
    targets, baselines, ratios = [], [], []
    for _ in range(repeats):
        t = per_call_ns(target, loops)
        b = per_call_ns(baseline, loops)
        targets.append(t)
        baselines.append(b)
        ratios.append(t / b)
    return statistics.median(targets), statistics.median(baselines), statistics.median(ratios)


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
    """One line of the report: a figure, its goal, and whether it meets it."""

    number: str
    path: str
    figure: str
    goal: str
    ok: bool | None  # None: skipped or informational
    detail: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        return {True: "PASS", False: "OVER", None: "SKIP"}[self.ok]


def le(value: float, limit: float) -> bool:
    return value <= limit


def print_row(row: Row) -> None:
    print(f"{row.number:<3} {row.path:<56} {row.figure:<14} {row.goal:<15} {row.verdict}")
    for line in row.detail:
        print(f"      {line}")

"""What an alert says, for the person reading it: the PID's display name and figures in the
reader's unit system ("Engine coolant temperature 90 °C above 85 °C").

A threshold alert keeps its condition as it fired (``Alert.op``, ``threshold``, ``duration_s``,
``while_parked``, in the PID's stored unit), so each reader gets the text in their own units: a
shared vehicle's owner may read °F while a viewer reads °C. Pure: no database.
"""

import math
from dataclasses import dataclass

from obd2_dashboard.pids.definitions import builtin
from obd2_dashboard.units.service import pid_display
from obd2_dashboard.units.table import UnitSystem, tidy


def pid_label(pid: str) -> str:
    """The PID's display name ("Engine coolant temperature"), or its name when it has none."""
    known = builtin(pid)
    return known.display_name if known is not None else pid


@dataclass(frozen=True, slots=True)
class ThresholdFacts:
    """A threshold alert's condition and reading, in the PID's stored unit."""

    pid: str
    op: str
    threshold: float
    duration_s: int
    while_parked: bool
    value: float | None


def _readable(value: float) -> str:
    """Four significant digits, never an exponent: 57.17 mph, 11.83 V, 2500 rpm, 239 °F."""
    value = tidy(value)
    if not math.isfinite(value) or abs(value) >= 1000:
        return f"{value:.0f}"
    return f"{value:.4g}"


def _figure(value: float, unit: str) -> str:
    return f"{_readable(value)} {unit}" if unit else _readable(value)


def threshold_text(facts: ThresholdFacts, system: UnitSystem) -> str:
    """``Vehicle speed 57 mph above 50 mph for 2 s``: in ``system``; fuel economy turns round in
    mpg (above in L/100 km is below in mpg)."""
    display = pid_display(facts.pid, system)
    above = facts.op == "above"
    if display.conversion is not None and display.conversion.inverse:
        above = not above
    reading = "?" if facts.value is None else _figure(display.value(facts.value), display.unit)
    limit = _figure(display.value(facts.threshold), display.unit)
    text = f"{pid_label(facts.pid)} {reading} {'above' if above else 'below'} {limit}"
    if facts.duration_s:
        text += f" for {facts.duration_s} s"
    if facts.while_parked:
        text += " while parked"
    return text

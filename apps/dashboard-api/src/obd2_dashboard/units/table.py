"""The one table of units: each canonical (storage) unit, its symbol, and what it is shown as in
each unit system.

Storage keeps one canonical unit per PID (metric, as python-OBD decodes it); conversion happens
only on the way out (display, exports, alert messages) and for values a person types in (alert
thresholds). Everything is keyed by the canonical unit, never by a PID, so a PID that appears later
with a known unit converts without a change here.

The web UI reads this table through ``GET /api/v1/units``: it is the only copy.
"""

import math
from dataclasses import dataclass
from enum import StrEnum


class UnitSystem(StrEnum):
    metric = "metric"
    imperial_us = "imperial_us"
    imperial_uk = "imperial_uk"


SYSTEM_LABELS: dict[UnitSystem, str] = {
    UnitSystem.metric: "Metric (km/h, °C, kPa, L/100 km)",
    UnitSystem.imperial_us: "Imperial, US gallons (mph, °F, psi, mpg US)",
    UnitSystem.imperial_uk: "Imperial, UK gallons (mph, °F, psi, mpg UK)",
}

# Definitions, all exact by international agreement except where said.
KM_PER_MILE = 1.609344
M_PER_FOOT = 0.3048
L_PER_US_GALLON = 3.785411784
L_PER_UK_GALLON = 4.54609
KG_PER_POUND = 0.45359237
STANDARD_GRAVITY = 9.80665  # m/s², to turn pound-mass into pound-force
PA_PER_PSI = KG_PER_POUND * STANDARD_GRAVITY / 0.0254**2
# Conventional values (NIST SP 811): inch of mercury at 0 °C, inch of water at 39.2 °F.
PA_PER_INHG = 3386.389
PA_PER_INH2O = 249.082
NM_PER_LBF_FT = KG_PER_POUND * STANDARD_GRAVITY * M_PER_FOOT
KW_PER_HP = 550 * NM_PER_LBF_FT / 1000  # mechanical horsepower: 550 ft·lbf/s


@dataclass(frozen=True, slots=True)
class Conversion:
    """How a canonical value is shown in another unit.

    Linear: ``shown = value * scale + offset``. Inverse (fuel economy, where L/100 km and mpg run
    opposite ways): ``shown = scale / value``; a smaller canonical value is a larger shown one,
    so "below" in one is "above" in the other, and 0 L/100 km is infinitely many mpg.
    """

    unit: str
    scale: float = 1.0
    offset: float = 0.0
    inverse: bool = False
    # Other spellings of ``unit`` as loggers write it (Torque's CSV: "miles", "ft-lb").
    aliases: tuple[str, ...] = ()

    def to_unit(self, value: float) -> float:
        if self.inverse:
            return math.inf if value == 0 else self.scale / value
        return value * self.scale + self.offset

    def from_unit(self, value: float) -> float:
        if self.inverse:
            return math.inf if value == 0 else self.scale / value
        return (value - self.offset) / self.scale


@dataclass(frozen=True, slots=True)
class CanonicalUnit:
    """A unit values are stored in. ``aliases`` are other spellings of it (python-OBD's unit
    names, Torque's); ``imperial_us``/``imperial_uk`` are None where imperial shows it as is."""

    symbol: str
    quantity: str
    aliases: tuple[str, ...] = ()
    imperial_us: Conversion | None = None
    imperial_uk: Conversion | None = None

    def conversion(self, system: UnitSystem) -> Conversion | None:
        if system is UnitSystem.imperial_us:
            return self.imperial_us
        if system is UnitSystem.imperial_uk:
            return self.imperial_uk
        return None

    def shown_as(self, system: UnitSystem) -> str:
        conversion = self.conversion(system)
        return self.symbol if conversion is None else conversion.unit


def _same(symbol: str, quantity: str, *aliases: str) -> CanonicalUnit:
    """A unit every system shows as it is."""
    return CanonicalUnit(symbol, quantity, aliases)


def _converted(
    symbol: str,
    quantity: str,
    aliases: tuple[str, ...],
    us: Conversion,
    uk: Conversion | None = None,
) -> CanonicalUnit:
    """A unit imperial shows converted; ``uk`` differs from ``us`` only for gallons."""
    return CanonicalUnit(symbol, quantity, aliases, us, uk or us)


def _per_gallon(
    scale_per_litre: float, us_unit: str, uk_unit: str
) -> tuple[Conversion, Conversion]:
    """Litres (or litres per hour) to US and UK gallons."""
    return (
        Conversion(us_unit, scale_per_litre / L_PER_US_GALLON),
        Conversion(uk_unit, scale_per_litre / L_PER_UK_GALLON),
    )


# Miles per gallon from litres per 100 km: mpg = 100 km * (L per gallon) / (km per mile) / value.
MPG_US_TIMES_L_PER_100KM = 100 * L_PER_US_GALLON / KM_PER_MILE
MPG_UK_TIMES_L_PER_100KM = 100 * L_PER_UK_GALLON / KM_PER_MILE

UNITS: tuple[CanonicalUnit, ...] = (
    # Converted in imperial.
    _converted(
        "km/h",
        "speed",
        ("kph", "kmh", "km/hr"),
        Conversion("mph", 1 / KM_PER_MILE, aliases=("mi/h",)),
    ),
    _converted(
        "°C",
        "temperature",
        ("degC", "C", "celsius"),
        Conversion("°F", 1.8, 32.0, aliases=("degF", "F", "fahrenheit")),
    ),
    _converted(
        "kPa",
        "pressure",
        ("kilopascal",),
        Conversion("psi", 1000 / PA_PER_PSI, aliases=("psig", "lbf/in²")),
    ),
    _converted(
        "Pa",
        "small pressure",
        ("pascal",),
        Conversion("inH₂O", 1 / PA_PER_INH2O, aliases=("inH2O",)),
    ),
    _converted(
        "hPa", "air pressure", ("mbar", "mb", "millibar"), Conversion("inHg", 100 / PA_PER_INHG)
    ),
    _converted(
        "km",
        "distance",
        ("kilometer", "kilometre"),
        Conversion("mi", 1 / KM_PER_MILE, aliases=("miles", "mile")),
    ),
    _converted(
        "m",
        "length",
        ("meter", "metre"),
        Conversion("ft", 1 / M_PER_FOOT, aliases=("feet", "foot")),
    ),
    _converted(
        "m/s²",
        "acceleration",
        ("m/s2", "m/s^2"),
        Conversion("ft/s²", 1 / M_PER_FOOT, aliases=("ft/s2",)),
    ),
    _converted("L", "fuel volume", ("l", "liter", "litre"), *_per_gallon(1, "US gal", "UK gal")),
    _converted(
        "L/h",
        "fuel flow",
        ("liters_per_hour", "L/hr", "lph"),
        *_per_gallon(1, "US gal/h", "UK gal/h"),
    ),
    _converted(
        "L/100km",
        "fuel economy",
        ("liters_per_100km",),
        Conversion("mpg US", MPG_US_TIMES_L_PER_100KM, inverse=True),
        Conversion("mpg UK", MPG_UK_TIMES_L_PER_100KM, inverse=True),
    ),
    _converted(
        "km/L",
        "distance per volume",
        ("kpl",),
        Conversion("mpg US", L_PER_US_GALLON / KM_PER_MILE),
        Conversion("mpg UK", L_PER_UK_GALLON / KM_PER_MILE),
    ),
    _converted(
        "g/s",
        "mass flow",
        ("gps", "grams_per_second"),
        Conversion("lb/min", 60 / (KG_PER_POUND * 1000)),
    ),
    _converted(
        "kg", "mass", ("kilogram",), Conversion("lb", 1 / KG_PER_POUND, aliases=("lbs", "pound"))
    ),
    _converted(
        "N·m",
        "torque",
        ("Nm", "newton_meter"),
        Conversion("lb·ft", 1 / NM_PER_LBF_FT, aliases=("ft-lb", "lb-ft", "ft·lb")),
    ),
    _converted("kW", "power", ("kilowatt",), Conversion("hp", 1 / KW_PER_HP)),
    _converted("g/km", "emissions", (), Conversion("g/mi", KM_PER_MILE)),
    # The same in every system.
    _same("%", "fraction", "percent"),
    _same("rpm", "rotation"),
    _same("V", "voltage", "volt"),
    _same("A", "current", "ampere"),
    _same("°", "angle", "degree", "deg"),
    _same("s", "time", "second", "sec"),
    _same("min", "minutes", "minute"),
    _same("ms", "milliseconds", "millisecond"),
    _same("λ", "air-fuel equivalence", "ratio", "lambda"),
    _same("g", "acceleration in g", "g-force"),
    _same("", "count", "count"),
)


def _key(text: str) -> str:
    # Spellings differ in case and spaces ("L/100 km", "l/100km", "KPA"): none of ours clash so.
    return "".join(text.split()).casefold()


_CANONICAL: dict[str, CanonicalUnit] = {}
for _unit in UNITS:
    for _spelling in (_unit.symbol, *_unit.aliases):
        _CANONICAL.setdefault(_key(_spelling), _unit)


def canonical_unit(unit: str | None) -> CanonicalUnit | None:
    """The canonical unit a unit name stands for (``kph`` → km/h), or None when unknown."""
    if unit is None:
        return None
    return _CANONICAL.get(_key(unit))


class UnitMismatchError(ValueError):
    pass


# What imperial shows, under every spelling: figures written in it (an imported log, a
# threshold) find their stored unit here. Where two stored units show alike (mpg: L/100km and
# km/L), the first in UNITS wins.
_SHOWN: dict[str, tuple[CanonicalUnit, Conversion]] = {}
for _unit in UNITS:
    for _conversion in (_unit.imperial_us, _unit.imperial_uk):
        if _conversion is not None:
            for _spelling in (_conversion.unit, *_conversion.aliases):
                _SHOWN.setdefault(_key(_spelling), (_unit, _conversion))
# Gallons without saying which: "mpg" in a US log is not "mpg" in a UK one.
_WHICH_GALLON = {"mpg": "mpg {}", "gal": "{} gal", "gal/h": "{} gal/h", "gph": "{} gal/h"}


def find_unit(
    unit: str, gallon: UnitSystem | None = None
) -> tuple[CanonicalUnit, Conversion | None] | None:
    """The stored unit figures written in ``unit`` measure, and the conversion they are in
    (None: they are in the stored unit already); None for a unit nobody here knows.

    A bare gallon unit (``mpg``, ``gal``) is read with ``gallon`` (``imperial_us`` or
    ``imperial_uk``, the writer's own setting); without one it is a ``UnitMismatchError``.
    """
    key = _key(unit)
    canonical = _CANONICAL.get(key)
    if canonical is not None:
        return canonical, None
    shown = _SHOWN.get(key)
    if shown is not None:
        return shown
    pattern = _WHICH_GALLON.get(key)
    if pattern is None:
        return None
    if gallon is None or gallon is UnitSystem.metric:
        choices = " or ".join(repr(pattern.format(w)) for w in ("US", "UK"))
        raise UnitMismatchError(f"unit {unit!r} does not say which gallon: {choices}")
    which = "US" if gallon is UnitSystem.imperial_us else "UK"
    return _SHOWN[_key(pattern.format(which))]


def conversion_from(unit: str, canonical: CanonicalUnit) -> Conversion | None:
    """How values given in ``unit`` relate to ``canonical`` (None: they are canonical already).

    Raises ``UnitMismatchError`` when ``unit`` is not one ``canonical`` is shown in, naming the
    ones it is.
    """
    key = _key(unit)
    if canonical_unit(unit) is canonical:
        return None
    conversions = [c for c in (canonical.imperial_us, canonical.imperial_uk) if c is not None]
    for conversion in conversions:
        if key in {_key(spelling) for spelling in (conversion.unit, *conversion.aliases)}:
            return conversion
    accepted = [canonical.symbol, *dict.fromkeys(c.unit for c in conversions)]
    hint = "say which gallon, one of" if key in {"mpg", "gal", "gal/h"} else "use one of"
    names = ", ".join(repr(a) for a in accepted)
    measured = f"{canonical.quantity} ({canonical.symbol})" if canonical.symbol else "a count"
    raise UnitMismatchError(f"unit {unit!r} does not measure {measured}; {hint}: {names}")


@dataclass(frozen=True, slots=True)
class Shown:
    value: float
    unit: str


def to_system(value: float, unit: str | None, system: UnitSystem) -> Shown:
    """``value`` (in its canonical ``unit``) as ``system`` shows it; an unknown unit as is."""
    canonical = canonical_unit(unit)
    if canonical is None:
        return Shown(value, unit or "")
    conversion = canonical.conversion(system)
    if conversion is None:
        return Shown(value, canonical.symbol)
    return Shown(conversion.to_unit(value), conversion.unit)


def shown_unit(unit: str | None, system: UnitSystem) -> str:
    canonical = canonical_unit(unit)
    if canonical is None:
        return unit or ""
    return canonical.shown_as(system)


def tidy(value: float) -> float:
    """A converted figure without the float noise of a round trip (65.00000000000001 → 65.0)."""
    if not math.isfinite(value) or value == 0:
        return value
    return float(f"{value:.10g}")

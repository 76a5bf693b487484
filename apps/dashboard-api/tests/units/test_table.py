"""The unit table: every conversion against pint's definitions, round trips, and the turns that
fuel economy and gallons take."""

import math

import pint
import pytest

from obd2_dashboard.units.service import (
    UnitError,
    pid_display,
    threshold_in,
    threshold_to_stored,
)
from obd2_dashboard.units.table import (
    UNITS,
    CanonicalUnit,
    Conversion,
    UnitMismatchError,
    UnitSystem,
    canonical_unit,
    conversion_from,
    shown_unit,
    tidy,
    to_system,
)
from obd2_protocol import PIDS

REGISTRY = pint.UnitRegistry()

# Our symbols in pint's words (pint is the independent reference for every factor).
PINT_NAMES = {
    "km/h": "kilometer / hour",
    "mph": "mile / hour",
    "°C": "degree_Celsius",
    "°F": "degree_Fahrenheit",
    "kPa": "kilopascal",
    "psi": "psi",
    "Pa": "pascal",
    "inH₂O": "inch_H2O_39F",
    "hPa": "hectopascal",
    "inHg": "inch_Hg",
    "km": "kilometer",
    "mi": "mile",
    "m": "meter",
    "ft": "foot",
    "m/s²": "meter / second ** 2",
    "ft/s²": "foot / second ** 2",
    "L": "liter",
    "US gal": "gallon",
    "UK gal": "imperial_gallon",
    "L/h": "liter / hour",
    "US gal/h": "gallon / hour",
    "UK gal/h": "imperial_gallon / hour",
    "km/L": "kilometer / liter",
    "g/s": "gram / second",
    "lb/min": "pound / minute",
    "kg": "kilogram",
    "lb": "pound",
    "N·m": "newton * meter",
    "lb·ft": "force_pound * foot",
    "kW": "kilowatt",
    "hp": "horsepower",
    "g/km": "gram / kilometer",
    "g/mi": "gram / mile",
}
MPG = {"mpg US": "mile / gallon", "mpg UK": "mile / imperial_gallon"}
# Conventional units whose reference value differs in the last digits between sources.
LOOSE = {"inHg", "inH₂O"}

CONVERSIONS = [
    (unit, system, conversion)
    for unit in UNITS
    for system in UnitSystem
    if (conversion := unit.conversion(system)) is not None
]


def _id(case: tuple[CanonicalUnit, UnitSystem, Conversion]) -> str:
    unit, system, conversion = case
    return f"{unit.symbol}->{conversion.unit}@{system.value}"


@pytest.mark.parametrize("case", CONVERSIONS, ids=_id)
def test_each_conversion_agrees_with_pint(
    case: tuple[CanonicalUnit, UnitSystem, Conversion],
) -> None:
    unit, _, conversion = case
    tolerance = 1e-6 if conversion.unit in LOOSE else 1e-12
    for value in (0.5, 1.0, 7.25, 100.0, 1234.5):
        ours = conversion.to_unit(value)
        if conversion.inverse:
            # L/100 km to miles per gallon: the distance one volume takes you.
            distance = REGISTRY.Quantity(100.0, "kilometer") / REGISTRY.Quantity(value, "liter")
            reference = distance.to(MPG[conversion.unit]).magnitude
        else:
            quantity = REGISTRY.Quantity(value, PINT_NAMES[unit.symbol])
            reference = quantity.to({**PINT_NAMES, **MPG}[conversion.unit]).magnitude
        assert ours == pytest.approx(reference, rel=tolerance), (value, ours, reference)


@pytest.mark.parametrize("case", CONVERSIONS, ids=_id)
def test_each_conversion_round_trips(case: tuple[CanonicalUnit, UnitSystem, Conversion]) -> None:
    _, _, conversion = case
    for value in (-40.0, -1.5, 0.001, 3.0, 88.8, 6000.0, 1e9):
        if conversion.inverse and value <= 0:
            continue
        back = conversion.from_unit(conversion.to_unit(value))
        assert back == pytest.approx(value, rel=1e-12)
        assert tidy(back) == tidy(value)


def test_well_known_figures() -> None:
    us = UnitSystem.imperial_us
    assert to_system(100, "km/h", us).value == pytest.approx(62.137119, rel=1e-7)
    assert to_system(100, "km/h", us).unit == "mph"
    assert to_system(-40, "°C", us).value == pytest.approx(-40)
    assert to_system(100, "°C", us).value == pytest.approx(212)
    assert to_system(0, "°C", UnitSystem.imperial_uk).value == pytest.approx(32)
    assert to_system(101.325, "kPa", us).value == pytest.approx(14.6959, rel=1e-5)
    assert to_system(42.195, "km", us).value == pytest.approx(26.2188, rel=1e-5)
    # Metric shows everything as stored.
    assert to_system(100, "km/h", UnitSystem.metric).value == 100
    assert to_system(100, "kph", UnitSystem.metric).unit == "km/h"


def test_mpg_is_the_inverse_of_litres_per_100_km() -> None:
    us = to_system(10.0, "L/100km", UnitSystem.imperial_us)
    uk = to_system(10.0, "L/100km", UnitSystem.imperial_uk)
    assert (us.unit, uk.unit) == ("mpg US", "mpg UK")
    assert us.value == pytest.approx(23.5215, rel=1e-5)
    assert uk.value == pytest.approx(28.2481, rel=1e-5)
    # Half the fuel per distance is twice the distance per gallon.
    assert to_system(5.0, "L/100km", UnitSystem.imperial_us).value == pytest.approx(2 * us.value)
    # A car standing still burns no fuel per distance: infinitely many miles per gallon.
    assert to_system(0.0, "L/100km", UnitSystem.imperial_us).value == math.inf
    conversion = canonical_unit("L/100km")
    assert conversion is not None
    economy = conversion.conversion(UnitSystem.imperial_us)
    assert economy is not None
    assert economy.inverse
    assert economy.from_unit(us.value) == pytest.approx(10.0)


def test_us_and_uk_gallons_differ() -> None:
    litres = 45.46
    us = to_system(litres, "L", UnitSystem.imperial_us)
    uk = to_system(litres, "L", UnitSystem.imperial_uk)
    assert (us.unit, uk.unit) == ("US gal", "UK gal")
    assert uk.value == pytest.approx(10.0, rel=1e-4)
    assert us.value == pytest.approx(12.0095, rel=1e-4)
    assert us.value / uk.value == pytest.approx(4.54609 / 3.785411784)
    # The same car does more miles to a UK gallon (it is bigger).
    assert (
        to_system(8, "L/100km", UnitSystem.imperial_uk).value
        > to_system(8, "L/100km", UnitSystem.imperial_us).value
    )
    flow = to_system(3.785411784, "L/h", UnitSystem.imperial_us)
    assert flow.value == pytest.approx(1.0)
    assert flow.unit == "US gal/h"
    # Distance per volume is not inverse: more km per litre is more miles per gallon.
    per_litre = to_system(10.0, "km/L", UnitSystem.imperial_us)
    assert per_litre.value == pytest.approx(23.5215, rel=1e-5)
    assert per_litre.unit == "mpg US"


def test_every_pid_of_the_protocol_has_a_known_unit() -> None:
    for info in PIDS.values():
        assert canonical_unit(info.unit) is not None, (info.name, info.unit)
    assert pid_display("SPEED", UnitSystem.imperial_us).unit == "mph"
    assert pid_display("COOLANT_TEMP", UnitSystem.imperial_uk).unit == "°F"
    assert pid_display("FUEL_RATE", UnitSystem.imperial_uk).unit == "UK gal/h"
    assert pid_display("RPM", UnitSystem.imperial_us).unit == "rpm"
    assert pid_display("WARMUPS_SINCE_DTC_CLEAR", UnitSystem.metric).unit == ""
    # python-OBD's names and Torque's spellings are the same units.
    for spelling, symbol in [
        ("kph", "km/h"),
        ("degC", "°C"),
        ("liters_per_hour", "L/h"),
        ("gps", "g/s"),
        ("L/100 km", "L/100km"),
        ("l/100KM", "L/100km"),
        ("percent", "%"),
        ("mbar", "hPa"),
    ]:
        found = canonical_unit(spelling)
        assert found is not None
        assert found.symbol == symbol, spelling


def test_a_unit_nobody_knows_is_shown_as_it_is() -> None:
    assert canonical_unit("furlongs") is None
    shown = to_system(3.0, "furlongs", UnitSystem.imperial_us)
    assert (shown.value, shown.unit) == (3.0, "furlongs")
    assert shown_unit(None, UnitSystem.imperial_uk) == ""


def test_no_two_units_share_a_spelling() -> None:
    seen: dict[str, str] = {}
    for unit in UNITS:
        for spelling in (unit.symbol, *unit.aliases):
            key = "".join(spelling.split()).casefold()
            assert seen.setdefault(key, unit.symbol) == unit.symbol, spelling
    shown = [c.unit for u in UNITS for c in {u.imperial_us, u.imperial_uk} if c is not None]
    for name in shown:
        # What imperial shows is never mistaken for a stored unit.
        assert canonical_unit(name) is None, name


def test_units_that_do_not_fit_are_refused_with_the_ones_that_do() -> None:
    celsius = canonical_unit("°C")
    economy = canonical_unit("L/100km")
    assert celsius is not None
    assert economy is not None
    assert conversion_from("°F", celsius) == celsius.imperial_us
    assert conversion_from("degC", celsius) is None
    with pytest.raises(UnitMismatchError, match=r"'mph' does not measure temperature \(°C\).*'°F'"):
        conversion_from("mph", celsius)
    with pytest.raises(UnitMismatchError, match=r"say which gallon.*'mpg US', 'mpg UK'"):
        conversion_from("mpg", economy)


def test_thresholds_typed_in_imperial_are_stored_in_the_pids_unit() -> None:
    hot = threshold_to_stored("COOLANT_TEMP", "°F", "above", 221.0, 212.0)
    assert (hot.unit, hot.op) == ("°C", "above")
    assert hot.threshold == pytest.approx(105.0)
    assert hot.clear_threshold == pytest.approx(100.0)
    shown = threshold_in("COOLANT_TEMP", UnitSystem.imperial_uk, hot.op, 105.0, 100.0)
    assert (shown.unit, shown.op, shown.threshold, shown.clear_threshold) == (
        "°F",
        "above",
        221.0,
        212.0,
    )
    fast = threshold_to_stored("SPEED", "mph", "above", 70.0, None)
    assert fast.threshold == pytest.approx(112.65408)
    assert (
        threshold_in("SPEED", UnitSystem.imperial_us, "above", fast.threshold, None).threshold
        == 70.0
    )
    same = threshold_to_stored("SPEED", "kph", "below", 5.0, None)
    assert (same.unit, same.op, same.threshold) == ("km/h", "below", 5.0)


def test_a_threshold_in_a_unit_that_does_not_fit_says_why() -> None:
    with pytest.raises(UnitError, match="does not measure speed") as wrong:
        threshold_to_stored("SPEED", "°F", "above", 10.0, None)
    assert wrong.value.field == "unit"


def test_a_pid_learnt_later_converts_by_its_unit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Conversions go by unit, not by PID: a PID that only a catalogue knows converts too."""
    learnt = {"TORQUE_FF1207": "L/100km", "TORQUE_FF1001": "km/h", "TORQUE_FF1234": "widgets"}
    monkeypatch.setattr("obd2_dashboard.units.service.pid_unit", learnt.get)
    assert pid_display("TORQUE_FF1001", UnitSystem.imperial_uk).unit == "mph"
    assert pid_display("TORQUE_FF1234", UnitSystem.imperial_uk).unit == "widgets"
    # "Economy below 20 mpg" is "consumption above 11.76 L/100 km": the comparison turns round.
    thirsty = threshold_to_stored("TORQUE_FF1207", "mpg US", "below", 20.0, 25.0)
    assert (thirsty.unit, thirsty.op) == ("L/100km", "above")
    assert thirsty.threshold == pytest.approx(11.7607, rel=1e-5)
    assert thirsty.clear_threshold == pytest.approx(9.4086, rel=1e-5)
    assert thirsty.clear_threshold is not None
    assert thirsty.threshold is not None
    assert thirsty.clear_threshold < thirsty.threshold  # still on the safe side
    back = threshold_in(
        "TORQUE_FF1207",
        UnitSystem.imperial_us,
        thirsty.op,
        thirsty.threshold,
        thirsty.clear_threshold,
    )
    assert (back.op, back.threshold, back.clear_threshold, back.unit) == (
        "below",
        20.0,
        25.0,
        "mpg US",
    )
    # 0 mpg would be infinitely many litres per 100 km: refused, naming the field.
    with pytest.raises(UnitError, match="0 mpg US has no value in L/100km") as zero:
        threshold_to_stored("TORQUE_FF1207", "mpg US", "below", 0.0, None)
    assert zero.value.field == "threshold"
    # A unit nobody knows converts to nothing but itself.
    assert threshold_to_stored("TORQUE_FF1234", "widgets", "above", 3.0, None).threshold == 3.0
    with pytest.raises(UnitError, match="stored as widgets"):
        threshold_to_stored("TORQUE_FF1234", "mph", "above", 3.0, None)

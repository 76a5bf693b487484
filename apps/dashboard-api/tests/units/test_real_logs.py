"""The unit table against a real Torque Pro CSV log, whose figures Torque wrote in imperial.

Source: the header and one row (16:29.5, engine off) of ``torqueLogs/trackLog-2022-Mar-16_
15-15-49_Golf07Fixed1.csv`` in the public repository github.com/P-Cron/fyp at commit
0b21d71cec1f9fb75c8063ceee3715f8559d617e: a 2007 Golf logged in the UK. The repository gives
no licence, so the file is not kept here; the test reads only unit names and four figures.
"""

import pytest

from obd2_dashboard.units.table import UnitMismatchError, UnitSystem, find_unit, to_system

# Every unit in the log's header, as Torque writes it between the last parentheses.
HEADER_UNITS = {
    "s": "s",
    "%": "%",
    "°C": "°C",
    "psi": "kPa",
    "lambda": "λ",
    "g/km": "g/km",
    "miles": "km",
    "kW": "kW",
    "rpm": "rpm",
    "l/hr": "L/h",
    "l": "L",
    "hp": "kW",
    "kpl": "km/L",
    "l/100km": "L/100km",
    "g/s": "g/s",
    "V": "V",
    "mph": "km/h",
    "Nm": "N·m",
}
# Units of figures we do not store as such: air-fuel ratio as "x:1", money, small flows.
UNKNOWN_UNITS = (":1", "£/m", "cc/min")

INTAKE_MANIFOLD_PSI = 14.79384928
KPL_LONG_TERM = 8.70481491
L_PER_100KM_LONG_TERM = 11.48765659
MPG_LONG_TERM = 24.58987236


@pytest.mark.parametrize(("written", "stored"), HEADER_UNITS.items())
def test_each_unit_of_a_torque_header_finds_its_stored_unit(written: str, stored: str) -> None:
    found = find_unit(written)
    assert found is not None, written
    assert found[0].symbol == stored


def test_units_we_do_not_store_are_not_guessed() -> None:
    for written in UNKNOWN_UNITS:
        assert find_unit(written) is None


def test_mpg_from_a_log_needs_to_say_which_gallon() -> None:
    with pytest.raises(UnitMismatchError, match="'mpg US' or 'mpg UK'"):
        find_unit("mpg")
    found = find_unit("mpg", UnitSystem.imperial_uk)
    assert found is not None
    assert found[0].symbol == "L/100km"


def test_the_logs_figures_agree_with_our_conversions() -> None:
    # The car reports manifold pressure in whole kPa; Torque wrote it in psi.
    psi = find_unit("psi")
    assert psi is not None
    assert psi[1] is not None
    assert psi[1].from_unit(INTAKE_MANIFOLD_PSI) == pytest.approx(102.0, abs=1e-6)
    # Torque's own economy figures, in three units, are one figure: km/L and L/100 km are
    # inverse, and its mpg is UK gallons (the US gallon would be 20 % off).
    litres_per_100km = 100 / KPL_LONG_TERM
    assert litres_per_100km == pytest.approx(L_PER_100KM_LONG_TERM, rel=1e-4)
    shown = to_system(L_PER_100KM_LONG_TERM, "L/100km", UnitSystem.imperial_uk)
    assert shown.unit == "mpg UK"
    assert shown.value == pytest.approx(MPG_LONG_TERM, rel=1e-5)
    us = to_system(L_PER_100KM_LONG_TERM, "L/100km", UnitSystem.imperial_us).value
    assert us == pytest.approx(MPG_LONG_TERM * 3.785411784 / 4.54609, rel=1e-5)
    found = find_unit("mpg", UnitSystem.imperial_uk)
    assert found is not None
    assert found[1] is not None
    assert found[1].from_unit(MPG_LONG_TERM) == pytest.approx(L_PER_100KM_LONG_TERM, rel=1e-5)

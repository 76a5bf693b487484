import pytest

from obd2_dashboard.dtcs.codes import describe, known_code_count


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("P0301", "Cylinder 1 misfire"),
        ("P0312", "Cylinder 12 misfire"),
        ("P0420", "Catalyst system efficiency"),
        ("P0142", "bank 1 sensor 3"),
        ("P0167", "heater circuit (bank 2 sensor 3)"),
        ("P0362", "Ignition coil L"),
        ("U0100", "Lost communication with ECM/PCM"),
        ("p0171", "System too lean (bank 1)"),
    ],
)
def test_generic_codes_are_described(code: str, words: str) -> None:
    info = describe(code)
    assert words in info.description
    assert not info.manufacturer_specific


@pytest.mark.parametrize("code", ["P1234", "P3000", "P33FF", "B1001", "C1234", "U1000"])
def test_manufacturer_codes_are_shown_as_such(code: str) -> None:
    info = describe(code)
    assert info.manufacturer_specific
    assert "manufacturer-specific" in info.description


def test_unknown_generic_and_invalid_codes() -> None:
    assert "transmission" in describe("P0799").description
    assert not describe("P3400").manufacturer_specific
    assert describe("X0000").description == "Not a standard trouble code"
    assert known_code_count() > 200

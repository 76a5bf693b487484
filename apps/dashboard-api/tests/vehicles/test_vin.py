import pytest

from obd2_dashboard.vehicles.vin import decode


@pytest.mark.parametrize(
    ("vin", "maker", "region", "year"),
    [
        ("1HGCM82633A004352", "Honda", "North America", 2003),
        ("WP0ZZZ99ZTS390000", "Porsche", "Europe", 1996),
        ("5YJ3E1EA7KF317000", "Tesla", "North America", 2019),
        ("JTDKB20U093123456", "Toyota", "Asia", 2009),
        ("WBA8E9G50GNU12345", "BMW", "Europe", 2016),
        ("ZZZZZZZZZZZZZZZZZ", None, "Europe", None),
    ],
)
def test_decode(vin: str, maker: str | None, region: str, year: int | None) -> None:
    info = decode(vin)
    assert (info.maker, info.region, info.model_year) == (maker, region, year)

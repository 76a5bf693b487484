"""Maker, region and model year from a VIN's world manufacturer identifier and year code."""

from dataclasses import dataclass

# Position 10; the letters I, O, Q, U, Z and the digit 0 are never used.
_YEAR_CODES = "ABCDEFGHJKLMNPRSTVWXY123456789"

_REGIONS = (
    ("ABCDEFGH", "Africa"),
    ("JKLMNPR", "Asia"),
    ("STUVWXYZ", "Europe"),
    ("12345", "North America"),
    ("67", "Oceania"),
    ("89", "South America"),
)

# The world manufacturer identifiers of the makers most often seen; three characters win over
# two, so a maker's exceptions can be listed beside its general prefix.
_WMI: dict[str, str] = {
    "1C": "Chrysler",
    "1F": "Ford",
    "1G": "General Motors",
    "1GC": "Chevrolet",
    "1G1": "Chevrolet",
    "1GM": "Pontiac",
    "1H": "Honda",
    "1J": "Jeep",
    "1L": "Lincoln",
    "1M": "Mercury",
    "1N": "Nissan",
    "1V": "Volkswagen",
    "1YV": "Mazda",
    "2F": "Ford",
    "2G": "General Motors",
    "2H": "Honda",
    "2T": "Toyota",
    "3F": "Ford",
    "3G": "General Motors",
    "3H": "Honda",
    "3N": "Nissan",
    "3VW": "Volkswagen",
    "4S": "Subaru",
    "4T": "Toyota",
    "5F": "Honda",
    "5N": "Hyundai",
    "5T": "Toyota",
    "5UX": "BMW",
    "5YJ": "Tesla",
    "6F": "Ford",
    "6G": "General Motors",
    "7SA": "Tesla",
    "9BW": "Volkswagen",
    "JA": "Isuzu",
    "JF": "Subaru",
    "JH": "Honda",
    "JM": "Mazda",
    "JN": "Nissan",
    "JS": "Suzuki",
    "JT": "Toyota",
    "KL": "Daewoo/GM Korea",
    "KM": "Hyundai",
    "KN": "Kia",
    "LFV": "FAW-Volkswagen",
    "LSV": "SAIC Volkswagen",
    "LRW": "Tesla",
    "SAJ": "Jaguar",
    "SAL": "Land Rover",
    "SCC": "Lotus",
    "SCF": "Aston Martin",
    "TMB": "Škoda",
    "TRU": "Audi",
    "UU": "Dacia",
    "VF1": "Renault",
    "VF3": "Peugeot",
    "VF7": "Citroën",
    "VSS": "SEAT",
    "VV": "Volkswagen",
    "W0L": "Opel",
    "WAU": "Audi",
    "WBA": "BMW",
    "WBS": "BMW M",
    "WDB": "Mercedes-Benz",
    "WDD": "Mercedes-Benz",
    "WF0": "Ford Germany",
    "WMW": "MINI",
    "WP0": "Porsche",
    "WP1": "Porsche",
    "WVG": "Volkswagen",
    "WVW": "Volkswagen",
    "WV1": "Volkswagen Commercial",
    "WV2": "Volkswagen Commercial",
    "YK1": "Saab",
    "YS3": "Saab",
    "YV1": "Volvo",
    "ZAR": "Alfa Romeo",
    "ZFA": "Fiat",
    "ZFF": "Ferrari",
    "ZHW": "Lamborghini",
}


@dataclass(frozen=True, slots=True)
class VinInfo:
    wmi: str
    maker: str | None
    region: str | None
    model_year: int | None


def _region(first: str) -> str | None:
    return next((name for chars, name in _REGIONS if first in chars), None)


def model_year(vin: str) -> int | None:
    """The model year, taking the 30-year cycle from position 7 (a letter there means 2010+)."""
    index = _YEAR_CODES.find(vin[9])
    if index < 0:
        return None
    base = 2010 if vin[6].isalpha() else 1980
    return base + index


def decode(vin: str) -> VinInfo:
    vin = vin.strip().upper()
    wmi = vin[:3]
    maker = _WMI.get(wmi) or _WMI.get(vin[:2])
    return VinInfo(wmi=wmi, maker=maker, region=_region(vin[:1]), model_year=model_year(vin))

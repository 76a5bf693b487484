"""Descriptions of the generic (SAE J2012 / ISO 15031-6) trouble codes, built here as data.

Families that repeat per cylinder, bank or sensor are generated; the rest are listed. Codes whose
second character is 1 (and P3000-P33FF) are manufacturer-specific: they are shown as such.
"""

import re
from dataclasses import dataclass

_CODE = re.compile(r"^[PCBU][0-3][0-9A-F]{3}$")

_SYSTEMS = {"P": "Powertrain", "C": "Chassis", "B": "Body", "U": "Network"}
_P0_AREAS = {
    "0": "fuel and air metering, auxiliary emission controls",
    "1": "fuel and air metering",
    "2": "fuel and air metering (injector circuit)",
    "3": "ignition system or misfire",
    "4": "auxiliary emission controls",
    "5": "vehicle speed, idle control and auxiliary inputs",
    "6": "computer and output circuits",
    "7": "transmission",
    "8": "transmission",
    "9": "transmission",
    "A": "hybrid propulsion",
    "B": "hybrid propulsion",
    "C": "hybrid propulsion",
}

_LISTED: dict[str, str] = {
    "P0010": "Intake camshaft position actuator circuit (bank 1)",
    "P0011": "Intake camshaft position timing over-advanced or system performance (bank 1)",
    "P0012": "Intake camshaft position timing over-retarded (bank 1)",
    "P0013": "Exhaust camshaft position actuator circuit (bank 1)",
    "P0014": "Exhaust camshaft position timing over-advanced or system performance (bank 1)",
    "P0016": "Crankshaft position / camshaft position correlation (bank 1 sensor A)",
    "P0017": "Crankshaft position / camshaft position correlation (bank 1 sensor B)",
    "P0020": "Intake camshaft position actuator circuit (bank 2)",
    "P0021": "Intake camshaft position timing over-advanced or system performance (bank 2)",
    "P0087": "Fuel rail / system pressure too low",
    "P0088": "Fuel rail / system pressure too high",
    "P0100": "Mass or volume air flow circuit",
    "P0101": "Mass or volume air flow circuit range/performance",
    "P0102": "Mass or volume air flow circuit low input",
    "P0103": "Mass or volume air flow circuit high input",
    "P0104": "Mass or volume air flow circuit intermittent",
    "P0105": "Manifold absolute pressure / barometric pressure circuit",
    "P0106": "Manifold absolute pressure / barometric pressure circuit range/performance",
    "P0107": "Manifold absolute pressure / barometric pressure circuit low input",
    "P0108": "Manifold absolute pressure / barometric pressure circuit high input",
    "P0110": "Intake air temperature circuit",
    "P0111": "Intake air temperature circuit range/performance",
    "P0112": "Intake air temperature circuit low input",
    "P0113": "Intake air temperature circuit high input",
    "P0115": "Engine coolant temperature circuit",
    "P0116": "Engine coolant temperature circuit range/performance",
    "P0117": "Engine coolant temperature circuit low input",
    "P0118": "Engine coolant temperature circuit high input",
    "P0119": "Engine coolant temperature circuit intermittent",
    "P0120": "Throttle/pedal position sensor/switch A circuit",
    "P0121": "Throttle/pedal position sensor/switch A circuit range/performance",
    "P0122": "Throttle/pedal position sensor/switch A circuit low input",
    "P0123": "Throttle/pedal position sensor/switch A circuit high input",
    "P0125": "Insufficient coolant temperature for closed loop fuel control",
    "P0128": "Coolant thermostat (coolant temperature below thermostat regulating temperature)",
    "P0170": "Fuel trim (bank 1)",
    "P0171": "System too lean (bank 1)",
    "P0172": "System too rich (bank 1)",
    "P0173": "Fuel trim (bank 2)",
    "P0174": "System too lean (bank 2)",
    "P0175": "System too rich (bank 2)",
    "P0180": "Fuel temperature sensor A circuit",
    "P0190": "Fuel rail pressure sensor circuit",
    "P0191": "Fuel rail pressure sensor circuit range/performance",
    "P0192": "Fuel rail pressure sensor circuit low input",
    "P0193": "Fuel rail pressure sensor circuit high input",
    "P0200": "Injector circuit",
    "P0217": "Engine overtemperature condition",
    "P0218": "Transmission fluid overtemperature condition",
    "P0219": "Engine overspeed condition",
    "P0220": "Throttle/pedal position sensor/switch B circuit",
    "P0230": "Fuel pump primary circuit",
    "P0234": "Turbocharger/supercharger overboost condition",
    "P0299": "Turbocharger/supercharger underboost",
    "P0300": "Random/multiple cylinder misfire detected",
    "P0313": "Misfire detected with low fuel",
    "P0314": "Single cylinder misfire (cylinder not specified)",
    "P0315": "Crankshaft position system variation not learned",
    "P0325": "Knock sensor 1 circuit (bank 1 or single sensor)",
    "P0326": "Knock sensor 1 circuit range/performance (bank 1 or single sensor)",
    "P0327": "Knock sensor 1 circuit low input (bank 1 or single sensor)",
    "P0328": "Knock sensor 1 circuit high input (bank 1 or single sensor)",
    "P0330": "Knock sensor 2 circuit (bank 2)",
    "P0335": "Crankshaft position sensor A circuit",
    "P0336": "Crankshaft position sensor A circuit range/performance",
    "P0337": "Crankshaft position sensor A circuit low input",
    "P0338": "Crankshaft position sensor A circuit high input",
    "P0339": "Crankshaft position sensor A circuit intermittent",
    "P0340": "Camshaft position sensor A circuit (bank 1 or single sensor)",
    "P0341": "Camshaft position sensor A circuit range/performance (bank 1 or single sensor)",
    "P0342": "Camshaft position sensor A circuit low input (bank 1 or single sensor)",
    "P0343": "Camshaft position sensor A circuit high input (bank 1 or single sensor)",
    "P0400": "Exhaust gas recirculation flow",
    "P0401": "Exhaust gas recirculation flow insufficient detected",
    "P0402": "Exhaust gas recirculation flow excessive detected",
    "P0403": "Exhaust gas recirculation control circuit",
    "P0404": "Exhaust gas recirculation control circuit range/performance",
    "P0410": "Secondary air injection system",
    "P0411": "Secondary air injection system incorrect flow detected",
    "P0420": "Catalyst system efficiency below threshold (bank 1)",
    "P0421": "Warm up catalyst efficiency below threshold (bank 1)",
    "P0430": "Catalyst system efficiency below threshold (bank 2)",
    "P0431": "Warm up catalyst efficiency below threshold (bank 2)",
    "P0440": "Evaporative emission system",
    "P0441": "Evaporative emission system incorrect purge flow",
    "P0442": "Evaporative emission system leak detected (small leak)",
    "P0443": "Evaporative emission system purge control valve circuit",
    "P0446": "Evaporative emission system vent control circuit",
    "P0449": "Evaporative emission system vent valve/solenoid circuit",
    "P0451": "Evaporative emission system pressure sensor/switch range/performance",
    "P0452": "Evaporative emission system pressure sensor/switch low input",
    "P0453": "Evaporative emission system pressure sensor/switch high input",
    "P0455": "Evaporative emission system leak detected (large leak)",
    "P0456": "Evaporative emission system leak detected (very small leak)",
    "P0457": "Evaporative emission system leak detected (fuel cap loose/off)",
    "P0460": "Fuel level sensor A circuit",
    "P0461": "Fuel level sensor A circuit range/performance",
    "P0462": "Fuel level sensor A circuit low input",
    "P0463": "Fuel level sensor A circuit high input",
    "P0480": "Fan 1 control circuit",
    "P0481": "Fan 2 control circuit",
    "P0500": "Vehicle speed sensor A",
    "P0501": "Vehicle speed sensor A range/performance",
    "P0502": "Vehicle speed sensor A circuit low input",
    "P0503": "Vehicle speed sensor A intermittent/erratic/high",
    "P0505": "Idle air control system",
    "P0506": "Idle air control system RPM lower than expected",
    "P0507": "Idle air control system RPM higher than expected",
    "P0520": "Engine oil pressure sensor/switch A circuit",
    "P0521": "Engine oil pressure sensor/switch A range/performance",
    "P0522": "Engine oil pressure sensor/switch A low voltage",
    "P0523": "Engine oil pressure sensor/switch A high voltage",
    "P0530": "A/C refrigerant pressure sensor A circuit",
    "P0560": "System voltage",
    "P0561": "System voltage unstable",
    "P0562": "System voltage low",
    "P0563": "System voltage high",
    "P0571": "Brake switch A circuit",
    "P0600": "Serial communication link",
    "P0601": "Internal control module memory checksum error",
    "P0602": "Control module programming error",
    "P0603": "Internal control module keep alive memory (KAM) error",
    "P0604": "Internal control module random access memory (RAM) error",
    "P0605": "Internal control module read only memory (ROM) error",
    "P0606": "Control module processor",
    "P0700": "Transmission control system (MIL request)",
    "P0705": "Transmission range sensor A circuit (PRNDL input)",
    "P0710": "Transmission fluid temperature sensor A circuit",
    "P0715": "Input/turbine speed sensor A circuit",
    "P0720": "Output speed sensor circuit",
    "P0730": "Incorrect gear ratio",
    "P0740": "Torque converter clutch solenoid circuit/open",
    "P0741": "Torque converter clutch solenoid circuit performance/stuck off",
    "P0750": "Shift solenoid A",
    "P0755": "Shift solenoid B",
    "P0760": "Shift solenoid C",
    "P0765": "Shift solenoid D",
    "U0001": "High speed CAN communication bus",
    "U0073": "Control module communication bus A off",
    "U0100": "Lost communication with ECM/PCM A",
    "U0101": "Lost communication with TCM",
    "U0121": "Lost communication with anti-lock brake system (ABS) control module",
    "U0140": "Lost communication with body control module",
    "U0151": "Lost communication with restraints control module",
    "U0155": "Lost communication with instrument panel cluster (IPC) control module",
    "C0035": "Left front wheel speed sensor circuit",
    "C0040": "Right front wheel speed sensor circuit",
    "C0045": "Left rear wheel speed sensor circuit",
    "C0050": "Right rear wheel speed sensor circuit",
}


def _generated() -> dict[str, str]:
    codes: dict[str, str] = {}
    for cylinder in range(1, 13):
        codes[f"P03{cylinder:02d}"] = f"Cylinder {cylinder} misfire detected"
        codes[f"P02{cylinder:02d}"] = f"Injector circuit/open, cylinder {cylinder}"
        codes[f"P0{350 + cylinder}"] = (
            f"Ignition coil {chr(64 + cylinder)} primary/secondary circuit"
        )
    for index, (bank, sensor) in enumerate([(1, 1), (1, 2), (1, 3), (2, 1), (2, 2), (2, 3)]):
        base = 130 + index * 6 if index < 3 else 150 + (index - 3) * 6
        where = f"bank {bank} sensor {sensor}"
        for offset, fault in enumerate(
            [
                "circuit",
                "circuit low voltage",
                "circuit high voltage",
                "circuit slow response",
                "circuit no activity detected",
                "heater circuit",
            ]
        ):
            codes[f"P0{base + offset}"] = f"O2 sensor {fault} ({where})"
    return codes


_DESCRIPTIONS = {**_generated(), **_LISTED}


@dataclass(frozen=True, slots=True)
class DtcInfo:
    code: str
    description: str
    manufacturer_specific: bool


def is_valid_code(code: str) -> bool:
    return bool(_CODE.match(code))


def is_manufacturer_specific(code: str) -> bool:
    second = code[1]
    if second in "13":
        # P3000-P33FF are manufacturer-controlled; P3400 and up are generic again.
        return not (code[0] == "P" and second == "3" and code[2] in "456789ABCDEF")
    return False


def describe(code: str) -> DtcInfo:
    code = code.strip().upper()
    manufacturer = is_valid_code(code) and is_manufacturer_specific(code)
    if code in _DESCRIPTIONS:
        return DtcInfo(code, _DESCRIPTIONS[code], manufacturer)
    if not is_valid_code(code):
        return DtcInfo(code, "Not a standard trouble code", False)
    system = _SYSTEMS[code[0]]
    if manufacturer:
        return DtcInfo(code, f"{system}: manufacturer-specific code (see the maker's manual)", True)
    if code[0] == "P":
        area = _P0_AREAS.get(code[2], "generic powertrain")
        return DtcInfo(
            code, f"Powertrain: {area} (generic code without a stored description)", False
        )
    return DtcInfo(code, f"{system}: generic code without a stored description", False)


def known_code_count() -> int:
    return len(_DESCRIPTIONS)

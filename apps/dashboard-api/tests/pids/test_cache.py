"""The per-process memory of recorded PIDs that spares ingest a write per batch."""

from obd2_dashboard.pids.definitions import builtin_catalogue
from obd2_dashboard.pids.service import PidCatalogue, Recorded
from obd2_dashboard.units.table import canonical_unit


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_known_pids_are_no_candidates_until_older_samples_come() -> None:
    catalogue = PidCatalogue()
    assert catalogue.candidates(1, {"RPM": 1000, "SPEED": 1000}) == ["RPM", "SPEED"]
    catalogue.remember([Recorded((((1, "RPM"), 1000), ((1, "SPEED"), 1200)))])
    assert catalogue.candidates(1, {"RPM": 5000, "SPEED": 5000}) == []
    # An older sample may move the first one back; another vehicle knows nothing yet.
    assert catalogue.candidates(1, {"RPM": 999, "SPEED": 1200}) == ["RPM"]
    assert catalogue.candidates(2, {"RPM": 5000}) == ["RPM"]
    catalogue.forget_vehicle(1)
    assert catalogue.candidates(1, {"RPM": 5000}) == ["RPM"]


def test_the_memory_is_dropped_when_old_or_large() -> None:
    clock = Clock()
    catalogue = PidCatalogue(max_age_s=600, max_entries=3, clock=clock)
    catalogue.remember([Recorded((((1, "RPM"), 1000),))])
    clock.now = 599
    assert catalogue.candidates(1, {"RPM": 2000}) == []
    clock.now = 601
    assert catalogue.candidates(1, {"RPM": 2000}) == ["RPM"]
    catalogue.remember([Recorded(tuple(((1, f"P{n}"), 1) for n in range(4)))])
    assert catalogue.candidates(1, {"P0": 5}) == ["P0"]


def test_every_unit_of_the_servers_names_converts_or_is_shown_as_given() -> None:
    # Units of Torque's own figures that no unit system shows otherwise.
    shown_as_given = {"mpg", "psi", "hp", "ft-lb", "cc/min", ":1"}
    units = {definition.unit for definition in builtin_catalogue()}
    assert {unit for unit in units if canonical_unit(unit) is None} == shown_as_given

# SPDX-License-Identifier: GPL-2.0-or-later
"""A simulated car behind an ELM327, spoken to over TCP: for the demo, tests and benchmarks."""

from obd2_bridge.simulator.car import DriveCycle, SimulatedCar
from obd2_bridge.simulator.elm import ElmSimulator, SimulatorThread

__all__ = ["DriveCycle", "ElmSimulator", "SimulatedCar", "SimulatorThread"]

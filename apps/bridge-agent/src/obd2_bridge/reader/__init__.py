# SPDX-License-Identifier: GPL-2.0-or-later
"""Reading the car: the per-PID schedule and the polling loop with battery care."""

from obd2_bridge.reader.poller import Reader
from obd2_bridge.reader.schedule import PidSlot, Schedule

__all__ = ["PidSlot", "Reader", "Schedule"]

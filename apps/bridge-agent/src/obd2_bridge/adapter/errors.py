# SPDX-License-Identifier: GPL-2.0-or-later
from obd2_bridge.adapter.answers import Condition
from obd2_protocol import AdapterState


class AdapterError(Exception):
    """A failure talking to the adapter or the car; ``state`` is what the status reports."""

    state: AdapterState = "no_adapter"

    def __init__(self, message: str, condition: Condition | None = None) -> None:
        super().__init__(message)
        self.condition = condition


class NoAdapterError(AdapterError):
    state: AdapterState = "no_adapter"


class AdapterLostError(NoAdapterError):
    """The adapter was there and went away (cable, Bluetooth, dead socket)."""


class NoEcuError(AdapterError):
    state: AdapterState = "no_ecu"


class UnsupportedProtocolError(AdapterError):
    state: AdapterState = "unsupported_protocol"


class AdapterTimeoutError(AdapterError):
    """Nothing came back before our own deadline: a stalled link or a hung adapter."""

    state: AdapterState = "timeout"


class AdapterStuckError(AdapterTimeoutError):
    """The adapter answers, but only with a condition of its own (STOPPED, BUFFER FULL, ?, …)."""

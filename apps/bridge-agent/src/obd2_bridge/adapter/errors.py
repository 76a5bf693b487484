# SPDX-License-Identifier: GPL-2.0-or-later
from obd2_protocol import AdapterState


class AdapterError(Exception):
    """A failure talking to the adapter or the car; ``state`` is what the status reports."""

    state: AdapterState = "no_adapter"


class NoAdapterError(AdapterError):
    state: AdapterState = "no_adapter"


class AdapterLostError(NoAdapterError):
    """The adapter was there and went away (cable, Bluetooth, dead socket)."""


class NoEcuError(AdapterError):
    state: AdapterState = "no_ecu"


class UnsupportedProtocolError(AdapterError):
    state: AdapterState = "unsupported_protocol"


class AdapterTimeoutError(AdapterError):
    state: AdapterState = "timeout"

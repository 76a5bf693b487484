# SPDX-License-Identifier: GPL-2.0-or-later
"""Turning raw python-OBD messages into numbers: multi-PID answers, VIN, trouble codes."""

import re
from collections.abc import Iterable, Sequence
from typing import Any

import obd
from obd.protocols.protocol import ECU, Message

from obd2_protocol import is_storable_value

VIN_PATTERN = re.compile(r"^[A-HJ-NPR-Z0-9]{17}$")
MAX_PIDS_PER_REQUEST = 6


def mode01_command(name: str) -> Any:
    command = obd.commands[name] if obd.commands.has_name(name) else None
    if command is None or command.mode != 1:
        return None
    return command


def numeric(value: Any) -> float | None:
    """python-OBD answers with pint quantities, plain numbers or structures; keep the numbers."""
    magnitude = getattr(value, "magnitude", value)
    if isinstance(magnitude, bool):
        return None
    if not isinstance(magnitude, int | float):
        return None
    try:
        number = float(magnitude)
    except OverflowError:
        return None
    # NaN, infinities and absurd decodes are readings the server would refuse.
    return number if is_storable_value(number) else None


def engine_messages(messages: Iterable[Message]) -> list[Message]:
    """The engine ECU's answers when it is known, else every answer that carried data."""
    parsed = [m for m in messages if m.parsed()]
    engine = [m for m in parsed if m.ecu & ECU.ENGINE]
    return engine or parsed


def split_mode01(messages: Sequence[Message], commands: dict[int, Any]) -> dict[str, float]:
    """Decode a mode-01 answer holding one or more PIDs with each PID's python-OBD decoder.

    The answer is ``41 PID data PID data …``; each PID's data length is the decoder's. A PID the
    ECU left out is simply absent from the result.
    """
    values: dict[str, float] = {}
    for message in engine_messages(messages)[:1]:
        data = bytes(message.data)
        if not data or data[0] != 0x41:
            continue
        i = 1
        while i < len(data):
            command = commands.get(data[i])
            if command is None or command.bytes < 2:
                break  # a PID we did not ask for: the rest cannot be framed
            length = command.bytes - 2
            chunk = data[i + 1 : i + 1 + length]
            if len(chunk) < length:
                break
            single = Message(message.frames)
            single.ecu = message.ecu
            single.data = bytearray([0x41, data[i]]) + chunk
            value = numeric(command([single]).value)
            if value is not None:
                values[command.name] = value
            i += 1 + length
    return values


def decode_vin(messages: Sequence[Message]) -> str | None:
    """VIN from a mode 09 PID 02 answer (python-OBD 0.7.3 strips VINs ending in 0, 1 or 2).

    CAN answers carry ``49 02 01`` then 17 ASCII bytes; legacy protocols pad with zero bytes.
    The VIN is the last 17 printable characters.
    """
    for message in engine_messages(messages):
        data = bytes(message.data)
        if len(data) < 2 or data[0] != 0x49 or data[1] != 0x02:
            continue
        text = "".join(chr(b) for b in data[2:] if 0x20 < b < 0x7F).upper()
        candidate = text[-17:]
        if VIN_PATTERN.match(candidate):
            return candidate
    return None


def decode_dtcs(messages: Sequence[Message]) -> list[tuple[str, str]]:
    answers = [m for m in messages if m.parsed()]  # codes from every ECU count
    if not answers:
        return []
    codes: list[tuple[str, str]] = obd.decoders.dtc(answers)
    return sorted(set(codes))


def decode_freeze_value(messages: Sequence[Message], command: Any) -> float | None:
    """A mode 02 answer ``42 PID frame data…`` read with the mode-01 decoder of the PID."""
    for message in engine_messages(messages)[:1]:
        data = bytes(message.data)
        if len(data) < 4 or data[0] != 0x42:
            return None
        single = Message(message.frames)
        single.ecu = message.ecu
        single.data = bytearray([0x41, data[1]]) + data[3:]
        return numeric(command([single]).value)
    return None

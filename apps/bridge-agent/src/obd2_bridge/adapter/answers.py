# SPDX-License-Identifier: GPL-2.0-or-later
"""Every line an ELM327 prints, classified once: data, information, or a named condition.

Informational lines (``SEARCHING...``, ``BUS INIT: ...OK``, the echo of the request) never make
an answer fail: the data frames beside them are kept. The conditions are what the status names.
"""

import enum
import re
from dataclasses import dataclass, field


class Condition(enum.Enum):
    """Why an answer carried no data; the value is how the status names it."""

    NO_DATA = "NO DATA"
    UNABLE_TO_CONNECT = "UNABLE TO CONNECT"
    BUS_INIT_ERROR = "BUS INIT: ERROR"
    BUS_ERROR = "BUS ERROR"
    CAN_ERROR = "CAN ERROR"
    STOPPED = "STOPPED"
    BUFFER_FULL = "BUFFER FULL"
    UNKNOWN_COMMAND = "?"
    DATA_ERROR = "DATA ERROR"
    ECHO = "echo stuck on"

    @property
    def adapter_stuck(self) -> bool:
        """The adapter, not the car, is in trouble: a warm start is the cure."""
        return self in _STUCK

    @property
    def no_ecu(self) -> bool:
        return self in _NO_ECU


_STUCK = frozenset(
    {
        Condition.STOPPED,
        Condition.BUFFER_FULL,
        Condition.UNKNOWN_COMMAND,
        Condition.CAN_ERROR,
        Condition.ECHO,
    }
)
_NO_ECU = frozenset(
    {
        Condition.NO_DATA,
        Condition.UNABLE_TO_CONNECT,
        Condition.BUS_INIT_ERROR,
        Condition.BUS_ERROR,
    }
)
_HEX = re.compile(r"^[0-9A-F]+$")
_INFORMATIONAL = re.compile(r"^(SEARCHING\.*|BUS INIT:?\s*\.*\s*OK|OK)$")


@dataclass(slots=True)
class Answer:
    """One request's answer: its data lines for the protocol parser, and what else it said."""

    data: list[str] = field(default_factory=list)
    informational: list[str] = field(default_factory=list)
    conditions: list[Condition] = field(default_factory=list)
    echoed: bool = False

    @property
    def condition(self) -> Condition | None:
        """The condition that explains an answer without data (``None`` when data came)."""
        if self.data:
            return None
        if self.conditions:
            return self.conditions[0]
        return Condition.ECHO if self.echoed else None


def _condition(line: str) -> Condition | None:
    compact = " ".join(line.split())
    if compact == "?":
        return Condition.UNKNOWN_COMMAND
    if compact.startswith("BUS INIT"):
        return Condition.BUS_INIT_ERROR  # "OK" was matched as informational before
    if compact.endswith("ERROR") and "CAN" in compact:
        return Condition.CAN_ERROR
    if "FB ERROR" in compact or "BUS ERROR" in compact or "BUS BUSY" in compact:
        return Condition.BUS_ERROR
    if "RX ERROR" in compact or "DATA ERROR" in compact or compact.startswith("ERR"):
        return Condition.DATA_ERROR
    for condition in (
        Condition.NO_DATA,
        Condition.UNABLE_TO_CONNECT,
        Condition.STOPPED,
        Condition.BUFFER_FULL,
    ):
        if condition.value in compact:
            return condition
    return None


def classify(request: str, lines: list[str]) -> Answer:
    """Sort the lines of one answer (prompt already removed) into data, information, conditions."""
    answer = Answer()
    sent = "".join(request.split()).upper()
    for raw in lines:
        line = raw.strip().upper()
        if not line:
            continue
        compact = "".join(line.split())
        if compact == sent and not answer.data:
            answer.echoed = True  # an echo the adapter should have stopped (ATE0)
            continue
        if _HEX.match(compact) or re.match(r"^[0-9A-F]:[0-9A-F]+$", compact):
            answer.data.append(line)
            continue
        if _INFORMATIONAL.match(" ".join(line.split())):
            answer.informational.append(line)
            continue
        condition = _condition(line)
        if condition is not None:
            answer.conditions.append(condition)
        else:
            answer.informational.append(line)
    return answer

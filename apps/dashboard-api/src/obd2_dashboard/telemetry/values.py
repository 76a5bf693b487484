"""Telemetry values other domains read (through ``telemetry.service``)."""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Bucket:
    ts: int
    avg: float
    min: float
    max: float
    count: int

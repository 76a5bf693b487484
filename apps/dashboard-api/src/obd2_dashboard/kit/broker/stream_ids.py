"""Redis stream ids (``<milliseconds>-<sequence>``), which the embedded broker mints too and the
live fan-out uses as resume points."""

# Redis stream ids are two unsigned 64-bit numbers.
MAX_STREAM_ID_PART = 2**64 - 1


def parse_stream_id(value: str) -> tuple[int, int]:
    """``"1700000000000-3"`` → ``(1700000000000, 3)``; ValueError for anything else."""
    ms, sep, seq = value.partition("-")
    # isascii: str.isdigit() also takes "²", which int() refuses.
    digits = ms.isascii() and ms.isdigit() and (not sep or (seq.isascii() and seq.isdigit()))
    if not digits or len(value) > 41:
        raise ValueError(f"not a stream id: {value!r}")
    parts = int(ms), int(seq) if sep else 0
    if max(parts) > MAX_STREAM_ID_PART:
        raise ValueError(f"not a stream id: {value!r}")
    return parts


def format_stream_id(parts: tuple[int, int]) -> str:
    return f"{parts[0]}-{parts[1]}"

"""The state model at each threshold, with explicit times (presence/state.py is pure)."""

from datetime import UTC, datetime, timedelta

import pytest

from obd2_dashboard.presence.state import Thresholds, device_state, vehicle_state

T0 = datetime(2026, 12, 8, 12, 0, tzinfo=UTC)
LIMITS = Thresholds.of(stale_after_s=15, offline_after_s=300, silent_after_s=60)
S = timedelta(seconds=1)
MS = timedelta(milliseconds=1)


def test_a_vehicle_never_heard_from_is_never_seen_since_it_was_made() -> None:
    state = vehicle_state(
        created_at=T0, last_seen_at=None, live_since=None, now=T0 + 900 * S, thresholds=LIMITS
    )
    assert (state.state, state.since) == ("never_seen", T0)


@pytest.mark.parametrize(
    ("age", "expected", "since"),
    [
        (0 * S, "live", T0 - 40 * S),
        (15 * S - MS, "live", T0 - 40 * S),
        (15 * S, "stale", T0 + 15 * S),
        (300 * S - MS, "stale", T0 + 15 * S),
        (300 * S, "offline", T0 + 300 * S),
        (30 * 86400 * S, "offline", T0 + 300 * S),
    ],
)
def test_a_vehicle_is_live_then_stale_then_offline(
    age: timedelta, expected: str, since: datetime
) -> None:
    state = vehicle_state(
        created_at=T0 - 86400 * S,
        last_seen_at=T0,
        live_since=T0 - 40 * S,
        now=T0 + age,
        thresholds=LIMITS,
    )
    assert (state.state, state.since) == (expected, since)


def test_a_live_vehicle_from_before_live_since_was_kept_is_live_since_its_newest_upload() -> None:
    state = vehicle_state(
        created_at=T0 - 86400 * S, last_seen_at=T0, live_since=None, now=T0, thresholds=LIMITS
    )
    assert (state.state, state.since) == ("live", T0)


def _device(now: datetime, **times: object) -> tuple[str, datetime]:
    fields: dict[str, object] = {
        "created_at": T0 - 86400 * S,
        "revoked_at": None,
        "last_seen_at": None,
        "last_upload_at": None,
        "flowing_since": None,
        "adapter_state": None,
        "adapter_state_since": None,
    }
    fields.update(times)
    state = device_state(now=now, thresholds=LIMITS, **fields)  # type: ignore[arg-type]
    return state.state, state.since


def test_a_device_never_heard_from_is_silent_since_it_was_made() -> None:
    assert _device(T0) == ("silent", T0 - 86400 * S)


def test_a_revoked_device_is_revoked_whatever_else_is_true() -> None:
    assert _device(T0, revoked_at=T0 - S, last_seen_at=T0, last_upload_at=T0) == (
        "revoked",
        T0 - S,
    )


@pytest.mark.parametrize(
    ("age", "expected", "since"),
    [
        (0 * S, "connected", T0 - 100 * S),
        (60 * S - MS, "connected", T0 - 100 * S),
        (60 * S, "silent", T0 + 60 * S),
    ],
)
def test_an_uploading_device_is_connected_until_it_falls_silent(
    age: timedelta, expected: str, since: datetime
) -> None:
    # A phone (no status reports): its uploads alone.
    times = {"last_seen_at": T0, "last_upload_at": T0, "flowing_since": T0 - 100 * S}
    assert _device(T0 + age, **times) == (expected, since)


def test_an_agent_that_reports_in_but_uploads_nothing_is_silent() -> None:
    """The agent's socket is open and its adapter says connected, but no data flows."""
    times = {
        "last_seen_at": T0 + 100 * S,
        "last_upload_at": T0,
        "flowing_since": T0 - 100 * S,
        "adapter_state": "connected",
        "adapter_state_since": T0 - 200 * S,
    }
    assert _device(T0 + 59 * S, **times) == ("connected", T0 - 100 * S)
    assert _device(T0 + 100 * S, **times) == ("silent", T0 + 60 * S)


@pytest.mark.parametrize(
    ("adapter_state", "expected"),
    [
        ("engine_off", "engine_off"),
        ("low_voltage", "engine_off"),
        ("no_ecu", "adapter_disconnected"),
        ("no_adapter", "adapter_disconnected"),
        ("timeout", "adapter_disconnected"),
        ("connecting", "adapter_disconnected"),
        ("unsupported_protocol", "adapter_disconnected"),
    ],
)
def test_the_agents_newest_report_says_engine_off_or_adapter_disconnected(
    adapter_state: str, expected: str
) -> None:
    times = {
        "last_seen_at": T0,
        "last_upload_at": T0,
        "flowing_since": T0 - 100 * S,
        "adapter_state": adapter_state,
        "adapter_state_since": T0 - 5 * S,
    }
    assert _device(T0 + 10 * S, **times) == (expected, T0 - 5 * S)
    # …until the agent itself falls silent.
    assert _device(T0 + 60 * S, **times) == ("silent", T0 + 60 * S)


def test_a_device_is_connected_since_the_later_of_data_flowing_and_the_adapter_connecting() -> None:
    times = {
        "last_seen_at": T0,
        "last_upload_at": T0,
        "flowing_since": T0 - 100 * S,
        "adapter_state": "connected",
        "adapter_state_since": T0 - 30 * S,
    }
    assert _device(T0, **times) == ("connected", T0 - 30 * S)

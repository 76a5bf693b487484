import pytest
from pydantic import TypeAdapter, ValidationError

from obd2_protocol import (
    MAX_DETAIL,
    MAX_DTC_DESCRIPTION,
    MAX_DTCS,
    MAX_REPORT_FRAME_CHARS,
    PIDS,
    AgentFrame,
    BridgeAck,
    BridgeClearDtcs,
    BridgeDtcReport,
    BridgeStatus,
    DtcEntry,
    ServerFrame,
)
from obd2_protocol.wire import MAX_AGENT_VERSION

server_frames: TypeAdapter[ServerFrame] = TypeAdapter(ServerFrame)
agent_frames: TypeAdapter[AgentFrame] = TypeAdapter(AgentFrame)


def test_server_frames_are_told_apart_by_type() -> None:
    assert isinstance(server_frames.validate_json('{"type":"clear_dtcs","id":3}'), BridgeClearDtcs)
    ack = server_frames.validate_json('{"type":"ack","id":1,"accepted":2,"duplicates":0}')
    assert isinstance(ack, BridgeAck)
    with pytest.raises(ValidationError):
        server_frames.validate_json('{"type":"reboot","id":1}')


def test_status_frame_round_trips_and_refuses_unknown_states() -> None:
    status = BridgeStatus(
        ts=1_800_000_000_000,
        agent_version="0.1.0",
        adapter_state="engine_off",
        spool_backlog=12,
        sample_rate=40.5,
    )
    assert agent_frames.validate_json(status.model_dump_json()) == status
    with pytest.raises(ValidationError):
        BridgeStatus.model_validate({**status.model_dump(), "adapter_state": "sleepy"})


def test_dtc_codes_are_checked() -> None:
    frame = (
        '{"type":"dtcs","ts":1800000000000,"stored":[{"code":"P01X3"}],"pending":[],"permanent":[]}'
    )
    with pytest.raises(ValidationError):
        agent_frames.validate_json(frame)


def _status(**fields: object) -> dict[str, object]:
    return {
        "type": "status",
        "ts": 1_800_000_000_000,
        "agent_version": "0.1.0",
        "adapter_state": "connected",
        "spool_backlog": 0,
        "sample_rate": 1.0,
        **fields,
    }


@pytest.mark.parametrize(
    ("frame", "field"),
    [
        (_status(agent_version="v" * (MAX_AGENT_VERSION + 1)), "agent_version"),
        (_status(adapter_detail="x" * (MAX_DETAIL + 1)), "adapter_detail"),
        (_status(adapter_detail="a\x00b"), "adapter_detail"),
        (_status(agent_version="\ud800"), "agent_version"),
        (_status(spool_backlog=2**53), "spool_backlog"),
        (_status(sample_rate=float("nan")), "sample_rate"),
        (_status(battery_voltage=float("inf")), "battery_voltage"),
        (
            {
                "type": "dtcs",
                "ts": 1_800_000_000_000,
                "stored": [{"code": "P0143"}] * (MAX_DTCS + 1),
                "pending": [],
                "permanent": [],
            },
            "stored",
        ),
        (
            {
                "type": "dtcs",
                "ts": 1_800_000_000_000,
                "stored": [],
                "pending": [],
                "permanent": [],
                "freeze_frame": dict.fromkeys([*PIDS, "MORE"], 1.0),
            },
            "freeze_frame",
        ),
        (
            {
                "type": "command_result",
                "id": 1,
                "command": "clear_dtcs",
                "ok": True,
                "detail": "e" * (MAX_DETAIL + 1),
            },
            "detail",
        ),
        ({"type": "command_result", "id": 2**53, "command": "clear_dtcs", "ok": True}, "id"),
    ],
)
def test_every_report_field_has_a_limit(frame: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        agent_frames.validate_python(frame)
    assert refused.value.errors()[0]["loc"][1] == field


def test_reports_at_every_limit_fit_in_a_report_frame() -> None:
    entry = DtcEntry(code="P0143", description="d" * MAX_DTC_DESCRIPTION)
    report = BridgeDtcReport(
        ts=1_800_000_000_000,
        stored=[entry] * MAX_DTCS,
        pending=[entry] * MAX_DTCS,
        permanent=[entry] * MAX_DTCS,
        freeze_dtc="P0143",
        freeze_frame=dict.fromkeys(PIDS, -123456.789),
    )
    assert len(report.model_dump_json()) <= MAX_REPORT_FRAME_CHARS

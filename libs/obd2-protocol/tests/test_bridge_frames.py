import pytest
from pydantic import TypeAdapter, ValidationError

from obd2_protocol import (
    AgentFrame,
    BridgeAck,
    BridgeClearDtcs,
    BridgeStatus,
    ServerFrame,
)

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

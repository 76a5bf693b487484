"""Frames no well-behaved client sends, for both WebSockets."""

import json

from hypothesis import strategies as st

# Text frames that are not JSON, JSON of the wrong shape, and JSON that trips parsers up.
ODD_TEXT: list[str] = [
    "",
    " ",
    "not json",
    "{not json",
    '{"type": "subscribe", "vehicle_id": 1',
    "null",
    "true",
    "0",
    "-1",
    "1e999",
    "NaN",
    "Infinity",
    '"subscribe"',
    "[]",
    "{}",
    # Deeper than Python's recursion limit, and still under the browser socket's 4096 bytes.
    "[" * 2040 + "]" * 2040,
    '{"a":' * 1500 + "1" + "}" * 1500,
    '{"type": []}',
    '{"type": {}}',
    '{"type": 1}',
    '{"type": null}',
    '{"type": true}',
    '{"type": "\\ud800"}',
    '{"type": "\\u0000"}',
    '{"type": "' + "x" * 3000 + '"}',
    '{"type": "subscribe"}',
    '{"type": "subscribe", "vehicle_id": "1"}',
    '{"type": "subscribe", "vehicle_id": 1.0}',
    '{"type": "subscribe", "vehicle_id": true}',
    '{"type": "subscribe", "vehicle_id": -1}',
    '{"type": "subscribe", "vehicle_id": 0}',
    '{"type": "subscribe", "vehicle_id": 18446744073709551616}',
    '{"type": "subscribe", "vehicle_id": 1' + "0" * 400 + "}",
    '{"type": "subscribe", "vehicle_id": [1]}',
    '{"type": "unsubscribe", "vehicle_id": 999999}',
    '{"type": "batch"}',
    '{"type": "batch", "id": -1, "samples": []}',
    '{"type": "batch", "id": 1e3, "samples": [{}]}',
    '{"type": "batch", "id": 18446744073709551616, "samples": [{"seq": 1}]}',
    '{"type": "batch", "id": 1, "samples": {"seq": 1}}',
    '{"type": "batch", "id": 1, "samples": [{"seq": 1, "ts": 1, "pid": "RPM", "value": 1}]}',
    '{"type": "status"}',
    # Values no table can hold, and values that are not numbers: refused, not stored.
    '{"type": "batch", "id": 1, "samples": [{"seq": 1, "ts": 1750000000000, "pid": "RPM", '
    '"value": 1e308}]}',
    '{"type": "batch", "id": 1, "samples": [{"seq": 1, "ts": 1750000000000, "pid": "RPM", '
    '"value": NaN}]}',
    '{"type": "batch", "id": 1, "samples": [{"seq": 1, "ts": 1750000000000, "pid": "RPM", '
    '"value": "12"}]}',
    '{"type": "batch", "id": 1, "samples": [{"seq": 1, "ts": 1750000000000, "pid": "RPM", '
    '"value": true}]}',
    # Report fields over their columns' sizes.
    '{"type": "status", "ts": 1750000000000, "agent_version": "' + "v" * 100 + '", '
    '"adapter_state": "connected", "spool_backlog": 0, "sample_rate": 1}',
    '{"type": "command_result", "id": 18446744073709551616, "command": "clear_dtcs", "ok": true}',
    '{"type": "dtcs", "stored": "P0143"}',
    '{"type": "command_result", "id": "x"}',
    '{"type": "ack", "id": 1, "accepted": 1, "duplicates": 0}',
    '{"type": "clear_dtcs", "id": 1}',
    "\ufeff{}",
    "\u202e{}",
]
BINARY: list[bytes] = [
    b"",
    b"\x00",
    b"\xff\xfe\xfd",
    b'{"type": "subscribe", "vehicle_id": 1}',
    bytes(range(256)),
]

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["type", "id", "vehicle_id", "samples", "x"]) | st.text(max_size=5),
            children,
            max_size=4,
        )
    ),
    max_leaves=10,
)
GENERATED = JSON_VALUES.map(json.dumps)

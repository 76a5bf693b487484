import json
import math
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from obd2_protocol import (
    MAX_ABS_VALUE,
    PIDS,
    FastSample,
    IngestBatch,
    Sample,
    decode_ingest_batch,
    is_storable_value,
)


def _fields(decoded: Any) -> list[tuple[int, int, str, float]]:
    samples = decoded.samples if isinstance(decoded, IngestBatch) else decoded
    return [(s.seq, s.ts, s.pid, s.value) for s in samples]


def _outcome(decode: Callable[[bytes], Any], body: bytes) -> object:
    try:
        return _fields(decode(body))
    except ValidationError as refused:
        return refused.errors(include_context=False)


def _same_as_pydantic(body: bytes) -> None:
    assert _outcome(decode_ingest_batch, body) == _outcome(IngestBatch.model_validate_json, body)


def test_a_plain_batch_takes_the_fast_decoder() -> None:
    body = b'{"samples":[{"seq":1,"ts":1750000000000,"pid":"RPM","value":812.5}]}'
    decoded = decode_ingest_batch(body)
    assert isinstance(decoded, list)
    assert decoded == [FastSample(seq=1, ts=1_750_000_000_000, pid="RPM", value=812.5)]


@pytest.mark.parametrize(
    "sample",
    [
        '{"seq":1,"ts":1750000000000,"pid":"RPM","value":1e999}',
        '{"seq":1,"ts":1750000000000,"pid":"RPM","value":-1e999}',
        '{"seq":1,"ts":1750000000000,"pid":"NOT_A_PID","value":1}',
        '{"seq":1.0,"ts":1750000000000,"pid":"RPM","value":1}',
        '{"seq":true,"ts":1750000000000,"pid":"RPM","value":1}',
        '{"seq":-1,"ts":1750000000000,"pid":"RPM","value":1}',
        '{"seq":9223372036854775808,"ts":1750000000000,"pid":"RPM","value":1}',
        '{"seq":1,"ts":999999999999,"pid":"RPM","value":1}',
        '{"seq":1,"ts":1750000000000,"pid":"RPM","value":1,"extra":0}',
        '{"seq":1,"ts":1750000000000,"pid":"RPM"}',
        '{"seq":1,"ts":1750000000000,"pid":"RPM","value":"1.5"}',
        '{"seq":1,"ts":1750000000000,"pid":"RPM","value":1e308}',
        '{"seq":1,"ts":1750000000000,"pid":"RPM","value":-1e308}',
        '{"seq":1,"ts":1750000000000,"pid":"RPM","value":1000000000000.0001}',
        '{"seq":1,"ts":1750000000000,"pid":"RPM","value":1000000000001}',
        '{"seq":1,"ts":1750000000000,"pid":"RPM","value":1000000000000}',
        '{"seq":1,"ts":1750000000000,"pid":"RPM","value":-1e12}',
        '{"seq":1,"ts":1750000000000,"pid":"RPM","value":true}',
        '{"seq":1,"seq":2,"ts":1750000000000,"pid":"RPM","value":1}',
    ],
)
def test_edge_cases_decode_exactly_as_the_model_does(sample: str) -> None:
    _same_as_pydantic(f'{{"samples":[{sample}]}}'.encode())


@pytest.mark.parametrize(
    "body", [b"", b"[]", b'{"samples":[]}', b'{"samples":{}}', b"\xff\xfe", b'{"samples":[1]}']
)
def test_malformed_bodies_fail_with_the_models_errors(body: bytes) -> None:
    _same_as_pydantic(body)


_values = st.one_of(
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    st.text(max_size=4),
    st.booleans(),
    st.none(),
)
_samples = st.fixed_dictionaries(
    {
        "seq": st.one_of(st.integers(-5, 2**64), st.floats(0, 10)),
        "ts": st.integers(10**12 - 5, 2**53 + 5),
        "pid": st.one_of(st.sampled_from(sorted(PIDS)), st.text(max_size=70)),
        "value": _values,
    },
    optional={"extra": st.integers()},
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_samples, max_size=5))
def test_any_batch_decodes_as_the_model_decodes_it(samples: list[dict[str, Any]]) -> None:
    _same_as_pydantic(json.dumps({"samples": samples}).encode())


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("1e308", "less_than_equal"),
        ("-1e308", "greater_than_equal"),
        ("1000000000001", "less_than_equal"),
        ("NaN", "finite_number"),
        ("-Infinity", "finite_number"),
        ("1e999", "finite_number"),
        ('"12"', "float_type"),
        ("true", "float_type"),
        ("null", "float_type"),
    ],
)
def test_values_are_finite_json_numbers_the_storage_can_hold(value: str, error: str) -> None:
    body = f'{{"samples":[{{"seq":1,"ts":1750000000000,"pid":"RPM","value":{value}}}]}}'
    with pytest.raises(ValidationError) as refused:
        decode_ingest_batch(body.encode())
    assert [(e["loc"], e["type"]) for e in refused.value.errors()] == [
        (("samples", 0, "value"), error)
    ]


def test_storable_values_are_the_ones_the_model_accepts() -> None:
    for value in (0.0, -0.0, 5e-324, MAX_ABS_VALUE, -MAX_ABS_VALUE):
        assert is_storable_value(value)
        Sample(seq=1, ts=1_750_000_000_000, pid="RPM", value=value)
    for value in (math.nan, math.inf, -math.inf, 1e308, math.nextafter(MAX_ABS_VALUE, math.inf)):
        assert not is_storable_value(value)
        with pytest.raises(ValidationError):
            Sample(seq=1, ts=1_750_000_000_000, pid="RPM", value=value)


def test_a_seq_repeated_with_another_reading_is_refused_and_an_exact_repeat_is_not() -> None:
    one = '{"seq":4,"ts":1750000000000,"pid":"RPM","value":800}'
    exact = decode_ingest_batch(f'{{"samples":[{one},{one}]}}'.encode())
    assert _fields(exact) == [(4, 1_750_000_000_000, "RPM", 800.0)] * 2
    for other in (
        '{"seq":4,"ts":1750000000000,"pid":"RPM","value":801}',
        '{"seq":4,"ts":1750000000001,"pid":"RPM","value":800}',
        '{"seq":4,"ts":1750000000000,"pid":"SPEED","value":800}',
    ):
        body = f'{{"samples":[{one},{{"seq":5,"ts":1750000000000,"pid":"RPM","value":1}},{other}]}}'
        with pytest.raises(ValidationError) as refused:
            decode_ingest_batch(body.encode())
        (error,) = refused.value.errors()
        assert error["loc"] == ("samples",)
        assert "samples[2] repeats the seq 4 of samples[0]" in error["msg"]
        _same_as_pydantic(body.encode())

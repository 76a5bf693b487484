from datetime import datetime
from typing import Annotated, Literal, Self

from pydantic import AnyHttpUrl, Field, StringConstraints, field_validator, model_validator

from obd2_dashboard.kit.schemas import MAX_ID, Schema
from obd2_dashboard.vehicles.schemas import VehicleName
from obd2_protocol import PID_SCHEMA, is_known_pid

RuleKind = Literal["threshold", "silence", "dtc"]
RuleOp = Literal["above", "below"]
WebhookSecret = Annotated[
    str, StringConstraints(min_length=16, max_length=128, pattern=r"^[\x21-\x7e]+$")
]
Seconds = Annotated[int, Field(ge=0, le=7 * 24 * 3600)]
DEFAULT_COOLDOWN_S = 300
PidName = Annotated[str, Field(json_schema_extra=PID_SCHEMA)]
GivenUnit = Annotated[
    str | None,
    Field(
        min_length=1,
        max_length=32,
        description="threshold: the unit op, threshold and clear_threshold are given in "
        "(°F, mph, psi, mpg US…; GET /api/v1/units lists them); converted to the PID's stored "
        "unit on save (the rule keeps that). Default: the stored unit",
        examples=["°F"],
    ),
]


class AlertRuleFields(Schema):
    name: VehicleName
    kind: RuleKind
    enabled: bool = True
    pid: Annotated[PidName | None, Field(description="threshold: the PID, e.g. COOLANT_TEMP")] = (
        None
    )
    op: RuleOp | None = None
    threshold: Annotated[float | None, Field(allow_inf_nan=False)] = None
    clear_threshold: Annotated[
        float | None,
        Field(
            allow_inf_nan=False,
            description="threshold: the value that ends an episode (hysteresis); default the "
            "threshold itself",
        ),
    ] = None
    duration_s: Annotated[
        Seconds, Field(description="threshold: how long the condition must hold")
    ] = 0
    while_parked: Annotated[
        bool, Field(description="threshold: only while SPEED is 0 and the engine is off")
    ] = False
    silence_minutes: Annotated[int | None, Field(ge=1, le=7 * 24 * 60)] = None
    device_id: Annotated[
        int | None, Field(ge=1, le=MAX_ID, description="silence: one device; none: any")
    ] = None
    cooldown_s: Annotated[
        Seconds,
        Field(
            description="after the rule fires, it stays quiet this long (sample time) even if "
            "the condition holds again: 'speed above 80 for 2 s' crossed every 30 s fires once "
            "per cooldown. 0: every episode fires"
        ),
    ] = DEFAULT_COOLDOWN_S
    webhook_url: AnyHttpUrl | None = None
    webhook_secret: Annotated[
        WebhookSecret | None,
        Field(description="HMAC-SHA256 key for X-OBD2-Signature; generated when omitted"),
    ] = None
    mqtt: Annotated[bool, Field(description="also publish to MQTT (when configured)")] = True

    @field_validator("pid")
    @classmethod
    def _known_pid(cls, value: str | None) -> str | None:
        if value is not None and not is_known_pid(value):
            raise ValueError(f"unknown PID {value!r}")
        return value

    @field_validator("webhook_url")
    @classmethod
    def _short_url(cls, value: AnyHttpUrl | None) -> AnyHttpUrl | None:
        if value is not None and len(str(value)) > 2048:
            raise ValueError("webhook_url is longer than 2048 characters")
        return value

    @model_validator(mode="after")
    def _kind_fields(self) -> Self:
        if self.kind == "threshold":
            if self.pid is None or self.op is None or self.threshold is None:
                raise ValueError("a threshold rule needs pid, op and threshold")
            clear = self.clear_threshold
            if clear is not None and (
                (self.op == "above" and clear > self.threshold)
                or (self.op == "below" and clear < self.threshold)
            ):
                raise ValueError(
                    "clear_threshold must be on the safe side of threshold "
                    "(≤ for above, ≥ for below)"
                )
        elif self.kind == "silence" and self.silence_minutes is None:
            raise ValueError("a silence rule needs silence_minutes")
        if self.kind != "threshold" and (
            self.pid is not None or self.op is not None or self.threshold is not None
        ):
            raise ValueError(f"pid, op and threshold are for threshold rules, not {self.kind}")
        if self.kind != "silence" and (
            self.silence_minutes is not None or self.device_id is not None
        ):
            raise ValueError(
                f"silence_minutes and device_id are for silence rules, not {self.kind}"
            )
        return self


class AlertRuleCreate(AlertRuleFields):
    unit: GivenUnit = None

    @model_validator(mode="after")
    def _unit_for_thresholds(self) -> Self:
        if self.unit is not None and self.kind != "threshold":
            raise ValueError(f"unit is for threshold rules, not {self.kind}")
        return self


class AlertRuleUpdate(Schema):
    """Fields to change; the rule as changed must still be valid as a whole."""

    name: VehicleName | None = None
    enabled: bool | None = None
    pid: PidName | None = None
    op: RuleOp | None = None
    threshold: Annotated[float | None, Field(allow_inf_nan=False)] = None
    clear_threshold: Annotated[float | None, Field(allow_inf_nan=False)] = None
    duration_s: Seconds | None = None
    while_parked: bool | None = None
    silence_minutes: Annotated[int | None, Field(ge=1, le=7 * 24 * 60)] = None
    device_id: Annotated[int | None, Field(ge=1, le=MAX_ID)] = None
    cooldown_s: Seconds | None = None
    webhook_url: AnyHttpUrl | None = None
    webhook_secret: WebhookSecret | None = None
    mqtt: bool | None = None
    unit: GivenUnit = None


class RuleDisplay(Schema):
    """A threshold rule's condition in the reader's unit system."""

    unit: str
    op: str | None
    threshold: float | None
    clear_threshold: float | None


class AlertRuleRead(Schema):
    id: int
    vehicle_id: int
    name: str
    kind: str
    enabled: bool
    pid: str | None
    op: str | None
    threshold: float | None
    clear_threshold: float | None
    duration_s: int
    while_parked: bool
    silence_minutes: int | None
    device_id: int | None
    cooldown_s: int
    webhook_url: str | None
    webhook_secret: Annotated[
        str | None, Field(description="verify X-OBD2-Signature: sha256=HMAC(secret, body)")
    ]
    mqtt: bool
    firing: Annotated[bool, Field(description="an alert of this rule is open now")]
    created_at: datetime
    updated_at: datetime
    evaluated_from_ts: Annotated[
        int,
        Field(
            description="epoch ms: samples from this time on count (the rule's creation, or "
            "the last change of its condition or its resumption); no alert is dated before"
        ),
    ] = 0
    unit: Annotated[
        str | None,
        Field(description="threshold: the unit threshold and clear_threshold are stored in"),
    ] = None
    display: Annotated[
        RuleDisplay | None,
        Field(
            description="threshold: op, threshold and clear_threshold in the signed-in user's "
            "unit system (mpg turns above into below)"
        ),
    ] = None


# What a delivery's last_error says. Coarse on purpose: the rule's owner chose the address, and
# a finer text (the exception, "connection refused" against a timeout) would make deliveries a
# port scanner. The worker's log has the detail for the operator.
REFUSED_BY_POLICY = "refused by policy"
NOT_RESOLVED = "failed: host name does not resolve"
NO_HTTP_RESPONSE = "failed: no HTTP response"
NO_WEBHOOK = "failed: the rule was deleted or has no webhook_url"
MQTT_NOT_SET = "MQTT_URL is not set"
MQTT_UNAVAILABLE = "failed: MQTT broker unavailable"
UNKNOWN_CHANNEL = "failed: unknown channel"
REDIRECT_NOT_FOLLOWED = "failed: HTTP 3xx (redirects are not followed)"


def http_error(status: int) -> str:
    """The last_error for an HTTP answer that is not a success."""
    if 300 <= status < 400:
        return REDIRECT_NOT_FOLLOWED
    if 400 <= status < 600:
        return f"failed: HTTP {status // 100}xx"
    return "failed: unexpected HTTP status"


_SHOWN_ERRORS = frozenset(
    {
        REFUSED_BY_POLICY,
        NOT_RESOLVED,
        NO_HTTP_RESPONSE,
        NO_WEBHOOK,
        MQTT_NOT_SET,
        MQTT_UNAVAILABLE,
        UNKNOWN_CHANNEL,
        REDIRECT_NOT_FOLLOWED,
        "failed: HTTP 4xx",
        "failed: HTTP 5xx",
        "failed: unexpected HTTP status",
    }
)


def shown_error(channel: str, text: str | None) -> str | None:
    """``text`` if it is one of the coarse errors, else the coarse error it stands for.

    Rows written before errors were coarse hold exception texts ("ConnectError: …").
    """
    if text is None or text in _SHOWN_ERRORS:
        return text
    code = text.removeprefix("HTTP ")
    if code != text and code.isdigit():
        return http_error(int(code))
    return MQTT_UNAVAILABLE if channel == "mqtt" else NO_HTTP_RESPONSE


class DeliveryRead(Schema):
    channel: str
    event: str
    status: Annotated[str, Field(description="pending, delivered, failed or skipped")]
    attempts: int
    last_error: Annotated[
        str | None,
        Field(
            description="why the last attempt did not deliver, coarsely: 'refused by policy', "
            "'failed: no HTTP response', 'failed: HTTP 5xx', …"
        ),
    ]
    response_status: int | None
    delivered_at: datetime | None

    @model_validator(mode="after")
    def _coarse_error(self) -> Self:
        self.last_error = shown_error(self.channel, self.last_error)
        return self


class AlertRead(Schema):
    id: int
    vehicle_id: int
    rule_id: int | None
    rule_name: str
    kind: str
    subject: Annotated[str, Field(description="the PID, trouble code or device it is about")]
    subject_name: Annotated[
        str, Field(description="the PID's display name ('Engine coolant temperature') or subject")
    ] = ""
    message: Annotated[
        str,
        Field(
            description="what happened, in the reader's unit system with the PID's display "
            "name ('Engine coolant temperature 194 °F above 185 °F')"
        ),
    ]
    value: float | None
    started_ts: Annotated[int, Field(description="episode start, epoch ms (sample time)")]
    fired_ts: int
    cleared_ts: int | None
    created_at: datetime
    acknowledged_at: datetime | None
    deliveries: Annotated[
        list[DeliveryRead],
        Field(description="how the alert was sent; the vehicle owner's only (empty for a viewer)"),
    ] = []

"""Request bodies of the LAAFFIC API, as types only.

These models check JSON types and presence (failures answer -22); value rules such as ranges
and formats are the domain's (-21). They also document the API in OpenAPI.

Types are strict, as the callee list's are (``domain.callees``): an integer field takes a JSON
integer only (``"40"``, ``true``, ``40.0`` answer -22), a string field a JSON string only (``12``
answers -22); ``null`` is allowed where a field is optional. No value is ever coerced.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticError

from outdial.domain.text import check_text
from outdial.errors import ParameterError

# JSON allows any integer; the database stores signed 64-bit ones.
Int = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]


class Body(BaseModel):
    # Unknown fields are ignored so that LAAFFIC clients sending newer fields keep working.
    model_config = ConfigDict(extra="ignore", strict=True)


class WindowBody(Body):
    strTime: str = Field(description="window start, HH:mm", examples=["09:00"])
    endTime: str = Field(description="window end, HH:mm; at or before strTime = past midnight")


class CalleeBody(Body):
    calleeNumber: str = Field(description="6-18 digits: country code + number")
    text1: str | None = None
    text2: str | None = None
    text3: str | None = None
    text4: str | None = None
    text5: str | None = None
    text6: str | None = None
    text7: str | None = None
    text8: str | None = None
    text9: str | None = None
    text10: str | None = None


class RecallFlowBody(Body):
    """Extension of send/ai (`recallFlow`), and LAAFFIC's recallFlow/update."""

    recallType: Int = Field(description="0 recall every callee, 1 only those not connected")
    recallInterval: Int = Field(description="minutes after a round finishes, 1-1440")
    recallNum: Int = Field(description="rounds, 1-10")


class TaskFieldsBody(Body):
    """Fields shared by send/ai and update/ai."""

    taskName: str = Field(description="2-64 characters, unique in the account")
    scriptId: Int = Field(description="AI speech template id")
    displayNum: str | None = Field(None, description="caller ID, 0-20 digits")
    sendTime: str | None = Field(None, description="yyyy-MM-dd HH:mm:ss; null or past = now")
    allowSendTime: list[WindowBody] | None = Field(None, description="up to 3 daily windows")
    maxRingingTime: Int | None = Field(None, description="20-120 s, default 60")
    enableRecording: Int | None = Field(None, description="0 or 1, default 0")
    calloutRate: Int | None = Field(None, description="outbound multiplier, default 1")
    timezone: str | None = Field(
        None, description="Extension: IANA zone for sendTime and windows (default: account's)"
    )
    windowZone: str | None = Field(
        None,
        description='Extension: "task" (default) reads the windows in the task\'s zone; '
        '"callee" in each callee\'s own zone, derived from the number',
    )


class SendAiBody(TaskFieldsBody):
    """POST /v3/voice/group/call/send/ai."""

    appId: str = Field(description="the account's voice application id")
    maxCalls: Int = Field(description="max talk seconds after answer, 1-999")
    numberList: list[str | CalleeBody] | str | None = Field(
        None, description="callees: numbers, comma-separated numbers, or callee objects"
    )
    numberInfoList: list[CalleeBody | str] | None = Field(
        None, description="the same as numberList (LAAFFIC's published example uses it)"
    )
    recallFlow: RecallFlowBody | None = Field(
        None, description="Extension: automatic recall rounds after the task finishes"
    )


class SendAiFields(TaskFieldsBody):
    """send/ai without its callee list, which is validated in bulk."""

    appId: str
    maxCalls: Int


class DncBody(Body):
    """Extension: POST /v3/voice/dnc/add and /v3/voice/dnc/remove."""

    numbers: list[str] = Field(description="callee numbers, 6-18 digits (at most 10,000)")
    reason: str | None = Field(None, description="kept with the entry (add only)")


class DncQueryBody(Body):
    """Extension: POST /v3/voice/dnc/query."""

    current: Int = 1
    size: Int = 20
    number: str | None = Field(None, description="only this number")


def load_json(body: bytes) -> Any:
    """Parse a request body or raise -22."""
    if not body.strip():
        raise ParameterError("the request body is empty; JSON is required")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ParameterError(f"malformed JSON: {exc}") from exc


def load_object(body: bytes) -> dict[str, Any]:
    data = load_json(body)
    if not isinstance(data, dict):
        raise ParameterError("the request body must be a JSON object")
    return data


M = TypeVar("M", bound=BaseModel)


def validate(model: type[M], data: Any) -> M:
    """Validate JSON types and presence against ``model``, or raise -22 naming the field; then
    every text it holds against the storable-text rule (-21, see ``domain.text``)."""
    try:
        body = model.model_validate(data)
    except PydanticError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "body"
        raise ParameterError(f"{where}: {err['msg']}") from exc
    _check_texts(body, "")
    return body


def _check_texts(value: object, where: str) -> None:
    # Only the model's own fields are walked: ignored unknown fields are never stored. Field
    # names are the JSON names (the models use no aliases).
    if isinstance(value, str):
        check_text(value, where or "body")
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            _check_texts(getattr(value, name), f"{where}.{name}" if where else name)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_texts(item, f"{where}[{i}]")

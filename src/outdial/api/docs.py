"""OpenAPI documentation of bodies that routes parse themselves (for speed and error codes)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field

_REF = "#/components/schemas/{model}"
_documented: dict[str, type[BaseModel]] = {}


class EnvelopeA(BaseModel):
    """LAAFFIC response style A."""

    status: str = Field(description='"0" on success, else a negative status code')
    reason: str
    data: Any = None


class EnvelopeB(BaseModel):
    """LAAFFIC response style B."""

    code: int = Field(description="0 on success, else a negative status code")
    msg: str
    data: Any = None


class BalanceEnvelope(BaseModel):
    """getBalance: style A with the amounts at top level."""

    status: str
    reason: str
    balance: str | None = None
    gift: str | None = None
    credit: str | None = None


def body(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` declaring ``model`` as the JSON request body."""
    _documented[model.__name__] = model
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": _REF.format(model=model.__name__)}}
            },
        }
    }


def install(app: FastAPI) -> None:
    """Make ``app.openapi()`` include the schemas that ``body()`` referenced."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for name, model in _documented.items():
            js = model.model_json_schema(ref_template=_REF)
            components.update(js.pop("$defs", {}))
            components[name] = js
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]

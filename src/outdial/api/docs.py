"""OpenAPI documentation of bodies that routes parse themselves (for speed and error codes),
and the offline /docs and /redoc pages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

_REF = "#/components/schemas/{model}"
# Swagger UI and ReDoc ship inside the fastapi-offline package (MIT; Swagger UI Apache-2.0,
# ReDoc MIT): the pages work on a machine without internet. Served under this path.
ASSETS_URL = "/docs-assets"
ASSETS_DIR = Path(fastapi_offline.__file__).parent / "static"
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
    _offline_pages(app)


def _offline_pages(app: FastAPI) -> None:
    """/docs (Swagger UI) and /redoc from the bundled assets; nothing loads from another host
    (no CDN, no Google Fonts, no validator badge). ``app`` must be built with
    ``docs_url=None, redoc_url=None``."""
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS_DIR), name="docs-assets")
    oauth2 = "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False)
    def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=str(app.openapi_url),
            title=f"{app.title} - API",
            oauth2_redirect_url=oauth2,
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get(oauth2, include_in_schema=False)
    def swagger_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=str(app.openapi_url),
            title=f"{app.title} - API",
            redoc_js_url=f"{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )

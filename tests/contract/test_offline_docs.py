"""/docs and /redoc work without internet: every asset they load is served by the app."""

from __future__ import annotations

import re
from typing import Any

import pytest


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_reference_no_other_host(api: Any, page: str) -> None:
    html = api.get(page)
    assert html.status_code == 200
    refs = re.findall(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""", html.text)
    assert refs, html.text
    for ref in refs:
        assert ref.startswith("/"), ref
        assert not ref.startswith("//"), ref
        assert api.get(ref).status_code == 200, ref
    assert "cdn" not in html.text.lower() and "fonts.googleapis" not in html.text
    assert re.search(r"https?://", html.text) is None, html.text


def test_the_swagger_ui_does_not_call_the_online_validator(api: Any) -> None:
    assert '"validatorUrl": null' in api.get("/docs").text


def test_assets_are_served_with_their_types(api: Any) -> None:
    js = api.get("/docs-assets/swagger-ui-bundle.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert len(js.content) > 500_000
    assert "css" in api.get("/docs-assets/swagger-ui.css").headers["content-type"]
    assert api.get("/docs-assets/redoc.standalone.js").status_code == 200

"""Structured logs: both formats carry the fields and never personal data or secrets."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from outdial.logs import REDACTED, configure, is_sensitive, mask_numbers

SECRETS = {
    "callee_number": "8613242926514",
    "display_num": "1008122211",
    "text1": "Dr Li, 14:30",
    "transcript": "yes I will come",
    "api_secret": "s3cr3t-value",
    "push_secret": "another-secret",
    "sms_http_token": "bearer-xyz",
    "body": {"calleeNumber": "8613242926515"},
}


@pytest.fixture
def logged() -> Iterator[tuple[io.StringIO, logging.Logger]]:
    out = io.StringIO()
    root = logging.getLogger()
    level = root.level
    logger = logging.getLogger("outdial.test.logs")
    yield out, logger
    configure(logging.getLevelName(level) if level else "WARNING")
    for h in [h for h in root.handlers if getattr(h, "_outdial", False)]:
        root.removeHandler(h)
    root.setLevel(level)


def _emit(out: io.StringIO, logger: logging.Logger, fmt: str) -> str:
    configure("INFO", fmt, stream=out)
    logger.info(
        "task accepted for %s",
        "8613242926516",
        extra={
            "task_id": 7,
            "account_id": 3,
            "worker": "w1",
            "callees": 2,
            "ref": "ab12",
            **SECRETS,
        },
    )
    try:
        raise ValueError("dial 8613242926517 failed")
    except ValueError:
        logger.exception("carrier failed", extra={"task_id": 7})
    return out.getvalue()


def _no_leak(text: str) -> None:
    for value in ("8613242926514", "8613242926515", "8613242926516", "8613242926517",
                  "1008122211", "Dr Li", "yes I will come", "s3cr3t", "another-secret",
                  "bearer-xyz"):  # fmt: skip
        assert value not in text, value


def test_json_lines_carry_the_fields_and_redact(logged: tuple[io.StringIO, logging.Logger]) -> None:
    text = _emit(*logged, "json")
    _no_leak(text)
    first, second = (json.loads(line) for line in text.splitlines() if line.startswith("{"))
    assert first["msg"] == "task accepted for [number]"
    assert first["level"] == "INFO" and first["logger"] == "outdial.test.logs"
    assert (first["task_id"], first["account_id"], first["worker"], first["callees"]) == (
        7, 3, "w1", 2,
    )  # fmt: skip
    assert first["ref"] == "ab12"
    for key in SECRETS:
        assert first[key] == REDACTED, key
    assert second["task_id"] == 7 and "ValueError" in second["exc"]
    assert "[number]" in second["exc"]


def test_text_lines_carry_the_fields_and_redact(logged: tuple[io.StringIO, logging.Logger]) -> None:
    text = _emit(*logged, "text")
    _no_leak(text)
    line = text.splitlines()[0]
    assert " INFO outdial.test.logs task accepted for [number] " in line
    for pair in ("task_id=7", "account_id=3", "worker=w1", "callees=2", "ref=ab12",
                 f"callee_number={REDACTED}", f"api_secret={REDACTED}"):  # fmt: skip
        assert pair in line, pair
    assert "Traceback" in text and "ValueError: dial [number] failed" in text


def test_what_counts_as_sensitive() -> None:
    for name in ("callee_number", "calleeNumber", "text3", "transcript", "apiSecret", "Sign"):
        assert is_sensitive(name), name
    for name in ("task_id", "account_id", "callees", "worker", "recovered", "ref", "count"):
        assert not is_sensitive(name), name
    assert mask_numbers("ids 7, 12345 and ref 9f3a1234567b") == "ids 7, 12345 and ref 9f3a1234567b"
    assert mask_numbers("to +8613242926514.") == "to [number]."


def test_one_place_configures_every_command(logged: tuple[io.StringIO, logging.Logger]) -> None:
    """The CLI's callback installs the handler from the settings before any command runs."""
    from typer.testing import CliRunner

    from outdial.cli.main import app

    result = CliRunner().invoke(app, ["script", "schema"], env={"OUTDIAL_LOG_FORMAT": "json"})
    assert result.exit_code == 0, result.output
    handlers = [h for h in logging.getLogger().handlers if getattr(h, "_outdial", False)]
    assert len(handlers) == 1
    assert type(handlers[0].formatter).__name__ == "JsonFormatter"
    bad = CliRunner().invoke(app, ["script", "schema"], env={"OUTDIAL_LOG_FORMAT": "xml"})
    assert bad.exit_code == 1 and "OUTDIAL_LOG_FORMAT" in bad.stderr


def test_library_request_lines_stay_out(logged: tuple[io.StringIO, logging.Logger]) -> None:
    """httpx's per-request INFO lines would flood the demo and carry receivers' URLs."""
    out, _ = logged
    configure("INFO", "text", stream=out)
    logging.getLogger("httpx").info('HTTP Request: POST http://127.0.0.1:9/push "HTTP/1.1 200 OK"')
    logging.getLogger("httpx").warning("connection pool is full")
    assert "HTTP Request" not in out.getvalue()
    assert "connection pool is full" in out.getvalue()

"""Logging for every command: one configuration, readable text or JSON lines, and a filter that
keeps personal data and secrets out of every line.

Fields travel as ``extra={...}`` on a record (``task_id``, ``account_id``, ``worker``, counts,
``ref``) and are printed by both formats. A field whose name says it holds a phone number, a
text, a transcript or a secret is printed as ``[redacted]`` whatever its value, and phone-number
-like digit runs are masked in messages and tracebacks, so a careless ``%s`` cannot leak one.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

REDACTED = "[redacted]"
NUMBER_MASK = "[number]"

# Parts of a field name that mark personal data or a secret ("callee_number", "text1",
# "transcript", "api_secret", "push_url_token", ...). Counts such as "callees" stay visible.
_SENSITIVE_PARTS = (
    "number",
    "phone",
    "msisdn",
    "callee_no",
    "display_num",
    "text",
    "transcript",
    "utterance",
    "speech",
    "variable",
    "dtmf",
    "secret",
    "token",
    "password",
    "passwd",
    "sign",
    "api_key",
    "apikey",
    "authorization",
    "cookie",
    "body",
    "content",
)

# A run of 7-18 digits standing alone (optionally after "+"): a phone number in LAAFFIC's
# format. Ids, counts and hex reference ids are shorter or not standalone digits.
_DIGIT_RUN = re.compile(r"(?<![\w.])\+?\d{7,18}(?!\w|\.\d)")

# Attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def is_sensitive(name: str) -> bool:
    """True when a field called ``name`` may hold personal data or a secret."""
    low = name.lower()
    return any(part in low for part in _SENSITIVE_PARTS)


def mask_numbers(text: str) -> str:
    """``text`` with every phone-number-like digit run replaced by ``[number]``."""
    return _DIGIT_RUN.sub(NUMBER_MASK, text)


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return mask_numbers(value)
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, list | tuple | set | frozenset):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {str(k): REDACTED if is_sensitive(str(k)) else _clean(v) for k, v in value.items()}
    return mask_numbers(str(value))


def fields(record: logging.LogRecord) -> dict[str, Any]:
    """The ``extra`` fields of ``record``, already redacted (see :class:`RedactingFilter`)."""
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class RedactingFilter(logging.Filter):
    """Rewrites each record before any formatter sees it: the message rendered and masked,
    sensitive fields replaced, other fields masked, the traceback masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_outdial_clean", False):
            return True
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = f"{record.msg!s} (unformattable arguments)"
        record.msg = mask_numbers(message)
        record.args = None
        for key in list(fields(record)):
            value = getattr(record, key)
            setattr(record, key, REDACTED if is_sensitive(key) else _clean(value))
        if record.exc_info:
            record.exc_text = mask_numbers(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = mask_numbers(record.stack_info)
        record._outdial_clean = True
        return True


class TextFormatter(logging.Formatter):
    """``2024-06-03 10:42:05,123 INFO outdial.service.submit task accepted task_id=7 ...``"""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extra = fields(record)
        if not extra:
            return line
        head, sep, tail = line.partition("\n")
        pairs = " ".join(f"{k}={_text_value(v)}" for k, v in extra.items())
        return f"{head} {pairs}{sep}{tail}"


def _text_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return json.dumps(text, ensure_ascii=False) if (" " in text or not text) else text


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts`` (UTC, ISO-8601), ``level``, ``logger``, ``msg``, the
    fields, and ``exc`` (the traceback) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in fields(record).items():
            out.setdefault(key, value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exc"] = record.exc_text
        if record.stack_info:
            out["stack"] = record.stack_info
        return json.dumps(out, ensure_ascii=False, default=str)


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is at the time of each record (test runners swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def configure(level: str = "INFO", fmt: str = "text", stream: TextIO | None = None) -> None:
    """Install outdial's one log handler on the root logger (replacing one installed before):
    ``fmt`` ``text`` or ``json``, at ``level``, redacting as above. uvicorn's loggers are sent
    to it as well. ``stream`` (default: standard error at each record) is for tests."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_outdial", False)]:
        root.removeHandler(old)
    handler: logging.Handler = (
        logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    )
    handler._outdial = True  # type: ignore[attr-defined]
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Every command applies migrations first; Alembic's per-step lines would stand before a
    # command's JSON answer on standard error. It still speaks when something goes wrong.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # httpx logs every request at INFO; push delivery and the CLI's own client make thousands,
    # and each line would carry a receiver's URL. Failures are logged by outdial itself.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers.clear()
        lg.propagate = True

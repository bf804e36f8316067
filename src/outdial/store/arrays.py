"""A column among many values, as one parameter where the engine allows it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection
from sqlalchemy.types import TypeEngine


def among(
    conn: Connection, column: ColumnElement[Any], values: Sequence[Any], item: TypeEngine[Any]
) -> ColumnElement[bool]:
    """``column`` is one of ``values``: an array (``= ANY``) on PostgreSQL, where an IN list of
    thousands of parameters costs the driver more to build than the server to run; IN
    elsewhere."""
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(item)))
    return column.in_(list(values))

"""A task's call tally kept in ``task_tallies``, so that a fresh process (a restarted or a
second console) extends it instead of counting every call record of a large campaign.

The write replaces the row, it never adds to it: a tally is the count of the task's records
up to its covered id, whoever computed it, so the row only moves to a greater covered id and
two processes writing the same task's tally can neither lose nor double count a record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import delete, func, select, true
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from outdial.store import schema as s
from outdial.store.console import CallTally

# The JSON shape's version. A row of another version is not read (the process recounts) and
# the next write replaces it whatever its covered id.
TALLY_FORMAT = 1


@dataclass(frozen=True, slots=True)
class StoredTally:
    tally: CallTally | None  # None: the row cannot be read (the next write replaces it)
    records: int
    updated_at: int


def records_in(tally: CallTally) -> int:
    """How many call records a tally counts (each record has exactly one outcome)."""
    return sum(tally.outcomes.values())


def encode(tally: CallTally) -> str:
    return orjson.dumps(
        {
            "answered": tally.answered,
            "outcomes": tally.outcomes,
            "intents": tally.intents,
            "grades": tally.grades,
            "walks": [[path, side, n] for (path, side), n in tally.walks.items()],
            "minutes": [[m, v[0], v[1]] for m, v in tally.minutes.items()],
        }
    ).decode()


def decode(text: str, covered: int) -> CallTally | None:
    """The tally a row holds, or None when the row cannot be read (then it is recounted)."""
    try:
        data = orjson.loads(text)
        return CallTally(
            last_id=covered,
            answered=int(data["answered"]),
            outcomes=_counts(data["outcomes"]),
            intents=_counts(data["intents"]),
            grades=_counts(data["grades"]),
            walks={(str(p), str(side)): int(n) for p, side, n in data["walks"]},
            minutes={int(m): [int(a), int(b)] for m, a, b in data["minutes"]},
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        return None


def _counts(value: Any) -> dict[str, int]:
    return {str(k): int(n) for k, n in value.items()}


def records_up_to(conn: Connection, task_id: int, covered: int) -> int:
    """How many call records the task has up to id ``covered`` (a range of ix_calls_task)."""
    c = s.calls.c
    query = select(func.count()).where(c.task_id == task_id, c.id <= covered)
    return int(conn.execute(query).scalar_one())


def load_tally(conn: Connection, account_id: int, task_id: int) -> StoredTally | None:
    """The task's stored tally, or None when there is none of this format."""
    t = s.task_tallies.c
    row = conn.execute(
        select(t.covered_up_to, t.records, t.format, t.tally, t.updated_at).where(
            t.task_id == task_id, t.account_id == account_id
        )
    ).first()
    if row is None or row.format != TALLY_FORMAT:
        return None
    tally = decode(str(row.tally), int(row.covered_up_to))
    return StoredTally(tally, int(row.records), int(row.updated_at))


def save_tally(
    conn: Connection,
    account_id: int,
    task_id: int,
    tally: CallTally,
    now: int,
    *,
    replace: bool = False,
) -> bool:
    """Store ``tally`` unless the row already covers as far (one conditional upsert); returns
    whether it was written. ``replace`` writes whatever the row covers (it could not be read:
    a recount is true, only perhaps less far)."""
    table = s.task_tallies
    values = {
        "task_id": task_id,
        "account_id": account_id,
        "covered_up_to": tally.last_id,
        "records": records_in(tally),
        "format": TALLY_FORMAT,
        "tally": encode(tally),
        "updated_at": now,
    }
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table).values(values)
    excluded = stmt.excluded
    further = (table.c.covered_up_to < excluded.covered_up_to) | (table.c.format != excluded.format)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.task_id],
        set_={k: excluded[k] for k in values if k != "task_id"},
        where=true() if replace else further,
    )
    # RETURNING, not rowcount: the PostgreSQL driver reports no count for an upsert.
    return conn.execute(stmt.returning(table.c.task_id)).first() is not None


def drop_tally(conn: Connection, task_id: int) -> None:
    """Forget the task's stored tally (found to miss a record): the next view recounts."""
    conn.execute(delete(s.task_tallies).where(s.task_tallies.c.task_id == task_id))

"""Read queries behind the operator console: counts, one task's funnel, keyset-paged calls.

``account_id=None`` means every account (an admin); otherwise every query is limited to it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.engine import Connection

from outdial.domain.codes import UNFINISHED_STATUSES
from outdial.store import schema as s


def _scoped(column: Any, account_id: int | None) -> list[Any]:
    return [] if account_id is None else [column == account_id]


def overview_counts(conn: Connection, account_id: int | None) -> dict[str, int]:
    accounts = conn.execute(
        select(func.count()).select_from(s.accounts).where(*_scoped(s.accounts.c.id, account_id))
    ).scalar_one()
    tasks_by_status = conn.execute(
        select(s.tasks.c.status, func.count())
        .where(*_scoped(s.tasks.c.account_id, account_id))
        .group_by(s.tasks.c.status)
    ).all()
    # Task counters hold the call totals, so the calls table is not counted at 1M rows.
    totals = conn.execute(
        select(
            func.coalesce(func.sum(s.tasks.c.call_num), 0),
            func.coalesce(func.sum(s.tasks.c.success), 0),
            func.coalesce(func.sum(s.tasks.c.fail), 0),
        ).where(*_scoped(s.tasks.c.account_id, account_id))
    ).one()
    in_flight_q = (
        select(func.count())
        .select_from(s.callees.join(s.tasks, s.tasks.c.id == s.callees.c.task_id))
        .where(s.callees.c.state == s.CALLEE_DIALING, *_scoped(s.tasks.c.account_id, account_id))
    )
    in_flight = conn.execute(in_flight_q).scalar_one()
    out = {f"status_{int(st)}": int(n) for st, n in tasks_by_status}
    out.update(
        accounts=int(accounts),
        tasks=sum(int(n) for _, n in tasks_by_status),
        calls=int(totals[0]),
        connected=int(totals[1]),
        failed=int(totals[2]),
        in_flight=int(in_flight),
    )
    return out


def account_zones(conn: Connection, account_id: int | None) -> list[str]:
    """The distinct time zones of the accounts in scope (a handful, whatever their number)."""
    query = select(s.accounts.c.timezone).distinct().order_by(s.accounts.c.timezone)
    if account_id is not None:
        query = query.where(s.accounts.c.id == account_id)
    return [str(z) for z in conn.execute(query).scalars()]


def today(conn: Connection, account_id: int | None, starts: dict[str, int]) -> dict[str, int]:
    """Attempts, answered calls and cost of the calls ended since the start of each account's
    own day: ``starts`` maps a time zone to the start of its day, and each zone's accounts
    count from theirs (one index range per zone on ``ix_calls_account_created``)."""
    if not starts:
        return {"today_calls": 0, "today_answered": 0, "today_cost": 0}
    a, c = s.accounts.c, s.calls.c
    scope = [a.id == account_id] if account_id is not None else []
    branches = [
        and_(
            c.account_id.in_(select(a.id).where(a.timezone == zone, *scope).scalar_subquery()),
            c.created_at >= since,
        )
        for zone, since in starts.items()
    ]
    row = conn.execute(
        select(
            func.count(),
            func.coalesce(func.sum(case((c.answer_time.is_not(None), 1), else_=0)), 0),
            func.coalesce(func.sum(c.cost), 0),
        ).where(or_(*branches))
    ).one()
    return {"today_calls": int(row[0]), "today_answered": int(row[1]), "today_cost": int(row[2])}


def lines_in_use(conn: Connection, account_id: int | None) -> list[dict[str, Any]]:
    """Per account: calls being dialed now against the lines it may hold."""
    busy = (
        select(s.tasks.c.account_id, func.count().label("in_use"))
        .select_from(s.callees.join(s.tasks, s.tasks.c.id == s.callees.c.task_id))
        .where(s.callees.c.state == s.CALLEE_DIALING)
        .group_by(s.tasks.c.account_id)
        .subquery()
    )
    rows = conn.execute(
        select(
            s.accounts.c.id, s.accounts.c.name, s.accounts.c.lines, func.coalesce(busy.c.in_use, 0)
        )
        .outerjoin(busy, busy.c.account_id == s.accounts.c.id)
        .where(*_scoped(s.accounts.c.id, account_id))
        .order_by(s.accounts.c.id)
        .limit(50)
    ).all()
    return [{"id": int(i), "name": str(n), "lines": int(li), "in_use": int(u)}
            for i, n, li, u in rows]  # fmt: skip


def calls_per_minute(conn: Connection, account_id: int | None, since: int) -> list[tuple[int, int]]:
    """(minute start in epoch ms, calls ended that minute) from ``since``."""
    # An IN over the account ids lets both engines use ix_calls_account_created for an admin.
    accounts = [account_id] if account_id is not None else select(s.accounts.c.id).scalar_subquery()
    minute = (s.calls.c.created_at // 60000).label("minute")
    rows = conn.execute(
        select(minute, func.count())
        .where(s.calls.c.account_id.in_(accounts), s.calls.c.created_at >= since)
        .group_by(minute)
    ).all()
    return sorted((int(m) * 60000, int(n)) for m, n in rows)


@dataclass(frozen=True, slots=True)
class Funnel:
    submitted: int
    dialed: int
    answered: int
    success: int
    failed: int
    outcomes: dict[str, int]
    intents: dict[str, int]
    grades: dict[str, int]


@dataclass
class CallTally:
    """Counts over a task's call records up to ``last_id``: added to, never recounted.

    ``walks`` counts answered calls by (path through the template as stored, JSON text;
    hang-up side); ``minutes`` maps a minute (epoch ms) to [attempts, answered] ended in it.
    """

    last_id: int = 0
    answered: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    intents: dict[str, int] = field(default_factory=dict)
    grades: dict[str, int] = field(default_factory=dict)
    walks: dict[tuple[str, str], int] = field(default_factory=dict)
    minutes: dict[int, list[int]] = field(default_factory=dict)


# A call record is counted for good only once it is this old: ids are handed out before
# commit, so a slow transaction can commit a lower id after a higher one is visible.
SETTLE_MS = 60_000


def tally_calls(
    conn: Connection, task_id: int, tally: CallTally, now: int
) -> tuple[CallTally, CallTally]:
    """(the settled tally to keep, the tally including recent calls to show), from the calls
    after ``tally.last_id`` (a range of ix_calls_task)."""
    c = s.calls.c
    after = [c.task_id == task_id, c.id > tally.last_id]
    recent = conn.execute(
        select(func.min(c.id)).where(*after, c.created_at >= now - SETTLE_MS)
    ).scalar_one()
    top = conn.execute(select(func.max(c.id)).where(*after)).scalar_one()
    boundary = int(recent) - 1 if recent is not None else int(top or tally.last_id)
    answered = case((c.answer_time.is_not(None), 1), else_=0)
    settled = case((c.id <= boundary, 1), else_=0)
    # The path is grouped as stored: a template has few distinct walks, so the groups stay
    # few and the nodes are counted from them, not from every call.
    rows = conn.execute(
        select(c.outcome, c.intent, c.grade, answered, c.path, c.hangup_side, settled, func.count())
        .where(*after)
        .group_by(c.outcome, c.intent, c.grade, answered, c.path, c.hangup_side, settled)
    ).all()
    minute = (c.created_at // 60000).label("minute")
    per_minute = conn.execute(
        select(minute, settled, func.count(), func.sum(answered))
        .where(*after)
        .group_by(minute, settled)
    ).all()
    keep = _copy(tally)
    keep.last_id = max(tally.last_id, boundary)
    show = _copy(tally)
    for outcome, intent, grade, was_answered, path, side, is_settled, n in rows:
        for target in (keep, show) if is_settled else (show,):
            _add(target, outcome, intent, grade, bool(was_answered), int(n))
            if path is not None and was_answered:
                key = (str(path), str(side or ""))
                target.walks[key] = target.walks.get(key, 0) + int(n)
    for m, is_settled, n, ans in per_minute:
        for target in (keep, show) if is_settled else (show,):
            slot = target.minutes.setdefault(int(m) * 60000, [0, 0])
            slot[0] += int(n)
            slot[1] += int(ans or 0)
    return keep, show


def _copy(t: CallTally) -> CallTally:
    return CallTally(
        t.last_id,
        t.answered,
        dict(t.outcomes),
        dict(t.intents),
        dict(t.grades),
        dict(t.walks),
        {m: list(v) for m, v in t.minutes.items()},
    )


def _add(t: CallTally, outcome: Any, intent: Any, grade: Any, answered: bool, n: int) -> None:
    t.answered += n if answered else 0
    t.outcomes[str(outcome)] = t.outcomes.get(str(outcome), 0) + n
    if intent is not None:
        t.intents[str(intent)] = t.intents.get(str(intent), 0) + n
    if grade is not None:
        t.grades[str(grade)] = t.grades.get(str(grade), 0) + n


def template_texts(conn: Connection, script_id: int) -> tuple[str, str] | None:
    """A stored template's (source as imported, validated definition as JSON)."""
    row = conn.execute(
        select(s.scripts.c.source, s.scripts.c.definition).where(s.scripts.c.id == script_id)
    ).first()
    return (str(row[0]), str(row[1])) if row else None


def task_funnel(conn: Connection, task_id: int, tally: CallTally) -> Funnel:
    """The funnel from the task's counters, its callees' states (ix_callees_task_state) and
    a tally of its calls."""
    cc = s.callees.c
    dialed = conn.execute(
        select(func.count()).where(
            cc.task_id == task_id,
            (cc.attempts > 0)
            | cc.state.in_((s.CALLEE_DIALING, s.CALLEE_CONNECTED, s.CALLEE_FAILED)),
        )
    ).scalar_one()
    task = conn.execute(
        select(s.tasks.c.num_cnt, s.tasks.c.success, s.tasks.c.fail).where(s.tasks.c.id == task_id)
    ).one()
    return Funnel(
        submitted=int(task[0]),
        dialed=int(dialed),
        answered=tally.answered,
        success=int(task[1]),
        failed=int(task[2]),
        outcomes=dict(tally.outcomes),
        intents=dict(tally.intents),
        grades=dict(tally.grades),
    )


@dataclass(frozen=True, slots=True)
class CallsQuery:
    account_id: int | None
    task_id: int | None = None
    outcome: str | None = None
    intent: str | None = None
    grade: str | None = None
    callee: str | None = None
    min_duration: int | None = None
    # Ended at or after / before (epoch ms).
    ended_from: int | None = None
    ended_before: int | None = None
    # Keyset paging: rows with an id below this one (newest first).
    before_id: int | None = None
    limit: int = 50


CALL_LIST_COLUMNS = (
    "id",
    "account_id",
    "task_id",
    "callee",
    "outcome",
    "intent",
    "grade",
    "call_duration",
    "cost",
    "sip_code",
    "created_at",
    "recording_file_id",
)


def calls_page(conn: Connection, q: CallsQuery) -> list[dict[str, Any]]:
    """One page of calls, newest first; ``limit + 1`` rows tell whether there is a next page.
    The id bound keeps the cost of page N the cost of page 1 (no OFFSET)."""
    c = s.calls.c
    conds: list[Any] = _scoped(c.account_id, q.account_id)
    if q.task_id is not None:
        conds.append(c.task_id == q.task_id)
    if q.outcome:
        conds.append(c.outcome == q.outcome)
    if q.intent:
        conds.append(c.intent == q.intent)
    if q.grade:
        conds.append(c.grade == q.grade)
    if q.callee:
        conds.append(c.callee.startswith(q.callee, autoescape=True))
    if q.min_duration is not None:
        conds.append(c.call_duration >= q.min_duration)
    if q.ended_from is not None:
        conds.append(c.created_at >= q.ended_from)
    if q.ended_before is not None:
        conds.append(c.created_at < q.ended_before)
    if q.before_id is not None:
        conds.append(c.id < q.before_id)
    stmt = (
        select(*(c[n] for n in CALL_LIST_COLUMNS))
        .where(and_(True, *conds))
        .order_by(c.id.desc())
        .limit(q.limit + 1)
    )
    return [dict(r) for r in conn.execute(stmt).mappings()]


def call_row(conn: Connection, account_id: int | None, call_id: int) -> dict[str, Any] | None:
    c = s.calls.c
    row = (
        conn.execute(select(s.calls).where(c.id == call_id, *_scoped(c.account_id, account_id)))
        .mappings()
        .first()
    )
    return dict(row) if row else None


def task_calls(conn: Connection, task_id: int, batch: int = 1000) -> Iterator[dict[str, Any]]:
    """Every call of a task in id order, read in batches (CSV export of a large task)."""
    after = 0
    while True:
        rows = [
            dict(r)
            for r in conn.execute(
                select(s.calls)
                .where(s.calls.c.task_id == task_id, s.calls.c.id > after)
                .order_by(s.calls.c.id)
                .limit(batch)
            ).mappings()
        ]
        if not rows:
            return
        yield from rows
        after = rows[-1]["id"]


def task_account(conn: Connection, task_id: int) -> int | None:
    row = conn.execute(select(s.tasks.c.account_id).where(s.tasks.c.id == task_id)).first()
    return int(row[0]) if row else None


def account_names(conn: Connection, account_id: int | None) -> dict[int, str]:
    rows = conn.execute(
        select(s.accounts.c.id, s.accounts.c.name).where(*_scoped(s.accounts.c.id, account_id))
    ).all()
    return {int(i): str(n) for i, n in rows}


def tasks_list(
    conn: Connection,
    account_id: int | None,
    status: int | None,
    search: str | None,
    offset: int,
    limit: int,
) -> tuple[int, list[dict[str, Any]]]:
    """Tasks newest first (a few thousand at most per account: OFFSET paging is enough)."""
    t = s.tasks.c
    conds: list[Any] = _scoped(t.account_id, account_id)
    if status is not None:
        conds.append(t.status == status)
    if search:
        conds.append(t.task_name.contains(search, autoescape=True))
    total = conn.execute(select(func.count()).select_from(s.tasks).where(*conds)).scalar_one()
    rows = conn.execute(
        select(s.tasks, s.accounts.c.name.label("account_name"))
        .join(s.accounts, s.accounts.c.id == t.account_id)
        .where(*conds)
        .order_by(t.id.desc())
        .offset(offset)
        .limit(limit)
    ).mappings()
    return int(total), [dict(r) for r in rows]


def task_row(conn: Connection, account_id: int | None, task_id: int) -> dict[str, Any] | None:
    t = s.tasks.c
    row = (
        conn.execute(
            select(s.tasks, s.accounts.c.name.label("account_name"))
            .join(s.accounts, s.accounts.c.id == t.account_id)
            .where(t.id == task_id, *_scoped(t.account_id, account_id))
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def child_tasks(conn: Connection, task_id: int) -> list[dict[str, Any]]:
    """The recall rounds and resends made from a task, with their counters (no call count)."""
    t = s.tasks.c
    rows = conn.execute(
        select(t.id, t.task_name, t.status, t.recall_round, t.num_cnt, t.call_num, t.success)
        .where(s.tasks.c.parent_task_id == task_id)
        .order_by(s.tasks.c.id)
    ).mappings()
    return [dict(r) for r in rows]


def unfinished_tasks(conn: Connection) -> list[tuple[int, int]]:
    """(task id, account id) of every campaign not yet finished, all accounts."""
    t = s.tasks.c
    rows = conn.execute(
        select(t.id, t.account_id).where(t.status.in_([int(x) for x in UNFINISHED_STATUSES]))
    )
    return [(int(r.id), int(r.account_id)) for r in rows]

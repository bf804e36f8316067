"""What the operator console shows and does, always within the operator's scope.

``scope`` is the account an operator may see, or None for an admin (every account). A row of
another account answers NotFound, exactly as a missing one, so ids cannot be probed.
"""

from __future__ import annotations

import csv
import io
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from outdial.clock import Clock, epoch_ms, from_epoch_ms
from outdial.domain.codes import TaskStatus
from outdial.domain.money import format_units
from outdial.domain.task import TaskFields, format_iso_time, format_local_time
from outdial.errors import NotFound, TaskNameExists
from outdial.service.campaign_stats import answer_rate, node_order, template_funnel
from outdial.service.recall import RecallService, Resend
from outdial.service.records import CallRecord
from outdial.service.tasks import TaskService, progress
from outdial.store import console as q
from outdial.store import tallies
from outdial.store.repo import Store

log = logging.getLogger(__name__)

SNAPSHOT_SECONDS = 5.0
CHART_MINUTES = 60
PAGE_SIZE = 50
ACTIONS = ("pause", "resume", "cancel")
# Resend: a child campaign of the callees again; "not connected" leaves out the connected.
RESENDS = {"resend-all": False, "resend-not-connected": True}
RESEND_NAME_TRIES = 20
# A task's tally is written back to the database once it has moved by this many call
# records, or when it moved at all and the stored one is this old: a fresh process then
# starts from it, and a page view rarely writes.
STORE_EVERY_RECORDS = 10_000
STORE_EVERY_SECONDS = 300.0

STATUS_NAMES = {
    int(TaskStatus.WAITING): "waiting",
    int(TaskStatus.CALLING): "calling",
    int(TaskStatus.FINISHED): "finished",
    int(TaskStatus.CANCELLED): "cancelled",
    int(TaskStatus.SUSPENDED): "paused",
    int(TaskStatus.SUBMIT_FAILED): "submit failed",
    int(TaskStatus.SUBMITTING): "submitting",
}


@dataclass(frozen=True, slots=True)
class Snapshot:
    at: int
    counts: dict[str, int]
    per_minute: list[tuple[int, int]]
    lines: list[dict[str, Any]]
    zones: tuple[str, ...] = ()  # the time zones whose day "today" counts


def day_start(now_ms: int, zone: str) -> int:
    """Epoch ms of the last local midnight in ``zone`` (UTC for a zone this system lacks). A
    midnight that a DST change skips reads with the earlier offset (fold 0): the instant of
    the change, the first of that local date."""
    try:
        tz: tzinfo = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        tz = UTC
    local = from_epoch_ms(now_ms).astimezone(tz)
    midnight = datetime.combine(local.date(), time(0), tzinfo=tz)
    return epoch_ms(midnight)


class OverviewCache:
    """One snapshot per scope per interval, whatever the number of open tabs: the first
    viewer after the interval computes it (under a lock), the others read it."""

    def __init__(self, store: Store, clock: Clock, seconds: float = SNAPSHOT_SECONDS) -> None:
        self.store = store
        self.clock = clock
        self.seconds = seconds
        self.computed = 0  # how many snapshots were computed (the tests count queries by it)
        self._lock = threading.Lock()
        self._snaps: dict[int | None, Snapshot] = {}

    def get(self, scope: int | None) -> Snapshot:
        now = epoch_ms(self.clock.now())
        with self._lock:
            snap = self._snaps.get(scope)
            if snap is not None and now - snap.at < self.seconds * 1000:
                return snap
            since = now - CHART_MINUTES * 60000
            with self.store.read() as tx:
                counts = q.overview_counts(tx.conn, scope)
                # "Today" is each account's own day, from midnight in its time zone.
                zones = q.account_zones(tx.conn, scope)
                starts = {zone: day_start(now, zone) for zone in zones}
                counts.update(q.today(tx.conn, scope, starts))
                per_minute = q.calls_per_minute(tx.conn, scope, since)
                lines = q.lines_in_use(tx.conn, scope)
            snap = Snapshot(now, counts, _every_minute(per_minute, now), lines, tuple(zones))
            self._snaps[scope] = snap
            self.computed += 1
            return snap


def _every_minute(points: list[tuple[int, int]], now: int) -> list[tuple[int, int]]:
    """The last CHART_MINUTES minutes, each one present (0 when no call ended in it), so the
    chart's time axis always spans the hour."""
    seen = dict(points)
    last = now // 60000 * 60000
    first = last - (CHART_MINUTES - 1) * 60000
    return [(m, seen.get(m, 0)) for m in range(first, last + 1, 60000)]


@dataclass(slots=True)
class _Kept:
    """A task's settled tally in this process, and how far the stored one covers."""

    tally: q.CallTally
    stored_id: int = 0
    stored_records: int = 0
    stored_at: int = 0
    replace: bool = False  # the stored row could not be read: the next write replaces it


class ConsoleService:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        tasks: TaskService,
        recalls: RecallService,
        *,
        store_every_records: int = STORE_EVERY_RECORDS,
        store_every_seconds: float = STORE_EVERY_SECONDS,
    ) -> None:
        self.store = store
        self.clock = clock
        self.tasks = tasks
        self.recalls = recalls
        self.overview = OverviewCache(store, clock)
        # Per task: counts of its calls so far. Call records are only ever added, so a view
        # counts just the calls written since the last one, and a process starts from the
        # tally stored in the database (a 500,000-call campaign is read once, then in small
        # increments, whichever process views it).
        self._tallies: dict[int, _Kept] = {}
        self._tally_lock = threading.Lock()
        self._node_orders: dict[int, list[str]] = {}
        self.store_every_records = store_every_records
        self.store_every_seconds = store_every_seconds

    def _tally(self, conn: Any, account_id: int, task_id: int) -> tuple[q.CallTally, bool]:
        """(the tally to show, whether the settled part should be written back)."""
        with self._tally_lock:
            kept = self._tallies.get(task_id)
        if kept is None:
            # A fresh process: start from the stored tally, if another one wrote it.
            stored = tallies.load_tally(conn, account_id, task_id)
            if stored is None:
                kept = _Kept(q.CallTally())
            elif stored.tally is None:
                kept = _Kept(q.CallTally(), replace=True)
            else:
                kept = _Kept(stored.tally, stored.tally.last_id, stored.records, stored.updated_at)
        now = epoch_ms(self.clock.now())
        keep, show = q.tally_calls(conn, task_id, kept.tally, now)
        with self._tally_lock:
            current = self._tallies.setdefault(task_id, kept)
            if current.tally.last_id < keep.last_id:
                current.tally = keep
            # Only a tally that counts more records than the stored one is worth a write: the
            # covered id alone also moves past other tasks' records.
            moved = current.replace or (
                tallies.records_in(keep) > current.stored_records
                and (
                    tallies.records_in(keep) - current.stored_records >= self.store_every_records
                    or now - current.stored_at >= self.store_every_seconds * 1000
                )
            )
        return show, moved

    def _store_tally(self, account_id: int, task_id: int) -> None:
        with self._tally_lock:
            kept = self._tallies[task_id]
            tally, replace = kept.tally, kept.replace
        now = epoch_ms(self.clock.now())
        # A record committed under an id already counted (its transaction outlived SETTLE_MS)
        # would be missed for good once stored: the task's records up to the covered id must
        # be exactly those counted, else the tally is dropped (here and stored: a row that
        # covers as far misses it too) and the next view recounts.
        with self.store.read() as tx:
            found = tallies.records_up_to(tx.conn, task_id, tally.last_id)
        if found != tallies.records_in(tally):
            log.warning(
                "campaign tally recounted: a call record was committed after its id was counted",
                extra={"task_id": task_id, "counted": tallies.records_in(tally), "found": found},
            )
            with self.store.write() as tx:
                tallies.drop_tally(tx.conn, task_id)
            with self._tally_lock:
                self._tallies[task_id] = _Kept(q.CallTally())
            return
        with self.store.write() as tx:
            tallies.save_tally(tx.conn, account_id, task_id, tally, now, replace=replace)
        with self._tally_lock:
            # Written, or another process had stored one as far: either way the row is there.
            kept.replace = False
            if tally.last_id > kept.stored_id:
                kept.stored_id = tally.last_id
                kept.stored_records = tallies.records_in(tally)
                kept.stored_at = now

    def _nodes(self, conn: Any, script_id: int) -> list[str]:
        # A stored template is never changed (a new version is a new id): parsed once.
        nodes = self._node_orders.get(script_id)
        if nodes is None:
            texts = q.template_texts(conn, script_id)
            nodes = node_order(*texts) if texts else []
            self._node_orders[script_id] = nodes
        return nodes

    def campaigns(
        self, scope: int | None, status: int | None, search: str | None, page: int
    ) -> dict[str, Any]:
        page = max(1, page)
        with self.store.read() as tx:
            total, rows = q.tasks_list(
                tx.conn, scope, status, search, (page - 1) * PAGE_SIZE, PAGE_SIZE
            )
        return {
            "total": total,
            "page": page,
            "pages": max(1, -(-total // PAGE_SIZE)),
            "rows": [self._task_view(r) for r in rows],
        }

    def _task_view(self, r: dict[str, Any]) -> dict[str, Any]:
        from outdial.store.records import TaskRecord

        record = TaskRecord(**{k: r.get(k, "") for k in TaskRecord.__slots__})
        return {
            **r,
            "status_name": STATUS_NAMES.get(r["status"], str(r["status"])),
            "progress": progress(record),
            "created": format_local_time(r["created_at"], r["timezone"]),
            "cost_text": f"{r['cost'] / 10000:.2f}",
        }

    def campaign(self, scope: int | None, task_id: int) -> dict[str, Any]:
        with self.store.read() as tx:
            row = q.task_row(tx.conn, scope, task_id)
            if row is None:
                raise NotFound(f"campaign {task_id} does not exist")
            account_id = int(row["account_id"])
            tally, moved = self._tally(tx.conn, account_id, task_id)
            funnel = q.task_funnel(tx.conn, task_id, tally)
            nodes = self._nodes(tx.conn, int(row["script_id"]))
            children = q.child_tasks(tx.conn, task_id)
        if moved:
            self._store_tally(account_id, task_id)
        view = self._task_view({**row, "app_id": ""})
        rate = answer_rate(tally.minutes)
        return {
            "task": view,
            "funnel": funnel,
            "walk": template_funnel(nodes, tally.walks),
            "rate": rate,
            # For the chart: [bucket start (s), answer rate % or null, attempts, answered].
            "rate_points": [[p.at // 1000, p.rate, p.attempts, p.answered] for p in rate.points],
            "children": children,
            "status_names": STATUS_NAMES,
        }

    def keep_tallies(self) -> int:
        """Bring the stored tally of every unfinished campaign up to date, as a view of it
        would (and under the same rule for when to write): a campaign nobody has opened
        is then as quick to open in a fresh process as one watched all day. Returns how
        many were written."""
        with self.store.read() as tx:
            running = q.unfinished_tasks(tx.conn)
        written = 0
        for task_id, account_id in running:
            with self.store.read() as tx:
                _shown, moved = self._tally(tx.conn, account_id, task_id)
            if moved:
                self._store_tally(account_id, task_id)
                written += 1
        return written

    def act(self, scope: int | None, task_id: int, action: str) -> str:
        """Pause, resume or cancel one campaign; returns what was done, in words."""
        if action not in ACTIONS:
            raise NotFound(f"no action {action!r}")
        with self.store.read() as tx:
            account_id = q.task_account(tx.conn, task_id)
        if account_id is None or (scope is not None and account_id != scope):
            raise NotFound(f"campaign {task_id} does not exist")
        act = {"pause": self.tasks.pause, "resume": self.tasks.resume, "cancel": self.tasks.cancel}
        act[action](account_id, [task_id])
        past = {"pause": "paused", "resume": "resumed", "cancel": "cancelled"}[action]
        return f"Campaign {task_id} {past}."

    def resend(self, scope: int | None, task_id: int, action: str) -> int:
        """Call a finished or cancelled campaign's callees again (all, or those not connected)
        as a child campaign named after it; returns the child's id."""
        if action not in RESENDS:
            raise NotFound(f"no action {action!r}")
        with self.store.read() as tx:
            row = q.task_row(tx.conn, scope, task_id)
        if row is None:
            raise NotFound(f"campaign {task_id} does not exist")
        fields = TaskFields(
            task_name="",
            max_calls=int(row["max_calls"]),
            script_id=int(row["script_id"]),
            display_num=row["display_num"],
            allow_send_time=[
                (w["strTime"], w["endTime"]) for w in orjson.loads(row["allow_send_time"] or "[]")
            ],
            max_ringing_time=row["max_ringing_time"],
            enable_recording=row["enable_recording"],
            callout_rate=row["callout_rate"],
            timezone=row["timezone"],
            window_zone=row["window_zone"],
        )
        base = str(row["task_name"])[:50]
        # The name must be unique in the account: the first free "<name> resend N".
        for n in range(1, RESEND_NAME_TRIES + 1):
            named = replace(fields, task_name=f"{base} resend {n}")
            try:
                return self.recalls.resend(
                    int(row["account_id"]), Resend(task_id, RESENDS[action], named)
                )
            except TaskNameExists:
                continue
        raise TaskNameExists(f"campaign {task_id} has been resent {RESEND_NAME_TRIES} times")

    def calls(self, query: q.CallsQuery) -> dict[str, Any]:
        with self.store.read() as tx:
            rows = q.calls_page(tx.conn, query)
            names = q.account_names(tx.conn, query.account_id)
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        for r in rows:
            r["account_name"] = names.get(r["account_id"], "")
            r["ended"] = format_local_time(r["created_at"], "UTC")
        return {"rows": rows, "next_before": rows[-1]["id"] if more and rows else None}

    def call(self, scope: int | None, call_id: int) -> dict[str, Any]:
        with self.store.read() as tx:
            row = q.call_row(tx.conn, scope, call_id)
            if row is None:
                raise NotFound(f"call {call_id} does not exist")
            task = q.task_row(tx.conn, None, row["task_id"])
        tz = task["timezone"] if task else "UTC"
        record = CallRecord.from_row(row)
        return {
            "call": record,
            "answered": format_iso_time(record.answer_time, tz),
            "cost": format_units(record.cost),
            "task": task,
            "chat": chat_lines(record.transcript),
        }

    def recording_name(self, scope: int | None, call_id: int) -> str:
        with self.store.read() as tx:
            row = q.call_row(tx.conn, scope, call_id)
        if row is None or not row["recording_file_id"]:
            raise NotFound(f"call {call_id} has no recording")
        return str(row["recording_file_id"])

    def export_csv(self, scope: int | None, task_id: int) -> Iterator[str]:
        """The campaign's call records as CSV, streamed in batches."""
        with self.store.read() as tx:
            task = q.task_row(tx.conn, scope, task_id)
        if task is None:
            raise NotFound(f"campaign {task_id} does not exist")
        return self._csv_rows(task_id, task["timezone"])

    def _csv_rows(self, task_id: int, tz: str) -> Iterator[str]:
        out = io.StringIO()
        writer = csv.DictWriter(out, CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        with self.store.read() as tx:
            for i, row in enumerate(q.task_calls(tx.conn, task_id), 1):
                writer.writerow(csv_row(CallRecord.from_row(row), tz))
                if i % 500 == 0:
                    yield out.getvalue()
                    out.seek(0)
                    out.truncate()
        yield out.getvalue()


CSV_FIELDS = [
    "voiceId",
    "taskId",
    "attempt",
    "callee",
    "displayNum",
    "outcome",
    "intent",
    "grade",
    "terminationCode",
    "terminationReason",
    "sipCode",
    "callTime",
    "answerTime",
    "hangupTime",
    "ringDuration",
    "callDuration",
    "chargedDuration",
    "cost",
    "currency",
    "hangupSide",
    "recordingFileId",
]


def csv_row(call: CallRecord, tz: str) -> dict[str, Any]:
    """One call in the export's columns (the API's names; times ISO-8601 in ``tz``)."""
    return {
        "voiceId": str(call.id),
        "taskId": call.task_id,
        "attempt": call.attempt,
        "callee": call.callee,
        "displayNum": call.display_num,
        "outcome": call.outcome,
        "intent": call.intent,
        "grade": call.grade,
        "terminationCode": str(call.termination_code),
        "terminationReason": call.termination_reason,
        "sipCode": str(call.sip_code),
        "callTime": format_iso_time(call.call_time, tz),
        "answerTime": format_iso_time(call.answer_time, tz),
        "hangupTime": format_iso_time(call.hangup_time, tz),
        "ringDuration": call.ring_duration,
        "callDuration": call.call_duration,
        "chargedDuration": call.charged_duration,
        "cost": format_units(call.cost),
        "currency": call.currency,
        "hangupSide": call.hangup_side,
        "recordingFileId": call.recording_file_id,
    }


def chat_lines(transcript: Any) -> list[dict[str, Any]]:
    """The transcript as chat bubbles: who spoke, when (s from answer), what was said."""
    if not isinstance(transcript, list):
        return []
    lines = []
    for turn in transcript:
        if not isinstance(turn, dict):
            continue
        role = str(turn.get("role") or turn.get("speaker") or "")
        side = "bot" if role in ("bot", "assistant", "agent") else "callee"
        text = turn.get("text") or turn.get("content") or ""
        at = turn.get("at") if turn.get("at") is not None else turn.get("t")
        lines.append({"side": side, "text": str(text), "at": at, "heard": turn.get("heard")})
    return lines


class TallyKeeper:
    """``ConsoleService.keep_tallies`` every ``seconds``, in a thread of its own, for as long
    as the process serves the console (``outdial serve`` and ``outdial demo`` run one)."""

    def __init__(self, service: ConsoleService, seconds: float) -> None:
        self.service = service
        self.seconds = seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.seconds > 0 and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="console-tallies", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.seconds):
            try:
                self.service.keep_tallies()
            except Exception:  # the database may be away: the next pass tries again
                log.warning("keeping the campaigns' stored tallies failed", exc_info=True)

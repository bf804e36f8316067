"""Fenced leases on virtual time: a worker whose calls were taken over cannot finish, bill or
report them; a stopped worker's calls are taken over soon, not when their leases expire; a
graceful stop gives unfinished calls back at once.

Each scenario checks the database the way an auditor would: every callee has exactly one final
record, the callees dialed twice are those in flight at the fault (each recorded
``interrupted``), the task counters equal the records and the balance moved by exactly the
billed sum.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from outdial.dialer.worker import Dialer, DialerConfig
from outdial.store import schema
from outdial.testing import Scripted, ScriptedCarrier, TalkingConversation
from tests.integration.test_dialer import FINISHED, Rig, numbers, rig, store

__all__ = ["rig", "store"]

START = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)


def account(r: Rig, lines: int) -> Any:
    # Reports go nowhere (nothing delivers them here); the outbox is what is checked.
    return r.account(lines=lines, push_url="http://127.0.0.1:9/push")


def worker(r: Rig, carrier: ScriptedCarrier, name: str, **config: Any) -> Dialer:
    config.setdefault("poll_seconds", 1.0)
    return Dialer(
        r.store,
        carrier,
        r.clock,
        DialerConfig(worker_id=name, **config),
        conversation=TalkingConversation(),
    )


def audit(r: Rig, task_id: int, callees: int, opening_balance: int, account: Any) -> list[int]:
    """Assert the books are right; return the callee ids dialed twice."""
    records = r.calls(task_id)
    by_callee: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for rec in records:
        by_callee[rec["callee_id"]].append(rec)
    assert len(by_callee) == callees, "a callee was lost"
    twice = []
    for callee_id, history in by_callee.items():
        finals = [h for h in history if h["outcome"] != "interrupted"]
        assert len(finals) == 1, f"callee {callee_id}: {[h['outcome'] for h in history]}"
        if len(history) > 1:
            assert [h["outcome"] for h in history[:-1]] == ["interrupted"]
            assert [h["attempt"] for h in history] == [1, 2]
            twice.append(callee_id)
    detail = r.detail(account, task_id)
    success = sum(1 for rec in records if rec["termination_code"] == 200)
    final_fail = len(by_callee) - success
    assert detail["callNum"] == len(records)
    assert (detail["success"], detail["fail"]) == (success, final_fail)
    billed = sum(rec["cost"] for rec in records)
    assert opening_balance - r.balance(account) == billed
    with r.store.read() as tx:
        outbox = Counter(
            tx.conn.execute(
                select(schema.push_outbox.c.call_id).where(
                    schema.push_outbox.c.account_id == account.account_id
                )
            ).scalars()
        )
    assert sorted(outbox) == sorted(rec["id"] for rec in records), "one report per record"
    return twice


def test_a_stalled_worker_cannot_finish_bill_or_report_calls_taken_over(rig: Any) -> None:
    """w1 claims 6 calls of 15 minutes and then stalls (no heartbeat, no renewal). w2 declares
    it dead after 30 s, records the 6 as interrupted and dials them again. When w1's calls end
    its results are fenced off: nothing of them is written, billed or pushed."""
    r = rig(START)
    acc = account(r, 6)
    opening = r.balance(acc)
    task = r.submit(acc, r.template(acc), numbers("8613242950", 6), maxCalls=999)
    slow = ScriptedCarrier(r.clock, default=Scripted(ring=5, talk=900))
    fast = ScriptedCarrier(r.clock, default=Scripted(ring=5, talk=60))
    w1 = worker(r, slow, "w1")
    w2 = worker(r, fast, "w2")

    async def scenario() -> None:
        # w1 runs one step: it claims and places every call, and then never steps again, nor
        # does its keeper run: it is stalled.
        # (One claim takes at most half the lines.)
        await w1.step()
        await w1.step()
        await asyncio.sleep(1)
        assert slow.active == 6
        await w2.drain()
        # w1's calls are still ringing on; they end at 905 s, then w1 resumes and writes.
        await asyncio.sleep(905 - (r.clock.now() - START).total_seconds() + 1)
        w1.results.flush(force=True)

    r.run(scenario())
    assert len(slow.placed) == 6 and len(fast.placed) == 6
    assert w1.keeper.stats.fenced == 6
    assert w2.keeper.stats.recovered == 6
    twice = audit(r, task, 6, opening, acc)
    assert len(twice) == 6, "exactly the calls in flight at the stall were dialed twice"
    assert all(rec["worker"] != "w1" or rec["outcome"] == "interrupted" for rec in r.calls(task))
    assert r.detail(acc, task)["status"] == FINISHED


def test_a_worker_that_learns_its_lease_was_taken_hangs_up(rig: Any) -> None:
    """w1 keeps running but another worker takes one of its calls over (as after a network
    partition): at its next renewal w1 ends that call and writes nothing for it."""
    r = rig(START)
    acc = account(r, 2)
    opening = r.balance(acc)
    task = r.submit(acc, r.template(acc), numbers("8613242951", 2), maxCalls=999)
    carrier = ScriptedCarrier(r.clock, default=Scripted(ring=5, talk=600))
    w1 = worker(r, carrier, "w1", lease_seconds=60)
    rescuer = worker(r, ScriptedCarrier(r.clock, default=Scripted(ring=5, talk=30)), "w2")

    async def scenario() -> None:
        one = asyncio.ensure_future(w1.drain())
        await asyncio.sleep(10)
        victim = carrier.placed[0].request.callee
        # Take the first call over exactly as recovery would.
        rescuer.keeper.start()
        with r.store.write() as tx:
            lost = [x for x in tx.lost_leases(10**15, 100, ("w1",)) if x.claimed.number == victim]
            from outdial.dialer.records import interrupted_call

            tx.write_results([interrupted_call(lost[0], r.clock.now())], 0)
        await one

    r.run(scenario())
    first = carrier.placed[0]
    assert first.ended_at is not None
    # Renewal runs every lease/3 = 20 s: the call ends within that, not after 600 s.
    assert (first.ended_at - first.started_at).total_seconds() < 40
    assert w1.keeper.stats.lost_in_flight == 1
    records = r.calls(task)
    # The callee taken over was given back and dialed again (attempt 2) by w1 itself.
    assert Counter(rec["outcome"] for rec in records) == {"interrupted": 1, "connected": 2}
    assert len(carrier.placed) == 3
    audit(r, task, 2, opening, acc)


def test_a_dead_workers_calls_are_taken_over_within_the_liveness_time(rig: Any) -> None:
    """w1 claims and dies (its process is gone: no heartbeat, leases of 300 s). w2 takes its
    calls over after about 30 s (dead-after) plus one recovery pass, not after 300 s."""
    r = rig(START)
    acc = account(r, 4)
    opening = r.balance(acc)
    task = r.submit(acc, r.template(acc), numbers("8613242952", 4), maxCalls=999)
    doomed = ScriptedCarrier(r.clock, default=Scripted(ring=5, talk=900))
    w1 = worker(r, doomed, "w1")
    w2 = worker(r, ScriptedCarrier(r.clock, default=Scripted(ring=5, talk=30)), "w2")

    async def scenario() -> None:
        await w1.step()
        await w1.step()
        await asyncio.sleep(0)
        for f in list(w1._in_flight.values()):
            assert f.job is not None
            f.lost = True  # the process died: its calls leave no result
            f.job.cancel()
        await asyncio.sleep(0)
        await w2.drain()

    r.run(scenario())
    records = r.calls(task)
    interrupted = [rec for rec in records if rec["outcome"] == "interrupted"]
    assert len(interrupted) == 4
    taken_at = max(rec["created_at"] for rec in interrupted)
    waited = (taken_at - int(START.timestamp() * 1000)) / 1000
    assert 30 <= waited <= 50, waited
    audit(r, task, 4, opening, acc)


def test_a_restart_with_the_same_worker_id_takes_its_calls_over_at_once(rig: Any) -> None:
    r = rig(START)
    acc = account(r, 4)
    opening = r.balance(acc)
    task = r.submit(acc, r.template(acc), numbers("8613242953", 4), maxCalls=999)
    w1 = worker(r, ScriptedCarrier(r.clock, default=Scripted(ring=5, talk=900)), "w1")
    again = worker(r, ScriptedCarrier(r.clock, default=Scripted(ring=5, talk=30)), "w1")

    async def scenario() -> None:
        await w1.step()
        await w1.step()
        await asyncio.sleep(2)
        for f in list(w1._in_flight.values()):
            assert f.job is not None
            f.lost = True
            f.job.cancel()
        await asyncio.sleep(0)
        await again.drain()

    r.run(scenario())
    assert again.keeper.stats.taken_over_at_start == 4
    interrupted = [rec for rec in r.calls(task) if rec["outcome"] == "interrupted"]
    assert {rec["created_at"] for rec in interrupted} == {int(START.timestamp() * 1000) + 2000}
    audit(r, task, 4, opening, acc)


def test_a_second_process_with_the_same_id_makes_the_first_stop_claiming(rig: Any) -> None:
    r = rig(START)
    acc = account(r, 4)
    task = r.submit(acc, r.template(acc), numbers("8613242954", 40), maxCalls=999)
    first = worker(r, ScriptedCarrier(r.clock, default=Scripted(ring=5, talk=20)), "twin")
    second = worker(r, ScriptedCarrier(r.clock, default=Scripted(ring=5, talk=20)), "twin")

    async def scenario() -> None:
        stop = asyncio.Event()
        one = asyncio.ensure_future(first.run(stop))
        await asyncio.sleep(30)
        await second.drain()
        stop.set()
        await one

    r.run(scenario())
    assert first.keeper.superseded
    records = r.calls(task)
    finals = Counter(rec["callee_id"] for rec in records if rec["outcome"] != "interrupted")
    assert len(finals) == 40 and max(finals.values()) == 1


def test_graceful_stop_drains_then_gives_the_rest_back_at_once(rig: Any) -> None:
    """Stop at 10 s with a 20 s drain time: calls ending by then are written as usual; longer
    ones are hung up, recorded interrupted and their callees are pending again (attempt 2
    next) with no lease left, so the next worker dials them at once."""
    r = rig(START)
    acc = account(r, 4)
    opening = r.balance(acc)
    short, long_ = numbers("8613242955", 2), numbers("8613242956", 2)
    task = r.submit(acc, r.template(acc), short + long_, maxCalls=999)
    scripts = {n: Scripted(ring=5, talk=10) for n in short}
    carrier = ScriptedCarrier(r.clock, scripts, default=Scripted(ring=5, talk=300))
    w1 = worker(r, carrier, "w1", drain_seconds=20)

    async def scenario() -> None:
        stop = asyncio.Event()
        job = asyncio.ensure_future(w1.run(stop))
        await asyncio.sleep(10)
        stop.set()
        await job

    r.run(scenario())
    stopped_at = START + timedelta(seconds=30)
    for p in carrier.placed:
        assert p.ended_at is not None and p.ended_at <= stopped_at + timedelta(seconds=1)
    states = r.callee_states(task)
    assert [states[n] for n in long_] == [0, 0], "given back as pending"
    with r.store.read() as tx:
        leased = tx.conn.execute(
            select(schema.callees.c.lease_owner).where(schema.callees.c.task_id == task)
        ).scalars()
        assert set(leased) == {None}
        row = tx.conn.execute(
            select(schema.workers.c.stopped_at).where(schema.workers.c.id == "w1")
        ).scalar_one()
        assert row is not None, "the worker said it stopped"
    outcomes = Counter(rec["outcome"] for rec in r.calls(task))
    assert outcomes == {"connected": 2, "interrupted": 2}
    # The next worker starts at once and finishes the task.
    nxt = worker(r, ScriptedCarrier(r.clock, default=Scripted(ring=5, talk=10)), "w2")
    r.drain(nxt)
    audit(r, task, 4, opening, acc)
    assert r.detail(acc, task)["status"] == FINISHED


class _FlakyCarrier(ScriptedCarrier):
    """Unavailable for its first ``outages`` calls; refuses ``refused`` numbers for good."""

    def __init__(self, *args: Any, outages: int, refused: set[str], **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.outages = outages
        self.refused = refused

    async def place(self, request: Any, conversation: Any, stop: asyncio.Event) -> Any:
        from outdial.errors import CallRejected, CarrierUnavailable

        if request.callee in self.refused:
            raise CallRejected("no route to that destination")
        if self.outages > 0:
            self.outages -= 1
            raise CarrierUnavailable("trunk unreachable")
        return await super().place(request, conversation, stop)


def test_carrier_failures_are_decided_by_kind(rig: Any) -> None:
    """A retryable carrier error gives the callee back for later (its attempt not counted, no
    record, no charge); a final one records the attempt failed."""
    r = rig(START)
    acc = account(r, 1)
    opening = r.balance(acc)
    callees = numbers("8613242957", 3)
    task = r.submit(acc, r.template(acc), callees, maxCalls=999)
    carrier = _FlakyCarrier(
        r.clock, default=Scripted(ring=5, talk=10), outages=2, refused={callees[2]}
    )
    w1 = worker(r, carrier, "w1")
    r.drain(w1)
    assert w1.stats.carrier_retries == 2
    records = sorted(r.calls(task), key=lambda rec: rec["callee"])
    assert [(rec["callee"], rec["outcome"], rec["attempt"]) for rec in records] == [
        (callees[0], "connected", 1),
        (callees[1], "connected", 1),
        (callees[2], "failed", 1),
    ]
    assert records[2]["sip_code"] == 503
    first = min(rec["call_time"] for rec in records if rec["outcome"] == "connected")
    assert first >= int(START.timestamp() * 1000) + 30_000, "retried after the carrier's wait"
    audit(r, task, 3, opening, acc)

"""Fault injection on PostgreSQL with the API and the workers as separate processes.

Each scenario runs a campaign of short simulated calls (real time), injects its faults, waits
for the task to finish and every push report to be delivered, then audits the database:

- every callee has exactly one final record;
- the callees dialed twice are at most the calls in flight at the faults, and each of them has
  an ``interrupted`` record for its first attempt;
- ``callNum``, ``success`` and ``fail`` equal the records;
- the balance moved by exactly the billed sum;
- every record's push report was delivered; to a receiver that answered 2xx, once (a report
  whose delivery was cut by a kill may arrive again, always with the same delivery id).

Figures of each run (faults, callees, dialed twice, lost) are printed and appended to
``$FAULT_FIGURES_FILE`` when set.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from outdial.client import LaafficClient
from outdial.clock import SystemClock
from outdial.service.scripts import ScriptService
from outdial.store import schema as s
from outdial.store.repo import Store
from outdial.testing import TestAccount, make_account
from tests.faults.harness import PrivateCluster, Process, Receiver
from tests.helpers import EXAMPLES, wait_until_serving

pytestmark = [pytest.mark.faults, pytest.mark.slow]

CALLEES = 300
LINES = 40
PROFILE = """\
answer: 0.7
busy: 0.1
no_answer: 0.0
unreachable: 0.05
vacant: 0.05
failed: 0.05
voicemail: 0.05
ring_seconds: [0.5, 2.0]
talk_seconds: [1.0, 3.0]
post_dial_seconds: [0.1, 0.3]
"""


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivateCluster]:
    c = PrivateCluster()
    c.start()
    try:
        yield c
    finally:
        c.destroy()


@dataclass
class Campaign:
    """One database, one account with its template, the API process and the workers."""

    cluster: PrivateCluster
    dir: Path
    receiver: Receiver
    url: str = ""
    store: Store | None = None
    account: TestAccount | None = None
    script_id: int = 0
    opening: int = 0
    task_id: int = 0
    api: Process | None = None
    api_base: str = ""
    workers: dict[str, Process] = field(default_factory=dict)
    in_flight_at_faults: int = 0
    faults: list[str] = field(default_factory=list)
    callees: int = CALLEES

    def setup(self) -> None:
        self.url = self.cluster.create_database(f"faults_{secrets.token_hex(4)}")
        self.store = Store.open(self.url)
        clock = SystemClock()
        self.account = make_account(
            self.store, clock, lines=LINES, balance="1000", push_url=self.receiver.url
        )
        source = (EXAMPLES / "templates" / "simple-notice.yaml").read_text()
        service = ScriptService(self.store, clock, tts_languages=["en"], long_chars=200)
        self.script_id = int(service.import_script(self.account.account_id, source)["scriptId"])
        with self.store.read() as tx:
            acc = tx.account(self.account.account_id)
        assert acc is not None
        self.opening = acc.balance
        (self.dir / "profile.yaml").write_text(PROFILE)

    def env(self, worker_id: str, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OUTDIAL_")}
        env.update(
            OUTDIAL_DATABASE_URL=self.url,
            OUTDIAL_WORKER_ID=worker_id,
            OUTDIAL_SIM_PROFILE=str(self.dir / "profile.yaml"),
            OUTDIAL_LEASE_SECONDS="8",
            OUTDIAL_WORKER_DEAD_SECONDS="3",
            OUTDIAL_DRAIN_SECONDS="2",
            OUTDIAL_PUSH_FIRST_BACKOFF_SECONDS="0.5",
            OUTDIAL_PUSH_MAX_BACKOFF_SECONDS="2",
            OUTDIAL_PUSH_ALLOW_PRIVATE="true",  # the receiver is on 127.0.0.1
            OUTDIAL_SMS_FILE=str(self.dir / "sms.jsonl"),
            OUTDIAL_RECORDINGS_DIR=str(self.dir / "recordings"),
            OUTDIAL_LOG_LEVEL="WARNING",
        )
        env.update(extra)
        return env

    def start_api(self, *, with_dialer: bool, worker_id: str = "api") -> Process:
        args = ["serve", "--port", "0"] + ([] if with_dialer else ["--no-worker"])
        env = self.env(worker_id)
        # A log per start: the first line of each names the port that start bound.
        starts = len(list(self.dir.glob(f"{worker_id}*.log")))
        log = self.dir / f"{worker_id}-{starts + 1}.log"
        self.api = Process(args, env, log, worker_id).start()
        self.api_base = wait_until_serving(log)
        return self.api

    def start_worker(self, name: str) -> Process:
        proc = Process(["worker"], self.env(name), self.dir / f"{name}.log", name).start()
        self.workers[name] = proc
        return proc

    def submit(self, callees: int = CALLEES) -> None:
        assert self.account is not None
        self.callees = callees
        with LaafficClient(self.api_base, self.account.api_key, self.account.api_secret) as client:
            self.task_id = client.send_ai(
                app_id=self.account.app_id,
                task_name=f"faults {secrets.token_hex(3)}",
                script_id=self.script_id,
                max_calls=60,
                numbers=[{"calleeNumber": f"8613{i:09d}", "text1": "Li"} for i in range(callees)],
            )

    # --- reading the database -----------------------------------------------------------------
    def _scalar(self, stmt: Any) -> int:
        assert self.store is not None
        with self.store.read() as tx:
            return int(tx.conn.execute(stmt).scalar() or 0)

    def records(self) -> int:
        return self._scalar(
            select(func.count()).select_from(s.calls).where(s.calls.c.task_id == self.task_id)
        )

    def dialing(self, owner: str | None = None) -> int:
        stmt = select(func.count()).where(
            s.callees.c.task_id == self.task_id, s.callees.c.state == s.CALLEE_DIALING
        )
        if owner is not None:
            stmt = stmt.where(s.callees.c.lease_owner == owner)
        return self._scalar(stmt)

    def wait_for(
        self, what: Callable[[], bool], timeout: float, why: str | Callable[[], str]
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if what():
                return
            time.sleep(0.05)
        reason = why() if callable(why) else why
        pytest.fail(f"timed out waiting for {reason}; logs in {self.dir}")

    def wait_in_flight(self, owner: str, at_least: int = 5) -> None:
        self.wait_for(
            lambda: self.dialing(owner) >= at_least,
            60,
            lambda: f"{owner} to hold calls (records by worker so far: {self.by_worker()})",
        )

    def by_worker(self) -> dict[str, int]:
        assert self.store is not None
        with self.store.read() as tx:
            rows = tx.conn.execute(
                select(s.calls.c.worker, func.count())
                .where(s.calls.c.task_id == self.task_id)
                .group_by(s.calls.c.worker)
            ).all()
        return {str(w): int(n) for w, n in rows}

    def finished(self) -> bool:
        done = self._scalar(
            select(func.count()).where(s.tasks.c.id == self.task_id, s.tasks.c.status == 2)
        )
        pending = self._scalar(select(func.count()).where(s.push_outbox.c.status == s.PUSH_PENDING))
        return done == 1 and pending == 0

    def stop_all(self) -> None:
        for proc in [*self.workers.values(), *([self.api] if self.api else [])]:
            proc.stop()
        if self.store is not None:
            self.store.close()

    # --- the audit ------------------------------------------------------------------------------
    def audit(self) -> dict[str, Any]:
        assert self.store is not None and self.account is not None
        with self.store.read() as tx:
            rows = tx.conn.execute(
                select(
                    s.calls.c.id,
                    s.calls.c.callee_id,
                    s.calls.c.attempt,
                    s.calls.c.outcome,
                    s.calls.c.termination_code,
                    s.calls.c.cost,
                ).where(s.calls.c.task_id == self.task_id)
            ).all()
            task = tx.conn.execute(
                select(
                    s.tasks.c.call_num, s.tasks.c.success, s.tasks.c.fail, s.tasks.c.num_cnt
                ).where(s.tasks.c.id == self.task_id)
            ).one()
            balance = tx.conn.execute(
                select(s.accounts.c.balance).where(s.accounts.c.id == self.account.account_id)
            ).scalar_one()
            outbox = tx.conn.execute(
                select(s.push_outbox.c.id, s.push_outbox.c.call_id, s.push_outbox.c.status)
            ).all()
            states = Counter(
                tx.conn.execute(
                    select(s.callees.c.state).where(s.callees.c.task_id == self.task_id)
                ).scalars()
            )
        history: dict[int, list[tuple[int, str]]] = defaultdict(list)
        for _id, callee_id, attempt, outcome, _code, _cost in rows:
            history[callee_id].append((attempt, outcome))
        assert len(history) == self.callees == task.num_cnt, "a callee was lost"
        assert states[s.CALLEE_PENDING] == 0 and states[s.CALLEE_DIALING] == 0
        twice = 0
        for callee_id, attempts in history.items():
            finals = [a for a in attempts if a[1] != "interrupted"]
            assert len(finals) <= 1, f"callee {callee_id} finished twice: {attempts}"
            if len(attempts) > 1:
                twice += 1
                assert sorted(attempts)[0] == (1, "interrupted"), attempts
        assert twice <= self.in_flight_at_faults, (twice, self.in_flight_at_faults)
        success = sum(1 for r in rows if r.termination_code == 200)
        final = sum(1 for attempts in history.values() for a in attempts if a[1] != "interrupted")
        finally_interrupted = sum(
            1 for attempts in history.values() if all(a[1] == "interrupted" for a in attempts)
        )
        assert (task.call_num, task.success) == (len(rows), success)
        assert task.fail == final - success + finally_interrupted
        assert self.opening - balance == sum(r.cost for r in rows), "billed != charged"
        # Push: one report per record, every one delivered.
        assert sorted(o.call_id for o in outbox) == sorted(r.id for r in rows)
        assert {o.status for o in outbox} == {s.PUSH_DELIVERED}
        accepted = self.receiver.accepted()
        missing = [o.id for o in outbox if accepted.get(str(o.id), 0) == 0]
        assert not missing, f"reports never accepted: {missing[:5]}"
        duplicates = sum(n - 1 for n in accepted.values())
        figures = {
            "faults": self.faults,
            "callees": self.callees,
            "records": len(rows),
            "in_flight_at_faults": self.in_flight_at_faults,
            "dialed_twice": twice,
            "lost": 0,
            "reports": len(outbox),
            "push_duplicates_accepted": duplicates,
            "push_failed_answers": self.receiver.failed_answers(),
        }
        print("fault figures:", json.dumps(figures))
        out = os.environ.get("FAULT_FIGURES_FILE")
        if out:
            with open(out, "a", encoding="utf-8") as f:
                f.write(json.dumps(figures) + "\n")
        return figures


@pytest.fixture
def campaign(cluster: PrivateCluster, tmp_path: Path) -> Iterator[Callable[..., Campaign]]:
    made: list[tuple[Campaign, Receiver]] = []

    def build(flap: float | None = None) -> Campaign:
        receiver = Receiver(flap=flap)
        receiver.start()
        c = Campaign(cluster, tmp_path, receiver)
        c.setup()
        made.append((c, receiver))
        return c

    yield build
    for c, receiver in made:
        c.stop_all()
        receiver.stop()


def test_sigkill_a_worker_mid_task_three_times(campaign: Callable[..., Campaign]) -> None:
    c = campaign()
    c.start_api(with_dialer=False)
    # Three kills and restarts: enough callees that work is left for the last restarted
    # worker to hold when the machine is slow to start a process.
    c.submit(callees=3 * CALLEES)
    # The first victim starts first: the worker that claims first tends to keep the lines it
    # frees (it claims again in the step that writes its results), so on a slow machine a
    # worker started a moment later may never hold enough calls to be a victim.
    c.start_worker("w-a")
    c.wait_in_flight("w-a")
    c.start_worker("w-b")
    for _ in range(3):
        # The victim is whichever worker holds the most calls now: the worker that claims first
        # tends to keep every line of the task, so a fixed alternation may wait for a worker
        # that never holds a call again.
        c.wait_for(
            lambda: max(c.dialing(n) for n in c.workers) >= 5,
            60,
            lambda: f"a worker to hold calls (records by worker so far: {c.by_worker()})",
        )
        victim = c.workers[max(c.workers, key=c.dialing)]
        victim.signal(signal.SIGKILL)
        victim.wait(30)
        c.in_flight_at_faults += c.dialing(victim.name)
        c.faults.append(f"SIGKILL {victim.name}")
        # Restarted under the same id: it takes its own calls over at once.
        c.start_worker(victim.name)
        time.sleep(1)
    c.wait_for(c.finished, 180, "the task to finish and reports to be delivered")
    figures = c.audit()
    assert figures["dialed_twice"] > 0, "the kills caught calls in flight"


def test_sigstop_a_worker_past_its_lease_then_sigcont(campaign: Callable[..., Campaign]) -> None:
    c = campaign()
    c.start_api(with_dialer=False)
    c.submit()
    # w-a first, holding calls before w-b starts (see the SIGKILL scenario).
    a = c.start_worker("w-a")
    c.wait_in_flight("w-a")
    c.start_worker("w-b")
    a.signal(signal.SIGSTOP)
    held = c.dialing("w-a")
    c.in_flight_at_faults += held
    c.faults.append("SIGSTOP w-a for 12 s (lease 8 s, dead after 3 s)")
    # w-b declares w-a dead and takes its calls over while it is frozen.
    c.wait_for(lambda: c.dialing("w-a") == 0, 30, "w-b to take w-a's calls over")
    time.sleep(12 - 3)
    a.signal(signal.SIGCONT)
    c.wait_for(c.finished, 180, "the task to finish and reports to be delivered")
    figures = c.audit()
    assert figures["dialed_twice"] == held, "exactly the frozen worker's calls"
    assert c.store is not None
    with c.store.read() as tx:
        fenced = tx.fenced_writes()
    # Its calls ended while it was frozen and it wrote them on waking: all were discarded.
    assert fenced.get("w-a", 0) >= 1, fenced


def test_sigterm_to_the_api_and_dialer_drains_and_gives_calls_back(
    campaign: Callable[..., Campaign],
) -> None:
    c = campaign()
    api = c.start_api(with_dialer=True, worker_id="api-1")
    c.submit()
    # api-1 first, holding calls before w-b starts (see the SIGKILL scenario): a worker that
    # starts first may take every line, and the other holds none for as long as it keeps them.
    c.wait_in_flight("api-1")
    c.start_worker("w-b")
    before = c.dialing("api-1")
    started = time.monotonic()
    api.signal(signal.SIGTERM)
    # The dialer stops claiming as the signal arrives: what it holds then is what it drains.
    time.sleep(0.2)
    c.in_flight_at_faults += max(before, c.dialing("api-1"))
    assert api.wait(60) == 0
    took = time.monotonic() - started
    c.faults.append(f"SIGTERM serve ({took:.1f} s to stop, drain 2 s)")
    # Nothing stays leased to the stopped process: no account waits for its leases.
    assert c.dialing("api-1") == 0
    c.start_api(with_dialer=True, worker_id="api-1")
    c.wait_for(c.finished, 180, "the task to finish and reports to be delivered")
    c.audit()


def test_postgresql_restarts_mid_campaign(campaign: Callable[..., Campaign]) -> None:
    c = campaign()
    c.start_api(with_dialer=False)
    c.submit()
    c.start_worker("w-a")
    c.start_worker("w-b")
    c.wait_for(lambda: c.records() >= CALLEES // 4, 60, "a quarter of the calls")
    c.in_flight_at_faults += c.dialing()
    c.cluster.restart()
    c.faults.append("PostgreSQL fast restart")
    c.wait_for(c.finished, 180, "the task to finish after the restart")
    assert all(w.alive() for w in c.workers.values()), "workers survive a database restart"
    c.audit()


def test_a_flapping_push_receiver_and_a_killed_deliverer(
    campaign: Callable[..., Campaign],
) -> None:
    c = campaign(flap=0.7)
    c.start_api(with_dialer=False)
    c.submit()
    c.start_worker("w-a")
    b = c.start_worker("w-b")
    c.wait_for(lambda: c.records() >= CALLEES // 3, 60, "a third of the calls")
    c.in_flight_at_faults += c.dialing("w-b")
    b.signal(signal.SIGKILL)
    b.wait(30)
    c.faults.append("receiver flapping 503 every 0.7 s; SIGKILL w-b")
    c.wait_for(c.finished, 180, "every report to be delivered")
    figures = c.audit()
    assert figures["push_failed_answers"] > 0, "the receiver did fail"

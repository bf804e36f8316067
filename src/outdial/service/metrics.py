"""Prometheus collectors that read the database on each scrape (the API's and every worker's
``/metrics``): the push and SMS outboxes' backlog, and whether the database answers."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError

from outdial.clock import Clock, epoch_ms
from outdial.store.health import Backlog, push_backlog, sms_backlog
from outdial.store.repo import Store

log = logging.getLogger(__name__)


class OutboxCollector(Collector):
    """``outdial_{push,sms}_queue_depth``, ``..._queue_age_seconds`` (the oldest waiting row)
    and ``..._gave_up`` (final failures), plus ``outdial_database_up``. Two indexed queries per
    outbox per scrape; a database that is away gives ``outdial_database_up 0`` and no backlog."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("outdial_database_up", "1 when the last scrape reached the database")
        try:
            with self.store.read() as tx:
                push, sms = push_backlog(tx.conn), sms_backlog(tx.conn)
        except SQLAlchemyError as exc:
            log.warning("metrics: database unavailable (%s)", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        now = epoch_ms(self.clock.now())
        yield from _backlog("push", "push reports", push, now)
        yield from _backlog("sms", "hang-up SMS", sms, now)


def _backlog(kind: str, what: str, backlog: Backlog, now_ms: int) -> Iterator[Metric]:
    yield GaugeMetricFamily(
        f"outdial_{kind}_queue_depth", f"{what} waiting to be delivered", value=backlog.pending
    )
    age = 0.0 if backlog.oldest_ms is None else max(0.0, (now_ms - backlog.oldest_ms) / 1000)
    yield GaugeMetricFamily(
        f"outdial_{kind}_queue_age_seconds",
        f"age of the oldest of the {what} waiting (0: none waits)",
        value=age,
    )
    yield GaugeMetricFamily(
        f"outdial_{kind}_gave_up", f"{what} that failed for good", value=backlog.failed
    )
